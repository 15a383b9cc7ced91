// Delivery: outbox → channel adapters, in order per conversation, with retries.
//
// The dispatcher takes due messages in order (never past a conversation's message that waits
// for a retry, and never past one that failed in the same round), hands each to its channel's
// adapter (conversations side by side, up to `concurrency` at once; within a conversation one
// at a time, in order), and records the outcome: delivered, retry later (the shared
// RetryPolicy, honouring the far end's Retry-After, for as long as the failure is transient),
// or given up when the far end refuses it for good. A crash between a delivery
// and its record means the message is delivered again after restart; adapters make that
// harmless with the delivery key (Matrix txnId, email Message-ID).
//
// With several instances on one database, a conversation's delivery is leased (`outbox:<key>`)
// before it starts and given up when its outcome is recorded: one instance at a time delivers a
// conversation, in order. A holder that dies leaves the lease to lapse; another instance then
// delivers what was not recorded (again, harmlessly, as after a crash).

import Foundation
public import Logging
import Metrics
public import ServiceLifecycle
public import SwitchboardModel
public import SwitchboardStorage
import SwitchboardTracing
import Tracing

/// Delivers outbox messages through channel adapters.
public final class OutboxDispatcher: Service, Sendable {
    private let store: any Store
    private let adapters: [ChannelID: any ChannelAdapter]
    private let retry: RetryPolicy
    private let clock: any WallClock
    private let signal: WorkSignal
    private let pollInterval: Duration
    private let batchSize: Int
    private let concurrency: Int
    private let logger: Logger
    private let crashPoint: (@Sendable (String) -> Void)?
    private let sharing: WorkSharing?

    /// Creates a dispatcher for these adapters.
    public init(
        store: any Store,
        adapters: [any ChannelAdapter],
        retry: RetryPolicy = RetryPolicy(),
        clock: any WallClock,
        signal: WorkSignal,
        pollInterval: Duration = .milliseconds(500),
        batchSize: Int = 256,
        concurrency: Int = 16,
        logger: Logger,
        crashPoint: (@Sendable (String) -> Void)? = nil,
        sharing: WorkSharing? = nil
    ) {
        self.sharing = sharing
        self.store = store
        self.adapters = Dictionary(adapters.map { ($0.channel, $0) }, uniquingKeysWith: { first, _ in first })
        self.retry = retry
        self.clock = clock
        self.signal = signal
        self.pollInterval = pollInterval
        self.batchSize = batchSize
        self.concurrency = max(1, concurrency)
        self.logger = logger
        self.crashPoint = crashPoint
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.pump()
        } onGracefulShutdown: {
            self.signal.signal()
        }
    }

    private enum PumpEvent: Sendable {
        case finished
        case wake
    }

    /// The running dispatcher: each conversation's delivery is its own task, and a
    /// conversation whose delivery finishes is recorded and looked at again at once, without
    /// waiting for the others. A slow far end (an SMTP server taking seconds) then holds back
    /// only its own conversations.
    private func pump() async {
        let channels = Array(adapters.keys)
        // Finished conversations, collected as they finish: when the loop wakes it records all
        // of them in one transaction, not one transaction each.
        let finished = FinishedDeliveries()
        await withTaskGroup(of: PumpEvent.self) { group in
            var inFlight = Set<ConversationKey>()
            var waking = false
            var renewedAt = ContinuousClock.now
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    if inFlight.count < concurrency {
                        let now = clock.now()
                        let limit = batchSize
                        let due = try await dueWork(channels: channels, now: now, limit: limit, inFlight: inFlight)
                        for (conversation, messages) in Self.byConversation(due) where !inFlight.contains(conversation) {
                            guard inFlight.count < concurrency else { break }
                            inFlight.insert(conversation)
                            group.addTask {
                                let outcomes = await self.deliverInOrder(messages)
                                // Right where delivery returns: a crash test killing here must
                                // not race the channel, which may already be taking the next
                                // message in.
                                self.crashPoint?("after_deliver_before_record")
                                finished.add(conversation, outcomes)
                                return .finished
                            }
                        }
                    }
                    if !waking {
                        let wait = inFlight.isEmpty ? try await idleWait() : pollInterval
                        waking = true
                        group.addTask {
                            await self.signal.wait(timeout: wait)
                            return .wake
                        }
                    }
                    if await group.next() == .wake { waking = false }
                    if let sharing, !inFlight.isEmpty, ContinuousClock.now - renewedAt >= .seconds(sharing.lease / 3) {
                        // Deliveries still running keep their conversations' leases, or another
                        // instance would take them over and send the same messages again.
                        renewedAt = .now
                        try await renew(inFlight, sharing: sharing)
                    }
                    let done = finished.take()
                    guard !done.isEmpty else { continue }
                    do {
                        try await record(done.flatMap(\.1), releasing: done.map(\.0))
                    } catch {
                        // Keep the outcomes (and the conversations in flight) for the next try:
                        // recorded late is better than delivered twice or retried too soon.
                        finished.putBack(done)
                        throw error
                    }
                    for (conversation, _) in done { inFlight.remove(conversation) }
                } catch {
                    if Task.isCancelled { break }
                    logger.error("outbox failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            // Shutting down: start nothing new, record what is already on its way.
            while await group.next() != nil {}
            let done = finished.take()
            do {
                try await record(done.flatMap(\.1), releasing: done.map(\.0))
            } catch {
                logger.warning("could not record deliveries at shutdown; they will be sent again", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Due messages grouped by conversation, conversations in the order of their first message.
    private static func byConversation(_ due: [OutboundMessage]) -> [(ConversationKey, [OutboundMessage])] {
        var order: [ConversationKey] = []
        var queues: [ConversationKey: [OutboundMessage]] = [:]
        for message in due {
            if queues[message.conversation] == nil { order.append(message.conversation) }
            queues[message.conversation, default: []].append(message)
        }
        return order.map { ($0, queues[$0] ?? []) }
    }

    /// What is due now and not already on its way: with other instances, only conversations
    /// whose delivery lease this instance takes (looked at again once it holds them, so nothing
    /// another instance recorded meanwhile goes out twice).
    private func dueWork(channels: [ChannelID], now: Date, limit: Int, inFlight: Set<ConversationKey>) async throws -> [OutboundMessage] {
        guard let sharing else {
            return try await store.read { try $0.dueOutbound(channels: channels, now: now, limit: limit) }
        }
        return try await store.write { tx in
            let seen = try tx.dueOutbound(channels: channels, now: now, limit: limit)
            var wanted: [String] = []
            for message in seen where !inFlight.contains(message.conversation) {
                let lease = WorkSharing.outboxLease(message.conversation)
                if !wanted.contains(lease) { wanted.append(lease) }
            }
            let taken = Set(try tx.acquireLeases(wanted, holder: sharing.instance, until: now.addingTimeInterval(sharing.lease), now: now))
            guard !taken.isEmpty else { return [] }
            let due = try tx.dueOutbound(channels: channels, now: now, limit: limit)
                .filter { taken.contains(WorkSharing.outboxLease($0.conversation)) }
            let used = Set(due.map { WorkSharing.outboxLease($0.conversation) })
            try tx.releaseLeases(taken.filter { !used.contains($0) }, holder: sharing.instance)
            return due
        }
    }

    private func renew(_ conversations: Set<ConversationKey>, sharing: WorkSharing) async throws {
        let names = conversations.map(WorkSharing.outboxLease)
        let now = clock.now()
        let kept = try await store.write { tx in
            try tx.acquireLeases(names, holder: sharing.instance, until: now.addingTimeInterval(sharing.lease), now: now)
        }
        if kept.count < names.count {
            logger.warning("lost the delivery lease of conversations still being delivered; another instance may send their messages again", metadata: [
                "conversations": "\(names.count - kept.count)",
            ])
        }
    }

    private func record(_ outcomes: [Outcome], releasing conversations: [ConversationKey] = []) async throws {
        guard !outcomes.isEmpty || (sharing != nil && !conversations.isEmpty) else { return }
        let at = clock.now()
        let sharing = self.sharing
        try await store.write { tx in
            if let sharing {
                try tx.releaseLeases(conversations.map(WorkSharing.outboxLease), holder: sharing.instance)
            }
            for outcome in outcomes {
                switch outcome {
                case .delivered(let id, _, let externalID): try tx.markDelivered(id, at: at, externalID: externalID)
                case .failed(let message, let error, let next):
                    try tx.markDeliveryFailed(message.id, error: error, nextAttempt: next)
                    if next == nil {
                        // Given up for good: the person never got this message, and the trail says so
                        // (once: recording the same outcome again, after a commit whose answer was
                        // lost, must not stop every later record).
                        do {
                            try tx.savepoint { _ = try tx.appendAudit(Self.givenUp(message, error: error, at: at)) }
                        } catch let error as StoreError where error.code == .constraint {
                            continue
                        }
                    }
                }
            }
        }
        var sent: [ChannelID: Int] = [:]
        var failed: [ChannelID: Int] = [:]
        for outcome in outcomes {
            switch outcome {
            case .delivered(_, let channel, _): sent[channel, default: 0] += 1
            case .failed(let message, _, _): failed[message.conversation.channel, default: 0] += 1
            }
        }
        for (channel, count) in sent {
            Counter(label: "switchboard_messages_sent_total", dimensions: [("channel", channel.rawValue)]).increment(by: count)
        }
        for (channel, count) in failed {
            Counter(label: "switchboard_delivery_failures_total", dimensions: [("channel", channel.rawValue)]).increment(by: count)
        }
    }

    private func idleWait() async throws -> Duration {
        let channels = Array(adapters.keys)
        guard let next = try await store.read({ try $0.nextOutboundAttempt(channels: channels) }) else { return pollInterval }
        let seconds = next.timeIntervalSince(clock.now())
        if seconds <= 0 { return .milliseconds(1) }
        return min(pollInterval, .milliseconds(Int64(seconds * 1000) + 1))
    }

    /// Delivers what is due now. Returns how many deliveries were attempted.
    @discardableResult
    public func deliverDue() async throws -> Int {
        let channels = Array(adapters.keys)
        let now = clock.now()
        let limit = batchSize
        let due = try await dueWork(channels: channels, now: now, limit: limit, inFlight: [])
        guard !due.isEmpty else { return 0 }

        // Conversations are delivered side by side, each in order; one round, all recorded
        // together (the running dispatcher, `run`, does not wait for a round).
        let queues = Self.byConversation(due.filter { adapters[$0.conversation.channel] != nil })
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(due.count)
        let concurrency = self.concurrency
        await withTaskGroup(of: [Outcome].self) { group in
            var next = 0
            var running = 0
            while next < queues.count || running > 0 {
                while running < concurrency, next < queues.count {
                    let messages = queues[next].1
                    next += 1
                    running += 1
                    group.addTask { await self.deliverInOrder(messages) }
                }
                if let finished = await group.next() {
                    running -= 1
                    outcomes.append(contentsOf: finished)
                }
            }
        }
        crashPoint?("after_deliver_before_record")
        try await record(outcomes, releasing: Array(Set(due.map(\.conversation))))
        return due.count
    }

    /// Deliveries finished but not yet recorded, shared by the pump's tasks.
    private final class FinishedDeliveries: Sendable {
        private let items = Locked<[(ConversationKey, [Outcome])]>([])

        func add(_ conversation: ConversationKey, _ outcomes: [Outcome]) {
            items.withLock { $0.append((conversation, outcomes)) }
        }

        func putBack(_ done: [(ConversationKey, [Outcome])]) {
            items.withLock { $0.insert(contentsOf: done, at: 0) }
        }

        func take() -> [(ConversationKey, [Outcome])] {
            items.withLock { items in
                defer { items = [] }
                return items
            }
        }
    }

    private enum Outcome: Sendable {
        case delivered(OutboxID, ChannelID, String?)
        /// The message, what went wrong, and when to try again (nil: never).
        case failed(OutboundMessage, String, Date?)
    }

    /// The audit entry for a message the dispatcher gave up on.
    static func givenUp(_ message: OutboundMessage, error: String, at: Date) -> AuditEntry {
        AuditEntry(
            at: at,
            callID: ToolCallID("delivery-\(message.id.rawValue)"),
            person: message.recipient ?? PersonID("switchboard"),
            conversation: message.conversation,
            tool: "outbox.deliver",
            risk: .low,
            status: .failed,
            arguments: [
                "outbox_id": .int(message.id.rawValue), "kind": .string(message.kind.rawValue),
                "attempts": .int(Int64(message.attempts + 1)),
            ],
            summary: "gave up delivering a \(message.kind.rawValue) over \(message.conversation.channel) after \(message.attempts + 1) attempt(s): \(error)",
            correlationID: message.correlationID
        )
    }

    /// Delivers one conversation's due messages in order, stopping at the first failure (and
    /// when the gateway is shutting down: what is left waits in the outbox).
    private func deliverInOrder(_ messages: [OutboundMessage]) async -> [Outcome] {
        var outcomes: [Outcome] = []
        for message in messages {
            guard let adapter = adapters[message.conversation.channel], !Task.isShuttingDownGracefully else { break }
            do {
                let receipt = try await withTracedSpan(
                    "deliver \(message.conversation.channel)", context: TraceCarrier.restore(message.traceContext), ofKind: .producer
                ) { span in
                    span?.attributes["switchboard.correlation_id"] = message.correlationID?.rawValue
                    span?.attributes["switchboard.outbox.id"] = Int(message.id.rawValue)
                    span?.attributes["switchboard.delivery.attempt"] = message.attempts + 1
                    return try await adapter.deliver(message)
                }
                if logger.logLevel <= .debug {
                    logger.debug("delivered", metadata: [
                        "correlation.id": "\(message.correlationID?.rawValue ?? "-")", "outbox.id": "\(message.id)",
                        "channel": "\(message.conversation.channel)", "message.kind": "\(message.kind.rawValue)",
                    ])
                }
                let outcome = Outcome.delivered(message.id, message.conversation.channel, receipt.externalID)
                // A confirmation request is recorded at once: a 👍 on it can arrive before the
                // rest of the conversation's queue is delivered, and must find it by its id.
                if message.kind == .confirmationRequest, receipt.externalID != nil, (try? await record([outcome])) != nil {
                    continue
                }
                outcomes.append(outcome)
            } catch is CancellationError {
                // Shutting down before this one started: not a failed attempt, it simply waits.
                break
            } catch {
                let channelError = error as? ChannelError
                let failures = message.attempts + 1
                let transient = channelError?.isTransient ?? true
                let delay: Double? = transient
                    ? retry.delay(afterFailures: failures, retryAfter: channelError?.retryAfter, jitter: Double.random(in: 0...1))
                    : nil
                let next = delay.map { clock.now().addingTimeInterval($0) }
                let summary = channelError?.description ?? String(describing: type(of: error))
                var metadata: Logger.Metadata = [
                    "outbox.id": "\(message.id)", "channel": "\(message.conversation.channel)",
                    "attempt": "\(failures)", "error": "\(summary)",
                ]
                if let correlation = message.correlationID { metadata["correlation.id"] = "\(correlation)" }
                if next == nil {
                    logger.error("delivery refused for good; giving up on this message", metadata: metadata)
                } else if failures >= retry.alertAfter {
                    logger.error("delivery still failing; will keep retrying", metadata: metadata)
                } else {
                    logger.warning("delivery failed; will retry", metadata: metadata)
                }
                outcomes.append(.failed(message, summary, next))
                break
            }
        }
        return outcomes
    }
}
