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
        let (index, tainted) = state.withLock { state -> (Int, Bool) in
            defer { state.next += 1 }
            return (state.next, state.tainted)
        }
        let inbound = self.inbound
        let gate = self.gate
        let holder = self.holder
        let now = clock.now()
        let message = inbound.message
        let callID = ToolCallID(inbox: inbound.id, index: index)
        let correlation = CorrelationID(inbox: inbound.id)
        let (outcome, events) = try await store.write { tx -> (ToolCallOutcome, [GateEvent]) in
            if let holder, try !tx.holdsLease(WorkSharing.inboxLease(message.conversation), holder: holder) {
                throw ToolSessionError.notHeld
            }
            guard try tx.isInboundPending(inbound.id) else { throw ToolSessionError.notHeld }
            // Processed again after a crash: the call ran (or asked) before; say what it came to.
            let earlier = try tx.auditRecords(AuditQuery(correlationID: correlation)).filter { $0.entry.callID == callID }
            if let last = earlier.last {
                let waiting = last.entry.status == .awaitingConfirmation
                return (ToolCallOutcome(
                    text: "(already handled) \(last.entry.tool): \(last.entry.status.rawValue), \(last.entry.summary)",
                    status: last.entry.status, kind: waiting ? .confirmationRequest : .reply, replayed: true
                ), [])
            }
            let person = try tx.linkedPerson(for: message.sender.id) ?? message.sender.id
            let request = ToolGate.Request(
                person: person, conversation: message.conversation, inboxID: inbound.id, correlationID: correlation,
                senderAuthenticated: message.trust.senderAuthenticated,
                tainted: message.trust.containsUntrustedContent || tainted, now: now
            )
            let result = try tx.savepoint { try gate.propose(tool: tool, arguments: arguments, index: index, request: request, in: tx) }
            return (ToolCallOutcome(text: result.text, status: result.status, kind: result.kind), request.events.all)
        }
        onCommit(events)
        return outcome
    }
}
