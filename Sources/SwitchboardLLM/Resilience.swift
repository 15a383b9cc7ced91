// Recovery for model calls: retries with exponential backoff and full jitter (honouring
// Retry-After); with the circuit breaker per provider (`CircuitBreaker`, in SwitchboardModel,
// which the email channel uses too) a dead endpoint is skipped at once instead of costing
// every message a timeout.

public import Foundation

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
