public import Foundation

/// What the channel vouches for about a message.
///
/// The engine decides what a message may do from these facts alone; it never looks at
/// protocol details.
public struct TrustFacts: Hashable, Sendable, Codable {
    /// The channel authenticated the sender (a logged-in Matrix user, a DMARC-passing email,
    /// the local terminal). Only authenticated senders can confirm high-risk actions.
    public var senderAuthenticated: Bool
    /// The text carries content from a third party (a forwarded email body, a fetched page).
    /// Plans made from it are tainted: every non-read-only call then needs confirmation.
    public var containsUntrustedContent: Bool
    /// For an end-to-end encrypted message: whether the sending device is verified by its
    /// owner (Matrix cross-signing). Nil where the channel has no devices.
    public var deviceVerified: Bool?
    /// Whether this message may confirm or decline a waiting action. The channel decides from
    /// its policy (a "yes" from an unverified device may not count in a group room); the
    /// message can still make requests.
    public var mayConfirm: Bool

    /// Creates trust facts.
    public init(senderAuthenticated: Bool, containsUntrustedContent: Bool = false, deviceVerified: Bool? = nil, mayConfirm: Bool = true) {
        self.senderAuthenticated = senderAuthenticated
        self.containsUntrustedContent = containsUntrustedContent
        self.deviceVerified = deviceVerified
        self.mayConfirm = mayConfirm
    }

    enum CodingKeys: String, CodingKey {
        case senderAuthenticated, containsUntrustedContent, deviceVerified, mayConfirm
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        senderAuthenticated = try container.decode(Bool.self, forKey: .senderAuthenticated)
        containsUntrustedContent = try container.decode(Bool.self, forKey: .containsUntrustedContent)
        deviceVerified = try container.decodeIfPresent(Bool.self, forKey: .deviceVerified)
        mayConfirm = try container.decodeIfPresent(Bool.self, forKey: .mayConfirm) ?? true
    }
}

/// Someone who sent a message, as the channel knows them.
public struct Sender: Hashable, Sendable, Codable {
    /// The person's identity in the channel.
    public var id: PersonID
    /// A display name, if the channel has one.
    public var displayName: String?

    /// Creates a sender.
    public init(id: PersonID, displayName: String? = nil) {
        self.id = id
        self.displayName = displayName
    }
}

/// A yes or no given by a gesture rather than by words: a 👍 / 👎 reaction, or a redacted
/// request (which withdraws it).
public enum ConfirmationGesture: String, Hashable, Sendable, Codable {
    /// Approve the confirmation request the message points at (`replyTo`).
    case approve
    /// Decline it.
    case decline
}

/// Content a channel received but could not turn into text, so the engine can say so.
public enum UnreadableContent: Hashable, Sendable, Codable {
    /// An image, file, audio or other media, described for the person ("an image").
    case media(String)
    /// An end-to-end encrypted message, where the channel does not do encryption.
    case encrypted
    /// An encrypted message the channel could not decrypt: its key never arrived, or it was
    /// damaged.
    case undecryptable
    /// A clear-text message where the operator requires encryption.
    case unencryptedRoom

    /// A stable text form, for storage.
    public var storageValue: String {
        switch self {
        case .media(let what): "media:\(what)"
        case .encrypted: "encrypted"
        case .undecryptable: "undecryptable"
        case .unencryptedRoom: "unencrypted-room"
        }
    }

    /// Reads the storage form; nil for nil.
    public init?(storageValue: String?) {
        guard let value = storageValue else { return nil }
        if value == "encrypted" {
            self = .encrypted
        } else if value == "undecryptable" {
            self = .undecryptable
        } else if value == "unencrypted-room" {
            self = .unencryptedRoom
        } else {
            self = .media(value.hasPrefix("media:") ? String(value.dropFirst(6)) : value)
        }
    }
}

/// A message from a person, normalised by a channel adapter.
///
/// The adapter stores it in the inbox before it acknowledges the protocol event; the pair
/// (`channel`, `externalID`) is the idempotency key: storing the same pair twice is a no-op.
public struct InboundMessage: Hashable, Sendable, Codable {
    /// The channel's own id of the event (Matrix event id, email Message-ID, terminal line id).
    public var externalID: String
    /// Where the message was said.
    public var conversation: ConversationKey
    /// Who said it.
    public var sender: Sender
    /// The plain text of the request.
    public var text: String
    /// The external id of the message this one replies to, if the channel says so.
    public var replyTo: String?
    /// The channel's thread id, when the message was said in a thread.
    public var thread: String?
    /// What the channel vouches for.
    public var trust: TrustFacts
    /// When the channel received it.
    public var receivedAt: Date
    /// Whether the message was addressed to the assistant (always, in a direct conversation;
    /// in a group room, a mention, a reply to the assistant, or a command prefix). A message
    /// that was not counts only as an answer to a pending confirmation, and is otherwise
    /// ignored without a reply.
    public var addressed: Bool
    /// A yes or no given by a gesture, aimed at the message `replyTo` names.
    public var gesture: ConfirmationGesture?
    /// What the channel could not read, if the message was not text.
    public var unreadable: UnreadableContent?
    /// The trace context of the span that received it (W3C propagation headers as text), so
    /// the engine's work joins the same trace; nil when tracing is off.
    public var traceContext: String?
    /// Set only by the engine, never by a channel: this is not something a person said but
    /// the signal that a confirmed call (this id) finished, so the planner whose plan stopped
    /// to ask for it goes on. Its text is the call's result.
    public var continuing: ToolCallID?

    /// Creates an inbound message.
    public init(
        externalID: String,
        conversation: ConversationKey,
        sender: Sender,
        text: String,
        replyTo: String? = nil,
        thread: String? = nil,
        trust: TrustFacts,
        receivedAt: Date,
        addressed: Bool = true,
        gesture: ConfirmationGesture? = nil,
        unreadable: UnreadableContent? = nil,
        traceContext: String? = nil,
        continuing: ToolCallID? = nil
    ) {
        self.externalID = externalID
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.replyTo = replyTo
        self.thread = thread
        self.trust = trust
        self.receivedAt = receivedAt
        self.addressed = addressed
        self.gesture = gesture
        self.unreadable = unreadable
        self.traceContext = traceContext
        self.continuing = continuing
    }

    /// The channel this message arrived on.
    public var channel: ChannelID { conversation.channel }
}
