// What the HTTP API shows operators and integrations: messages with their delivery state,
// confirmations with their outcome, API keys, and people's preferences.

public import Foundation
public import SwitchboardModel

/// An inbound message with whether it was answered.
public struct InboundRecord: Hashable, Sendable {
    /// The message and its inbox id.
    public var stored: StoredInbound
    /// When it was answered; nil while it waits.
    public var doneAt: Date?

    /// Creates a record.
    public init(stored: StoredInbound, doneAt: Date?) {
        self.stored = stored
        self.doneAt = doneAt
    }
}

/// Where an outbound message is on its way out.
public enum DeliveryState: String, Hashable, Sendable, Codable {
    /// Waiting for its first delivery or for a retry.
    case pending
    /// Delivered.
    case delivered
    /// Given up: the far end refused it for good.
    case failed
}

/// An outbound message with its delivery state.
public struct OutboundRecord: Hashable, Sendable {
    /// The message.
    public var message: OutboundMessage
    /// Where it is.
    public var state: DeliveryState
    /// When it was delivered.
    public var deliveredAt: Date?
    /// The last delivery error, for the operator.
    public var lastError: String?

    /// Creates a record.
    public init(message: OutboundMessage, state: DeliveryState, deliveredAt: Date?, lastError: String?) {
        self.message = message
        self.state = state
        self.deliveredAt = deliveredAt
        self.lastError = lastError
    }
}

/// A confirmation with how it ended.
public struct ConfirmationRecord: Hashable, Sendable {
    /// The confirmation as it was asked.
    public var confirmation: PendingConfirmation
    /// nil while pending.
    public var outcome: ConfirmationOutcome?
    /// When it was decided or expired.
    public var decidedAt: Date?

    /// Creates a record.
    public init(confirmation: PendingConfirmation, outcome: ConfirmationOutcome?, decidedAt: Date?) {
        self.confirmation = confirmation
        self.outcome = outcome
        self.decidedAt = decidedAt
    }
}

/// Whom a key may speak as through `POST /v1/messages` (the `sender` field, which becomes the
/// person `api:<sender>`): a key speaks, and answers confirmations, only for these.
public enum APISenders: Hashable, Sendable {
    /// Any sender: an integration that speaks for everyone (a bridge), made with `--any-sender`,
    /// and every key made before keys were bound.
    case any
    /// Exactly this sender.
    case exactly(String)
    /// Any sender that starts with this.
    case prefix(String)

    /// Whether a key bound so may speak as `sender`.
    public func allows(_ sender: String) -> Bool {
        switch self {
        case .any: true
        case .exactly(let name): sender == name
        case .prefix(let start): sender.hasPrefix(start)
        }
    }

    /// The two stored columns (`sender`, `sender_prefix`); both nil for `.any`.
    public var columns: (sender: String?, prefix: String?) {
        switch self {
        case .any: (nil, nil)
        case .exactly(let name): (name, nil)
        case .prefix(let start): (nil, start)
        }
    }

    /// From the stored columns.
    public init(sender: String?, prefix: String?) {
        if let sender { self = .exactly(sender) } else if let prefix { self = .prefix(prefix) } else { self = .any }
    }
}

extension APISenders: CustomStringConvertible {
    public var description: String {
        switch self {
        case .any: "any sender"
        case .exactly(let name): "sender \(name)"
        case .prefix(let start): "senders \(start)*"
        }
    }
}

/// An API key as stored: never the key itself, only its hash.
public struct APIKeyRecord: Hashable, Sendable {
    /// The public part of the key, which names it (`list` and `revoke` use it).
    public var id: String
    /// What the operator called it.
    public var name: String
    /// SHA-256 of the secret part, hex.
    public var secretHash: String
    /// What it may do (`send`, `read`, `admin`).
    public var scopes: [String]
    /// When it was made.
    public var createdAt: Date
    /// When it was revoked, if it was.
    public var revokedAt: Date?
    /// Whom it may speak as.
    public var senders: APISenders

    /// Creates a record.
    public init(id: String, name: String, secretHash: String, scopes: [String], createdAt: Date, revokedAt: Date? = nil, senders: APISenders = .any) {
        self.senders = senders
        self.id = id
        self.name = name
        self.secretHash = secretHash
        self.scopes = scopes
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// One of a person's preferences.
public struct Preference: Hashable, Sendable {
    /// The name, such as `timezone`.
    public var key: String
    /// The value.
    public var value: JSONValue
    /// When it was last set.
    public var updatedAt: Date

    /// Creates a preference.
    public init(key: String, value: JSONValue, updatedAt: Date) {
        self.key = key
        self.value = value
        self.updatedAt = updatedAt
    }
}
