// The tool session the engine lends a planner while it plans one message: each call runs
// through the gate in its own write transaction, numbered in order, so the message processed
// again after a crash finds its earlier calls by id instead of running them twice.

import Foundation
import Logging
public import SwitchboardModel
import SwitchboardStorage

final class GateSession: ToolSession {
    private let store: any Store
    private let gate: ToolGate
    private let inbound: StoredInbound
    private let clock: any WallClock
    private let holder: String?
    private let onCommit: @Sendable ([GateEvent]) -> Void
    /// Call numbers this session has used (run, or found recorded), and the taint.
    private let state = Locked<(consumed: Set<Int>, tainted: Bool)>(([], false))

    init(
        store: any Store, gate: ToolGate, inbound: StoredInbound, clock: any WallClock, holder: String?,
        onCommit: @escaping @Sendable ([GateEvent]) -> Void
    ) {
        self.store = store
        self.gate = gate
        self.inbound = inbound
        self.clock = clock
        self.holder = holder
        self.onCommit = onCommit
    }

    var tools: [ToolDescriptor] { gate.registry.descriptors }

    func taint() { state.withLock { $0.tainted = true } }

    func recordedCalls() async throws -> [String] {
        let correlation = CorrelationID(inbox: inbound.id)
        let records = try await store.read { try $0.auditRecords(AuditQuery(correlationID: correlation)) }
        return records.filter { $0.entry.status == .executed || $0.entry.status == .awaitingConfirmation }
            .map { "\($0.entry.tool): \($0.entry.status.rawValue), \($0.entry.summary)" }
    }

    func call(_ tool: String, arguments: JSONValue) async throws -> ToolCallOutcome {
        let (consumed, tainted) = state.withLock { ($0.consumed, $0.tainted) }
        let inbound = self.inbound
        let gate = self.gate
        let holder = self.holder
        let now = clock.now()
        let message = inbound.message
        let correlation = CorrelationID(inbox: inbound.id)
        var (outcome, events, used) = try await store.write { tx -> (ToolCallOutcome, [GateEvent], Int) in
            if let holder, try !tx.holdsLease(WorkSharing.inboxLease(message.conversation), holder: holder) {
                throw ToolSessionError.notHeld
            }
            guard try tx.isInboundPending(inbound.id) else { throw ToolSessionError.notHeld }
            // Processed again after a crash: a call of the same tool recorded for this message
            // and not yet matched in this session ran (or asked) before; say what it came to,
            // whatever order the planner now calls things in. Otherwise the call takes the
            // lowest number neither recorded nor used.
            var last: [ToolCallID: AuditRecord] = [:]
            for record in try tx.auditRecords(AuditQuery(correlationID: correlation)) { last[record.entry.callID] = record }
            let request0 = ToolGate.Request(
                person: message.sender.id, conversation: message.conversation, inboxID: inbound.id, correlationID: correlation,
                senderAuthenticated: message.trust.senderAuthenticated, tainted: true, now: now
            )
            var free: Int?
            var seen = 0
            var index = 0
            while seen < last.count || free == nil {
                if let record = last[ToolCallID(inbox: inbound.id, index: index)] {
                    seen += 1
                    if !consumed.contains(index) && record.entry.tool == tool {
                        if record.entry.status == .dispatched {
                            // Sent (or about to be) when the gateway stopped: never again.
                            let text = try gate.abandon(record, now: now, events: request0.events, in: tx)
                            return (ToolCallOutcome(text: text, status: .interrupted, kind: .reply, replayed: true), request0.events.all, index)
                        }
                        let waiting = record.entry.status == .awaitingConfirmation
                        return (ToolCallOutcome(
                            text: "(already handled) \(record.entry.tool): \(record.entry.status.rawValue), \(record.entry.summary)",
                            status: record.entry.status, kind: waiting ? .confirmationRequest : .reply, replayed: true
                        ), [], index)
                    }
                } else if free == nil && !consumed.contains(index) {
                    free = index
                }
                index += 1
            }
            let number = free!
            let person = try tx.linkedPerson(for: message.sender.id) ?? message.sender.id
            let request = ToolGate.Request(
                person: person, conversation: message.conversation, inboxID: inbound.id, correlationID: correlation,
                senderAuthenticated: message.trust.senderAuthenticated,
                tainted: message.trust.containsUntrustedContent || tainted, now: now
            )
            let result = try tx.savepoint { try gate.propose(tool: tool, arguments: arguments, index: number, request: request, in: tx) }
            return (ToolCallOutcome(text: result.text, status: result.status, kind: result.kind, dispatch: result.dispatch), request.events.all, number)
        }
        state.withLock { _ = $0.consumed.insert(used) }
        onCommit(events)
        outcome.callID = ToolCallID(inbox: inbound.id, index: used)
        guard let dispatch = outcome.dispatch else {
            // A local tool that brings outside content back (a fetched page, a read mail)
            // taints the rest of the plan as a remote one does.
            if outcome.status == .executed, gate.registry[tool]?.descriptor.returnsUntrustedContent == true {
                taint()
                outcome.untrusted = true
            }
            return outcome
        }
        // A remote tool: the `dispatched` record is committed; call it with no transaction
        // open, then record what came back.
        let performed = await gate.perform(dispatch)
        let done = clock.now()
        let (result, completed) = try await store.write { tx -> (ToolGate.Result, [GateEvent]) in
            let events = GateEvents()
            return (try gate.complete(dispatch, outcome: performed, now: done, events: events, in: tx), events.all)
        }
        onCommit(completed)
        // What another system answered is a third party's text: the rest of this plan is
        // made from untrusted content.
        let untrusted = dispatch.tool.descriptor.returnsUntrustedContent && result.status == .executed
        if untrusted { taint() }
        var final = ToolCallOutcome(text: result.text, status: result.status, kind: result.kind, untrusted: untrusted)
        final.callID = outcome.callID
        return final
    }
}
