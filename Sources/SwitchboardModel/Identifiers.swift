/// A channel's name, such as `terminal`, `matrix` or `email`.
///
/// Channel names are stable: they appear in stored messages, audit records and configuration.
public struct ChannelID: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The channel's name.
    public let rawValue: String

    /// Creates a channel id from its name.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Creates a channel id from a string literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }
}

/// A conversation's id inside its channel: a Matrix room (opaque, never parsed), an email
/// thread's root Message-ID, a terminal session name.
public struct ConversationID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The channel's own identifier for the conversation.
    public let rawValue: String

    /// Creates a conversation id from the channel's identifier.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
}

/// The key that identifies one conversation across all channels.
///
/// Order is kept per conversation key: messages with the same key are processed one at a time,
/// in the order the channel delivered them.
public struct ConversationKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The channel the conversation happens in.
    public let channel: ChannelID
    /// The conversation's id inside that channel.
    public let conversation: ConversationID

    /// Creates a conversation key.
    public init(channel: ChannelID, conversation: ConversationID) {
        self.channel = channel
        self.conversation = conversation
    }

    /// The single-string form used as a storage key: `channel/conversation`.
    public var storageKey: String { "\(channel.rawValue)/\(conversation.rawValue)" }

    public var description: String { storageKey }
}

/// A person, as the channel identifies them: a Matrix user id, an email address, a terminal name.
///
/// Roles and rate limits are per person.
public struct PersonID: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The channel-level identity of the person.
    public let rawValue: String

    /// Creates a person id.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Creates a person id from a string literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }
}

/// The id of a stored inbound message (its row in the inbox).
public struct InboxID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The row id.
    public let rawValue: Int64

    /// Creates an inbox id.
    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}

/// The id of a stored outbound message (its row in the outbox).
public struct OutboxID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The row id.
    public let rawValue: Int64

    /// Creates an outbox id.
    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}

/// The idempotency key of one tool call.
///
/// Derived from the inbound message that asked for it and the call's position in the plan, so
/// reprocessing the same message after a crash yields the same id, and the storage's unique
/// constraints refuse a second execution.
public struct ToolCallID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The id's text.
    public let rawValue: String

    /// Creates a tool call id from its text.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The id of the `index`th call planned for an inbound message.
    public init(inbox: InboxID, index: Int) {
        self.rawValue = "m\(inbox.rawValue)-\(index)"
    }

    public var description: String { rawValue }
}

/// A correlation id: one per inbound message, carried through logs, audit and delivery.
public struct CorrelationID: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The id's text.
    public let rawValue: String

    /// Creates a correlation id.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The correlation id of the work caused by an inbound message.
    public init(inbox: InboxID) { self.rawValue = "in-\(inbox.rawValue)" }

    public var description: String { rawValue }
}

extension PersonID {
    /// The identity of an email sender: `email:` and the address in lower case. The email channel
    /// names senders this way, and linking ("link my email …") maps it to a person.
    public static func email(_ address: String) -> PersonID {
        PersonID("email:" + address.lowercased())
    }
}
