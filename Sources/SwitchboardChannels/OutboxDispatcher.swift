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

import Foundation
public import Logging
public import ServiceLifecycle
public import SwitchboardModel
public import SwitchboardStorage

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
        crashPoint: (@Sendable (String) -> Void)? = nil
    ) {
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
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    let delivered = try await deliverDue()
                    if delivered == 0 {
                        await signal.wait(timeout: try await idleWait())
                    }
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    logger.error("outbox failed; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        } onGracefulShutdown: {
            self.signal.signal()
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
        let due = try await store.read { try $0.dueOutbound(channels: channels, now: now, limit: limit) }
        guard !due.isEmpty else { return 0 }

        // Conversations are delivered side by side (a slow far end then costs one round trip
        // per conversation, not per message); within one, in order, and a conversation whose
        // message fails in this round gets no later message in it.
        var order: [ConversationKey] = []
        var queues: [ConversationKey: [OutboundMessage]] = [:]
        for message in due where adapters[message.conversation.channel] != nil {
            if queues[message.conversation] == nil { order.append(message.conversation) }
            queues[message.conversation, default: []].append(message)
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(due.count)
        let concurrency = self.concurrency
        await withTaskGroup(of: [Outcome].self) { group in
            var next = 0
            var running = 0
            while next < order.count || running > 0 {
                while running < concurrency, next < order.count {
                    let messages = queues[order[next]] ?? []
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
        let at = clock.now()
        let recorded = outcomes
        try await store.write { tx in
            for outcome in recorded {
                switch outcome {
                case .delivered(let id, let externalID): try tx.markDelivered(id, at: at, externalID: externalID)
                case .failed(let id, let error, let next): try tx.markDeliveryFailed(id, error: error, nextAttempt: next)
                }
            }
        }
        return due.count
    }

    private enum Outcome: Sendable {
        case delivered(OutboxID, String?)
        case failed(OutboxID, String, Date?)
    }

    /// Delivers one conversation's due messages in order, stopping at the first failure.
    private func deliverInOrder(_ messages: [OutboundMessage]) async -> [Outcome] {
        var outcomes: [Outcome] = []
        for message in messages {
            guard let adapter = adapters[message.conversation.channel] else { continue }
            do {
                let receipt = try await adapter.deliver(message)
                outcomes.append(.delivered(message.id, receipt.externalID))
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
                outcomes.append(.failed(message.id, summary, next))
                break
            }
        }
        return outcomes
    }
}
