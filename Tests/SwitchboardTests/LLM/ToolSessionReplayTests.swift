// The engine's tool session: a planner's calls go through the gate in transactions of their
// own, so a message planned again (after a crash, a shutdown, a lost lease) must find them
// instead of running them twice.

import Foundation
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardModel
import SwitchboardTesting
import Testing

/// Calls a tool through the session, then "crashes" (shuts down) before answering the first
/// time; answers with what the call came to the second time.
final class InterruptedPlanner: Planner, Sendable {
    private let runs = Locked(0)
    let secondTool: String

    init(secondTool: String) {
        self.secondTool = secondTool
    }

    func plan(_ message: InboundMessage) async throws -> Plan { .notUnderstood }

    func plan(_ message: InboundMessage, session: any ToolSession) async throws -> Plan {
        let run = runs.withLock { value in
            value += 1
            return value
        }
        if run == 1 {
            _ = try await session.call("notes.add", arguments: ["text": "buy milk"])
            throw CancellationError()
        }
        let outcome = try await session.call(secondTool, arguments: secondTool == "notes.add" ? ["text": "buy milk"] : [:])
        if secondTool != "notes.add" {
            // The first attempt's call, now second: found on record, not run again.
            let again = try await session.call("notes.add", arguments: ["text": "buy milk"])
            return .answer(outcome.text + "\n" + again.text, kind: outcome.kind)
        }
        return .answer(outcome.text, kind: outcome.kind)
    }
}

@Suite("Tool session: calls made while planning")
struct ToolSessionReplayTests {
    @Test("Planned again after an interruption, the same call is reported, not run twice")
    func sameCallReplayed() async throws {
        let harness = try EngineHarness(planner: InterruptedPlanner(secondTool: "notes.add"))
        let message = harness.message(PersonID("sam"), "remember milk")
        _ = try await harness.inbox.accept([message])
        #expect(try await harness.engine.processBatch() == 0, "interrupted: nothing answered, the message waits")
        #expect(try await harness.notes(PersonID("sam")) == ["buy milk"], "the call committed on its own")
        #expect(try await harness.engine.processBatch() == 1)
        try await harness.dispatcher.deliverDue()
        let reply = try #require(harness.channel.delivered.last)
        #expect(reply.text.hasPrefix("(already handled) notes.add: executed"), "\(reply.text)")
        #expect(try await harness.notes(PersonID("sam")) == ["buy milk"], "not added twice")
        #expect(try await harness.statuses(tool: "notes.add") == [.proposed, .executed])
    }

    @Test("Planned again in another order, the new call gets a free number and runs, the old one is found")
    func differentCallRuns() async throws {
        let harness = try EngineHarness(planner: InterruptedPlanner(secondTool: "notes.list"))
        _ = try await harness.inbox.accept([harness.message(PersonID("sam"), "remember milk")])
        #expect(try await harness.engine.processBatch() == 0)
        #expect(try await harness.engine.processBatch() == 1)
        try await harness.dispatcher.deliverDue()
        let reply = try #require(harness.channel.delivered.last)
        #expect(reply.text.contains("buy milk"), "notes.list ran: \(reply.text)")
        #expect(reply.text.contains("(already handled) notes.add: executed"), "\(reply.text)")
        #expect(try await harness.notes(PersonID("sam")) == ["buy milk"], "not added twice")
        let calls = try await harness.audit().filter { $0.entry.status == .executed }.map { "\($0.entry.tool) \($0.entry.callID.rawValue)" }
        #expect(calls.count == 2 && calls[0].hasPrefix("notes.add") && calls[1].hasPrefix("notes.list"), "\(calls)")
        #expect(Set(try await harness.audit().map(\.entry.callID)).count == 2, "two call ids, no reuse")
    }
}
