// Reading Matrix events: what the bot makes of one timeline event.
//
// Pure functions over the event JSON, so every rule here is tested without a homeserver.
// Malformed events (no id, no sender, a body that is not text) come out as `.ignore` with a
// reason for the log; they never fail the sync that carried them. Room ids are opaque: nothing
// here parses them.

import Foundation
package import SwitchboardModel

/// One event from a sync timeline, with its envelope checked.
package struct MatrixEvent: Sendable {
    var id: String
    var type: String
    var sender: String
    /// Milliseconds since 1970, as the origin server stamped it.
    var timestamp: Int64
    var content: JSONValue
    var stateKey: String?
    /// For a redaction: the redacted event (top level before room version 11, in content after).
    var redacts: String?

    package init?(_ json: JSONValue) {
        guard let id = json["event_id"]?.stringValue, let type = json["type"]?.stringValue,
            let sender = json["sender"]?.stringValue
        else { return nil }
        self.id = id
        self.type = type
        self.sender = sender
        timestamp = json["origin_server_ts"]?.intValue ?? 0
        content = json["content"] ?? .object([:])
        stateKey = json["state_key"]?.stringValue
        redacts = json["redacts"]?.stringValue ?? json["content"]?["redacts"]?.stringValue
    }

    /// For a membership event: the membership it sets.
    var membership: String? {
        type == "m.room.member" ? content["membership"]?.stringValue : nil
    }
}

/// Who the bot is, for recognising messages addressed to it.
package struct MatrixIdentity: Sendable {
    var userID: String
    var displayName: String?
    var commandPrefix: String

    package init(userID: String, displayName: String?, commandPrefix: String) {
        self.userID = userID
        self.displayName = displayName
        self.commandPrefix = commandPrefix
    }

    /// The part of the user id between `@` and `:`.
    var localpart: String {
        let body = userID.dropFirst()
        return String(body.prefix(while: { $0 != ":" }))
    }
}

/// What one event means to the bot.
package enum EventMeaning: Equatable, Sendable {
    /// A text message. `addressed` is true when the message itself names the bot (mention,
    /// pill, prefix, "name:"); a reply to one of the bot's messages is decided by the caller,
    /// which knows the bot's event ids.
    case text(body: String, addressed: Bool, replyTo: String?, thread: String?)
    /// A message that is not text: an image, a file.
    case media(String, addressed: Bool, replyTo: String?, thread: String?)
    /// A 👍 or 👎 on an event.
    case reaction(target: String, gesture: ConfirmationGesture, key: String)
    /// The sender withdrew an event.
    case redaction(target: String)
    /// An end-to-end encrypted message.
    case encrypted
    /// An encrypted message that cannot be decrypted, ever: the sender should hear about it.
    case undecryptable
    /// Clear text where encryption is required: the sender hears that the bot only reads
    /// encrypted rooms.
    case refusedClearText
    /// Nothing to do, and why (for a debug log line).
    case ignore(String)
}

package enum MatrixEvents {
    /// Keys that approve or decline: 👍 and 👎 with or without the emoji variation selector
    /// and skin tones, and the `:+1:` shortcodes some clients send.
    static func gesture(forReactionKey key: String) -> ConfirmationGesture? {
        let base = String(key.unicodeScalars.filter { !(0x1F3FB...0x1F3FF).contains($0.value) && $0.value != 0xFE0F })
        switch base {
        case "👍", ":+1:", ":thumbsup:": return .approve
        case "👎", ":-1:", ":thumbsdown:": return .decline
        default: return nil
        }
    }

    /// Interprets one timeline event.
    package static func meaning(of event: MatrixEvent, me: MatrixIdentity) -> EventMeaning {
        switch event.type {
        case "m.room.message":
            return message(event, me: me)
        case "m.reaction":
            let relation = event.content["m.relates_to"]
            guard relation?["rel_type"]?.stringValue == "m.annotation",
                let target = relation?["event_id"]?.stringValue,
                let key = relation?["key"]?.stringValue
            else { return .ignore("a reaction without an annotation") }
            guard let gesture = gesture(forReactionKey: key) else { return .ignore("a reaction that is not 👍 or 👎") }
            return .reaction(target: target, gesture: gesture, key: key)
        case "m.room.redaction":
            guard let target = event.redacts else { return .ignore("a redaction without a target") }
            return .redaction(target: target)
        case "m.room.encrypted":
            return .encrypted
        default:
            return .ignore("event type \(event.type)")
        }
    }

    private static func message(_ event: MatrixEvent, me: MatrixIdentity) -> EventMeaning {
        let content = event.content
        guard let msgtype = content["msgtype"]?.stringValue else { return .ignore("a message without msgtype") }
        let relation = content["m.relates_to"]
        // Edits: the rule is that an edit is not a new request. The original was (or will be)
        // answered; a person who wants something else sends a new message.
        if relation?["rel_type"]?.stringValue == "m.replace" { return .ignore("an edit (m.replace)") }
        // m.notice is the bot convention: other bots' notices are never answered (no loops).
        if msgtype == "m.notice" { return .ignore("an m.notice") }
        var thread: String?
        var replyTo = relation?["m.in_reply_to"]?["event_id"]?.stringValue
        if relation?["rel_type"]?.stringValue == "m.thread" {
            thread = relation?["event_id"]?.stringValue
            // In a thread, a fallback reply only points at the thread's latest event.
            if relation?["is_falling_back"] == .bool(true) { replyTo = nil }
        }
        let mentioned = mentions(content, me: me)
        switch msgtype {
        case "m.text", "m.emote":
            guard let raw = content["body"]?.stringValue else { return .ignore("a text message without a body") }
            var body = stripReplyFallback(raw)
            var addressed = mentioned
            if let rest = stripAddress(body, me: me) {
                body = rest
                addressed = true
            }
            return .text(body: body, addressed: addressed, replyTo: replyTo, thread: thread)
        case "m.image": return .media("an image", addressed: mentioned, replyTo: replyTo, thread: thread)
        case "m.file": return .media("a file", addressed: mentioned, replyTo: replyTo, thread: thread)
        case "m.audio": return .media("an audio message", addressed: mentioned, replyTo: replyTo, thread: thread)
        case "m.video": return .media("a video", addressed: mentioned, replyTo: replyTo, thread: thread)
        case "m.location": return .media("a location", addressed: mentioned, replyTo: replyTo, thread: thread)
        default: return .media("a message of type \(msgtype.prefix(60))", addressed: mentioned, replyTo: replyTo, thread: thread)
        }
    }

    /// Whether the content mentions the bot: `m.mentions` (current clients), or a pill link to
    /// the bot in the HTML body (older ones).
    static func mentions(_ content: JSONValue, me: MatrixIdentity) -> Bool {
        if let ids = content["m.mentions"]?["user_ids"]?.arrayValue, ids.contains(.string(me.userID)) {
            return true
        }
        if let html = content["formatted_body"]?.stringValue {
            let encoded = me.userID.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? me.userID
            if html.contains("matrix.to/#/\(me.userID)") || html.contains("matrix.to/#/\(encoded)") { return true }
        }
        return false
    }

    /// The request without its address, if the body starts with one: the command prefix
    /// (`!sb add a note`), or the bot's localpart, user id or display name followed by `:` or `,`
    /// (`bot: add a note`, which is also how clients write a pill in plain text).
    static func stripAddress(_ body: String, me: MatrixIdentity) -> String? {
        let trimmed = body.drop(while: { $0.isWhitespace })
        let prefix = me.commandPrefix
        if !prefix.isEmpty, trimmed.hasPrefix(prefix) {
            let rest = trimmed.dropFirst(prefix.count)
            if rest.isEmpty || rest.first!.isWhitespace || rest.first == ":" {
                return String(rest.drop(while: { $0.isWhitespace || $0 == ":" }))
            }
        }
        let names = [me.userID, me.localpart, me.displayName].compactMap { $0 }.filter { !$0.isEmpty }
        for name in names {
            guard trimmed.count > name.count,
                trimmed.prefix(name.count).lowercased() == name.lowercased()
            else { continue }
            let rest = trimmed.dropFirst(name.count)
            if rest.first == ":" || rest.first == "," {
                return String(rest.dropFirst().drop(while: { $0.isWhitespace }))
            }
        }
        return nil
    }

    /// Removes the quoted fallback older clients put before a reply (`> <@a:b> text` lines and
    /// the blank line after them).
    package static func stripReplyFallback(_ body: String) -> String {
        guard body.hasPrefix("> ") else { return body }
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false)
        var index = 0
        while index < lines.count, lines[index].hasPrefix(">") { index += 1 }
        while index < lines.count, lines[index].trimmingCharacters(in: .whitespaces).isEmpty { index += 1 }
        guard index < lines.count else { return body }
        return lines[index...].joined(separator: "\n")
    }
}
