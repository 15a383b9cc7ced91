import ServiceLifecycle
public import SwitchboardChannels
public import SwitchboardModel

/// A channel that records what it is asked to deliver, and can be told to fail.
public final class RecordingChannel: ChannelAdapter {
    public let channel: ChannelID
    public let capabilities: ChannelCapabilities = [.threads, .reactions]

    private struct State {
        var delivered: [OutboundMessage] = []
        var failures: [ChannelError] = []
    }

    private let state = Locked(State())

    /// Creates a channel with a name.
    public init(channel: ChannelID = "test") {
        self.channel = channel
    }

    public func run() async throws {
        try? await gracefulShutdown()
    }

    /// Makes the next deliveries fail with these errors, in order.
    public func failNext(_ errors: [ChannelError]) {
        state.withLock { $0.failures += errors }
    }

    /// Everything delivered so far, in order.
    public var delivered: [OutboundMessage] { state.withLock { $0.delivered } }

    /// The external id this channel reports for a delivered message: `$` and its delivery key.
    public static func externalID(of message: OutboundMessage) -> String { "$" + message.deliveryKey }

    public func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt {
        try state.withLock { state in
            if !state.failures.isEmpty { throw state.failures.removeFirst() }
            state.delivered.append(message)
        }
        return DeliveryReceipt(externalID: Self.externalID(of: message))
    }
}
