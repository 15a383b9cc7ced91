// The conversation engine: inbox → plan → tool gate → outbox.
//
// One loop takes pending messages in arrival order (for a planner that reads the conversation's
// history, only the oldest of each conversation, so a message is planned after its predecessor
// is answered), plans them outside any transaction, then applies the whole batch, in order, in
// one write transaction: for each message, in its own savepoint, the gate's effects and audit records,
// the reply in the outbox, and the message marked done. One commit serves the whole batch
// (group commit), and a crash before it loses nothing: the messages are still pending and are
// processed again, with the same tool call ids.

import Foundation
public import Logging
import Metrics
public import ServiceLifecycle
public import SwitchboardModel
public import SwitchboardStorage
import SwitchboardTracing
import Tracing

/// A remote call reached the batch transaction, where it cannot run: a bug, answered with an apology.
struct RemoteCallInBatch: Error {
    var tool: String
}

/// Processes inbound messages into replies.
public final class ConversationEngine: Service, Sendable {
    private let store: any Store
    private let planner: any Planner
    private let gate: ToolGate
    private let configuration: EngineConfiguration
    private let clock: any WallClock
    private let inboxSignal: WorkSignal
    private let outboxSignal: WorkSignal
    private let logger: Logger
    private let crashPoint: (@Sendable (String) -> Void)?
    private let reminderSignal: WorkSignal?
    /// With other instances on the database: conversations are claimed (leased) before they
    /// are planned, and only their holder answers them.
    private let sharing: WorkSharing?

    /// Creates an engine.
    ///
    /// - Parameters:
    ///   - inboxSignal: signalled when messages arrive.
    ///   - outboxSignal: signalled after replies are committed.
    ///   - crashPoint: called at named points, for crash tests; nil in production.
    ///   - reminderSignal: signalled after a commit that set or changed a reminder, so the
    ///     scheduler looks again at once.
    public init(
        store: any Store,
        planner: any Planner,
        gate: ToolGate,
        configuration: EngineConfiguration,
        clock: any WallClock,
        inboxSignal: WorkSignal,
        outboxSignal: WorkSignal,
        logger: Logger,
        crashPoint: (@Sendable (String) -> Void)? = nil,
        reminderSignal: WorkSignal? = nil,
        sharing: WorkSharing? = nil
    ) {
        self.sharing = sharing
        self.reminderSignal = reminderSignal
        self.store = store
        self.planner = planner
        self.gate = gate
        self.configuration = configuration
        self.clock = clock
        self.inboxSignal = inboxSignal
        self.outboxSignal = outboxSignal
        self.logger = logger
        self.crashPoint = crashPoint
    }

    public func run() async throws {
        var failures = 0
        // Expiry is in whole seconds: looking once a second is enough, and spares a busy engine
        // a read per batch.
        var lastExpiryCheck = ContinuousClock.now - .seconds(1)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    let processed = try await processBatch()
                    if ContinuousClock.now - lastExpiryCheck >= .seconds(1) {
                        try await expireConfirmations()
                        lastExpiryCheck = .now
                    }
                    failures = 0
                    if processed == 0 {
                        await inboxSignal.wait(timeout: configuration.pollInterval)
                    }
                } catch is CancellationError {
                    return
                } catch {
                    // Whatever went wrong, nothing of the batch was committed: back off and try
                    // again rather than stopping the gateway.
                    if Task.isCancelled { return }
                    failures += 1
                    let delay = min(30.0, 0.1 * pow(2, Double(min(failures, 10))))
                    logger.error("engine batch failed; retrying", metadata: ["error": "\(error)", "retry.in_s": "\(delay)"])
                    try? await Task.sleep(for: .seconds(delay))
                }
            }
        } onGracefulShutdown: {
            self.inboxSignal.signal()
        }
    }

    /// One planned message.
    struct Work: Sendable {
        var inbound: StoredInbound
        var action: Action
    }

    enum Action: Sendable {
        /// Mark the message done and say nothing (an aside in a group room).
        case ignore
        /// Leave the message pending: another instance took the conversation over while it
        /// was being planned, or it was answered already.
        case skip
        case reply(String)
        case confirmation(ConfirmationReply)
        case plan(Plan)
        /// Answered and marked done already, while deciding (a remote tool's call, which runs
        /// between two transactions of its own).
        case handled(kind: String)

        /// What kind of action it is, for logs (never the text).
        var kind: String {
            switch self {
            case .ignore: "ignore"
            case .skip: "skip"
            case .handled(let kind): kind
            case .reply: "reply"
            case .confirmation: "confirmation"
            case .plan(.call(let tool, _)): "call \(tool)"
            case .plan(.undo): "undo"
            case .plan(.history): "history"
            case .plan(.help): "help"
            case .plan(.reply), .plan(.answer): "planned reply"
            case .plan(.escalate): "escalate"
            case .plan(.notUnderstood): "not understood"
            }
        }
    }

    /// Messages planned at once, for a planner that reads history (one per conversation).
    static let concurrentPlans = 8

    /// With other instances: the most conversations one batch claims.
    static let conversationsPerClaim = 16

    /// Plans and applies one batch. Returns how many messages it answered.
    @discardableResult
    public func processBatch() async throws -> Int {
        let batchSize = configuration.batchSize
        let headsOnly = planner.plansFromHistory
        let heads: [StoredInbound]
        if let sharing {
            let now = clock.now()
            heads = try await store.write { tx in
                // A bounded number of conversations per claim, so that one instance does not
                // take every waiting conversation and leave the others idle.
                try tx.claimInbound(
                    holder: sharing.instance, conversations: min(batchSize, Self.conversationsPerClaim), limit: batchSize, headsOnly: headsOnly,
                    until: now.addingTimeInterval(sharing.lease), now: now
                )
            }
        } else {
            heads = try await store.read { reader in
                headsOnly ? try reader.pendingInboundHeads(limit: batchSize) : try reader.pendingInbound(limit: batchSize)
            }
        }
        guard !heads.isEmpty else { return 0 }
        let leases = sharing.map { _ in Array(Set(heads.map { WorkSharing.inboxLease($0.message.conversation) })) } ?? []

        // Planning can outlast a lease (a model call takes seconds, a slow provider more):
        // renew the batch's leases while it runs, so no other instance takes the conversations
        // over and plans them again.
        let renewal: Task<Void, Never>? = sharing.map { sharing in
            Task { [store, clock, log = self.logger] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(max(1, sharing.lease / 3)))
                    if Task.isCancelled { return }
                    let now = clock.now()
                    do {
                        _ = try await store.write { tx in
                            try tx.acquireLeases(leases, holder: sharing.instance, until: now.addingTimeInterval(sharing.lease), now: now)
                        }
                    } catch {
                        log.warning("could not renew conversation leases while planning", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        defer { renewal?.cancel() }
        var work: [Work] = []
        work.reserveCapacity(heads.count)
        if headsOnly && heads.count > 1 {
            // One message per conversation: plan them side by side, since a planner that reads
            // history (a language model) spends most of its time waiting for the provider.
            // At most a few at once: each may be a model call, and a burst of them invites
            // rate limits from the provider.
            let actions = await withTaskGroup(of: (Int, Action).self) { group in
                var actions = [Action?](repeating: nil, count: heads.count)
                var next = 0
                while next < min(heads.count, Self.concurrentPlans) {
                    let index = next
                    group.addTask { (index, await self.decide(heads[index])) }
                    next += 1
                }
                for await (index, action) in group {
                    actions[index] = action
                    if next < heads.count {
                        let index = next
                        group.addTask { (index, await self.decide(heads[index])) }
                        next += 1
                    }
                }
                return actions
            }
            for (inbound, action) in zip(heads, actions) { work.append(Work(inbound: inbound, action: action ?? .skip)) }
        } else {
            for inbound in heads {
                work.append(Work(inbound: inbound, action: await decide(inbound)))
            }
        }

        // Stop renewing before the answer commits: a renewal after the commit would take back
        // the leases the commit gives up.
        renewal?.cancel()
        await renewal?.value
        let now = clock.now()
        let planned = work
        let gate = self.gate
        let logger = self.logger
        let crashPoint = self.crashPoint
        let holder = sharing?.instance
        let escalation = configuration.escalation
        let planner = self.planner
        let (answered, events) = try await store.write { tx -> (Int, [GateEvent]) in
            var answered = 0
            var events: [GateEvent] = []
            // A lease that lapsed while planning and was taken over: its holder answers now.
            // Checking locks it until this commit, so nobody takes it over half-way.
            var lost = Set<String>()
            if let holder {
                for lease in leases where try !tx.holdsLease(lease, holder: holder) { lost.insert(lease) }
            }
            for item in planned {
                if case .skip = item.action { continue }
                if case .handled = item.action { continue }
                if !lost.isEmpty, lost.contains(WorkSharing.inboxLease(item.inbound.message.conversation)) { continue }
                guard try tx.isInboundPending(item.inbound.id) else { continue }
                // The message's span continues the trace its channel started; the reply carries
                // this span on to delivery.
                try withTracedSpan("engine.message", context: TraceCarrier.restore(item.inbound.message.traceContext), ofKind: .consumer) { span in
                    span?.attributes["switchboard.correlation_id"] = CorrelationID(inbox: item.inbound.id).rawValue
                    span?.attributes["switchboard.channel"] = item.inbound.message.channel.rawValue
                    span?.attributes["switchboard.action"] = item.action.kind
                    let (result, recorded) = try Self.apply(item, gate: gate, planner: planner, escalation: escalation, now: now, tx: tx, logger: logger)
                    events += recorded
                    if let reply = result {
                        try Self.enqueueReply(reply.text, kind: reply.kind, to: item.inbound, now: now, tx: tx)
                    }
                }
                _ = try tx.markInboundDone(item.inbound.id, at: now)
                answered += 1
            }
            if let holder { try tx.releaseLeases(leases, holder: holder) }
            crashPoint?("before_engine_commit")
            return (answered, events)
        }
        let handledWhileDeciding = planned.count { if case .handled = $0.action { true } else { false } }
        crashPoint?("after_engine_commit")
        Self.count(events)
        if let reminderSignal, events.contains(where: { $0.category == "reminders" && ($0.status == .executed || $0.status == .undone) }) {
            reminderSignal.signal()
        }
        if logger.logLevel <= .debug {
            for item in planned {
                if case .skip = item.action { continue }
                logger.debug("answered", metadata: [
                    "correlation.id": "\(CorrelationID(inbox: item.inbound.id))", "channel": "\(item.inbound.message.channel)",
                    "action": "\(item.action.kind)",
                ])
            }
            for event in events {
                logger.debug("tool call", metadata: [
                    "tool.name": "\(event.tool)", "tool.risk": "\(event.risk)", "tool.status": "\(event.status.rawValue)",
                    "correlation.id": "\(event.correlationID?.rawValue ?? "-")",
                ])
            }
        }
        if answered > 0 { outboxSignal.signal() }
        let answeredInAll = answered + handledWhileDeciding
        // From arrival to the committed answer, per message.
        let done = clock.now()
        var timers: [ChannelID: Metrics.Timer] = [:]
        for item in planned {
            if case .skip = item.action { continue }  // not answered: it waits for another round
            let channel = item.inbound.message.channel
            let timer = timers[channel] ?? Metrics.Timer(label: "switchboard_message_processing_seconds", dimensions: [("channel", channel.rawValue)])
            timers[channel] = timer
            timer.recordNanoseconds(Int64(max(0, done.timeIntervalSince(item.inbound.message.receivedAt)) * 1_000_000_000))
        }
        return answeredInAll
    }

    /// Decides, outside any transaction, what a message is: a confirmation answer, something
    /// to refuse at once, or a plan. With tools from other systems configured, a call of one of
    /// them (and every confirmation answer and undo, which may reach one) is carried out here,
    /// in transactions of its own around the remote call (`ToolGate+Remote`).
    private func decide(_ inbound: StoredInbound) async -> Action {
        guard gate.registry.hasSources else { return await decideLocally(inbound) }
        await gate.registry.sourcesListed()
        let correlation = CorrelationID(inbox: inbound.id)
        do {
            if let handled = try await answerInterrupted(inbound) { return handled }
            let action = await decideLocally(inbound)
            let gate = self.gate
            let planner = self.planner
            let message = inbound.message
            switch action {
            case .confirmation(let reply):
                return try await runRemotely(inbound, kind: "confirmation") { request, tx in
                    try Self.answerConfirmation(reply, message: message, request: request, gate: gate, planner: planner, tx: tx)
                }
            case .plan(.call(let tool, let arguments)) where gate.registry[tool] is any RemoteTool:
                var lookup: JSONValue?
                if let remote = gate.registry[tool] as? any RemoteTool {
                    let sender = message.sender.id
                    let person = try await store.read { try $0.linkedPerson(for: sender) } ?? sender
                    lookup = await remote.look(arguments, person: person)
                }
                return try await runRemotely(inbound, kind: "call \(tool)") { [lookup] request, tx in
                    var request = request
                    request.lookup = lookup
                    return try gate.propose(tool: tool, arguments: arguments, index: 0, request: request, in: tx)
                }
            case .plan(.undo(let count)):
                return try await runRemotely(inbound, kind: "undo") { request, tx in
                    try gate.undo(count: count, request: request, in: tx)
                }
            default:
                return action
            }
        } catch ToolSessionError.notHeld {
            return .skip
        } catch is CancellationError {
            return .skip
        } catch let error as StoreError where error.isTransient {
            logger.warning("a remote call hit a transient database error; the message waits", metadata: [
                "correlation.id": "\(correlation)", "error": "\(error)",
            ])
            return .skip
        } catch {
            logger.error("message failed; answered with an apology", metadata: ["correlation.id": "\(correlation)", "error": "\(error)"])
            return .reply("Sorry, something went wrong on my side and nothing was changed. (ref \(correlation))")
        }
    }

    /// A message processed again after the gateway stopped in the middle of one of its remote
    /// calls: the call is recorded as interrupted, not sent again, and the person told.
    private func answerInterrupted(_ inbound: StoredInbound) async throws -> Action? {
        let correlation = CorrelationID(inbox: inbound.id)
        let gate = self.gate
        let interrupted = try await store.read { try gate.interruptedCalls(of: correlation, in: $0) }
        guard !interrupted.isEmpty else { return nil }
        let now = clock.now()
        let holder = sharing?.instance
        let events = GateEvents()
        try await store.write { tx in
            events.clear()
            try Self.checkHeld(inbound, holder: holder, tx: tx)
            var lines: [String] = []
            for record in try gate.interruptedCalls(of: correlation, in: tx) {
                lines.append(try gate.abandon(record, now: now, events: events, in: tx))
            }
            try Self.enqueueReply(lines.joined(separator: "\n"), kind: .reply, to: inbound, now: now, tx: tx)
            _ = try tx.markInboundDone(inbound.id, at: now)
        }
        logger.warning("remote calls interrupted by a restart were not sent again", metadata: [
            "correlation.id": "\(correlation)", "tool.names": "\(interrupted.map(\.entry.tool).joined(separator: ","))",
        ])
        Self.count(events.all)
        outboxSignal.signal()
        return .handled(kind: "interrupted")
    }

    /// Runs one step through the gate in a transaction of its own. When the gate approves a
    /// remote call, that transaction commits the `dispatched` record, the call runs with no
    /// transaction open, and a second transaction records its outcome and the reply; otherwise
    /// the first transaction carries the reply.
    private func runRemotely(
        _ inbound: StoredInbound, kind: String,
        _ body: @escaping @Sendable (ToolGate.Request, any StoreTransaction) throws -> ToolGate.Result?
    ) async throws -> Action {
        let now = clock.now()
        let holder = sharing?.instance
        let (first, events) = try await store.write { tx -> (ToolGate.Result?, [GateEvent]) in
            try Self.checkHeld(inbound, holder: holder, tx: tx)
            let message = inbound.message
            let person = try tx.linkedPerson(for: message.sender.id) ?? message.sender.id
            let request = ToolGate.Request(
                person: person, conversation: message.conversation, inboxID: inbound.id,
                correlationID: CorrelationID(inbox: inbound.id), senderAuthenticated: message.trust.senderAuthenticated,
                tainted: message.trust.containsUntrustedContent, now: now
            )
            let result = try tx.savepoint { try body(request, tx) }
            if result?.dispatch == nil {
                if let result { try Self.enqueueReply(result.text, kind: result.kind, to: inbound, now: now, tx: tx) }
                _ = try tx.markInboundDone(inbound.id, at: now)
            }
            return (result, request.events.all)
        }
        Self.count(events)
        guard let dispatch = first?.dispatch else {
            outboxSignal.signal()
            return .handled(kind: kind)
        }
        crashPoint?("remote_call_dispatched")
        let outcome = await gate.perform(dispatch)
        crashPoint?("remote_call_performed")
        let completed: [GateEvent]
        do {
            completed = try await recordOutcome(dispatch, outcome) { result, done, tx in
                if try tx.isInboundPending(inbound.id) {
                    try Self.enqueueReply(result.text, kind: result.kind, to: inbound, now: done, tx: tx)
                    if let continuation = first?.continuation, result.status == .executed {
                        try Self.enqueueContinuation(continuation, result: result.text, tx: tx)
                    }
                    _ = try tx.markInboundDone(inbound.id, at: done)
                }
            }
        } catch let error as StoreError where error.isTransient {
            // The message waits; processing it again finds the call dispatched and says so.
            throw error
        } catch {
            // The call left the gateway: the generic apology ("nothing was changed") would be false.
            logger.error("a remote call's outcome could not be recorded", metadata: [
                "tool.call_id": "\(dispatch.callID)", "correlation.id": "\(CorrelationID(inbox: inbound.id))", "error": "\(error)",
            ])
            return .reply("Sorry, I called \(dispatch.toolName) but could not record how it went, so it may have been done. (ref \(CorrelationID(inbox: inbound.id)))")
        }
        Self.count(completed)
        outboxSignal.signal()
        if let reminderSignal, completed.contains(where: { $0.category == "reminders" }) { reminderSignal.signal() }
        return .handled(kind: kind)
    }

    /// Records a remote call's outcome, retrying a few times when the database is briefly in
    /// trouble: the call happened, and only this process knows how it went.
    func recordOutcome(
        _ dispatch: RemoteDispatch, _ outcome: RemoteOutcome,
        then: @escaping @Sendable (ToolGate.Result, Date, any StoreTransaction) throws -> Void
    ) async throws -> [GateEvent] {
        let gate = self.gate
        var attempt = 0
        while true {
            let done = clock.now()
            do {
                return try await store.write { tx -> [GateEvent] in
                    let events = GateEvents()
                    let result = try gate.complete(dispatch, outcome: outcome, now: done, events: events, in: tx)
                    try then(result, done, tx)
                    return events.all
                }
            } catch let error as StoreError where error.isTransient && attempt < 4 {
                attempt += 1
                logger.warning("could not record a remote call's outcome; retrying", metadata: [
                    "tool.call_id": "\(dispatch.callID)", "error": "\(error)",
                ])
                try await Task.sleep(for: .milliseconds(250 << attempt))
            }
        }
    }

    /// Throws `notHeld` when the message may no longer be answered here.
    static func checkHeld(_ inbound: StoredInbound, holder: String?, tx: any StoreTransaction) throws {
        if let holder, try !tx.holdsLease(WorkSharing.inboxLease(inbound.message.conversation), holder: holder) {
            throw ToolSessionError.notHeld
        }
        guard try tx.isInboundPending(inbound.id) else { throw ToolSessionError.notHeld }
    }

    private func decideLocally(_ inbound: StoredInbound) async -> Action {
        let text = inbound.message.text
        // The engine's own continuation of a confirmed plan: straight back to its planner.
        if inbound.message.continuing != nil { return await plan(inbound.message, of: inbound, resuming: true) }
        if let gesture = inbound.message.gesture {
            return .confirmation(gesture == .approve ? .yes(number: nil) : .no(number: nil))
        }
        if let unreadable = inbound.message.unreadable {
            return inbound.message.addressed ? .reply(Replies.unreadable(unreadable)) : .ignore
        }
        switch MessageCheck.check(text, maxBytes: configuration.maxMessageBytes) {
        case .refuse(let reason):
            return inbound.message.addressed ? .reply(reason) : .ignore
        case .ok(let clean):
            if let reply = ConfirmationReply.parse(clean, keywords: configuration.keywords) {
                return .confirmation(reply)
            }
            // Not addressed to us and not an answer: someone talking to someone else.
            guard inbound.message.addressed else { return .ignore }
            var message = inbound.message
            message.text = clean
            return await plan(message, of: inbound, resuming: false)
        }
    }

    /// Hands a message to the planner, with a session for its tool calls.
    private func plan(_ message: InboundMessage, of inbound: StoredInbound, resuming: Bool) async -> Action {
        do {
            let session = GateSession(
                store: store, gate: gate, inbound: inbound, clock: clock, holder: sharing?.instance
            ) { [outboxSignal, reminderSignal] events in
                Self.count(events)
                if events.contains(where: { $0.status == .executed }) { outboxSignal.signal() }
                if let reminderSignal, events.contains(where: { $0.category == "reminders" && $0.status == .executed }) {
                    reminderSignal.signal()
                }
            }
            if resuming {
                guard let plan = try await planner.resume(message, session: session) else { return .ignore }
                return .plan(plan)
            }
            return .plan(try await planner.plan(message, session: session))
        } catch ToolSessionError.notHeld {
            logger.notice("conversation taken over while planning; leaving the message to its holder", metadata: [
                "correlation.id": "\(CorrelationID(inbox: inbound.id))",
            ])
            return .skip
        } catch is CancellationError {
            // Shutting down: the message stays pending and is planned again after the restart.
            return .skip
        } catch let error as StoreError where error.isTransient {
            // The database is in trouble, not the request: try the message again later
            // (calls it already made are found by id, not run twice).
            logger.warning("planning hit a transient database error; the message waits", metadata: [
                "correlation.id": "\(CorrelationID(inbox: inbound.id))", "error": "\(error)",
            ])
            return .skip
        } catch {
            logger.error("planner failed", metadata: ["correlation.id": "\(CorrelationID(inbox: inbound.id))", "error": "\(error)"])
            return .reply("I couldn't work out what to do with that just now. (ref \(CorrelationID(inbox: inbound.id)))")
        }
    }

    private static func apply(
        _ item: Work, gate: ToolGate, planner: any Planner, escalation: [EscalationContact], now: Date, tx: any StoreTransaction, logger: Logger
    ) throws -> (ToolGate.Result?, [GateEvent]) {
        let message = item.inbound.message
        // A channel identity the person linked ("link my email …") acts as that person.
        let person = try tx.linkedPerson(for: message.sender.id) ?? message.sender.id
        let request = ToolGate.Request(
            person: person,
            conversation: message.conversation,
            inboxID: item.inbound.id,
            correlationID: CorrelationID(inbox: item.inbound.id),
            senderAuthenticated: message.trust.senderAuthenticated,
            tainted: message.trust.containsUntrustedContent,
            now: now
        )
        do {
            let result = try tx.savepoint { () -> ToolGate.Result? in
                switch item.action {
                case .ignore, .skip, .handled:
                    return nil
                case .reply(let text):
                    return ToolGate.Result(text, status: nil)
                case .confirmation(let reply):
                    return try answerConfirmation(reply, message: message, request: request, gate: gate, planner: planner, tx: tx)
                case .plan(.call(let tool, let arguments)):
                    return try gate.propose(tool: tool, arguments: arguments, index: 0, request: request, in: tx)
                case .plan(.undo(let count)):
                    return try gate.undo(count: count, request: request, in: tx)
                case .plan(.history):
                    let history = try Replies.history(of: request.person, now: now, registry: gate.registry, tx: tx)
                    let short = ToolGate.wantsShortAnswers(try tx.preferences(of: request.person))
                    return ToolGate.Result(short ? ToolGate.shorten(history) : history, status: nil)
                case .plan(.help):
                    return ToolGate.Result(Replies.help(gate.registry), status: nil)
                case .plan(.reply(let text)):
                    return ToolGate.Result(text, status: nil)
                case .plan(.answer(let text, let kind)):
                    return ToolGate.Result(text, kind: kind, status: nil)
                case .plan(.escalate(let reply, let reason)):
                    try Self.escalate(message, inboxID: item.inbound.id, reason: reason, to: escalation, now: now, tx: tx, logger: logger)
                    return ToolGate.Result(reply, status: nil)
                case .plan(.notUnderstood):
                    return ToolGate.Result(Replies.notUnderstood, status: nil)
                }
            }
            if result?.dispatch != nil {
                // Remote calls run while deciding, never inside the batch's transaction.
                throw RemoteCallInBatch(tool: result?.dispatch?.toolName ?? "?")
            }
            return (result, request.events.all)
        } catch let error as StoreError where error.isTransient {
            // The database itself is in trouble (locked, disk full): answering would fail too.
            // Abort the batch; it is retried with backoff and nothing is marked done.
            throw error
        } catch {
            logger.error(
                "message failed; answered with an apology",
                metadata: ["correlation.id": "\(request.correlationID)", "error": "\(error)"]
            )
            // The savepoint rolled back whatever the gate recorded.
            return (ToolGate.Result(
                "Sorry, something went wrong on my side and nothing was changed. (ref \(request.correlationID))",
                status: nil
            ), [])
        }
    }

    /// Asks the operator to look at a conversation: a notice to each escalation contact, in the
    /// transaction that answers the person, naming the conversation and the correlation id
    /// (never the person's whole message: the operator opens the conversation for that).
    private static func escalate(
        _ message: InboundMessage, inboxID: InboxID, reason: String, to contacts: [EscalationContact], now: Date,
        tx: any StoreTransaction, logger: Logger
    ) throws {
        let correlation = CorrelationID(inbox: inboxID)
        guard !contacts.isEmpty else {
            logger.error("a planner escalated but no escalation contact is configured", metadata: ["correlation.id": "\(correlation)"])
            return
        }
        let preview = message.text.count > 200 ? String(message.text.prefix(200)) + "…" : message.text
        let text = """
            Switchboard needs a human: \(reason)
            Person: \(message.sender.id)
            Conversation: \(message.conversation.channel):\(message.conversation.conversation) (message \(message.externalID))
            Reference: \(correlation)
            They wrote: \(preview)
            """
        for (index, contact) in contacts.enumerated() {
            _ = try tx.enqueueOutbound(OutboundDraft(
                deliveryKey: "escalate-\(inboxID.rawValue)-\(index)", conversation: contact.conversation, recipient: contact.recipient, text: text,
                inReplyTo: nil, thread: nil, kind: .notice, correlationID: correlation,
                subject: "Switchboard: a person needs help"
            ), at: now)
        }
        logger.warning("escalated to a human", metadata: ["correlation.id": "\(correlation)", "reason": "\(reason)"])
        Counter(label: "switchboard_escalations_total").increment()
    }

    /// Counts the gate's committed state changes: tool calls by tool, risk and outcome;
    /// confirmations by outcome; rate-limit hits by category.
    static func count(_ events: [GateEvent]) {
        for event in events where event.status != .proposed {
            Counter(label: "switchboard_tool_calls_total", dimensions: [
                ("tool", event.tool), ("risk", event.risk.description), ("outcome", event.status.rawValue),
            ]).increment()
            switch event.status {
            case .awaitingConfirmation:
                Counter(label: "switchboard_confirmations_total", dimensions: [("outcome", "requested")]).increment()
            case .confirmed, .declined, .expired:
                Counter(label: "switchboard_confirmations_total", dimensions: [("outcome", event.status.rawValue)]).increment()
            case .rateLimited:
                Counter(label: "switchboard_rate_limit_hits_total", dimensions: [("category", event.category)]).increment()
            default:
                break
            }
        }
    }

    /// Queues the answer to an inbound message, under it (or under what its gesture points at).
    static func enqueueReply(_ text: String, kind: OutboundKind, to inbound: StoredInbound, now: Date, tx: any StoreTransaction) throws {
        let placement = try Self.replyPlacement(for: inbound.message, tx: tx)
        _ = try tx.enqueueOutbound(OutboundDraft(
            deliveryKey: "reply-\(inbound.id.rawValue)",
            conversation: inbound.message.conversation,
            recipient: inbound.message.sender.id,
            text: text,
            inReplyTo: placement.inReplyTo,
            thread: placement.thread,
            kind: kind,
            correlationID: CorrelationID(inbox: inbound.id),
            traceContext: TraceCarrier.capture()
        ), at: now)
    }

    /// What a message points at, when that is a confirmation request we sent or a request
    /// someone made: the correlation id its confirmation (if any) was made under. A pointer at
    /// any other message (an ordinary reply) says nothing about which request is meant.
    private static func requestTarget(of externalID: String, channel: ChannelID, tx: any StoreTransaction) throws -> CorrelationID? {
        if let sent = try tx.outbound(channel: channel, externalID: externalID) {
            return sent.kind == .confirmationRequest ? sent.correlationID : nil
        }
        return try tx.inboxID(channel: channel, externalID: externalID).map { CorrelationID(inbox: $0) }
    }

    /// Where the answer to a message goes: under the message itself, or for a gesture (a
    /// reaction, a withdrawn request), under what the gesture points at, in that one's thread.
    private static func replyPlacement(for message: InboundMessage, tx: any StoreTransaction) throws -> (inReplyTo: String?, thread: String?) {
        if message.continuing != nil { return (message.replyTo, message.thread) }
        guard message.gesture != nil, let target = message.replyTo else { return (message.externalID, message.thread) }
        if let sent = try tx.outbound(channel: message.channel, externalID: target) {
            return (target, sent.thread)
        }
        return (target, message.thread)
    }

    private static func answerConfirmation(
        _ reply: ConfirmationReply,
        message: InboundMessage,
        request: ToolGate.Request,
        gate: ToolGate,
        planner: any Planner,
        tx: any StoreTransaction
    ) throws -> ToolGate.Result? {
        // An answer counts only for requests asked before it was said: an old "yes" that reaches
        // the engine late (a channel catching up on history) never confirms a newer request.
        // A few seconds of slack cover clocks that differ between the channel and this host.
        var pending = try tx.pendingConfirmations(in: request.conversation)
            .filter { $0.createdAt.addingTimeInterval(-5) <= message.receivedAt }
        // A reply to (or reaction on) one confirmation request, or on the request that asked
        // for it, answers that request and no other. A gesture that points at nothing pending
        // is ignored.
        let silent = !message.addressed || message.gesture != nil
        if let target = message.replyTo, let correlation = try requestTarget(of: target, channel: message.channel, tx: tx) {
            pending = pending.filter { $0.correlationID == correlation }
            if pending.isEmpty {
                return silent ? nil : ToolGate.Result("That request isn't waiting any more (it was answered, cancelled or expired). Nothing was done.", status: nil)
            }
        } else if message.gesture != nil {
            pending = []
        }
        if silent && pending.isEmpty { return nil }
        let mine = pending.filter { $0.requester == request.person }
        // Only an authenticated message can answer: a forged "yes" from someone posing as the
        // requester (an email with a spoofed From) must not run anything.
        guard request.senderAuthenticated else {
            return ToolGate.Result(
                mine.isEmpty
                    ? "There's nothing waiting for your confirmation."
                    : "I can't accept a confirmation from an unverified message. Nothing was done.",
                status: nil
            )
        }
        // Third-party text (a forwarded mail, content an integration marks untrusted) is not
        // the requester's answer, whatever it says: a "yes" in it confirms nothing.
        guard !message.trust.containsUntrustedContent || mine.isEmpty else {
            return ToolGate.Result(
                "That message carries someone else's text, so I can't take it as your answer. Nothing was done; to confirm, reply yes yourself.",
                status: nil
            )
        }
        // The channel's policy: here, a device its owner has not verified cannot confirm.
        guard message.trust.mayConfirm || mine.isEmpty else {
            return ToolGate.Result(
                "I can't accept a confirmation from a device you haven't verified, not in this room. Verify this device from one of your other sessions, or answer from a verified one. Nothing was done.",
                status: nil
            )
        }
        switch reply.select(from: mine, number: \.number) {
        case .one(let confirmation):
            guard reply.confirms else { return try gate.decline(confirmation, request: request, in: tx) }
            var result = try gate.confirm(confirmation, request: request, in: tx)
            // The plan that asked goes on: a local call's result is known now; a remote one's
            // once it has been performed (`runRemotely` adds the continuation then).
            if try planner.continues(after: confirmation, in: tx) {
                let continuation = try Self.continuation(of: confirmation, answer: message, now: request.now, tx: tx)
                if result.dispatch != nil {
                    result.continuation = continuation
                } else if result.status == .executed {
                    try Self.enqueueContinuation(continuation, result: result.text, tx: tx)
                }
            }
            return result
        case .none:
            if let other = pending.first {
                // Someone else's request: nothing runs, and the attempt is on the record.
                try gate.ignoreAnswer(other, confirms: reply.confirms, request: request, in: tx)
                if silent { return nil }
                return ToolGate.Result(
                    "Only \(other.requester) can answer that request; there's nothing waiting for your confirmation.",
                    status: nil
                )
            }
            return ToolGate.Result("There's nothing waiting for your confirmation.", status: nil)
        case .ambiguous(let count):
            var text = "You have \(count) requests waiting:"
            for confirmation in mine {
                text += "\n\(confirmation.number). \(confirmation.preview.firstLine)"
            }
            text += "\nReply \"yes N\" or \"no N\" to pick one."
            return ToolGate.Result(text, status: nil)
        case .noSuchNumber(let number, let count):
            return ToolGate.Result(
                count == 0
                    ? "There's nothing waiting for your confirmation."
                    : "There's no request \(number); yours are numbered \(mine.map { String($0.number) }.joined(separator: ", ")).",
                status: nil
            )
        }
    }

    /// The engine's own inbox row that takes a confirmed call's result back to the planner,
    /// answered where the answer to the "yes" went. Its id is the call's, so it is added once.
    static func continuation(of confirmation: PendingConfirmation, answer: InboundMessage, now: Date, tx: any StoreTransaction) throws -> InboundMessage {
        let placement = try replyPlacement(for: answer, tx: tx)
        return InboundMessage(
            externalID: "continue-\(confirmation.callID.rawValue)", conversation: confirmation.conversation, sender: answer.sender, text: "",
            replyTo: placement.inReplyTo, thread: placement.thread,
            trust: TrustFacts(senderAuthenticated: answer.trust.senderAuthenticated, containsUntrustedContent: confirmation.tainted),
            receivedAt: now, addressed: false, continuing: confirmation.callID
        )
    }

    static func enqueueContinuation(_ continuation: InboundMessage, result: String, tx: any StoreTransaction) throws {
        var message = continuation
        message.text = result
        _ = try tx.insertInbound(message)
    }

    /// Expires overdue confirmations and tells their requesters.
    public func expireConfirmations() async throws {
        let now = clock.now()
        // Look before taking the write lock: almost always there is nothing to expire.
        let due = try await store.read { try !$0.expiredConfirmations(now: now, limit: 1).isEmpty }
        guard due else { return }
        let gate = self.gate
        let events = GateEvents()
        let expired = try await store.write { tx -> Int in
            events.clear()
            let overdue = try tx.expiredConfirmations(now: now, limit: 100)
            for pending in overdue {
                guard let notice = try gate.expire(pending, now: now, events: events, in: tx) else { continue }
                _ = try tx.enqueueOutbound(OutboundDraft(
                    deliveryKey: "expired-\(pending.callID.rawValue)",
                    conversation: pending.conversation,
                    recipient: pending.requester,
                    text: notice,
                    inReplyTo: nil,
                    thread: nil,
                    kind: .notice,
                    correlationID: pending.correlationID
                ), at: now)
            }
            return overdue.count
        }
        Self.count(events.all)
        if expired > 0 { outboxSignal.signal() }
    }

    /// What an operator's answer to a confirmation did.
    public enum OperatorAnswer: Sendable {
        /// No confirmation has that id.
        case notFound
        /// It was decided already (or expired).
        case alreadyDecided(ConfirmationOutcome)
        /// Policy keeps operators from answering this way.
        case forbidden(String)
        /// Done: how it ended and what the requester was told.
        case done(ConfirmationOutcome, reply: String)
    }

    static func operatorNotice(_ outcome: ConfirmationOutcome, pending: PendingConfirmation, result: String) -> String {
        switch outcome {
        case .confirmed: "An operator approved your request: \(pending.preview.firstLine)\n\(result)"
        case .declined: "An operator declined your request, so nothing was done: \(pending.preview.firstLine)"
        case .expired: result
        }
    }

    static func enqueueOperatorNotice(_ text: String, pending: PendingConfirmation, now: Date, tx: any StoreTransaction) throws {
        _ = try tx.enqueueOutbound(OutboundDraft(
            deliveryKey: "operator-\(pending.callID.rawValue)",
            conversation: pending.conversation,
            recipient: pending.requester,
            text: text,
            inReplyTo: nil,
            thread: nil,
            kind: .notice,
            correlationID: pending.correlationID
        ), at: now)
    }

    /// Approves or declines a pending confirmation for its requester, where policy allows, through
    /// the gate: audited under the operator's name, and the requester is told in their conversation.
    public func answerForRequester(_ callID: ToolCallID, approve: Bool, operatorID: String, operatorName: String) async throws -> OperatorAnswer {
        let now = clock.now()
        let gate = self.gate
        let configuration = self.configuration
        let events = GateEvents()
        let (decided, remote) = try await store.write { tx -> (OperatorAnswer, (RemoteDispatch, PendingConfirmation)?) in
            events.clear()
            guard let record = try tx.confirmationRecord(callID) else { return (.notFound, nil) }
            if let outcome = record.outcome { return (.alreadyDecided(outcome), nil) }
            if approve && !configuration.operatorMayApprove {
                return (.forbidden("Only the requester can approve this; confirmations.operator_may_approve is off."), nil)
            }
            if !approve && !configuration.operatorMayDecline {
                return (.forbidden("Only the requester can decline this; confirmations.operator_may_decline is off."), nil)
            }
            let pending = record.confirmation
            let person = PersonID("operator:\(operatorID)")
            let summary = "\(approve ? "approved" : "declined") by operator \(operatorName) for \(pending.requester)"
            let result = approve
                ? try gate.confirm(pending, by: person, summary: summary, correlationID: pending.correlationID, now: now, events: events, in: tx)
                : try gate.decline(pending, by: person, summary: summary, correlationID: pending.correlationID, now: now, events: events, in: tx)
            // What happened, not what was asked: an approval of a tool that is gone is a decline.
            let outcome: ConfirmationOutcome
            switch result.status {
            case .expired: outcome = .expired
            case .declined: outcome = .declined
            default: outcome = approve ? .confirmed : .declined
            }
            if let dispatch = result.dispatch {
                // A remote tool: told once its call has come back, below.
                return (.done(.confirmed, reply: ""), (dispatch, pending))
            }
            let text = Self.operatorNotice(outcome, pending: pending, result: result.text)
            try Self.enqueueOperatorNotice(text, pending: pending, now: now, tx: tx)
            return (.done(outcome, reply: text), nil)
        }
        Self.count(events.all)
        var answer = decided
        if let (dispatch, pending) = remote {
            let performed = await gate.perform(dispatch)
            let reply = Locked("")
            let completed = try await recordOutcome(dispatch, performed) { result, done, tx in
                let text = Self.operatorNotice(.confirmed, pending: pending, result: result.text)
                try Self.enqueueOperatorNotice(text, pending: pending, now: done, tx: tx)
                reply.withLock { $0 = text }
            }
            Self.count(completed)
            answer = .done(.confirmed, reply: reply.withLock { $0 })
        }
        if case .done = answer { outboxSignal.signal() }
        let summary: String
        switch answer {
        case .notFound: summary = "not_found"
        case .alreadyDecided(let outcome): summary = "already_\(outcome.rawValue)"
        case .forbidden: summary = "forbidden"
        case .done(let outcome, _): summary = outcome.rawValue
        }
        logger.notice("operator answered a confirmation", metadata: [
            "tool.call_id": "\(callID)", "operator": "\(operatorName)", "approve": "\(approve)", "outcome": "\(summary)",
        ])
        return answer
    }
}
