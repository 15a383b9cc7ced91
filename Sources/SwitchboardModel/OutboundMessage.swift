public import Foundation

/// What an outbound message is, so a channel can present it well.
public enum OutboundKind: String, Hashable, Sendable, Codable {
    /// An answer to a request.
    case reply
    /// A request to confirm a risky action; a channel that supports reactions may accept
    /// 👍 / 👎 on it.
    case confirmationRequest = "confirmation_request"
    /// A message the gateway sends on its own (an expired confirmation, a reminder, a link
    /// code).
    case notice
    /// A message a person asked the gateway to send for them (`email.send`, `matrix.post`):
    /// theirs, not an automatic one.
    case relayed
}

/// A message to a person, written by the engine to the outbox.
///
/// `deliveryKey` is unique in the outbox and is what channels use as their idempotency key
/// (Matrix txnId, email Message-ID): delivering the same message twice must not post twice.
public struct OutboundMessage: Hashable, Sendable, Codable {
    /// The outbox row id.
    public var id: OutboxID
    /// The idempotency key for delivery.
    public var deliveryKey: String
    /// Where it goes.
    public var conversation: ConversationKey
    /// The person it answers, if any.
    public var recipient: PersonID?
    /// The text, in plain text with light Markdown.
    public var text: String
    /// The external id of the inbound message this answers, if any.
    public var inReplyTo: String?
    /// The thread to answer in, if the request was in one.
    public var thread: String?
    /// What kind of message it is.
    public var kind: OutboundKind
    /// The correlation id of the work that produced it.
    public var correlationID: CorrelationID?
    /// When the engine wrote it.
    public var createdAt: Date
    /// How many delivery attempts failed so far.
    public var attempts: Int
    /// The trace context of the work that wrote it, so delivery joins the same trace.
    public var traceContext: String?
    /// A subject line, for channels that have one (email); nil for replies, which reuse the
    /// subject of what they answer.
    public var subject: String?

    /// Creates an outbound message.
    public init(
        id: OutboxID,
        deliveryKey: String,
        conversation: ConversationKey,
        recipient: PersonID?,
        text: String,
        inReplyTo: String?,
        thread: String?,
        kind: OutboundKind,
        correlationID: CorrelationID?,
        createdAt: Date,
        attempts: Int,
        traceContext: String? = nil,
        subject: String? = nil
    ) {
        self.subject = subject
        self.id = id
        self.deliveryKey = deliveryKey
        self.conversation = conversation
        self.recipient = recipient
        self.text = text
        self.inReplyTo = inReplyTo
        self.thread = thread
        self.kind = kind
        self.correlationID = correlationID
        self.createdAt = createdAt
        self.attempts = attempts
        self.traceContext = traceContext
    }
}

/// An outbound message before the outbox has given it an id.
public struct OutboundDraft: Hashable, Sendable {
    /// The idempotency key for delivery; unique in the outbox.
    public var deliveryKey: String
    /// Where it goes.
    public var conversation: ConversationKey
    /// The person it answers, if any.
    public var recipient: PersonID?
    /// The text.
    public var text: String
    /// The external id of the inbound message this answers, if any.
    public var inReplyTo: String?
    /// The thread to answer in.
    public var thread: String?
    /// What kind of message it is.
    public var kind: OutboundKind
    /// The correlation id of the work that produced it.
    public var correlationID: CorrelationID?
    /// The trace context of the work that wrote it.
    public var traceContext: String?
    /// A subject line, for channels that have one (email).
    public var subject: String?

    /// Creates a draft.
    public init(
        deliveryKey: String,
        conversation: ConversationKey,
        recipient: PersonID?,
        text: String,
        inReplyTo: String?,
        thread: String?,
        kind: OutboundKind,
        correlationID: CorrelationID?,
        traceContext: String? = nil,
        subject: String? = nil
    ) {
        self.traceContext = traceContext
        self.subject = subject
        self.deliveryKey = deliveryKey
        self.conversation = conversation
        self.recipient = recipient
        self.text = text
        self.inReplyTo = inReplyTo
        self.thread = thread
        self.kind = kind
        self.correlationID = correlationID
    }
}
