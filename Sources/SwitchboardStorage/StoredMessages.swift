public import Foundation
public import SwitchboardModel

/// An inbound message as stored in the inbox.
public struct StoredInbound: Hashable, Sendable {
    /// The inbox row id.
    public var id: InboxID
    /// The message.
    public var message: InboundMessage

    /// Creates a stored inbound message.
    public init(id: InboxID, message: InboundMessage) {
        self.id = id
        self.message = message
    }
}

/// The result of offering an inbound message to the inbox.
public enum InboxInsertResult: Hashable, Sendable {
    /// Stored for the first time.
    case inserted(InboxID)
    /// The same (channel, external id) was stored before; nothing changed.
    case duplicate(InboxID)

    /// The inbox id, either way.
    public var id: InboxID {
        switch self {
        case .inserted(let id), .duplicate(let id): id
        }
    }
}

/// A token bucket's stored state for one person and tool category.
/// Who sent a stored inbound message, and when it arrived.
public struct InboundSighting: Hashable, Sendable {
    /// The sender.
    public var sender: PersonID
    /// The channel's id of the message.
    public var externalID: String
    /// When it arrived.
    public var receivedAt: Date

    /// Creates a sighting.
    public init(sender: PersonID, externalID: String, receivedAt: Date) {
        self.sender = sender
        self.externalID = externalID
        self.receivedAt = receivedAt
    }
}

public struct RateBucketState: Hashable, Sendable {
    /// Tokens left.
    public var tokens: Double
    /// When `tokens` was computed.
    public var updatedAt: Date

    /// Creates a bucket state.
    public init(tokens: Double, updatedAt: Date) {
        self.tokens = tokens
        self.updatedAt = updatedAt
    }
}

/// How to revert one tool call, recorded when it executed.
public struct UndoEntry: Hashable, Sendable {
    /// The call that did it.
    public var callID: ToolCallID
    /// Who did it.
    public var person: PersonID
    /// Where.
    public var conversation: ConversationKey
    /// The tool.
    public var tool: String
    /// The tool's own description of how to revert, or nil when the call cannot be undone.
    public var payload: JSONValue?
    /// What the call did, in words ("added note 4: milk").
    public var description: String
    /// When it ran.
    public var createdAt: Date
    /// When it was undone, if it was.
    public var undoneAt: Date?

    /// Creates an undo entry.
    public init(
        callID: ToolCallID,
        person: PersonID,
        conversation: ConversationKey,
        tool: String,
        payload: JSONValue?,
        description: String,
        createdAt: Date,
        undoneAt: Date? = nil
    ) {
        self.callID = callID
        self.person = person
        self.conversation = conversation
        self.tool = tool
        self.payload = payload
        self.description = description
        self.createdAt = createdAt
        self.undoneAt = undoneAt
    }
}

/// Which audit records to read.
public struct AuditQuery: Hashable, Sendable {
    /// Only this person's records.
    public var person: PersonID?
    /// Only records at or after this time.
    public var since: Date?
    /// Only records before this time.
    public var until: Date?
    /// Only records of this tool.
    public var tool: String?
    /// Only records in this state.
    public var status: AuditStatus?
    /// Only records in this conversation.
    public var conversation: ConversationKey?
    /// Only records of the work with this correlation id.
    public var correlationID: CorrelationID?
    /// Only records after this sequence number (for paging).
    public var afterSequence: Int64?
    /// At most this many.
    public var limit: Int?

    /// Creates a query; no arguments means every record.
    public init(
        person: PersonID? = nil,
        since: Date? = nil,
        until: Date? = nil,
        tool: String? = nil,
        status: AuditStatus? = nil,
        conversation: ConversationKey? = nil,
        correlationID: CorrelationID? = nil,
        afterSequence: Int64? = nil,
        limit: Int? = nil
    ) {
        self.person = person
        self.since = since
        self.until = until
        self.tool = tool
        self.status = status
        self.conversation = conversation
        self.correlationID = correlationID
        self.afterSequence = afterSequence
        self.limit = limit
    }
}

/// How much work is waiting, for draining and health.
public struct PipelineDepth: Hashable, Sendable {
    /// Inbound messages not yet answered.
    public var pendingInbound: Int
    /// Outbound messages not yet delivered (and not given up).
    public var pendingOutbound: Int
    /// When the oldest pending inbound message arrived.
    public var oldestInbound: Date?
    /// When the oldest pending outbound message was written.
    public var oldestOutbound: Date?

    /// Creates a depth reading.
    public init(pendingInbound: Int, pendingOutbound: Int, oldestInbound: Date? = nil, oldestOutbound: Date? = nil) {
        self.pendingInbound = pendingInbound
        self.pendingOutbound = pendingOutbound
        self.oldestInbound = oldestInbound
        self.oldestOutbound = oldestOutbound
    }
}
