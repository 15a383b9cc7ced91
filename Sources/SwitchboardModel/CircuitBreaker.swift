// A circuit breaker for a dependency that fails in a row (a model provider, an SMTP server):
// after `threshold` failures it is skipped for `cooldown`, so each message does not pay a
// timeout; then one trial call goes through, and its outcome closes or reopens it.

public import Foundation

/// A circuit breaker: after `threshold` failures in a row the provider is skipped for
/// `cooldown`; then one trial call is let through, and its outcome closes or reopens it.
public final class CircuitBreaker: Sendable {
    /// The breaker's state, for metrics.
    public enum State: String, Sendable {
        case closed, open
        case halfOpen = "half_open"
    }

    private struct Inner {
        var failures = 0
        var openedAt: ContinuousClock.Instant?
        var trialInFlight = false
    }

    private let inner = Locked(Inner())
    let threshold: Int
    let cooldown: Duration

    /// Creates a breaker.
    public init(threshold: Int, cooldown: Duration) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Whether a call may go out now; if not, how long until it may.
    public func admit(now: ContinuousClock.Instant = .now) -> TimeInterval? {
        inner.withLock { inner in
            guard let opened = inner.openedAt else { return nil }
            let elapsed = now - opened
            if elapsed < cooldown {
                let left = cooldown - elapsed
                return Double(left.components.seconds) + Double(left.components.attoseconds) / 1e18
            }
            if inner.trialInFlight { return 1 }
            inner.trialInFlight = true
            return nil
        }
    }

    /// Records a success: closes the breaker.
    public func succeeded() {
        inner.withLock { $0 = Inner() }
    }

    /// Records a provider failure: may open the breaker.
    public func failed(now: ContinuousClock.Instant = .now) {
        inner.withLock { inner in
            inner.failures += 1
            inner.trialInFlight = false
            if inner.failures >= threshold || inner.openedAt != nil { inner.openedAt = now }
        }
    }

    /// Gives back a trial call that ended for a reason that says nothing about the provider.
    public func released() {
        inner.withLock { $0.trialInFlight = false }
    }

    /// The current state.
    public var state: State {
        inner.withLock { inner in
            guard let opened = inner.openedAt else { return .closed }
            return ContinuousClock.now - opened < cooldown ? .open : .halfOpen
        }
    }
}
