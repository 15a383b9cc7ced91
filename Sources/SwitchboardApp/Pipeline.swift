import Logging
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardModel
import SwitchboardStorage

/// The wiring every running gateway shares: gate, inbox writer, engine and dispatcher over one
/// store, connected by their wake-up signals. `Gateway` and the benchmark both build it here.
struct Pipeline {
    let inbox: InboxWriter
    let gate: ToolGate
    let engine: ConversationEngine
    let dispatcher: OutboxDispatcher
    let adapters: [any ChannelAdapter]

    /// Assembles a pipeline. `engine.batchSize` also bounds inbox and delivery batches.
    init(
        store: any Store,
        engine configuration: EngineConfiguration,
        retry: RetryPolicy,
        logger: Logger,
        crashPoint: (@Sendable (String) -> Void)? = nil,
        channels: (InboxWriter) -> [any ChannelAdapter]
    ) {
        gate = ToolGate(
            registry: ToolRegistry(BuiltinTools.all),
            access: configuration.access,
            riskPolicy: configuration.risk,
            rateLimits: configuration.rateLimits,
            confirmationLifetime: configuration.confirmationLifetime,
            logger: logger
        )
        let inboxSignal = WorkSignal()
        let outboxSignal = WorkSignal()
        let clock = SystemWallClock()
        inbox = InboxWriter(store: store, signal: inboxSignal, maxBatch: configuration.batchSize, crashPoint: crashPoint)
        adapters = channels(inbox)
        engine = ConversationEngine(
            store: store, planner: CommandPlanner(), gate: gate, configuration: configuration, clock: clock,
            inboxSignal: inboxSignal, outboxSignal: outboxSignal, logger: logger, crashPoint: crashPoint
        )
        dispatcher = OutboxDispatcher(
            store: store, adapters: adapters, retry: retry, clock: clock, signal: outboxSignal,
            pollInterval: configuration.pollInterval, batchSize: configuration.batchSize, logger: logger,
            crashPoint: crashPoint
        )
    }
}
