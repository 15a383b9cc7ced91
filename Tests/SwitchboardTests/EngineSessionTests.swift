import Foundation
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardModel
import SwitchboardSQLite
import SwitchboardStorage
import SwitchboardTesting
import Testing

@Suite("Engine: a scripted conversation")
struct EngineSessionTests {
    @Test("A low-risk call runs at once")
    func lowRiskRunsAtOnce() async throws {
        let h = try EngineHarness()
        #expect(try await h.say("alice", "add a note: milk") == "Added note 1: milk")
        #expect(try await h.say("alice", "list my notes") == "You have 1 note:\n1: milk")
        #expect(try await h.statuses() == [.proposed, .executed, .proposed, .executed])
    }

    @Test("A high-risk call waits and runs only after yes")
    func highRiskWaitsForYes() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        let ask = try await h.say("alice", "delete all my notes")
        #expect(ask.contains("This will delete 2 notes:"))
        #expect(ask.contains("1: milk") && ask.contains("2: eggs"), "the preview names exactly which notes")
        #expect(ask.contains("Reply yes to confirm"))
        #expect(try await h.notes("alice") == ["milk", "eggs"], "nothing deleted before yes")
        #expect(try await h.say("alice", "yes").hasPrefix("Deleted 2 notes."))
        #expect(try await h.notes("alice").isEmpty)
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .confirmed, .executed])
        #expect(try await h.say("alice", "yes") == "There's nothing waiting for your confirmation.", "a confirmation is used once")
    }

    @Test("No leaves the data untouched")
    func noDeclines() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        #expect(try await h.say("alice", "No.") == "Cancelled. Nothing was changed.")
        #expect(try await h.notes("alice") == ["milk", "eggs"])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .declined])
    }

    @Test("Another person's yes does nothing")
    func otherPersonsYes() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        let bob = try await h.say("bob", "yes")
        #expect(bob.contains("Only alice can answer"))
        #expect(try await h.notes("alice") == ["milk", "eggs"])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .answerIgnored])
        let ignored = try #require(try await h.audit().last)
        #expect(ignored.entry.person == "bob" && ignored.entry.arguments == .object(["request": .string("m3-0"), "answer": .string("yes")]))
        #expect(try await h.say("alice", "yes").hasPrefix("Deleted 2 notes."), "alice's own yes still works")
    }

    @Test("Yesterday is not a yes")
    func yesterdayIsNotYes() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        #expect(try await h.say("alice", "yesterday").contains("didn't understand"))
        #expect(try await h.say("alice", "yes, but not the last one").contains("didn't understand"))
        #expect(try await h.notes("alice") == ["milk", "eggs"])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation])
    }

    @Test("An expired confirmation cannot be used")
    func expiredConfirmation() async throws {
        let h = try EngineHarness { $0.confirmationLifetime = 600 }
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        h.clock.advance(by: 601)
        #expect(try await h.say("alice", "yes").contains("expired"))
        #expect(try await h.notes("alice") == ["milk", "eggs"])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .expired])
        #expect(try await h.say("alice", "yes") == "There's nothing waiting for your confirmation.")
    }

    @Test("An unanswered confirmation expires by itself and the requester is told")
    func expirySweep() async throws {
        let h = try EngineHarness { $0.confirmationLifetime = 60 }
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        try await h.engine.expireConfirmations()
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation], "not before its time")
        h.clock.advance(by: 61)
        try await h.engine.expireConfirmations()
        try await h.dispatcher.deliverDue()
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .awaitingConfirmation, .expired])
        let notice = try #require(h.channel.delivered.last)
        #expect(notice.kind == .notice && notice.text.contains("expired") && notice.recipient == "alice")
    }

    @Test("Undo restores, and is audited")
    func undoRestores() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        try await h.say("alice", "yes")
        #expect(try await h.say("alice", "undo") == "Undone: restored 2 notes.")
        #expect(try await h.notes("alice") == ["milk", "eggs"])
        #expect(try await h.say("alice", "undo") == "Undone: removed note 2.", "then the add before it")
        #expect(try await h.notes("alice") == ["milk"])
        let undone = try await h.audit().filter { $0.entry.status == .undone }
        #expect(undone.map(\.entry.tool) == ["notes.delete", "notes.add"])
        #expect(try await h.say("bob", "undo") == "There's nothing of yours to undo.", "undo is per person")
    }

    @Test("An irreversible tool runs after yes, and undo says it cannot be undone")
    func irreversible() async throws {
        struct Announce: Tool {
            let descriptor = ToolDescriptor(
                name: "test.announce", category: "test", summary: "Announce something to the world",
                parameters: ["type": "object"], baseRisk: .high, effect: .irreversible, secretArguments: ["token"]
            )
            func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
                PreparedCall(arguments: arguments, preview: "This will announce: \(arguments["text"]?.stringValue ?? "")", risk: .high)
            }
            func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
                ToolOutput(reply: "Announced.", summary: "announced")
            }
        }
        struct AnnouncePlanner: Planner {
            var plansFromHistory: Bool { false }
            func plan(_ message: InboundMessage) async throws -> Plan {
                message.text.hasPrefix("announce ")
                    ? .call(tool: "test.announce", arguments: ["text": .string(String(message.text.dropFirst(9))), "token": "s3cr3t-value"])
                    : CommandPlanner.plan(text: message.text)
            }
        }
        let h = try EngineHarness(planner: AnnouncePlanner(), extraTools: [Announce()])
        try await h.say("alice", "add a note: before")
        #expect(try await h.say("alice", "announce hello").contains("This will announce: hello"))
        #expect(try await h.say("alice", "yes") == "Announced.")
        #expect(try await h.say("alice", "undo") == "Your last action (announced) can't be undone: test.announce is irreversible.")
        #expect(try await h.notes("alice") == ["before"], "undo did not reach past the irreversible action")
        let records = try await h.audit().filter { $0.entry.tool == "test.announce" }
        #expect(records.map(\.entry.status) == [.proposed, .awaitingConfirmation, .confirmed, .executed])
        #expect(records.allSatisfy { !$0.entry.arguments.canonicalText.contains("s3cr3t-value") }, "a declared secret never reaches the audit trail")
        #expect(records.allSatisfy { $0.entry.arguments["token"] == .string("<redacted>") })
    }

    @Test("The rate limit answers at the configured rate")
    func rateLimit() async throws {
        let h = try EngineHarness { $0.rateLimits = RateLimitPolicy(limits: ["notes": RateLimit(perMinute: 3, burst: 3)]) }
        for index in 1...3 {
            #expect(try await h.say("carol", "add a note: n\(index)").hasPrefix("Added note"))
        }
        let limited = try await h.say("carol", "add a note: n4")
        #expect(limited == "You're going too fast for notes (limit: 3 per minute). Try again in 20 seconds.")
        #expect(try await h.say("dave", "add a note: other person").hasPrefix("Added note"), "limits are per person")
        h.clock.advance(by: 20)
        #expect(try await h.say("carol", "add a note: n4").hasPrefix("Added note"))
        #expect(try await h.statuses(tool: "notes.add").filter { $0 == .rateLimited }.count == 1)
    }

    @Test("Several pending confirmations are numbered and 'yes 2' picks one")
    func numberedConfirmations() async throws {
        let h = try EngineHarness()
        for text in ["milk a", "milk b", "bread a", "bread b"] { try await h.say("alice", "add a note: \(text)") }
        #expect(!(try await h.say("alice", "delete notes containing milk")).contains("yes 1"))
        let second = try await h.say("alice", "delete notes containing bread")
        #expect(second.contains("Reply yes 2 to confirm, no 2 to cancel"))
        let ambiguous = try await h.say("alice", "yes")
        #expect(ambiguous.contains("You have 2 requests waiting") && ambiguous.contains("2. This will delete 2 notes"))
        #expect(try await h.say("alice", "yes 2").hasPrefix("Deleted 2 notes."))
        #expect(try await h.notes("alice") == ["milk a", "milk b"])
        #expect(try await h.say("alice", "no").hasPrefix("Cancelled"), "one left, so a bare no is clear")
        #expect(try await h.notes("alice") == ["milk a", "milk b"])
    }

    @Test("A confirmation number is not reused while an older request still waits")
    func numbersNotReused() async throws {
        let h = try EngineHarness()
        for text in ["a1", "a2", "b1", "b2", "c1", "c2"] { try await h.say("alice", "add a note: \(text)") }
        try await h.say("alice", "delete notes containing a")
        #expect(try await h.say("alice", "delete notes containing b").contains("yes 2"))
        #expect(try await h.say("alice", "no 2").hasPrefix("Cancelled"))
        let third = try await h.say("alice", "delete notes containing c")
        #expect(third.contains("Reply yes 3"), "2 was shown for the cancelled request; the new one is 3: \(third)")
        #expect(try await h.say("alice", "yes 2").contains("There's no request 2"))
        #expect(try await h.notes("alice").count == 6, "nothing deleted by a stale number")
    }

    @Test("An unauthenticated sender can never trigger a high-risk action, nor change anything at medium risk")
    func unauthenticated() async throws {
        let h = try EngineHarness()
        try await h.say("mallory", "add a note: a")
        try await h.say("mallory", "add a note: b")
        let reply = try await h.say("mallory", "delete all my notes", authenticated: false)
        #expect(reply.contains("can't do that"))
        #expect(try await h.notes("mallory") == ["a", "b"])
        #expect(try await h.statuses(tool: "notes.delete") == [.proposed, .denied])
        // Nor a medium-risk change; looking things up is fine.
        let add = try await h.say("mallory", "add a note: c", authenticated: false)
        #expect(add.contains("couldn't verify who sent this message"))
        #expect(try await h.notes("mallory") == ["a", "b"])
        #expect(try await h.say("mallory", "list my notes", authenticated: false).contains("a"))
        // Nor undo what the real person did; and refusals spend none of their rate tokens.
        #expect(try await h.say("mallory", "undo", authenticated: false).contains("couldn't verify who sent it"))
        #expect(try await h.notes("mallory") == ["a", "b"])
        #expect(try await h.say("mallory", "undo", untrusted: true).contains("can't fully trust"))
        #expect(try await h.notes("mallory") == ["a", "b"])
    }

    @Test("A plan from untrusted content needs confirmation for any write")
    func taint() async throws {
        let h = try EngineHarness()
        let reply = try await h.say("alice", "add a note: wire money", untrusted: true)
        #expect(reply.contains("content I can't fully trust") && reply.contains("Reply yes"))
        #expect(try await h.notes("alice").isEmpty)
        #expect(try await h.say("alice", "list my notes", untrusted: true) == "You have no notes.", "reads still run")
    }

    @Test("Permissions: a guest cannot write")
    func guests() async throws {
        let h = try EngineHarness { $0.access = AccessPolicy(roles: ["gus": .guest], defaultRole: .user) }
        #expect(try await h.say("gus", "add a note: x") == "Sorry, notes.add needs the user role, and you are a guest.")
        #expect(try await h.say("gus", "list my notes") == "You have no notes.")
        #expect(try await h.statuses(tool: "notes.add") == [.proposed, .denied])
    }

    @Test("A duplicate inbound event is answered once")
    func duplicateAnsweredOnce() async throws {
        let h = try EngineHarness()
        let message = h.message("alice", "add a note: once", id: "event-1")
        _ = try await h.inbox.accept([message])
        _ = try await h.inbox.accept([message])
        try await h.drain()
        _ = try await h.inbox.accept([message])
        try await h.drain()
        #expect(h.channel.delivered.filter { $0.inReplyTo == "event-1" }.count == 1)
        #expect(try await h.notes("alice") == ["once"])
    }

    @Test("Order holds within a conversation")
    func orderHolds() async throws {
        let h = try EngineHarness()
        let messages = (1...20).map { h.message("alice", "add a note: n\($0)") }
        _ = try await h.inbox.accept(messages)
        try await h.drain()
        #expect(try await h.notes("alice") == (1...20).map { "n\($0)" })
        #expect(h.channel.delivered.map(\.inReplyTo) == messages.map(\.externalID))
    }

    @Test("Bad input gets a clear reply and nothing is lost")
    func badInput() async throws {
        let h = try EngineHarness { $0.maxMessageBytes = 65536 }
        #expect(try await h.say("alice", "").contains("empty message"))
        #expect(try await h.say("alice", String(repeating: "x", count: 1 << 20)).contains("1048576 bytes"))
        #expect(try await h.say("alice", String(decoding: [0x61, 0xC3, 0x28] as [UInt8], as: UTF8.self)).contains("UTF-8"))
        #expect(try await h.say("alice", "sing me a song").contains("didn't understand"))
        #expect(try await h.say("alice", "yes") == "There's nothing waiting for your confirmation.")
        #expect(try await h.say("alice", "delete note 42") == "You have no note 42.")
        #expect(try await h.say("alice", "add a note: \u{1B}[31mred\u{1B}[0m") == "Added note 1: [31mred[0m")
        let depth = try await h.store.read { try $0.depth(channel: nil) }
        #expect(depth == PipelineDepth(pendingInbound: 0, pendingOutbound: 0), "every message answered")
    }

    @Test("A failed delivery is retried with backoff and delivered once")
    func deliveryRetry() async throws {
        let h = try EngineHarness()
        h.channel.failNext([.init(.unreachable, "down", isTransient: true, retryAfter: 5)])
        let message = h.message("alice", "add a note: retry me")
        _ = try await h.inbox.accept([message])
        try await h.engine.processBatch()
        try await h.dispatcher.deliverDue()
        #expect(h.channel.delivered.isEmpty)
        try await h.dispatcher.deliverDue()
        #expect(h.channel.delivered.isEmpty, "not before Retry-After")
        h.clock.advance(by: 5)
        try await h.dispatcher.deliverDue()
        #expect(h.channel.delivered.map(\.inReplyTo) == [message.externalID])
    }

    @Test("A failed delivery holds back the later replies of its conversation")
    func failedDeliveryKeepsOrder() async throws {
        let h = try EngineHarness()
        h.channel.failNext([.init(.unreachable, "down", isTransient: true, retryAfter: 10)])
        let messages = (1...3).map { h.message("alice", "add a note: n\($0)") }
        _ = try await h.inbox.accept(messages)
        try await h.engine.processBatch()
        try await h.dispatcher.deliverDue()
        #expect(h.channel.delivered.isEmpty, "the second and third replies wait behind the first")
        h.clock.advance(by: 10)
        try await h.dispatcher.deliverDue()
        #expect(h.channel.delivered.map(\.inReplyTo) == messages.map(\.externalID))
    }

    @Test("A planner that reads history sees a message only after its predecessor is answered")
    func historyPlannerGetsHeads() async throws {
        struct HistoryPlanner: Planner {
            var plansFromHistory: Bool { true }
            func plan(_ message: InboundMessage) async throws -> Plan { CommandPlanner.plan(text: message.text) }
        }
        let h = try EngineHarness(planner: HistoryPlanner())
        let room = (1...3).map { h.message("alice", "add a note: n\($0)") }
        _ = try await h.inbox.accept(room)
        #expect(try await h.engine.processBatch() == 1, "one message of the conversation per batch")
        #expect(try await h.engine.processBatch() == 1)
        #expect(try await h.engine.processBatch() == 1)
        #expect(try await h.engine.processBatch() == 0)
        #expect(try await h.notes("alice") == ["n1", "n2", "n3"])
    }

    @Test("A proposal and its yes in the same batch work in order")
    func proposalAndYesInOneBatch() async throws {
        let h = try EngineHarness()
        let messages = ["add a note: a", "add a note: b", "delete all my notes", "yes"].map { h.message("alice", $0) }
        _ = try await h.inbox.accept(messages)
        try await h.drain()
        #expect(h.channel.delivered.last?.text.hasPrefix("Deleted 2 notes.") == true)
        #expect(try await h.notes("alice").isEmpty)
    }

    @Test("Every state change is in a chain that verifies")
    func auditVerifies() async throws {
        let h = try EngineHarness()
        try await h.say("alice", "add a note: milk")
        try await h.say("alice", "add a note: eggs")
        try await h.say("alice", "delete all my notes")
        try await h.say("alice", "yes")
        try await h.say("alice", "undo")
        let records = try await h.audit()
        let head = try await h.store.read { try $0.auditHead() }
        #expect(AuditChain.verify(records, head: head) == .intact(records: records.count))
        #expect(records.allSatisfy { $0.entry.person == "alice" && $0.entry.conversation == h.conversation })
    }
}
