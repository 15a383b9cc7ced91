// RFC 5322 / RFC 2045-2049 messages into what the assistant needs: who, what about, in reply
// to what, the request's own text (quoted history and signature removed), and the attachments
// by name and size. Nothing here throws on bad input: limits and damage become notes, and the
// message is still read as far as it can be.

import Foundation
public import SwitchboardModel

/// A parsed email.
public struct EmailMessage: Sendable, Hashable {
    /// The header fields of the message.
    public var headers: MIMEHeaders
    /// From.
    public var from: [HeaderLists.Mailbox]
    /// To and Cc.
    public var to: [HeaderLists.Mailbox]
    /// The subject, decoded, on one line.
    public var subject: String
    /// The Message-ID, without angle brackets.
    public var messageID: String?
    /// In-Reply-To ids.
    public var inReplyTo: [String]
    /// References ids, oldest first.
    public var references: [String]
    /// The whole readable text of the message (plain text, or HTML turned into text).
    public var body: String
    /// The request: the body's new text, without quoted history or signature; the subject when
    /// the body has none.
    public var text: String
    /// Attachments, listed and not processed.
    public var attachments: [Attachment]
    /// What was wrong with the message, for the log: damage the parser worked around.
    public var problems: [String]
    /// Whether a part was a delivery report (`multipart/report`): a bounce.
    public var isReport: Bool

    /// An attachment: its name, type and decoded size.
    public struct Attachment: Sendable, Hashable {
        public var name: String
        public var contentType: String
        public var size: Int

        public init(name: String, contentType: String, size: Int) {
            self.name = name
            self.contentType = contentType
            self.size = size
        }
    }
}

/// Limits that keep a hostile message from costing more than a normal one.
public struct MIMELimits: Sendable, Hashable {
    /// The largest message read at all, in bytes.
    public var maxBytes: Int
    /// The deepest nesting of multiparts followed.
    public var maxDepth: Int
    /// The most body parts looked at.
    public var maxParts: Int
    /// The most text kept for the body, in characters.
    public var maxTextCharacters: Int

    public init(maxBytes: Int = 40 << 20, maxDepth: Int = 12, maxParts: Int = 200, maxTextCharacters: Int = 100_000) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxParts = maxParts
        self.maxTextCharacters = maxTextCharacters
    }
}

/// Reads messages.
public enum MIMEParser {
    /// A message too big to read at all.
    public struct TooLarge: Error, CustomStringConvertible {
        public var bytes: Int
        public var limit: Int
        public var description: String { "the message is \(bytes) bytes, over the limit of \(limit)" }
    }

    /// Parses a message.
    ///
    /// - Throws: `TooLarge` only; every other problem is worked around and listed in `problems`.
    public static func parse(_ data: [UInt8], limits: MIMELimits = MIMELimits()) throws -> EmailMessage {
        guard data.count <= limits.maxBytes else { throw TooLarge(bytes: data.count, limit: limits.maxBytes) }
        var state = State(limits: limits)
        let (headers, body) = split(data[...], state: &state)
        var plain: [String] = []
        var html: [String] = []
        walk(headers: headers, body: body, depth: 0, state: &state, plain: &plain, html: &html)

        var bodyText = plain.joined(separator: "\n\n")
        if bodyText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, !html.isEmpty {
            bodyText = html.map(HTMLText.text).joined(separator: "\n\n")
        }
        bodyText = bodyText.replacingOccurrences(of: "\u{0}", with: "")
        if bodyText.count > limits.maxTextCharacters {
            bodyText = String(bodyText.prefix(limits.maxTextCharacters))
            state.problems.append("text cut at \(limits.maxTextCharacters) characters")
        }
        let subject = headers.text("Subject") ?? ""
        var request = Quotes.newText(bodyText)
        if request.isEmpty { request = Quotes.subjectRequest(subject) }
        return EmailMessage(
            headers: headers,
            from: HeaderLists.mailboxes(headers["From"] ?? ""),
            to: HeaderLists.mailboxes(headers["To"] ?? "") + HeaderLists.mailboxes(headers["Cc"] ?? ""),
            subject: subject,
            messageID: headers["Message-ID"].flatMap { HeaderLists.messageIDs($0).first },
            inReplyTo: headers["In-Reply-To"].map(HeaderLists.messageIDs) ?? [],
            references: headers["References"].map(HeaderLists.messageIDs) ?? [],
            body: bodyText,
            text: request,
            attachments: state.attachments,
            problems: state.problems,
            isReport: state.isReport
        )
    }

    struct State {
        let limits: MIMELimits
        var parts = 0
        var problems: [String] = []
        var attachments: [EmailMessage.Attachment] = []
        var isReport = false
        var malformedHeaders = 0
    }

    /// Splits a message or part into its header section and its body at the first empty line.
    static func split(_ bytes: ArraySlice<UInt8>, state: inout State) -> (MIMEHeaders, ArraySlice<UInt8>) {
        var index = bytes.startIndex
        var lineStart = index
        while index < bytes.endIndex {
            if bytes[index] == 10 {
                let line = bytes[lineStart..<index]
                if line.isEmpty || line == [13] {
                    var malformed = 0
                    let headers = MIMEHeaders.parse(bytes[bytes.startIndex..<lineStart], malformed: &malformed)
                    if malformed > 0 { state.problems.append("\(malformed) malformed header line\(malformed == 1 ? "" : "s") skipped") }
                    return (headers, bytes[(index + 1)...])
                }
                lineStart = index + 1
            }
            index += 1
        }
        // No empty line: all headers, no body.
        var malformed = 0
        let headers = MIMEHeaders.parse(bytes, malformed: &malformed)
        if malformed > 0 { state.problems.append("\(malformed) malformed header line\(malformed == 1 ? "" : "s") skipped") }
        return (headers, bytes[bytes.endIndex...])
    }

    static func walk(headers: MIMEHeaders, body: ArraySlice<UInt8>, depth: Int, state: inout State, plain: inout [String], html: inout [String]) {
        state.parts += 1
        guard state.parts <= state.limits.maxParts else {
            if state.parts == state.limits.maxParts + 1 { state.problems.append("more than \(state.limits.maxParts) parts; the rest were skipped") }
            return
        }
        let type = HeaderParameters(headers["Content-Type"] ?? "text/plain; charset=us-ascii")
        let disposition = HeaderParameters(headers["Content-Disposition"] ?? "")
        let mediaType = type.value.isEmpty ? "text/plain" : type.value

        if mediaType.hasPrefix("multipart/") {
            if mediaType == "multipart/report" { state.isReport = true }
            guard depth < state.limits.maxDepth else {
                state.problems.append("multipart nested deeper than \(state.limits.maxDepth); inner parts skipped")
                return
            }
            guard let boundary = type.parameters["boundary"], !boundary.isEmpty else {
                state.problems.append("multipart without a boundary; read as plain text")
                plain.append(Charsets.decode(Array(body), charset: "utf-8").text.replacingOccurrences(of: "\r\n", with: "\n"))
                return
            }
            let parts = multipartBodies(body, boundary: boundary, state: &state)
            if mediaType == "multipart/alternative" {
                // The last part the reader understands is the best; prefer plain text.
                var altPlain: [String] = []
                var altHTML: [String] = []
                for part in parts {
                    let (partHeaders, partBody) = split(part, state: &state)
                    walk(headers: partHeaders, body: partBody, depth: depth + 1, state: &state, plain: &altPlain, html: &altHTML)
                }
                if let text = altPlain.last(where: { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) {
                    plain.append(text)
                } else if let text = altHTML.last {
                    plain.append(HTMLText.text(text))
                }
                return
            }
            for part in parts {
                let (partHeaders, partBody) = split(part, state: &state)
                walk(headers: partHeaders, body: partBody, depth: depth + 1, state: &state, plain: &plain, html: &html)
            }
            return
        }

        if mediaType == "message/rfc822" && disposition.value != "attachment" {
            // A forwarded message: its text is third-party content; list it, don't read it as ours.
            state.attachments.append(.init(name: HeaderLists.messageIDs("").first ?? "forwarded message", contentType: mediaType, size: body.count))
            return
        }

        let name = disposition.parameters["filename"] ?? type.parameters["name"]
        let isText = mediaType == "text/plain" || mediaType == "text/html"
        if disposition.value == "attachment" || name != nil || !isText {
            state.attachments.append(.init(
                name: EncodedWords.clean(name ?? "unnamed \(mediaType)"), contentType: mediaType,
                size: decodedSize(body, encoding: headers["Content-Transfer-Encoding"])
            ))
            return
        }
        let bytes = decodeBody(body, encoding: headers["Content-Transfer-Encoding"], state: &state)
        let decoded = Charsets.decode(bytes, charset: type.parameters["charset"] ?? "us-ascii")
        if !decoded.known { state.problems.append("unknown charset \(type.parameters["charset"] ?? "")") }
        let text = decoded.text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\u{0}", with: "")
        if mediaType == "text/html" { html.append(text) } else { plain.append(text) }
    }

    /// The bodies between boundary lines. A missing closing boundary ends at the end of the data.
    static func multipartBodies(_ body: ArraySlice<UInt8>, boundary: String, state: inout State) -> [ArraySlice<UInt8>] {
        let marker = Array(("--" + boundary).utf8)
        var parts: [ArraySlice<UInt8>] = []
        var partStart: Int?
        var closed = false
        var lineStart = body.startIndex
        var index = body.startIndex
        while lineStart < body.endIndex {
            while index < body.endIndex, body[index] != 10 { index += 1 }
            var line = body[lineStart..<index]
            if line.last == 13 { line = line.dropLast() }
            if line.starts(with: marker) {
                let rest = line.dropFirst(marker.count)
                let isClose = rest.starts(with: [45, 45])
                if isClose || rest.allSatisfy({ $0 == 32 || $0 == 9 }) {
                    if let start = partStart {
                        // The line break before the boundary belongs to the boundary.
                        var end = lineStart
                        if end > start, body[end - 1] == 10 { end -= 1 }
                        if end > start, body[end - 1] == 13 { end -= 1 }
                        parts.append(body[start..<max(start, end)])
                    }
                    if isClose {
                        closed = true
                        break
                    }
                    partStart = min(index + 1, body.endIndex)
                }
            }
            index += 1
            lineStart = index
        }
        if !closed {
            if let start = partStart, start < body.endIndex { parts.append(body[start...]) }
            state.problems.append(partStart == nil ? "multipart boundary never found" : "multipart not closed")
        }
        return parts
    }

    static func decodeBody(_ body: ArraySlice<UInt8>, encoding: String?, state: inout State) -> [UInt8] {
        switch (encoding ?? "7bit").trimmingCharacters(in: .whitespaces).lowercased() {
        case "base64":
            let (bytes, truncated) = TransferEncodings.base64(Array(body))
            if truncated { state.problems.append("base64 text cut short") }
            return bytes
        case "quoted-printable":
            return TransferEncodings.quotedPrintable(Array(body))
        default:
            return Array(body)
        }
    }

    /// An attachment's size without decoding it: base64 is three bytes per four characters.
    static func decodedSize(_ body: ArraySlice<UInt8>, encoding: String?) -> Int {
        guard (encoding ?? "").trimmingCharacters(in: .whitespaces).lowercased() == "base64" else { return body.count }
        var characters = 0
        var padding = 0
        for byte in body {
            if byte == UInt8(ascii: "=") { padding += 1 } else if byte > 32 { characters += 1 }
        }
        return max(0, (characters + padding) / 4 * 3 - padding)
    }
}

/// HTML turned into readable text: blocks become lines, list items bullets, links keep their
/// address, scripts and styles vanish, entities are decoded.
public enum HTMLText {
    public static func text(_ html: String) -> String {
        var out = ""
        var index = html.startIndex
        var skipUntil: String?
        var quoteDepth = 0
        var pendingHref: String?
        func newline() {
            while out.hasSuffix(" ") { out.removeLast() }
            out += "\n" + String(repeating: "> ", count: quoteDepth)
        }
        while index < html.endIndex {
            let character = html[index]
            let next = html.index(after: index) < html.endIndex ? html[html.index(after: index)] : " "
            if character == "<", next.isLetter || next == "/" || next == "!", let close = html[index...].firstIndex(of: ">") {
                let tag = html[html.index(after: index)..<close].lowercased()
                let name = tag.split(whereSeparator: { $0 == " " || $0 == "/" || $0 == "\n" || $0 == "\t" }).first.map(String.init) ?? ""
                let closing = tag.hasPrefix("/")
                let bare = closing ? String(tag.dropFirst()).split(separator: " ").first.map(String.init) ?? "" : name
                index = html.index(after: close)
                if let until = skipUntil {
                    if closing && bare == until { skipUntil = nil }
                    continue
                }
                switch bare {
                case "script", "style", "head", "title":
                    if !closing { skipUntil = bare }
                case "br": newline()
                case "p", "div", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr":
                    newline()
                case "li":
                    if !closing {
                        newline()
                        out += "• "
                    }
                case "blockquote":
                    // Capped: a message of nothing but <blockquote> tags must not grow the text.
                    quoteDepth = min(8, max(0, quoteDepth + (closing ? -1 : 1)))
                    newline()
                case "a":
                    if !closing, let range = tag.firstRange(of: "href=") {
                        let value = tag[range.upperBound...].prefix(2048).trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
                        pendingHref = value.split(whereSeparator: { $0 == "\"" || $0 == "'" || $0 == " " }).first.map(String.init)
                    } else if closing {
                        if let href = pendingHref, href.hasPrefix("http"), !out.hasSuffix(href) { out += " (\(href))" }
                        pendingHref = nil
                    }
                case "td", "th": out += " "
                default: break
                }
                continue
            }
            if skipUntil != nil {
                index = html.index(after: index)
                continue
            }
            if character == "&", let semicolon = html[index...].prefix(12).firstIndex(of: ";") {
                let entity = String(html[html.index(after: index)..<semicolon])
                if let decoded = decodeEntity(entity) {
                    out += decoded
                    index = html.index(after: semicolon)
                    continue
                }
            }
            if character.isWhitespace {
                if !out.hasSuffix(" ") && !out.hasSuffix("\n") && !out.hasSuffix("> ") { out += " " }
            } else {
                out.append(character)
            }
            index = html.index(after: index)
        }
        // Collapse runs of empty lines.
        var lines: [String] = []
        for line in out.split(separator: "\n", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.isEmpty && (lines.last?.isEmpty ?? true) { continue }
            lines.append(line)
        }
        return lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func decodeEntity(_ entity: String) -> String? {
        switch entity {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos", "#39": return "'"
        case "nbsp": return " "
        case "ndash": return "–"
        case "mdash": return "—"
        case "hellip": return "…"
        case "rsquo": return "’"
        case "lsquo": return "‘"
        case "ldquo": return "“"
        case "rdquo": return "”"
        case "euro": return "€"
        case "copy": return "©"
        default:
            if entity.hasPrefix("#x") || entity.hasPrefix("#X"), let value = UInt32(entity.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(value), value != 0 {
                return String(Character(scalar))
            }
            if entity.hasPrefix("#"), let value = UInt32(entity.dropFirst()), let scalar = Unicode.Scalar(value), value != 0 {
                return String(Character(scalar))
            }
            return nil
        }
    }
}

/// Quoted history and signatures: what is not the sender's new text.
public enum Quotes {
    /// The new text of a reply: lines up to the first "On … wrote:", "-----Original Message-----",
    /// Outlook's "From: … Sent: …" block, or the "-- " signature separator, without "> " lines.
    public static func newText(_ body: String) -> String {
        var kept: [Substring] = []
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        var index = 0
        lineLoop: while index < lines.count {
            let line = lines[index]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if line == "-- " || line == "--" || trimmed == "-----Original Message-----" || trimmed.hasPrefix("________________________________") {
                break
            }
            // Outlook's header block: From:, then Sent: or Date:, and Subject: within a few lines.
            if trimmed.hasPrefix("From:") {
                let following = lines[(index + 1)...].prefix(4)
                if following.contains(where: { $0.hasPrefix("Sent:") || $0.hasPrefix("Date:") }) && following.contains(where: { $0.hasPrefix("Subject:") }) {
                    break
                }
            }
            // "On Tue, 3 Mar 2026 at 10:00, Sam <sam@example.org> wrote:", possibly over two lines:
            // history only when quoted lines (or nothing) follow it, so a request that happens to
            // start with "On Monday" and mention what someone wrote is kept.
            if trimmed.hasPrefix("On ") || trimmed.hasPrefix("Le ") || trimmed.hasPrefix("Am ") {
                let ends = { (line: String) in line.hasSuffix("wrote:") || line.hasSuffix("a écrit :") || line.hasSuffix("schrieb:") }
                // One line ending in "wrote:" is history when quoted lines or nothing follow; one
                // split over two lines only when quoted lines follow.
                var markerEnd: Int?
                var endMayClose = false
                if ends(trimmed) {
                    markerEnd = index
                    endMayClose = true
                } else if index + 1 < lines.count, ends(trimmed + " " + lines[index + 1].trimmingCharacters(in: .whitespaces)) {
                    markerEnd = index + 1
                }
                if let markerEnd {
                    let rest = lines[(markerEnd + 1)...].first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                    if let rest, rest.trimmingCharacters(in: .whitespaces).hasPrefix(">") { break lineLoop }
                    if rest == nil && endMayClose { break lineLoop }
                }
            }
            if trimmed.hasPrefix(">") {
                index += 1
                continue
            }
            kept.append(line)
            index += 1
        }
        return kept.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The request a subject makes when the body is empty: without "Re:", "Fwd:" prefixes.
    public static func subjectRequest(_ subject: String) -> String {
        var text = subject.trimmingCharacters(in: .whitespaces)
        // One pass over all the prefixes: a loop removing one at a time is quadratic on a
        // subject of a million "Re:".
        if let range = text.range(of: #"^(?:(?:re|fw|fwd|aw|sv|tr)\s*(?:\[\d+\])?\s*:\s*)+"#, options: [.regularExpression, .caseInsensitive]) {
            text.removeSubrange(range)
        }
        return text
    }
}

extension EmailMessage {
    /// The message as `switchboard inspect-email` prints it.
    public func inspection(authenticated: Bool) -> JSONValue {
        func mailboxes(_ list: [HeaderLists.Mailbox]) -> JSONValue {
            .array(list.map { box in
                var object: [String: JSONValue] = ["address": .string(box.address)]
                if let name = box.name { object["name"] = .string(name) }
                return .object(object)
            })
        }
        return [
            "from": mailboxes(from),
            "to": mailboxes(to),
            "subject": .string(subject),
            "message_id": messageID.map(JSONValue.string) ?? .null,
            "in_reply_to": .array(inReplyTo.map(JSONValue.string)),
            "references": .array(references.map(JSONValue.string)),
            "text": .string(text),
            "attachments": .array(attachments.map { ["name": .string($0.name), "content_type": .string($0.contentType), "size": .int(Int64($0.size))] }),
            "authenticated": .bool(authenticated),
            "problems": .array(problems.map(JSONValue.string)),
        ]
    }
}
