public import Foundation

/// A high-risk tool call waiting for its requester's yes or no.
///
/// It survives restarts, is used at most once, and is void after `expiresAt`.
public struct PendingConfirmation: Hashable, Sendable, Codable {
    /// The call it would run; also the confirmation's id.
    public var callID: ToolCallID
    /// The only person who may confirm.
    public var requester: PersonID
    /// Where it was asked; only a reply in the same conversation counts.
    public var conversation: ConversationKey
    /// The dotted tool name.
    public var tool: String
    /// The arguments exactly as they will run (already resolved: note ids, not "all"), with
    /// secret values redacted when `sealedArguments` holds them.
    public var arguments: JSONValue
    /// The arguments as they will run, secrets included, sealed with the gateway's secrets
    /// key; nil when no argument is secret. Never stored or exported in the clear.
    public var sealedArguments: String?
    /// The human-readable preview of exactly what will happen.
    public var preview: String
    /// The assessed risk.
    public var risk: Risk
    /// Whether the plan came from untrusted content.
    public var tainted: Bool
    /// When it was asked.
    public var createdAt: Date
    /// After this, it can no longer be confirmed.
    public var expiresAt: Date
    /// The correlation id of the request.
    public var correlationID: CorrelationID?
    /// The number the requester uses to pick it ("yes 2"): assigned once; numbers count up
    /// while any of the requester's confirmations in the conversation is pending and start
    /// again at 1 only when none is.
    public var number: Int

    /// Creates a pending confirmation.
    public init(
        callID: ToolCallID,
        requester: PersonID,
        conversation: ConversationKey,
        tool: String,
        arguments: JSONValue,
        preview: String,
        risk: Risk,
        tainted: Bool,
        createdAt: Date,
        expiresAt: Date,
        correlationID: CorrelationID?,
        number: Int = 1,
        sealedArguments: String? = nil
    ) {
        self.sealedArguments = sealedArguments
        self.callID = callID
        self.requester = requester
        self.conversation = conversation
        self.tool = tool
        self.arguments = arguments
        self.preview = preview
        self.risk = risk
        self.tainted = tainted
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.correlationID = correlationID
        self.number = number
    }
}

/// How a confirmation ended.
public enum ConfirmationOutcome: String, Hashable, Sendable, Codable {
    case confirmed
    case declined
    case expired
}
