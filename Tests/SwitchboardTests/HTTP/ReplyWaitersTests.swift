import Foundation
@testable import SwitchboardHTTP
import SwitchboardModel
import Testing

@Suite("Reply waiters")
struct ReplyWaitersTests {
    static func reply(_ id: Int64) -> OutboundMessage {
        OutboundMessage(
            id: OutboxID(id), deliveryKey: "reply-\(id)", conversation: ConversationKey(channel: "api", conversation: ConversationID("c")),
            recipient: nil, text: "hi", inReplyTo: "k", thread: nil, kind: .reply, correlationID: nil, createdAt: Date(), attempts: 0
        )
    }

    @Test("A reply that arrives between registering and waiting is kept for the waiter")
    func arrivesBeforeWaiting() async {
        let waiters = ReplyWaiters()
        let ticket = waiters.register("k")
        waiters.resume("k", with: Self.reply(1))
        let got = await waiters.wait(ticket, timeout: .seconds(5))
        #expect(got?.id == OutboxID(1))
        #expect(waiters.open == 0)
    }

    @Test("Every waiter for a key is woken; a waiter for another key is not")
    func wakesAllForKey() async {
        let waiters = ReplyWaiters()
        let a = waiters.register("k")
        let b = waiters.register("k")
        let other = waiters.register("other")
        async let first = waiters.wait(a, timeout: .seconds(5))
        async let second = waiters.wait(b, timeout: .seconds(5))
        try? await Task.sleep(for: .milliseconds(50))
        waiters.resume("k", with: Self.reply(2))
        let results = await [first, second]
        #expect(results.map { $0?.id } == [OutboxID(2), OutboxID(2)])
        let none = await waiters.wait(other, timeout: .milliseconds(20))
        #expect(none == nil)
        #expect(waiters.open == 0)
    }

    @Test("A wait ends at its timeout, and a cancelled one at once, leaving nothing registered")
    func timeoutAndCancel() async {
        let waiters = ReplyWaiters()
        let late = await waiters.wait(waiters.register("k"), timeout: .milliseconds(50))
        #expect(late == nil)
        // Cancelled long before its 60 s timeout: it ends then, not at the timeout (the bound is
        // loose because a busy test process can stall any task for seconds).
        let started = ContinuousClock.now
        let task = Task { await waiters.wait(waiters.register("k"), timeout: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let cancelled = await task.value
        #expect(cancelled == nil)
        #expect(ContinuousClock.now - started < .seconds(45))
        #expect(waiters.open == 0)
        // A reply for nobody changes nothing.
        waiters.resume("k", with: Self.reply(3))
        #expect(waiters.open == 0)
    }
}
