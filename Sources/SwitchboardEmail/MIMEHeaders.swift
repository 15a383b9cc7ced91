// RFC 5322 header sections: unfolding, RFC 2047 encoded words, RFC 2045 / 2231 parameters,
// address lists and message-id lists. Pure functions over bytes; every malformed input gives
// something usable and, where it matters, a note of what was wrong.

import Foundation

/// The header fields of a message or a body part, in order.
public struct MIMEHeaders: Sendable, Hashable {
    /// (name, raw value with folding removed), in order.
    public var fields: [(name: String, value: String)]

    public init(fields: [(name: String, value: String)]) {
        self.fields = fields
    }

    /// The first field with this name (any case), raw.
    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Every field with this name (any case), raw, in order.
    public func all(_ name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    /// A field's value with encoded words decoded and white space collapsed.
    public func text(_ name: String) -> String? {
        self[name].map(EncodedWords.decode)
    }

    public static func == (lhs: MIMEHeaders, rhs: MIMEHeaders) -> Bool {
        lhs.fields.map(\.name) == rhs.fields.map(\.name) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        for field in fields {
            hasher.combine(field.name)
            hasher.combine(field.value)
        }
    }

    /// Parses a header section (the bytes before the blank line). Lines that are not fields
    /// (no colon, or a name with spaces) are skipped and counted in `malformed`.
    static func parse(_ bytes: ArraySlice<UInt8>, malformed: inout Int) -> MIMEHeaders {
        var fields: [(String, String)] = []
        // Latin-1 keeps every byte; header values in UTF-8 (RFC 6532) are re-read below.
        for line in unfold(bytes) {
            // A malformed line stays as a nameless field: it ends the trace block at the top, so
            // nothing below it can pass for the receiving server's own header.
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                malformed += 1
                fields.append(("", Charsets.headerText(line)))
                continue
            }
            let nameBytes = line[line.startIndex..<colon]
            guard nameBytes.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                malformed += 1
                fields.append(("", Charsets.headerText(line)))
                continue
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            var valueBytes = line[line.index(after: colon)...]
            while let first = valueBytes.first, first == 32 || first == 9 { valueBytes = valueBytes.dropFirst() }
            fields.append((name, Charsets.headerText(valueBytes)))
        }
        return MIMEHeaders(fields: fields)
    }

    /// Header lines with continuation lines joined (RFC 5322 §2.2.3), line-ending CRs removed.
    /// Other control bytes stay: a name with one is malformed, and values are cleaned where shown.
    static func unfold(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var started = false
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            var line = raw
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if let first = line.first, first == 32 || first == 9, started {
                current.append(contentsOf: line)
            } else {
                if started { lines.append(current) }
                current = Array(line)
                started = true
            }
        }
        if started { lines.append(current) }
        return lines.filter { !$0.isEmpty }.map { $0[...] }
    }
}

/// RFC 2047 encoded words: `=?charset?B?...?=` and `=?charset?Q?...?=`.
public enum EncodedWords {
    /// A header value with encoded words decoded; white space between two encoded words is
    /// dropped, as the RFC says; CR, LF and other control characters become spaces.
    public static func decode(_ value: String) -> String {
        var out = ""
        var rest = Substring(value)
        var lastWasEncoded = false
        var pendingSpace = ""
        while !rest.isEmpty {
            // The standard library's search: Foundation's copies the rest of the text each time.
            if let range = rest.firstRange(of: "=?"), decodeWord(rest[range.lowerBound...]) == nil {
                // Not an encoded word: keep it as text and look further on.
                out += pendingSpace + rest[..<range.upperBound]
                pendingSpace = ""
                lastWasEncoded = false
                rest = rest[range.upperBound...]
                continue
            }
            if let range = rest.firstRange(of: "=?"), let decoded = decodeWord(rest[range.lowerBound...]) {
                let before = rest[..<range.lowerBound]
                if before.allSatisfy({ $0 == " " || $0 == "\t" }) && lastWasEncoded {
                    // Drop the space between adjacent encoded words.
                } else {
                    out += pendingSpace + before
                }
                pendingSpace = ""
                out += decoded.text
                rest = rest[decoded.end...]
                lastWasEncoded = true
                // Keep white space after it only if plain text follows.
                let spaces = rest.prefix { $0 == " " || $0 == "\t" }
                pendingSpace = String(spaces)
                rest = rest.dropFirst(spaces.count)
            } else {
                out += pendingSpace + rest
                pendingSpace = ""
                rest = ""
            }
        }
        out += pendingSpace
        return clean(out)
    }

    /// Control characters (CR, LF, NUL, …) become spaces; runs of white space collapse. This is
    /// what keeps a header value from ever carrying a line break into a reply's headers.
    public static func clean(_ text: String) -> String {
        var out = ""
        var space = false
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control || scalar == " " || scalar == "\u{2028}" || scalar == "\u{2029}" {
                space = !out.isEmpty
                continue
            }
            if space { out.append(" ") }
            space = false
            out.unicodeScalars.append(scalar)
        }
        return out
    }

    private static func decodeWord(_ text: Substring) -> (text: String, end: Substring.Index)? {
        // =?charset[*lang]?encoding?payload?=
        let body = text.dropFirst(2)
        guard let q1 = body.firstIndex(of: "?") else { return nil }
        let charset = body[..<q1].split(separator: "*").first.map(String.init) ?? ""
        let afterCharset = body[body.index(after: q1)...]
        guard let q2 = afterCharset.firstIndex(of: "?") else { return nil }
        let encoding = afterCharset[..<q2].uppercased()
        let payloadStart = afterCharset.index(after: q2)
        guard let close = afterCharset[payloadStart...].prefix(1100).firstRange(of: "?=") else { return nil }
        let payload = afterCharset[payloadStart..<close.lowerBound]
        guard !charset.isEmpty, payload.count < 1000, !payload.contains(" ") else { return nil }
        let bytes: [UInt8]
        switch encoding {
        case "B": bytes = TransferEncodings.base64(Array(payload.utf8)).bytes
        case "Q": bytes = TransferEncodings.quotedPrintable(Array(payload.utf8), underscoreIsSpace: true)
        default: return nil
        }
        return (Charsets.decode(bytes, charset: charset).text, close.upperBound)
    }
}

/// A `type/subtype; name=value` header (Content-Type, Content-Disposition), with RFC 2231
/// parameter continuations and charsets.
public struct HeaderParameters: Sendable, Hashable {
    /// The value before the parameters, lowercased: `text/plain`, `attachment`.
    public var value: String
    /// Parameters by lowercased name, decoded.
    public var parameters: [String: String]

    public init(_ raw: String) {
        let parts = Self.split(raw)
        value = (parts.first ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        var simple: [String: String] = [:]
        // name*N[*]=value pieces of RFC 2231 continuations, by name.
        var pieces: [String: [(Int, String, Bool)]] = [:]
        for part in parts.dropFirst() {
            guard let equals = part.firstIndex(of: "=") else { continue }
            let name = part[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var text = part[part.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
                text = String(text.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
            }
            let nameParts = name.split(separator: "*", omittingEmptySubsequences: false)
            if nameParts.count >= 2, let index = Int(nameParts[1]) {
                pieces[String(nameParts[0]), default: []].append((index, text, name.hasSuffix("*")))
            } else if name.hasSuffix("*") {
                pieces[String(name.dropLast()), default: []].append((0, text, true))
            } else {
                simple[name] = name == "name" || name == "filename" ? EncodedWords.decode(text) : text
            }
        }
        for (name, list) in pieces {
            let ordered = list.sorted { $0.0 < $1.0 }
            var charset = "utf-8"
            var bytes: [UInt8] = []
            for (index, piece, encoded) in ordered {
                var text = Substring(piece)
                if encoded && index == 0 {
                    // charset'language'value
                    let fields = piece.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                    if fields.count == 3 {
                        charset = fields[0].isEmpty ? "utf-8" : String(fields[0])
                        text = fields[2]
                    }
                }
                bytes += encoded ? Self.percentDecode(text) : Array(text.utf8)
            }
            simple[name] = Charsets.decode(bytes, charset: charset).text
        }
        parameters = simple
    }

    /// Splits on semicolons outside quotes.
    static func split(_ raw: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in raw {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if character == "\\" && quoted { escaped = true; current.append(character); continue }
            if character == "\"" { quoted.toggle() }
            if character == ";" && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    static func percentDecode(_ text: Substring) -> [UInt8] {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.first {
            if byte == UInt8(ascii: "%"), bytes.count >= 3, let value = UInt8(String(decoding: bytes.dropFirst().prefix(2), as: UTF8.self), radix: 16) {
                out.append(value)
                bytes = bytes.dropFirst(3)
            } else {
                out.append(byte)
                bytes = bytes.dropFirst()
            }
        }
        return out
    }
}

/// Addresses and ids from header fields.
public enum HeaderLists {
    /// A mailbox: a display name and an address.
    public struct Mailbox: Sendable, Hashable {
        public var name: String?
        public var address: String

        public init(name: String?, address: String) {
            self.name = name
            self.address = address
        }
    }

    /// The mailboxes of an address list (`"Sam" <sam@example.org>, bob@example.org`); groups
    /// flattened; entries without an @ dropped.
    public static func mailboxes(_ raw: String) -> [Mailbox] {
        var result: [Mailbox] = []
        for entry in splitAddresses(raw) {
            var text = entry.trimmingCharacters(in: .whitespaces)
            // "group: a, b;" — drop the group name.
            if let colon = text.firstIndex(of: ":"), !text[..<colon].contains("<"), !text[..<colon].contains("@") {
                text = String(text[text.index(after: colon)...]).trimmingCharacters(in: CharacterSet(charactersIn: " ;"))
            }
            if let open = text.lastIndex(of: "<"), let close = text[open...].firstIndex(of: ">") {
                let address = String(text[text.index(after: open)..<close]).trimmingCharacters(in: .whitespaces)
                // The phrase's structure first (a quoted string), its encoded words after, so a
                // quote inside an encoded word stays part of the name.
                let phrase = String(text[..<open]).trimmingCharacters(in: .whitespaces)
                var name: String
                if phrase.count >= 2, phrase.hasPrefix("\""), phrase.hasSuffix("\"") {
                    var unquoted = ""
                    var escaped = false
                    for character in phrase.dropFirst().dropLast() {
                        if escaped || character != "\\" {
                            unquoted.append(character)
                            escaped = false
                        } else {
                            escaped = true
                        }
                    }
                    // Many mail programs put encoded words inside quotes; read them there too.
                    name = EncodedWords.decode(unquoted)
                } else {
                    name = EncodedWords.decode(phrase)
                }
                name = name.trimmingCharacters(in: .whitespaces)
                if isAddress(address) { result.append(Mailbox(name: name.isEmpty ? nil : name, address: address)) }
            } else {
                let address = (text.split(separator: " ").first { $0.contains("@") }.map(String.init) ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "<>;,"))
                if isAddress(address) { result.append(Mailbox(name: nil, address: address)) }
            }
        }
        return result
    }

    /// An address as it may be used: an @, at most 254 characters, no white space or control
    /// characters (which could break a reply's headers).
    static func isAddress(_ text: String) -> Bool {
        text.contains("@") && text.count <= 254
            && !text.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control }
    }

    /// Message ids (`<a@b> <c@d>`), without the angle brackets.
    public static func messageIDs(_ raw: String) -> [String] {
        var ids: [String] = []
        var rest = Substring(raw)
        while let open = rest.firstIndex(of: "<"), let close = rest[open...].firstIndex(of: ">") {
            let id = rest[rest.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
            if !id.isEmpty, id.count <= 998, isAddress(id) { ids.append(id) }
            rest = rest[rest.index(after: close)...]
        }
        if ids.isEmpty {
            // Some senders forget the brackets.
            ids = raw.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init).filter { isAddress($0) && $0.count <= 998 }
        }
        return ids
    }

    /// Splits on commas outside quotes and angle brackets; comments are dropped.
    static func splitAddresses(_ raw: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var angle = 0
        var comment = 0
        for character in raw {
            if quoted {
                if character == "\"" { quoted = false }
                current.append(character)
                continue
            }
            if comment > 0 {
                if character == "(" { comment += 1 }
                if character == ")" { comment -= 1 }
                continue
            }
            switch character {
            case "\"": quoted = true; current.append(character)
            case "(": comment = 1
            case "<": angle += 1; current.append(character)
            case ">": angle = max(0, angle - 1); current.append(character)
            case "," where angle == 0:
                parts.append(current)
                current = ""
            default: current.append(character)
            }
        }
        parts.append(current)
        return parts.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    }
}
