
/// A wake-up call between pipeline stages: the inbox writer tells the engine there is work,
/// the engine tells the outbox dispatcher there are replies.
///
/// One task waits on a signal at a time. Signals coalesce: any number of `signal()` calls before a `wait()` wake it once. Waiting
/// never replaces polling the store, which stays the source of truth (other processes may
/// write to it); a signal only makes the next look happen sooner.
public final class WorkSignal: Sendable {
    private struct State {
        var pending = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Locked(State())

    /// Creates a signal.
    public init() {}

    /// Wakes the waiter, or the next one to wait.
    public func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.waiters.isEmpty {
                state.pending = true
                return []
            }
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns at once if signalled since the last wait, else when signalled or cancelled.
    ///
    /// Callers bound the wait with their own timeout (see `wait(timeout:)`) so a missed
    /// signal from another process costs at most one poll interval.
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Checked under the lock, so a cancellation either is seen here or finds the
                // continuation parked and releases it: never a waiter left behind.
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || Task.isCancelled {
                        state.pending = false
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            releaseWaiters()
        }
    }

    /// Waits for a signal or until `timeout` passes, whichever is first.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func releaseWaiters() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
