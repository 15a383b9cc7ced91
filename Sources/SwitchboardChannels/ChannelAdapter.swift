public import ServiceLifecycle
public import SwitchboardModel

/// What a channel can present.
public struct ChannelCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Replies can go into a thread.
    public static let threads = ChannelCapabilities(rawValue: 1 << 0)
    /// People can react to messages (👍 / 👎 confirm).
    public static let reactions = ChannelCapabilities(rawValue: 1 << 1)
    /// Messages can carry formatting (Markdown rendered to HTML).
    public static let formatting = ChannelCapabilities(rawValue: 1 << 2)
}

/// A channel adapter: turns a protocol's events into inbound messages and delivers outbound
/// ones.
///
/// The contract:
/// - Receiving: normalise each event into an `InboundMessage` and hand it to the `InboxWriter`;
///   advance the protocol cursor (Matrix `next_batch`, IMAP UID) only in that same commit, or
///   after it. Never answer anything yourself.
/// - `deliver` is idempotent on `OutboundMessage.deliveryKey`: the dispatcher may call it again
///   for the same message after a crash or a timeout, and that must not post twice where the
///   protocol allows (Matrix txnId, email Message-ID).
/// - Trouble with the far end is reported by throwing `ChannelError` (transient or not) and in
///   logs and metrics; `run` keeps going with backoff and does not return on a network error.
/// - An adapter never calls the engine, a tool or a language model.
public protocol ChannelAdapter: Service {
    /// The channel's name.
    var channel: ChannelID { get }
    /// What it can present.
    var capabilities: ChannelCapabilities { get }

    /// How the channel's connection is doing, for readiness checks.
    var status: ChannelStatus { get }

    /// Delivers one message.
    ///
    /// - Returns: what the far end called the delivered message (a Matrix event id, an email
    ///   Message-ID), when it has such a name: a later reply or reaction can point at it.
    /// - Throws: `ChannelError`; `isTransient` decides between a retry and giving up.
    func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt
}

/// How a channel's connection to its far end is doing.
public struct ChannelStatus: Hashable, Sendable {
    /// The state.
    public enum State: String, Hashable, Sendable {
        /// Not connected yet (logging in, first sync).
        case starting
        /// Connected and working.
        case connected
        /// The far end is failing; the channel keeps trying with backoff.
        case retrying
        /// Another instance on the same database reads from the account; this one delivers,
        /// and takes over reading if that instance stops.
        case standingBy = "standing_by"
    }

    /// The state.
    public var state: State
    /// Failures in a row.
    public var failures: Int
    /// The last failure, for the operator; never a credential or a message body.
    public var lastError: String?
    /// The circuit breakers of the channel's dependencies by name (email: `imap`, `smtp`),
    /// when it has more than one connection to watch.
    public var circuits: [String: CircuitBreaker.State]

    /// Creates a status.
    public init(_ state: State, failures: Int = 0, lastError: String? = nil, circuits: [String: CircuitBreaker.State] = [:]) {
        self.state = state
        self.failures = failures
        self.lastError = lastError
        self.circuits = circuits
    }
}

extension ChannelAdapter {
    /// Channels with nothing to connect to (the terminal, test doubles) are always connected.
    public var status: ChannelStatus { ChannelStatus(.connected) }
}

/// What a channel reports about a delivered message.
public struct DeliveryReceipt: Hashable, Sendable {
    /// The channel's own id of the delivered message, if it has one.
    public var externalID: String?

    /// Creates a receipt.
    public init(externalID: String? = nil) {
        self.externalID = externalID
    }
}

/// The one error type of channel adapters.
public struct ChannelError: Error, CustomStringConvertible, Sendable {
    /// A stable code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The far end could not be reached or timed out.
        public static let unreachable = Code("unreachable")
        /// The far end asked us to slow down.
        public static let rateLimited = Code("rate_limited")
        /// The far end refused the message for good (unknown room, rejected recipient).
        public static let rejected = Code("rejected")
        /// The far end refused our credentials.
        public static let unauthorized = Code("unauthorized")
        /// The channel is not running in this process.
        public static let unavailable = Code("unavailable")

        public var description: String { name }
    }

    /// The code.
    public var code: Code
    /// What happened, for the operator; never a message body or a credential.
    public var message: String
    /// Whether trying again later can succeed.
    public var isTransient: Bool
    /// When the far end said to try again, in seconds.
    public var retryAfter: Double?
    /// Where it was made.
    public var location: SourceLocation

    /// Creates a channel error.
    public init(
        _ code: Code,
        _ message: String,
        isTransient: Bool,
        retryAfter: Double? = nil,
        location: SourceLocation = SourceLocation()
    ) {
        self.code = code
        self.message = message
        self.isTransient = isTransient
        self.retryAfter = retryAfter
        self.location = location
    }

    public var description: String { "ChannelError(\(code)): \(message)" }
}
