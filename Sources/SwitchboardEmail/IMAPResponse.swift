// Reading IMAP responses (RFC 9051 / 3501) as libcurl hands them over: the untagged lines of a
// custom command, with literals (`{n}` CRLF followed by n bytes) inline.
//
// Only what the email channel asks for is understood: SELECT's UIDVALIDITY and UIDNEXT,
// SEARCH, and FETCH with UID, RFC822.SIZE and FLAGS. Everything else is skipped; literals are
// kept whole, so nothing inside one is read as a response.

import Foundation

/// One untagged response: its text with each literal replaced by a `{n}` marker, and the
/// literals in order.
package struct IMAPResponseLine: Sendable, Equatable {
    var text: String
    package var literals: [[UInt8]]
}

package enum IMAPResponse {
    /// A response that does not read as IMAP.
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// Splits a response stream into untagged responses, literals kept whole.
    ///
    /// - Throws: `Malformed` when a literal is shorter than it says (libcurl cut a long line).
    package static func lines(_ bytes: [UInt8]) throws -> [IMAPResponseLine] {
        var lines: [IMAPResponseLine] = []
        var index = 0
        var text: [UInt8] = []
        var literals: [[UInt8]] = []
        while index < bytes.count {
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else {
                text += bytes[index...]
                index = bytes.count
                break
            }
            var line = bytes[index..<end]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            index = end + 1
            text += line
            if let size = literalSize(line) {
                guard size <= bytes.count - index else {
                    throw Malformed(description: "a literal of \(size) bytes has only \(bytes.count - index) bytes")
                }
                literals.append(Array(bytes[index..<(index + size)]))
                index += size
                continue
            }
            lines.append(IMAPResponseLine(text: String(decoding: text, as: UTF8.self), literals: literals))
            text = []
            literals = []
        }
        if !text.isEmpty || !literals.isEmpty {
            lines.append(IMAPResponseLine(text: String(decoding: text, as: UTF8.self), literals: literals))
        }
        return lines
    }

    /// The size of a literal announced at the end of a line: `{123}` or `{123+}`.
    static func literalSize(_ line: ArraySlice<UInt8>) -> Int? {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        var digits = line[(open + 1)..<(line.endIndex - 1)]
        if digits.last == UInt8(ascii: "+") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// `* OK [UIDVALIDITY 1]` and `* OK [UIDNEXT 5]` of a SELECT → the two numbers.
    package static func selected(_ lines: [IMAPResponseLine]) -> (uidValidity: UInt32, uidNext: UInt32)? {
        var validity: UInt32?
        var next: UInt32?
        for line in lines where line.text.hasPrefix("* OK [") {
            if let range = line.text.range(of: "[UIDVALIDITY ") {
                validity = UInt32(line.text[range.upperBound...].prefix { $0.isNumber })
            }
            if let value = uidNext(inLine: line.text) { next = value }
        }
        // UIDs start at 1, so a UIDNEXT of 0 is not a real answer.
        guard let validity, let next, next >= 1 else { return nil }
        return (validity, next)
    }

    /// The capabilities a CAPABILITY response lists, upper-cased.
    package static func capabilities(_ lines: [IMAPResponseLine]) -> Set<String> {
        Set(lines.filter { $0.text.uppercased().hasPrefix("* CAPABILITY") }
            .flatMap { $0.text.dropFirst("* CAPABILITY".count).split(separator: " ").map { $0.uppercased() } })
    }

    /// `* SEARCH 3 5 8` → the numbers (UIDs for UID SEARCH).
    package static func search(_ lines: [IMAPResponseLine]) -> [UInt32] {
        lines.filter { $0.text.uppercased().hasPrefix("* SEARCH") }
            .flatMap { $0.text.dropFirst("* SEARCH".count).split(separator: " ").compactMap { UInt32($0) } }
    }

    /// One message of a FETCH response.
    package struct Fetched: Sendable, Equatable {
        var uid: UInt32
        var size: Int?
        /// Whether FLAGS held \Seen; nil when FLAGS was not in the response.
        var seen: Bool?
    }

    /// `* 4 FETCH (UID 9 RFC822.SIZE 120 FLAGS (\Seen))` → uid, size and flags per message, one
    /// entry per UID (a server may volunteer extra FETCH lines).
    /// Responses without a UID (flag updates the server volunteers) are skipped.
    package static func fetched(_ lines: [IMAPResponseLine]) -> [Fetched] {
        var result: [Fetched] = []
        var position: [UInt32: Int] = [:]
        for line in lines {
            let words = line.text.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count >= 3, words[0] == "*", words[2].uppercased() == "FETCH" else { continue }
            var uid: UInt32?
            var size: Int?
            var seen: Bool?
            var index = 3
            while index < words.count {
                var word = words[index]
                if word.hasPrefix("(") { word = word.dropFirst() }
                let upper = word.uppercased()
                if upper == "UID", index + 1 < words.count {
                    uid = UInt32(words[index + 1].trimmingCharacters(in: ["(", ")"]))
                    index += 2
                    continue
                }
                if upper == "RFC822.SIZE", index + 1 < words.count {
                    size = Int(words[index + 1].trimmingCharacters(in: ["(", ")"]))
                    index += 2
                    continue
                }
                if upper == "FLAGS", index + 1 < words.count {
                    // FLAGS (\Seen \Answered): the list runs to the word that closes it.
                    var flags: [Substring] = []
                    var end = index + 1
                    while end < words.count {
                        flags.append(words[end])
                        if words[end].hasSuffix(")") { break }
                        end += 1
                    }
                    seen = flags.contains { $0.trimmingCharacters(in: ["(", ")"]).caseInsensitiveCompare("\\Seen") == .orderedSame }
                    index = end + 1
                    continue
                }
                index += 1
            }
            guard let uid else { continue }
            if let existing = position[uid] {
                result[existing].size = result[existing].size ?? size
                result[existing].seen = result[existing].seen ?? seen
            } else {
                position[uid] = result.count
                result.append(Fetched(uid: uid, size: size, seen: seen))
            }
        }
        return result
    }

    /// `[UIDNEXT 12]` in a SELECT's `* OK` line, if this is one.
    static func uidNext(inLine line: String) -> UInt32? {
        guard let range = line.range(of: "[UIDNEXT ") else { return nil }
        return UInt32(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// A UID set in IMAP syntax, ranges merged: `3:5,9`.
    static func set(_ uids: [UInt32]) -> String {
        let sorted = Array(Set(uids)).sorted()
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? String(sorted[index]) : "\(sorted[index]):\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    /// The UIDs of a set written by `set`: `3:5,9` → 3, 4, 5, 9. Anything unreadable is left out.
    static func uids(inSet text: String) -> [UInt32] {
        var result: [UInt32] = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: ":").compactMap { UInt32($0) }
            if bounds.count == 1 {
                result.append(bounds[0])
            } else if bounds.count == 2, bounds[0] <= bounds[1] {
                result += Array(bounds[0]...bounds[1])
            }
        }
        return result
    }

    /// A mailbox name as an IMAP quoted string. Names are ASCII (configuration checks that).
    static func quoted(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
