// How an outbound message looks in Matrix: an m.notice (the bot convention, so other bots
// do not answer it), Markdown rendered to HTML for clients that show it, a reply relation to
// the request, inside its thread when it was asked in one, and a mention of the person it
// answers so group-room members get notified.

import Foundation
import Ink
import SwitchboardModel

package enum MatrixFormatting {
    /// The event content for a message.
    static func content(for message: OutboundMessage) -> JSONValue {
        var content: [String: JSONValue] = [
            "msgtype": "m.notice",
            "body": .string(message.text),
        ]
        let html = html(fromMarkdown: message.text)
        if html != escapeMarkup(message.text) {
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = .string(html)
        }
        if let recipient = message.recipient {
            content["m.mentions"] = ["user_ids": [.string(recipient.rawValue)]]
        }
        if let thread = message.thread {
            var relation: [String: JSONValue] = ["rel_type": "m.thread", "event_id": .string(thread)]
            if let request = message.inReplyTo {
                relation["m.in_reply_to"] = ["event_id": .string(request)]
                relation["is_falling_back"] = false
            } else {
                relation["is_falling_back"] = true
            }
            content["m.relates_to"] = .object(relation)
        } else if let request = message.inReplyTo {
            content["m.relates_to"] = ["m.in_reply_to": ["event_id": .string(request)]]
        }
        return .object(content)
    }

    /// Renders Markdown to HTML. Raw HTML in the text is shown as text, never interpreted:
    /// a note that contains `<b>` shows the angle brackets.
    package static func html(fromMarkdown text: String) -> String {
        guard markdownIsCheap(text) else { return escapeMarkup(text) }
        var html = MarkdownParser().html(from: escapeMarkup(text))
        // A single paragraph needs no <p> wrapper in a chat message.
        if html.hasPrefix("<p>"), html.hasSuffix("</p>"), html.components(separatedBy: "<p>").count == 2 {
            html = String(html.dropFirst(3).dropLast(4))
        }
        return html
    }

    /// The deepest nesting of `[` rendered as Markdown. Ink backtracks over unclosed brackets
    /// in exponential time (found by fuzzing: 18 nested took 0.8 s, 22 took 13 s), and a reply
    /// can repeat what a person wrote ("Added note 1: [[[[…"), so deeper text is sent as plain
    /// text, which every client shows as written.
    static let maxBracketDepth = 6

    /// Whether Ink renders the text in time linear in its length, as far as its known slow
    /// paths go.
    static func markdownIsCheap(_ text: String) -> Bool {
        var depth = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "[") {
                depth += 1
                if depth > maxBracketDepth { return false }
            } else if byte == UInt8(ascii: "]"), depth > 0 {
                depth -= 1
            }
        }
        return true
    }

    /// Escapes the characters HTML would interpret. `&` first, so entities stay text.
    private static func escapeMarkup(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
