// Rate limits: a token bucket per person and tool category.
//
// A bucket holds up to `burst` tokens and refills at `perMinute` tokens a minute. A call takes
// one token or is refused with the time until the next token. The bucket's state is stored
// (so limits hold across restarts and, with PostgreSQL, across instances) and updated in the
// same transaction as the call; the arithmetic here is pure.

public import Foundation
public import SwitchboardStorage

/// A rate: tokens per minute and the bucket's size.
public struct RateLimit: Hashable, Sendable {
    /// Refill rate.
    public var perMinute: Double
    /// Bucket size: how many calls may come at once.
    public var burst: Double

    /// Creates a rate limit.
    public init(perMinute: Double, burst: Double) {
        self.perMinute = perMinute
        self.burst = burst
    }
}

/// The token bucket arithmetic.
public enum TokenBucket {
    /// The outcome of trying to take a token.
    public enum Outcome: Hashable, Sendable {
        /// Allowed; store the new state.
        case allowed(RateBucketState)
        /// Refused; try again after this many seconds.
        case limited(retryAfter: TimeInterval)
    }

    /// Tries to take one token at `now` from a bucket in `state` (nil: a full, new bucket).
    public static func take(_ state: RateBucketState?, limit: RateLimit, now: Date) -> Outcome {
        var tokens = limit.burst
        if let state {
            let elapsed = max(0, now.timeIntervalSince(state.updatedAt))
            tokens = min(limit.burst, state.tokens + elapsed * limit.perMinute / 60)
        }
        if tokens >= 1 {
            return .allowed(RateBucketState(tokens: tokens - 1, updatedAt: now))
        }
        guard limit.perMinute > 0 else { return .limited(retryAfter: .infinity) }
        let wait = (1 - tokens) * 60 / limit.perMinute
        return .limited(retryAfter: wait)
    }
}

/// Rate limits by category, with a default.
public struct RateLimitPolicy: Hashable, Sendable {
    /// Limits by category.
    public var limits: [String: RateLimit]
    /// The limit for categories without their own.
    public var defaultLimit: RateLimit

    /// Creates a policy.
    public init(limits: [String: RateLimit] = [:], defaultLimit: RateLimit = RateLimit(perMinute: 60, burst: 20)) {
        self.limits = limits
        self.defaultLimit = defaultLimit
    }

    /// The limit for a category.
    public func limit(for category: String) -> RateLimit {
        limits[category] ?? defaultLimit
    }
}
