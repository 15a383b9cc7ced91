// The tool session the engine lends a planner while it plans one message: each call runs
// through the gate in its own write transaction, numbered in order, so the message processed
// again after a crash finds its earlier calls by id instead of running them twice.

import Foundation
import Logging
public import SwitchboardModel
import SwitchboardStorage
import Synchronization

final class GateSession: ToolSession {
    private let store: any Store
    private let gate: ToolGate
    private let inbound: StoredInbound
    private let clock: any WallClock
    private let holder: String?
    private let onCommit: @Sendable ([GateEvent]) -> Void
    private let state = Mutex<(next: Int, tainted: Bool)>((0, false))

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

    /// Calls made so far.
    var callCount: Int { state.withLock { $0.next } }

    func call(_ tool: String, arguments: JSONValue) async throws -> ToolCallOutcome {
        let (first, tainted) = state.withLock { state -> (Int, Bool) in
            defer { state.next += 1 }
            return (state.next, state.tainted)
        }
        let inbound = self.inbound
        let gate = self.gate
        let holder = self.holder
        let now = clock.now()
        let message = inbound.message
        let correlation = CorrelationID(inbox: inbound.id)
        let (outcome, events, used) = try await store.write { tx -> (ToolCallOutcome, [GateEvent], Int) in
            if let holder, try !tx.holdsLease(WorkSharing.inboxLease(message.conversation), holder: holder) {
                throw ToolSessionError.notHeld
            }
            guard try tx.isInboundPending(inbound.id) else { throw ToolSessionError.notHeld }
            // Processed again after a crash: a call of the same tool at this number ran (or
            // asked) before; say what it came to. A different tool there (the planner chose
            // differently this time) takes the next free number instead.
            let recorded = try tx.auditRecords(AuditQuery(correlationID: correlation))
            var index = first
            while true {
                let callID = ToolCallID(inbox: inbound.id, index: index)
                let earlier = recorded.filter { $0.entry.callID == callID }
                guard let last = earlier.last else { break }
                if last.entry.tool == tool {
                    let waiting = last.entry.status == .awaitingConfirmation
                    return (ToolCallOutcome(
                        text: "(already handled) \(last.entry.tool): \(last.entry.status.rawValue), \(last.entry.summary)",
                        status: last.entry.status, kind: waiting ? .confirmationRequest : .reply, replayed: true
                    ), [], index)
                }
                index += 1
            }
            let person = try tx.linkedPerson(for: message.sender.id) ?? message.sender.id
            let request = ToolGate.Request(
                person: person, conversation: message.conversation, inboxID: inbound.id, correlationID: correlation,
                senderAuthenticated: message.trust.senderAuthenticated,
                tainted: message.trust.containsUntrustedContent || tainted, now: now
            )
            let result = try tx.savepoint { try gate.propose(tool: tool, arguments: arguments, index: index, request: request, in: tx) }
            return (ToolCallOutcome(text: result.text, status: result.status, kind: result.kind), request.events.all, index)
        }
        state.withLock { $0.next = max($0.next, used + 1) }
        onCommit(events)
        return outcome
    }
}
