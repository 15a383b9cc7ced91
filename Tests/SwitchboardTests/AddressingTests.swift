import Foundation
import SwitchboardModel
import SwitchboardSQLite
import SwitchboardStorage
import SwitchboardTesting
import Testing

/// Group rooms and gestures: messages not addressed to the assistant, 👍 / 👎 reactions on a
/// confirmation request, a withdrawn request, and content that is not text.
@Suite("Addressing and gestures")
struct AddressingTests {
    /// alice has two notes and a pending "delete all" request; returns the request's reply.
    private func pendingDelete(_ h: EngineHarness) async throws -> OutboundMessage {
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        let request = h.message("alice", "delete all my notes", id: "$request")
        let replies = try await h.post(request)
        let ask = try #require(replies.first)
        #expect(ask.kind == .confirmationRequest)
        return ask
    }

    @Test("A message not addressed to the assistant is stored, answered by nothing, and does nothing")
    func asideIsIgnored() async throws {
        let h = try EngineHarness()
        var aside = h.message("alice", "add a note: this was for Bob, not the bot")
        aside.addressed = false
        #expect(try await h.post(aside).isEmpty)
        #expect(try await h.notes("alice").isEmpty)
        #expect(try await h.audit().isEmpty)
        let depth = try await h.store.read { try $0.depth(channel: nil) }
        #expect(depth.pendingInbound == 0, "the aside is done, not left pending")
    }

    @Test("The requester's bare yes counts without addressing")
    func unaddressedYesFromRequester() async throws {
        let h = try EngineHarness()
        _ = try await pendingDelete(h)
        var yes = h.message("alice", "yes")
        yes.addressed = false
        let replies = try await h.post(yes)
        #expect(replies.map(\.text).first?.hasPrefix("Deleted 2 notes.") == true)
        #expect(try await h.notes("alice").isEmpty)
    }

    @Test("Another member's unaddressed yes is audited and not answered")
    func unaddressedYesFromOther() async throws {
        let h = try EngineHarness()
        _ = try await pendingDelete(h)
        var yes = h.message("bob", "yes")
        yes.addressed = false
        #expect(try await h.post(yes).isEmpty)
        #expect(try await h.notes("alice") == ["milk", "eggs"])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .answerIgnored])
    }

    @Test("A 👍 on the confirmation request from the requester runs it; from anyone else it is audited")
    func approveGesture() async throws {
        let h = try EngineHarness()
        let ask = try await pendingDelete(h)
        let target = RecordingChannel.externalID(of: ask)

        var bobThumb = h.message("bob", "👍")
        bobThumb.addressed = false
        bobThumb.gesture = .approve
        bobThumb.replyTo = target
        #expect(try await h.post(bobThumb).isEmpty, "another member's reaction gets no reply")
        #expect(try await h.notes("alice") == ["milk", "eggs"])

        var aliceThumb = h.message("alice", "👍")
        aliceThumb.addressed = false
        aliceThumb.gesture = .approve
        aliceThumb.replyTo = target
        let replies = try await h.post(aliceThumb)
        #expect(replies.first?.text.hasPrefix("Deleted 2 notes.") == true)
        #expect(replies.first?.inReplyTo == target, "the answer to a reaction goes under the question, not the reaction")
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .answerIgnored, .confirmed, .executed])
    }

    @Test("A 👎 declines; a gesture on anything else is ignored")
    func declineGesture() async throws {
        let h = try EngineHarness()
        let ask = try await pendingDelete(h)

        var stray = h.message("alice", "👍")
        stray.addressed = false
        stray.gesture = .approve
        stray.replyTo = "$some-other-event"
        #expect(try await h.post(stray).isEmpty)
        #expect(try await h.notes("alice") == ["milk", "eggs"], "a reaction elsewhere confirms nothing")

        var thumbsDown = h.message("alice", "👎")
        thumbsDown.addressed = false
        thumbsDown.gesture = .decline
        thumbsDown.replyTo = RecordingChannel.externalID(of: ask)
        #expect(try await h.post(thumbsDown).map(\.text) == ["Cancelled. Nothing was changed."])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .declined])
    }

    @Test("Withdrawing the request message cancels its pending confirmation")
    func withdrawnRequest() async throws {
        let h = try EngineHarness()
        _ = try await pendingDelete(h)
        var redaction = h.message("alice", "(withdrawn)")
        redaction.addressed = false
        redaction.gesture = .decline
        redaction.replyTo = "$request"
        #expect(try await h.post(redaction).map(\.text) == ["Cancelled. Nothing was changed."])
        #expect(try await h.notes("alice") == ["milk", "eggs"])
    }

    @Test("A yes in reply to one of two requests answers that one")
    func replyPicksRequest() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        let first = try #require(try await h.post(h.message("alice", "delete all my notes")).first)
        _ = try await h.post(h.message("alice", "delete all my notes"))
        var yes = h.message("alice", "yes")
        yes.replyTo = RecordingChannel.externalID(of: first)
        let replies = try await h.post(yes)
        #expect(replies.first?.text.hasPrefix("Deleted 2 notes.") == true, "not 'you have 2 requests waiting': \(replies.map(\.text))")
    }

    @Test("A yes in reply to a request that no longer waits confirms nothing else")
    func staleReply() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        let first = try #require(try await h.post(h.message("alice", "delete all my notes")).first)
        #expect(try await h.say("alice", "no 1") == "Cancelled. Nothing was changed.")
        _ = try await h.post(h.message("alice", "delete all my notes"))
        var yes = h.message("alice", "yes")
        yes.replyTo = RecordingChannel.externalID(of: first)
        #expect(try await h.post(yes).map(\.text) == ["That request isn't waiting any more (it was answered, cancelled or expired). Nothing was done."])
        #expect(try await h.notes("alice") == ["milk", "eggs"], "the newer request did not run")
    }

    @Test("An answer said before the request was asked never confirms it")
    func answerOlderThanRequest() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        var old = h.message("alice", "yes")
        old.receivedAt = h.clock.now().addingTimeInterval(-3600)
        old.addressed = false
        _ = try await h.post(h.message("alice", "delete all my notes"))
        #expect(try await h.post(old).isEmpty, "an hour-old yes, replayed late, is not an answer")
        #expect(try await h.notes("alice") == ["milk", "eggs"])
    }

    @Test("Content that is not text gets a polite answer when addressed")
    func unreadableContent() async throws {
        let h = try EngineHarness()
        var image = h.message("alice", "")
        image.unreadable = .media("an image")
        #expect(try await h.post(image).map(\.text) == ["I can only read text for now, so I couldn't read an image. Please write your request as a message."])
        var encrypted = h.message("alice", "")
        encrypted.unreadable = .encrypted
        #expect(try await h.post(encrypted).first?.text.contains("end-to-end encrypted") == true)
        var asideImage = h.message("bob", "")
        asideImage.unreadable = .media("an image")
        asideImage.addressed = false
        #expect(try await h.post(asideImage).isEmpty)
    }
}
