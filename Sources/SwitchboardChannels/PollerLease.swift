// One poller per account across instances: a channel that reads from an account (a Matrix
// user's sync, a mailbox) polls only while its instance holds the account's lease. The holder
// renews it every third of its length; the others stand by and try as often. When the holder
// dies, its lease lapses and one of them takes over within a lease's length.

import Foundation
public import Logging
import ServiceLifecycle
public import SwitchboardModel
public import SwitchboardStorage

/// Runs a channel's poller only while this instance holds the lease `name`.
public struct PollerLease: Sendable {
    /// The lease's name (`poller:matrix:@bot:example.org`, say).
    public let name: String
    private let sharing: WorkSharing?
    private let store: any Store
    private let clock: any WallClock
    private let logger: Logger

    /// - Parameter sharing: nil when this instance works alone: the poller then just runs.
    public init(name: String, sharing: WorkSharing?, store: any Store, clock: any WallClock, logger: Logger) {
        self.name = name
        self.sharing = sharing
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    /// Runs `poll` while holding the lease, until it returns (a shutdown) or the task is
    /// cancelled; then gives the lease up, so another instance takes over at once. Losing the
    /// lease cancels `poll`; it starts again when the lease is back.
    public func run(_ poll: @escaping @Sendable () async throws -> Void) async throws {
        guard let sharing else {
            try await poll()
            return
        }
        let renewal = Duration.milliseconds(Int64(sharing.lease * 1000 / 3))
        var standingBy = false
        defer {
            // Not cancelled with this task: the release must reach the database on shutdown.
            let store = self.store
            let name = self.name
            Task { try? await store.write { tx in try tx.releaseLeases([name], holder: sharing.instance) } }
        }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let held: Bool
            do {
                held = try await take(sharing)
            } catch {
                if Task.isCancelled { return }
                logger.warning("could not take the poller's lease; trying again", metadata: ["lease": "\(name)", "error": "\(error)"])
                held = false
            }
            guard held else {
                if !standingBy {
                    logger.info("another instance polls this account; standing by", metadata: ["lease": "\(name)"])
                    standingBy = true
                }
                // A shutdown ends the wait; that is a normal end, not an error.
                try? await Task.sleep(for: renewal)
                continue
            }
            standingBy = false
            logger.notice("polling (this instance holds the lease)", metadata: ["lease": "\(name)", "instance": "\(sharing.instance)"])
            let lost = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await poll()
                    return false
                }
                group.addTask { await self.keepRenewing(sharing, every: renewal) }
                let lost = try await group.next() ?? false
                group.cancelAll()
                return lost
            }
            if !lost { return }
            logger.warning("lost the poller's lease; stopped polling", metadata: ["lease": "\(name)"])
        }
    }

    private func take(_ sharing: WorkSharing) async throws -> Bool {
        let now = clock.now()
        let name = self.name
        return try await store.write { tx in
            try !tx.acquireLeases([name], holder: sharing.instance, until: now.addingTimeInterval(sharing.lease), now: now).isEmpty
        }
    }

    /// Renews until the lease is lost (returns true): taken by another instance, or not
    /// renewed in time because the database could not be reached. Returns false when cancelled.
    private func keepRenewing(_ sharing: WorkSharing, every renewal: Duration) async -> Bool {
        var renewedAt = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: renewal)
            } catch {
                return false
            }
            // The lease runs from before the request, not from its answer.
            let asked = ContinuousClock.now
            do {
                guard try await take(sharing) else { return true }
                renewedAt = asked
            } catch {
                if Task.isCancelled { return false }
                // Keep polling while the lease may still be ours; stop before it can lapse.
                if ContinuousClock.now - renewedAt >= .seconds(sharing.lease) - renewal { return true }
                logger.warning("could not renew the poller's lease", metadata: ["lease": "\(name)", "error": "\(error)"])
            }
        }
        return false
    }
}
