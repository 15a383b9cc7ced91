// Writing the bot's mail (RFC 5322, RFC 2045-2047): headers with encoded words and folding, a
// UTF-8 plain-text body in quoted-printable, CRLF line ends.
//
// Everything that came from outside (a subject, a display name, an address) passes through
// `headerSafe` first: CR, LF and other control characters are dropped, so no text can end a
// header early and add one of its own.

public import Foundation

/// A message to send.
public struct OutgoingEmail: Sendable, Hashable {
    /// The sender's address and display name.
    public var from: String
    public var fromName: String?
    /// The recipient.
    public var to: String
    public var subject: String
    /// Without angle brackets.
    public var messageID: String
    public var date: Date
    /// Message ids (without brackets) the message answers and continues.
    public var inReplyTo: String?
    public var references: [String]
    /// RFC 3834: `auto-replied` for answers, `auto-generated` for notices nobody asked for;
    /// nil for mail a person asked the bot to write.
    public var autoSubmitted: String?
    public var text: String

    /// Creates a message.
    public init(
        from: String, fromName: String?, to: String, subject: String, messageID: String, date: Date,
        inReplyTo: String?, references: [String], autoSubmitted: String?, text: String
    ) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.subject = subject
        self.messageID = messageID
        self.date = date
        self.inReplyTo = inReplyTo
        self.references = references
        self.autoSubmitted = autoSubmitted
        self.text = text
    }
}

/// Turns an `OutgoingEmail` into the bytes to submit.
public enum EmailComposer {
    /// The message as sent: CRLF line ends, 7-bit headers, quoted-printable UTF-8 body.
    public static func compose(_ email: OutgoingEmail) -> [UInt8] {
        var headers: [String] = []
        headers.append(field("From", mailbox(email.from, name: email.fromName)))
        headers.append(field("To", mailbox(email.to, name: nil)))
        headers.append(field("Subject", encodedWords(headerSafe(email.subject), prefixLength: "Subject: ".count)))
        headers.append(field("Date", rfc5322Date(email.date)))
        headers.append(field("Message-ID", "<\(headerSafe(email.messageID))>"))
        if let parent = email.inReplyTo {
            headers.append(field("In-Reply-To", "<\(headerSafe(parent))>"))
        }
        if !email.references.isEmpty {
            headers.append(fold("References", email.references.map { "<\(headerSafe($0))>" }))
        }
        if let autoSubmitted = email.autoSubmitted { headers.append(field("Auto-Submitted", autoSubmitted)) }
        headers.append(field("MIME-Version", "1.0"))
        headers.append(field("Content-Type", "text/plain; charset=utf-8"))
        headers.append(field("Content-Transfer-Encoding", "quoted-printable"))
        let head = headers.joined(separator: "\r\n") + "\r\n\r\n"
        return Array(head.utf8) + quotedPrintable(email.text)
    }

    /// Turns CR, LF, NUL and every other control character into spaces, runs of white space
    /// into one, and trims.
    public static func headerSafe(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var lastWasSpace = true
        for scalar in text.unicodeScalars {
            let space = scalar.properties.generalCategory == .control || scalar.properties.isWhitespace
            if space {
                if !lastWasSpace { result.append(" ") }
            } else {
                result.append(scalar)
            }
            lastWasSpace = space
        }
        return String(result).trimmingCharacters(in: .whitespaces)
    }

    private static func field(_ name: String, _ value: String) -> String { "\(name): \(value)" }

    /// `Name <address>`, the name quoted or encoded as needed.
    static func mailbox(_ address: String, name: String?) -> String {
        let address = headerSafe(address).filter { !$0.isWhitespace && $0 != "<" && $0 != ">" }
        guard let name = name.map(headerSafe), !name.isEmpty else { return address }
        let display: String
        if name.unicodeScalars.allSatisfy({ $0.isASCII }) {
            let specials = CharacterSet(charactersIn: "()<>[]:;@\\,.\"")
            if name.unicodeScalars.contains(where: { specials.contains($0) }) {
                display = "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            } else {
                display = name
            }
        } else {
            display = encodedWords(name, prefixLength: "From: ".count)
        }
        return "\(display) <\(address)>"
    }

    /// ASCII text as it is (folded at spaces past 78 columns); anything else, and ASCII with a
    /// word too long to fold, as RFC 2047 B-encoded UTF-8 words, never splitting a character.
    static func encodedWords(_ text: String, prefixLength: Int) -> String {
        let foldable = !text.split(separator: " ").contains { $0.count > 70 }
        if foldable && text.unicodeScalars.allSatisfy({ $0.isASCII }) && !text.contains("=?") {
            return foldWords(text, prefixLength: prefixLength)
        }
        // At most 30 bytes of UTF-8 per word: "=?utf-8?B?" + 40 base64 + "?=" is 52 characters,
        // so even the first line ("Subject: " or "From: " before it) stays under 78.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 30, !chunk.isEmpty {
                words.append("=?utf-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?utf-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: "\r\n ")
    }

    /// Folds plain text at spaces so lines stay under 78 characters where it can.
    static func foldWords(_ text: String, prefixLength: Int) -> String {
        var lines: [String] = []
        var current = ""
        var width = prefixLength
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if !current.isEmpty, width + 1 + word.count > 78 {
                lines.append(current)
                current = String(word)
                width = 1 + word.count
            } else {
                if !current.isEmpty || width > prefixLength { current += " "; width += 1 }
                current += word
                width += word.count
            }
        }
        lines.append(current)
        return lines.joined(separator: "\r\n ")
    }

    /// A header of several items, one item per folded line when long.
    private static func fold(_ name: String, _ items: [String]) -> String {
        var lines: [String] = []
        var current = name + ":"
        for item in items {
            if current.count + 1 + item.count > 78, current != name + ":" {
                lines.append(current)
                current = ""
            }
            current += " " + item
        }
        lines.append(current)
        return lines.joined(separator: "\r\n")
    }

    /// RFC 5322 date-time in UTC: `Sun, 29 Nov 2026 20:10:28 +0000`.
    public static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// Quoted-printable (RFC 2045 §6.7) of UTF-8 text with CRLF line ends: lines of at most 76
    /// characters, `=` and non-ASCII bytes encoded, trailing white space protected, and a line
    /// that starts with `.` or `From ` encoded so no relay alters it.
    static func quotedPrintable(_ text: String) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        let normalised = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        let lines = normalised.split(separator: "\n", omittingEmptySubsequences: false)
        for (lineIndex, line) in lines.enumerated() {
            let bytes = Array(line.utf8)
            var width = 0
            for (index, byte) in bytes.enumerated() {
                let last = index == bytes.count - 1
                let atStart = index == 0
                var encode = byte == UInt8(ascii: "=") || byte >= 0x80 || (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F
                if last, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { encode = true }
                if atStart, byte == UInt8(ascii: ".") { encode = true }
                if atStart, bytes.starts(with: Array("From ".utf8)) { encode = true }
                let piece: [UInt8] = encode ? [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]] : [byte]
                // Room for a soft line break ("=") within 76 characters.
                if width + piece.count > 75 {
                    output += Array("=\r\n".utf8)
                    width = 0
                }
                output += piece
                width += piece.count
            }
            if lineIndex < lines.count - 1 { output += Array("\r\n".utf8) }
        }
        output += Array("\r\n".utf8)
        return output
    }
}
