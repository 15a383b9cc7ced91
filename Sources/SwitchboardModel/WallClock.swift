public import Foundation

/// The source of wall-clock time for expiry, rate limits and timestamps.
///
/// Injected everywhere time matters, so tests move time by hand instead of sleeping.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Date
}

/// The system's wall clock.
public struct SystemWallClock: WallClock {
    /// Creates the system clock.
    public init() {}

    public func now() -> Date { Date() }
}
