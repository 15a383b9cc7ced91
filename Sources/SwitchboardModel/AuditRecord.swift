public import Foundation

/// A state change of a tool call, as recorded in the audit trail.
public enum AuditStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case proposed
    case awaitingConfirmation = "awaiting_confirmation"
    case confirmed
    case declined
    case expired
    case rateLimited = "rate_limited"
    case denied
    case executed
    case failed
    case undone
    /// Someone other than the requester answered a confirmation request (a "yes" or a 👍 from
    /// another member of the room). Recorded under the answering message's own call id; the
    /// arguments name the request.
    case answerIgnored = "answer_ignored"
    /// A remote tool's call (an MCP server's, an HTTP API's) is about to be sent: committed
    /// before it leaves, with the call id as its idempotency key. An outcome record follows.
    case dispatched
    /// A `dispatched` call whose outcome never came back (the gateway stopped mid-call). It was
    /// not sent again; the person was told it may or may not have happened.
    case interrupted
    /// A remote tool's compensating call (its undo) is about to be sent.
    case undoDispatched = "undo_dispatched"
}

/// One entry to append to the audit trail, before the store chains it.
public struct AuditEntry: Hashable, Sendable, Codable {
    /// When it happened.
    public var at: Date
    /// The tool call it is about.
    public var callID: ToolCallID
    /// Who asked for the call (or, for `undone`, who undid it).
    public var person: PersonID
    /// Where.
    public var conversation: ConversationKey
    /// The dotted tool name, such as `notes.delete`.
    public var tool: String
    /// The call's assessed risk.
    public var risk: Risk
    /// The new state.
    public var status: AuditStatus
    /// The call's arguments with secrets redacted.
    public var arguments: JSONValue
    /// A short human-readable summary of the result or the reason.
    public var summary: String
    /// The correlation id of the inbound message that caused it.
    public var correlationID: CorrelationID?

    /// Creates an audit entry.
    public init(
        at: Date,
        callID: ToolCallID,
        person: PersonID,
        conversation: ConversationKey,
        tool: String,
        risk: Risk,
        status: AuditStatus,
        arguments: JSONValue,
        summary: String,
        correlationID: CorrelationID?
    ) {
        self.at = at
        self.callID = callID
        self.person = person
        self.conversation = conversation
        self.tool = tool
        self.risk = risk
        self.status = status
        self.arguments = arguments
        self.summary = summary
        self.correlationID = correlationID
    }
}

/// An audit entry as stored: numbered and chained to its predecessor.
public struct AuditRecord: Hashable, Sendable, Codable {
    /// The position in the trail, from 1, without gaps.
    public var sequence: Int64
    /// The entry.
    public var entry: AuditEntry
    /// The hash of the previous record (64 zeros for the first).
    public var previousHash: String
    /// SHA-256 over the previous hash and this record's canonical form, hex.
    public var hash: String

    /// Creates a stored audit record.
    public init(sequence: Int64, entry: AuditEntry, previousHash: String, hash: String) {
        self.sequence = sequence
        self.entry = entry
        self.previousHash = previousHash
        self.hash = hash
    }
}

extension AuditRecord {
    /// The record as JSON: what `switchboard audit --json` prints and `GET /v1/audit` returns.
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "sequence": .int(sequence),
            "at": .string(RFC3339.format(entry.at)),
            "call_id": .string(entry.callID.rawValue),
            "person": .string(entry.person.rawValue),
            "channel": .string(entry.conversation.channel.rawValue),
            "conversation": .string(entry.conversation.conversation.rawValue),
            "tool": .string(entry.tool),
            "risk": .string(entry.risk.description),
            "status": .string(entry.status.rawValue),
            "arguments": entry.arguments,
            "summary": .string(entry.summary),
            "previous_hash": .string(previousHash),
            "hash": .string(hash),
        ]
        if let correlation = entry.correlationID { object["correlation_id"] = .string(correlation.rawValue) }
        return .object(object)
    }
}
