// Recovery for model calls: retries with exponential backoff and full jitter (honouring
// Retry-After), and a circuit breaker per provider so a dead endpoint is skipped at once
// instead of costing every message a timeout.

public import Foundation
import Synchronization

/// How often and how patiently a model call is retried.
public struct ModelRetryPolicy: Sendable {
    /// Attempts per model, the first included.
    public var attempts: Int = 3
    /// The first backoff's ceiling.
    public var base: TimeInterval = 0.5
    /// No wait is longer than this; a Retry-After beyond it moves on to the next model.
    public var cap: TimeInterval = 8

    /// Creates a policy.
    public init(attempts: Int = 3, base: TimeInterval = 0.5, cap: TimeInterval = 8) {
        self.attempts = attempts
        self.base = base
        self.cap = cap
    }

    /// The wait before retry number `attempt` (1 for the first retry): the provider's
    /// Retry-After if it gave one, else a uniformly random wait up to `base · 2^(attempt-1)`
    /// ("full jitter"), never above `cap`. Nil when the provider asks for more than `cap`.
    public func delay(attempt: Int, retryAfter: TimeInterval?, random: Double = .random(in: 0...1)) -> TimeInterval? {
        if let retryAfter {
            return retryAfter <= cap ? retryAfter : nil
        }
        let ceiling = min(cap, base * pow(2, Double(attempt - 1)))
        return ceiling * random
    }
}

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

    private let inner = Mutex(Inner())
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
