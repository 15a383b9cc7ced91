import Logging
import SwitchboardChannels
import SwitchboardLLM
import Foundation
import SwitchboardEngine
import SwitchboardIntent
import SwitchboardModel
import SwitchboardStorage
import SwitchboardTools

/// The wiring every running gateway shares: gate, inbox writer, engine and dispatcher over one
/// store, connected by their wake-up signals. `Gateway` and the benchmark both build it here.
struct Pipeline {
    let inbox: InboxWriter
    let gate: ToolGate
    let engine: ConversationEngine
    let dispatcher: OutboxDispatcher
    let reminders: ReminderScheduler
    /// Learns from the committed history, in the background.
    let learner: Learner
    let adapters: [any ChannelAdapter]
    /// The model router, when models are configured: its circuits go to /readyz and /metrics.
    let models: ModelRouter?

    /// Assembles a pipeline. `engine.batchSize` also bounds inbox and delivery batches.
    init(
        store: any Store,
        engine configuration: EngineConfiguration,
        llm: LLMConfiguration = LLMConfiguration(),
        retry: RetryPolicy,
        sealer: SecretSealer,
        logger: Logger,
        crashPoint: (@Sendable (String) -> Void)? = nil,
        sharing: WorkSharing? = nil,
        remoteTools: (any ToolSource)? = nil,
        dav: DAVAccounts? = nil,
        channels: (InboxWriter) -> [any ChannelAdapter]
    ) {
        let inboxSignal = WorkSignal()
        let outboxSignal = WorkSignal()
        let clock = SystemWallClock()
        inbox = InboxWriter(store: store, signal: inboxSignal, maxBatch: configuration.batchSize, crashPoint: crashPoint)
        adapters = channels(inbox)
        let tools = BuiltinTools.all(dav: dav)
        gate = ToolGate(
            registry: ToolRegistry(tools, sources: remoteTools.map { [$0] } ?? []),
            access: configuration.access,
            riskPolicy: configuration.risk,
            rateLimits: configuration.rateLimits,
            confirmationLifetime: configuration.confirmationLifetime,
            sendingChannels: Set(adapters.map(\.channel)),
            sealer: sealer,
            learning: configuration.learning,
            logger: logger
        )
        let registry = gate.registry
        let learning = configuration.learning
        learner = Learner(store: store, policy: learning, sharing: sharing, clock: clock, logger: logger)
        let remoteTools: @Sendable () -> [ToolDescriptor] = {
            guard registry.hasSources else { return [] }
            return registry.descriptors.filter { descriptor in descriptor.origin != ToolOrigin.builtin }
        }
        let intentPlanner = IntentPlanner(engine: { BuiltinTools.intentEngine }, tools: tools.map(\.descriptor), clock: clock, zoneOf: { person in
            let zone = try? await store.read { reader in
                try reader.preferences(of: reader.linkedPerson(for: person) ?? person).first { $0.key == "timezone" }?.value.stringValue
            }
            return zone.flatMap { $0 }.flatMap(TimeZone.init(identifier:))
        }, lastReply: { conversation in
            let last = try? await store.read { try $0.outboundRecords(in: conversation, before: nil, limit: 1).last?.message.text }
            return last.flatMap { $0 }
        }, remoteTools: remoteTools, priorsOf: { person in
            // The person's learned habits, for a message torn between two tools.
            let preferences = try? await store.read { reader in try reader.preferences(of: reader.linkedPerson(for: person) ?? person) }
            return LearnedProfile(preferences ?? [], policy: learning).toolShares(learning)
        })
        let planner: any Planner
        if llm.models.isEmpty {
            planner = intentPlanner
            models = nil
        } else {
            for tool in tools.map(\.descriptor) {
                let unknown = SchemaValidator.unsupportedKeywords(in: tool.parameters)
                if !unknown.isEmpty {
                    logger.warning("a tool's schema uses keywords the argument check ignores", metadata: [
                        "tool.name": "\(tool.name)", "keywords": "\(unknown.sorted().joined(separator: ", "))",
                    ])
                }
            }
            let router = ModelRouter(
                configuration: llm, providers: ModelRouter.providers(for: llm, client: ModelRouter.sharedClient),
                ledger: UsageLedger(store: store, budget: llm.budget), logger: logger
            )
            models = router
            var modelPlanner = LLMPlanner(
                router: router, fallback: intentPlanner, fallbackFailed: { IntentPlanner.cannotServe($0) }, hints: IntentEngineHints(remote: remoteTools),
                store: store, clock: clock, escalation: !configuration.escalation.isEmpty, logger: logger
            )
            modelPlanner.learning = learning
            planner = modelPlanner
        }
        let reminderSignal = WorkSignal()
        reminders = ReminderScheduler(store: store, clock: clock, outboxSignal: outboxSignal, wake: reminderSignal, logger: logger)
        engine = ConversationEngine(
            store: store, planner: planner, gate: gate, configuration: configuration, clock: clock,
            inboxSignal: inboxSignal, outboxSignal: outboxSignal, logger: logger, crashPoint: crashPoint,
            reminderSignal: reminderSignal, sharing: sharing
        )
        dispatcher = OutboxDispatcher(
            store: store, adapters: adapters, retry: retry, clock: clock, signal: outboxSignal,
            pollInterval: configuration.pollInterval, batchSize: configuration.batchSize, logger: logger,
            crashPoint: crashPoint, sharing: sharing
        )
    }
}

/// The built-in intent engine's ranking, for the language-model planner, with the tools of
/// other systems that match the text (the tool retriever's BM25 ranking, scaled below a sure
/// built-in intent), so a model is shown the few remote tools a request is about among many.
struct IntentEngineHints: IntentHints {
    var remote: @Sendable () -> [ToolDescriptor] = { [] }
    let retrievers = ToolRetrieverCache()

    func rank(_ text: String) -> [IntentScore] {
        var scores = BuiltinTools.intentEngine.rank(text, zone: TimeZone(identifier: "UTC")!, now: Date()).map {
            IntentScore(intent: $0.intent, probability: $0.probability)
        }
        let tools = remote()
        guard !tools.isEmpty else { return scores }
        let matches = retrievers.retriever(for: tools).rank(text, limit: 8)
        guard let best = matches.first?.score, best > 0 else { return scores }
        scores += matches.map { IntentScore(intent: $0.tool, probability: 0.6 * $0.score / best) }
        return scores.sorted { $0.probability > $1.probability }
    }
}
