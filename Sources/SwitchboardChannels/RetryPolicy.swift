// Retry with exponential backoff and full jitter, shared by every outside dependency.
//
// After the nth failure, wait a random time between 0 and min(cap, base · 2^(n-1)) ("full
// jitter"), but never less than what the far end asked for (Retry-After, retry_after_ms).
// After `maxAttempts` failures, give up. Pure: the random draw is a parameter.

/// When to try again.
public struct RetryPolicy: Hashable, Sendable {
    /// The first backoff ceiling, in seconds.
    public var base: Double
    /// The largest backoff ceiling, in seconds.
    public var cap: Double
    /// Give up after this many failed attempts.
    public var maxAttempts: Int

    /// Creates a policy.
    public init(base: Double = 0.5, cap: Double = 300, maxAttempts: Int = 12) {
        self.base = base
        self.cap = cap
        self.maxAttempts = maxAttempts
    }

    /// The delay before the next attempt after `failures` failures, or nil to give up.
    ///
    /// - Parameters:
    ///   - failures: failed attempts so far, including the one just made (from 1).
    ///   - retryAfter: what the far end asked for, in seconds.
    ///   - jitter: a random number in 0...1.
    public func delay(afterFailures failures: Int, retryAfter: Double?, jitter: Double) -> Double? {
        guard failures < maxAttempts else { return nil }
        let exponent = Double(max(0, failures - 1))
        let ceiling = min(cap, base * pow2(exponent))
        let drawn = ceiling * min(1, max(0, jitter))
        return max(drawn, retryAfter ?? 0)
    }

    private func pow2(_ exponent: Double) -> Double {
        exponent > 60 ? .greatestFiniteMagnitude : Double(1 << Int(exponent))
    }
}
