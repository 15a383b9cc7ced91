// Retry with exponential backoff and full jitter, shared by every outside dependency.
//
// After the nth failure, wait a random time between 0 and min(cap, base · 2^(n-1)) ("full
// jitter"), but never less than what the far end asked for (Retry-After, retry_after_ms).
// A transient failure is retried for as long as it takes (when a channel is down the outbox
// waits); only a permanent failure gives up, and that is the caller's decision. Pure: the
// random draw is a parameter.

/// When to try again.
public struct RetryPolicy: Hashable, Sendable {
    /// The first backoff ceiling, in seconds.
    public var base: Double
    /// The largest backoff ceiling, in seconds.
    public var cap: Double
    /// After this many failures in a row, each further failure is worth an operator's attention.
    public var alertAfter: Int

    /// Creates a policy.
    public init(base: Double = 0.5, cap: Double = 300, alertAfter: Int = 10) {
        self.base = base
        self.cap = cap
        self.alertAfter = alertAfter
    }

    /// The delay before the next attempt after `failures` failures.
    ///
    /// - Parameters:
    ///   - failures: failed attempts so far, including the one just made (from 1).
    ///   - retryAfter: what the far end asked for, in seconds.
    ///   - jitter: a random number in 0...1.
    public func delay(afterFailures failures: Int, retryAfter: Double?, jitter: Double) -> Double {
        let exponent = Double(max(0, failures - 1))
        let ceiling = min(cap, base * pow2(exponent))
        let drawn = ceiling * min(1, max(0, jitter))
        return max(drawn, retryAfter ?? 0)
    }

    private func pow2(_ exponent: Double) -> Double {
        exponent > 60 ? .greatestFiniteMagnitude : Double(1 << Int(exponent))
    }
}
