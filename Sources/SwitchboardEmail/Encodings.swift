// Content transfer encodings (RFC 2045: base64, quoted-printable) and character sets.

import Foundation

/// Base64 and quoted-printable, tolerant of what real mail contains.
public enum TransferEncodings {
    /// Decodes base64, skipping characters outside the alphabet (line breaks, stray spaces).
    /// Data after padding starts a new run, as when a mailer encodes each line on its own
    /// ("SGVsbG8=\r\nV29ybGQ=" is "HelloWorld"). `truncated` is true when the input ended
    /// mid-group, or a group held a single character; the complete groups are kept.
    public static func base64(_ input: [UInt8]) -> (bytes: [UInt8], truncated: Bool) {
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var quad: UInt32 = 0
        var count = 0
        var broken = false
        /// Ends a group: the bytes its 2 or 3 characters hold.
        func finish() {
            switch count {
            case 1: broken = true
            case 2: out.append(UInt8(quad >> 4 & 0xFF))
            case 3:
                out.append(UInt8(quad >> 10 & 0xFF))
                out.append(UInt8(quad >> 2 & 0xFF))
            default: break
            }
            quad = 0
            count = 0
        }
        for byte in input {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="):
                finish()
                continue
            default:
                continue
            }
            quad = quad << 6 | value
            count += 1
            if count == 4 {
                out.append(UInt8(quad >> 16 & 0xFF))
                out.append(UInt8(quad >> 8 & 0xFF))
                out.append(UInt8(quad & 0xFF))
                quad = 0
                count = 0
            }
        }
        // Padding ends a group, so characters left over mean the input was cut short (what
        // they hold is kept).
        let cut = count > 0
        finish()
        return (out, broken || cut)
    }

    /// Decodes quoted-printable: `=XX` bytes, `=` soft line breaks; a malformed `=` stays as is.
    public static func quotedPrintable(_ input: [UInt8], underscoreIsSpace: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var index = 0
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "=") {
                if index + 2 < input.count, let high = hex(input[index + 1]), let low = hex(input[index + 2]) {
                    out.append(high << 4 | low)
                    index += 3
                    continue
                }
                // Soft line break: "=" then optional spaces then CRLF or LF.
                var next = index + 1
                while next < input.count, input[next] == 32 || input[next] == 9 { next += 1 }
                if next < input.count, input[next] == 13 { next += 1 }
                if next < input.count, input[next] == 10 {
                    index = next + 1
                    continue
                }
                if next >= input.count {
                    index = next
                    continue
                }
                out.append(byte)
                index += 1
                continue
            }
            out.append(underscoreIsSpace && byte == UInt8(ascii: "_") ? 32 : byte)
            index += 1
        }
        return out
    }
}

/// Character sets: UTF-8, US-ASCII, ISO-8859-1 and -15, Windows-1252, and what Foundation
/// knows besides; anything else becomes a clear placeholder.
public enum Charsets {
    /// Decodes text. `known` is false when the charset was not one this build can read, and the
    /// text is a placeholder saying so.
    public static func decode(_ bytes: [UInt8], charset rawName: String) -> (text: String, known: Bool) {
        let name = rawName.trimmingCharacters(in: CharacterSet(charactersIn: " \"'")).lowercased()
        switch name {
        case "", "utf-8", "utf8", "us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968", "unicode-1-1-utf-8":
            return (String(decoding: bytes, as: UTF8.self), true)
        case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "cp819":
            return (latin1(bytes), true)
        case "iso-8859-15", "iso8859-15", "latin-9", "latin9", "l9":
            return (latin9(bytes), true)
        case "windows-1252", "cp1252", "x-cp1252":
            return (windows1252(bytes), true)
        default:
            if let encoding = foundationEncodings[name], let text = String(bytes: bytes, encoding: encoding) {
                return (text, true)
            }
            return ("[text in the character set \"\(rawName.prefix(40))\", which I can't read]", false)
        }
    }

    /// A header value's bytes: UTF-8 when they are valid UTF-8 (RFC 6532), else Windows-1252
    /// (the usual 8-bit header in the wild).
    static func headerText(_ bytes: ArraySlice<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return windows1252(Array(bytes))
    }

    static let foundationEncodings: [String: String.Encoding] = [
        "utf-16": .utf16, "utf-16le": .utf16LittleEndian, "utf-16be": .utf16BigEndian, "iso-8859-2": .isoLatin2,
        "windows-1250": .windowsCP1250, "windows-1251": .windowsCP1251, "windows-1253": .windowsCP1253,
        "windows-1254": .windowsCP1254, "shift_jis": .shiftJIS, "shift-jis": .shiftJIS, "euc-jp": .japaneseEUC,
        "iso-2022-jp": .iso2022JP, "macintosh": .macOSRoman, "mac": .macOSRoman,
    ]

    static func latin1(_ bytes: [UInt8]) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    static func latin9(_ bytes: [UInt8]) -> String {
        let differences: [UInt8: UInt32] = [0xA4: 0x20AC, 0xA6: 0x160, 0xA8: 0x161, 0xB4: 0x17D, 0xB8: 0x17E, 0xBC: 0x152, 0xBD: 0x153, 0xBE: 0x178]
        return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar(differences[$0] ?? UInt32($0))! }))
    }

    static func windows1252(_ bytes: [UInt8]) -> String {
        let high: [UInt32] = [
            0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
            0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
        ]
        return String(String.UnicodeScalarView(bytes.map { byte in
            (0x80...0x9F).contains(byte) ? Unicode.Scalar(high[Int(byte) - 0x80])! : Unicode.Scalar(byte)
        }))
    }
}
