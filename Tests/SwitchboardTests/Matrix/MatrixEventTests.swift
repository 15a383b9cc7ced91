import Foundation
@testable import SwitchboardMatrix
import SwitchboardChannels
import SwitchboardModel
import Testing

/// The rules for reading events and writing replies, without a homeserver.
@Suite("Matrix events and formatting")
struct MatrixEventTests {
    let me = MatrixIdentity(userID: "@bot:example.org", displayName: "Switchboard", commandPrefix: "!sb")

    func event(_ content: JSONValue, type: String = "m.room.message", sender: String = "@alice:example.org") -> MatrixEvent {
        MatrixEvent(["event_id": "$e1", "type": .string(type), "sender": .string(sender), "origin_server_ts": 1000, "content": content])!
    }

    @Test("An event without id, type or sender is not an event")
    func malformedEnvelope() {
        #expect(MatrixEvent(["type": "m.room.message", "sender": "@a:b"]) == nil)
        #expect(MatrixEvent(["event_id": "$1", "sender": "@a:b"]) == nil)
        #expect(MatrixEvent(["event_id": "$1", "type": "m.room.message"]) == nil)
        #expect(MatrixEvent(.array([])) == nil)
        #expect(MatrixEvent(["event_id": 5, "type": "m.room.message", "sender": "@a:b"]) == nil)
    }

    @Test("Addressing: prefix, localpart, display name, user id, m.mentions and pills")
    func addressing() {
        func meaning(_ body: String, extra: [String: JSONValue] = [:]) -> EventMeaning {
            var content: [String: JSONValue] = ["msgtype": "m.text", "body": .string(body)]
            for (key, value) in extra { content[key] = value }
            return MatrixEvents.meaning(of: event(.object(content)), me: me)
        }
        #expect(meaning("!sb add a note: milk") == .text(body: "add a note: milk", addressed: true, replyTo: nil, thread: nil))
        #expect(meaning("bot: add a note: milk") == .text(body: "add a note: milk", addressed: true, replyTo: nil, thread: nil))
        #expect(meaning("Switchboard, list my notes") == .text(body: "list my notes", addressed: true, replyTo: nil, thread: nil))
        #expect(meaning("@bot:example.org: help") == .text(body: "help", addressed: true, replyTo: nil, thread: nil))
        #expect(meaning("!sbx is not the prefix") == .text(body: "!sbx is not the prefix", addressed: false, replyTo: nil, thread: nil))
        #expect(meaning("robot: not me") == .text(body: "robot: not me", addressed: false, replyTo: nil, thread: nil))
        #expect(meaning("hello everyone") == .text(body: "hello everyone", addressed: false, replyTo: nil, thread: nil))
        #expect(meaning("hi", extra: ["m.mentions": ["user_ids": ["@bot:example.org"]]]) == .text(body: "hi", addressed: true, replyTo: nil, thread: nil))
        #expect(meaning("hi", extra: ["m.mentions": ["user_ids": ["@other:example.org"]]]) == .text(body: "hi", addressed: false, replyTo: nil, thread: nil))
        let pill = "<a href=\"https://matrix.to/#/@bot:example.org\">Switchboard</a> hi"
        #expect(meaning("Switchboard hi", extra: ["formatted_body": .string(pill)]) == .text(body: "Switchboard hi", addressed: true, replyTo: nil, thread: nil))
    }

    @Test("Replies, threads, and the quoted fallback of older clients")
    func repliesAndThreads() {
        let reply = event(["msgtype": "m.text", "body": "> <@bot:example.org> Reply yes to confirm\n\nyes", "m.relates_to": ["m.in_reply_to": ["event_id": "$ask"]]])
        #expect(MatrixEvents.meaning(of: reply, me: me) == .text(body: "yes", addressed: false, replyTo: "$ask", thread: nil))
        let threaded = event(["msgtype": "m.text", "body": "!sb help", "m.relates_to": [
            "rel_type": "m.thread", "event_id": "$root", "is_falling_back": true, "m.in_reply_to": ["event_id": "$latest"],
        ]])
        #expect(MatrixEvents.meaning(of: threaded, me: me) == .text(body: "help", addressed: true, replyTo: nil, thread: "$root"))
        let quoteOnly = "> just a quote"
        #expect(MatrixEvents.stripReplyFallback(quoteOnly) == quoteOnly, "a message that is only a quote keeps its text")
    }

    @Test("Edits, notices, media, reactions, redactions and encrypted events")
    func otherEvents() {
        #expect(MatrixEvents.meaning(of: event(["msgtype": "m.text", "body": "* fixed", "m.relates_to": ["rel_type": "m.replace", "event_id": "$x"]]), me: me) == .ignore("an edit (m.replace)"))
        #expect(MatrixEvents.meaning(of: event(["msgtype": "m.notice", "body": "I am a bot"]), me: me) == .ignore("an m.notice"))
        #expect(MatrixEvents.meaning(of: event(["msgtype": "m.image", "body": "cat.png"]), me: me) == .media("an image", addressed: false, replyTo: nil, thread: nil))
        #expect(MatrixEvents.meaning(of: event(["msgtype": "m.text"]), me: me) == .ignore("a text message without a body"))
        #expect(MatrixEvents.meaning(of: event(["body": "no msgtype"]), me: me) == .ignore("a message without msgtype"))
        #expect(MatrixEvents.meaning(of: event(["msgtype": "m.text", "body": 5]), me: me) == .ignore("a text message without a body"))
        let thumbs = event(["m.relates_to": ["rel_type": "m.annotation", "event_id": "$ask", "key": "👍️"]], type: "m.reaction")
        #expect(MatrixEvents.meaning(of: thumbs, me: me) == .reaction(target: "$ask", gesture: .approve, key: "👍️"))
        let toned = event(["m.relates_to": ["rel_type": "m.annotation", "event_id": "$ask", "key": "👎🏽"]], type: "m.reaction")
        #expect(MatrixEvents.meaning(of: toned, me: me) == .reaction(target: "$ask", gesture: .decline, key: "👎🏽"))
        let heart = event(["m.relates_to": ["rel_type": "m.annotation", "event_id": "$ask", "key": "❤️"]], type: "m.reaction")
        #expect(MatrixEvents.meaning(of: heart, me: me) == .ignore("a reaction that is not 👍 or 👎"))
        #expect(MatrixEvents.meaning(of: event(["unexpected": true], type: "m.reaction"), me: me) == .ignore("a reaction without an annotation"))
        // Redactions name their target at the top level before room version 11, in content after.
        let old = MatrixEvent(["event_id": "$r", "type": "m.room.redaction", "sender": "@a:b", "redacts": "$x", "content": [:]])!
        let new = MatrixEvent(["event_id": "$r", "type": "m.room.redaction", "sender": "@a:b", "content": ["redacts": "$y"]])!
        #expect(MatrixEvents.meaning(of: old, me: me) == .redaction(target: "$x"))
        #expect(MatrixEvents.meaning(of: new, me: me) == .redaction(target: "$y"))
        #expect(MatrixEvents.meaning(of: event(["algorithm": "m.megolm.v1.aes-sha2"], type: "m.room.encrypted"), me: me) == .encrypted)
    }

    @Test("Replies are notices; Markdown becomes HTML; HTML in the text stays text")
    func formatting() {
        func outbound(_ text: String, thread: String? = nil) -> OutboundMessage {
            OutboundMessage(
                id: OutboxID(1), deliveryKey: "reply-1", conversation: ConversationKey(channel: "matrix", conversation: ConversationID("!room")),
                recipient: "@alice:example.org", text: text, inReplyTo: "$request", thread: thread, kind: .reply,
                correlationID: nil, createdAt: Date(), attempts: 0
            )
        }
        let plain = MatrixFormatting.content(for: outbound("Added note 1: milk"))
        #expect(plain["msgtype"] == "m.notice")
        #expect(plain["formatted_body"] == nil, "plain text needs no HTML")
        #expect(plain["m.relates_to"] == ["m.in_reply_to": ["event_id": "$request"]])
        #expect(plain["m.mentions"] == ["user_ids": ["@alice:example.org"]])

        let markup = MatrixFormatting.content(for: outbound("Note: <script>alert(1)</script> & **bold**"))
        let html = markup["formatted_body"]?.stringValue ?? ""
        #expect(html.contains("&lt;script&gt;") && !html.contains("<script>"), "raw HTML is escaped: \(html)")
        #expect(html.contains("<strong>bold</strong>"))
        #expect(html.contains("&amp;") && !html.contains("&amp;amp;"), "an ampersand is escaped once: \(html)")

        let list = MatrixFormatting.content(for: outbound("You have 2 notes:\n1: milk\n2: eggs"))
        #expect(list["body"] == "You have 2 notes:\n1: milk\n2: eggs", "the plain body is the text as written")

        // Found by fuzzing: Ink took seconds, then hours, over nested brackets, and a reply may
        // repeat what a person wrote. Such text goes out plain, at once.
        let nested = "Added note 1: " + String(repeating: "[", count: 40) + "x **bold**"
        let guarded = MatrixFormatting.content(for: outbound(nested))
        #expect(guarded["body"] == .string(nested) && guarded["formatted_body"] == nil)
        let links = MatrixFormatting.content(for: outbound("See [the docs](https://example.org) and [[nested]] **now**"))
        #expect(links["formatted_body"]?.stringValue?.contains("<a href=\"https://example.org\">the docs</a>") == true, "shallow brackets still render")

        let threaded = MatrixFormatting.content(for: outbound("ok", thread: "$root"))
        #expect(threaded["m.relates_to"] == [
            "rel_type": "m.thread", "event_id": "$root", "is_falling_back": false, "m.in_reply_to": ["event_id": "$request"],
        ])
    }

    @Test("Allowed users: exact ids, *:server patterns, and *")
    func allowedUsers() {
        let patterns = UserPatterns(["@alice:example.org", "*:corp.example"])
        #expect(patterns.allows("@alice:example.org"))
        #expect(!patterns.allows("@alice:example.org.evil"))
        #expect(patterns.allows("@bob:corp.example"))
        #expect(!patterns.allows("@bob:notcorp.example"))
        #expect(!patterns.allows("@mallory:example.org"))
        #expect(UserPatterns(["*"]).allows("@anyone:anywhere"))
        #expect(!UserPatterns([]).allows("@alice:example.org"), "nobody is allowed by default")
    }

    @Test("429 waits as the server says; a room we are not in gives up")
    func errorMapping() {
        let limited = MatrixAdapter.channelError(MatrixError(status: 429, errcode: "M_LIMIT_EXCEEDED", message: "slow down", retryAfter: 2.5))
        #expect(limited.code == .rateLimited && limited.isTransient && limited.retryAfter == 2.5)
        let forbidden = MatrixAdapter.channelError(MatrixError(status: 403, errcode: "M_FORBIDDEN", message: "not in room", retryAfter: nil))
        #expect(forbidden.code == .rejected && !forbidden.isTransient)
        let down = MatrixAdapter.channelError(MatrixError(status: nil, errcode: nil, message: "connection refused", retryAfter: nil))
        #expect(down.code == .unreachable && down.isTransient)
        let busy = MatrixAdapter.channelError(MatrixError(status: 502, errcode: nil, message: "bad gateway", retryAfter: nil))
        #expect(busy.isTransient)
    }
}
