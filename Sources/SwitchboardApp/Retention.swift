// Pruning what no one reads again, so a database that runs for a year does not grow with it:
// per-request and per-thread channel state (cursors by prefix) and decided confirmations, by
// age. The audit trail, messages and tool data are not touched: they are the record.
//
// Every instance runs it; deleting what is already gone changes nothing, so several instances
// on one PostgreSQL need no coordination. Each round deletes in batches, one short
// transaction each, so it never holds the database for long.

public import Foundation
import Logging
import ServiceLifecycle
import SwitchboardStorage

/// What is pruned, and when.
public struct Retention: Sendable, Hashable {
    /// How long unwritten channel state is kept (seconds).
    public var channelState: TimeInterval = 90 * 86400
    /// How long decided confirmations are kept after their decision (seconds).
    public var confirmations: TimeInterval = 90 * 86400
    /// How often a round runs.
    public var interval: Duration = .seconds(3600)

    /// The cursor families that grow with requests and threads. Not the channels' own
    /// positions (`email.cursor`, Matrix's sync token), which are written all the time anyway.
    public static let channelStatePrefixes = ["api.reply_callback.", "api.conversation_callback.", "email.thread.", "terminal.printed."]

    /// Creates a policy.
    public init(channelState: TimeInterval = 90 * 86400, confirmations: TimeInterval = 90 * 86400, interval: Duration = .seconds(3600)) {
        self.channelState = channelState
        self.confirmations = confirmations
        self.interval = interval
    }
}

/// Runs the pruning rounds.
struct RetentionService: Service {
    let store: any Store
    let policy: Retention
    let logger: Logger
    static let batch = 1000

    func run() async throws {
        // Nothing of a round is worth waiting for at shutdown: a cut round is done next time.
        try? await cancelWhenGracefulShutdown {
            // The first round soon after start, then every interval.
            var wait: Duration = .seconds(60)
            while !Task.isCancelled {
                try await Task.sleep(for: min(wait, policy.interval))
                wait = policy.interval
                do {
                    let (cursors, confirmations) = try await prune(now: Date())
                    if cursors + confirmations > 0 {
                        logger.info("pruned old state", metadata: ["cursors": "\(cursors)", "confirmations": "\(confirmations)"])
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("could not prune old state; trying again next round", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// One round: returns how many cursors and confirmations went.
    func prune(now: Date) async throws -> (cursors: Int, confirmations: Int) {
        let stateBefore = now.addingTimeInterval(-policy.channelState)
        let decidedBefore = now.addingTimeInterval(-policy.confirmations)
        var cursors = 0
        var confirmations = 0
        while !Task.isCancelled {
            let removed = try await store.write { try $0.pruneCursors(prefixes: Retention.channelStatePrefixes, before: stateBefore, limit: Self.batch) }
            cursors += removed
            if removed < Self.batch { break }
        }
        while !Task.isCancelled {
            let removed = try await store.write { try $0.pruneConfirmations(decidedBefore: decidedBefore, limit: Self.batch) }
            confirmations += removed
            if removed < Self.batch { break }
        }
        return (cursors, confirmations)
    }
}
