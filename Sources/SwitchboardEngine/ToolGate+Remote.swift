// The gate's second half for tools that act on another system (MCP servers, HTTP APIs).
//
// A remote call cannot run inside the write transaction that approved it: the database would
// stay locked for as long as the other system takes. So the gate splits the call in three:
//
//   1. in the caller's transaction: permission, risk, rate limit, confirmation as for any tool,
//      then a `dispatched` record, committed before anything leaves;
//   2. outside any transaction: `perform`, with the call id as its idempotency key;
//   3. in a new transaction: the outcome (`executed` or `failed`) and the undo record.
//
// A crash between 1 and 3 leaves `dispatched` as the call's last record. Whoever processes the
// message again finds it, records `interrupted`, and tells the person, instead of sending the
// call a second time: the other system may or may not have acted, and only the person can check.

public import Foundation
import Logging
public import SwitchboardModel
public import SwitchboardStorage

/// A remote call the gate approved and recorded as `dispatched`, to be performed after commit.
public struct RemoteDispatch: Sendable {
    /// The tool.
    public let tool: any RemoteTool
    /// What runs.
    public let prepared: PreparedCall
    /// Its risk.
    public let risk: Risk
    /// The call.
    public let callID: ToolCallID
    /// On whose behalf.
    public let person: PersonID
    /// Where.
    public let conversation: ConversationKey
    /// The message that asked (or confirmed, or undid).
    public let correlationID: CorrelationID?
    /// The person wants short answers.
    let short: Bool
    /// Set when this is the compensating call that undoes an earlier one.
    let undo: UndoEntry?

    /// The tool's name.
    public var toolName: String { tool.descriptor.name }
}

/// What a remote call came to, before it is recorded.
public enum RemoteOutcome: Sendable {
    /// It ran.
    case executed(ToolOutput)
    /// It was undone: the sentence says what was restored.
    case reverted(String)
    /// It failed; the sentence is for the person.
    case failed(String)
}

extension ToolGate {
    /// Performs a dispatched call outside any transaction. Never throws: every failure becomes
    /// an outcome the person hears about.
    public func perform(_ dispatch: RemoteDispatch) async -> RemoteOutcome {
        let context = RemoteCallContext(
            person: dispatch.person, conversation: dispatch.conversation, callID: dispatch.callID,
            correlationID: dispatch.correlationID, idempotencyKey: "switchboard-\(dispatch.callID.rawValue)"
        )
        let approval = Approval(callID: dispatch.callID, person: dispatch.person)
        do {
            if dispatch.undo != nil {
                return .reverted(try await dispatch.tool.revert(dispatch.prepared.arguments, approval: approval, context: context))
            }
            return .executed(try await dispatch.tool.perform(dispatch.prepared, approval: approval, context: context))
        } catch let failure as ToolFailure {
            return .failed(failure.message)
        } catch is CancellationError {
            return .failed("I was stopped while \(dispatch.toolName) was running, so I can't tell whether it finished.")
        } catch {
            logger.error("remote tool failed", metadata: [
                "tool.name": "\(dispatch.toolName)", "tool.call_id": "\(dispatch.callID)", "error": "\(error)",
            ])
            return .failed("Something went wrong while running \(dispatch.toolName). (ref \(dispatch.correlationID?.rawValue ?? dispatch.callID.rawValue))")
        }
    }

    /// Records a performed call's outcome, and says it in words.
    public func complete(_ dispatch: RemoteDispatch, outcome: RemoteOutcome, now: Date, events: GateEvents, in tx: any StoreTransaction) throws -> Result {
        let descriptor = dispatch.tool.descriptor
        var audit = AuditWriter(
            tx: tx, callID: dispatch.callID, person: dispatch.person, conversation: dispatch.conversation,
            descriptor: descriptor, correlationID: dispatch.correlationID, now: now, events: events
        )
        switch outcome {
        case .failed(let message):
            if let entry = dispatch.undo {
                // The original call stays on record and undoable; the failed attempt is logged.
                logger.warning("a remote undo failed", metadata: ["tool.name": "\(descriptor.name)", "tool.call_id": "\(entry.callID)"])
                return Result("I couldn't undo \(entry.description): \(message)", status: .failed)
            }
            try audit.append(.failed, arguments: dispatch.prepared.arguments, risk: dispatch.risk, summary: message)
            return Result(message, status: .failed)
        case .reverted(let text):
            guard let entry = dispatch.undo else { return Result(text, status: nil) }
            try tx.markUndone(entry.callID, at: now)
            try audit.append(.undone, arguments: dispatch.prepared.arguments, risk: dispatch.risk, summary: text)
            return Result("Undone: \(text)", status: .undone)
        case .executed(let output):
            try audit.append(.executed, arguments: dispatch.prepared.arguments, risk: dispatch.risk, summary: output.summary)
            if descriptor.effect == .irreversible || (descriptor.effect == .reversible && output.undo != nil) {
                try tx.recordUndo(UndoEntry(
                    callID: dispatch.callID, person: dispatch.person, conversation: dispatch.conversation, tool: descriptor.name,
                    payload: descriptor.effect == .reversible ? output.undo : nil,
                    description: output.summary, createdAt: now
                ))
            }
            return Result(dispatch.short ? Self.shorten(output.reply) : output.reply, status: .executed)
        }
    }

    /// The remote calls of a message that were sent (or about to be) when the gateway stopped,
    /// and never got an outcome: each call's last record is `dispatched` or `undo_dispatched`.
    public func interruptedCalls(of correlation: CorrelationID, in reader: any StoreReader) throws -> [AuditRecord] {
        var last: [ToolCallID: AuditRecord] = [:]
        for record in try reader.auditRecords(AuditQuery(correlationID: correlation)) { last[record.entry.callID] = record }
        return last.values.filter { $0.entry.status == .dispatched || $0.entry.status == .undoDispatched }
            .sorted { $0.sequence < $1.sequence }
    }

    /// Records that an interrupted call was not sent again, and says so to the person.
    public func abandon(_ record: AuditRecord, now: Date, events: GateEvents, in tx: any StoreTransaction) throws -> String {
        var audit = AuditWriter(
            tx: tx, callID: record.entry.callID, person: record.entry.person, conversation: record.entry.conversation,
            descriptor: registry[record.entry.tool]?.descriptor, tool: record.entry.tool, correlationID: record.entry.correlationID,
            now: now, events: events
        )
        // The arguments were redacted when they were recorded; they stay so.
        try audit.append(.interrupted, arguments: record.entry.arguments, risk: record.entry.risk, summary: "not sent again after a restart; outcome unknown")
        let what = record.entry.status == .undoDispatched ? "undoing \(record.entry.tool)" : "running \(record.entry.tool)"
        return "I was interrupted while \(what), and I can't tell whether it finished. I did not try again, so it is not done twice: please check, and ask me again if it did not happen."
    }
}
