// The project's lock around a value. Normally the standard library's `Mutex`. Built with
// `-D SWITCHBOARD_TSAN` (scripts/sanitize.sh thread), a pthread mutex instead: ThreadSanitizer
// on Linux does not see `Mutex` (its futex lock is not instrumented) and reports every access
// made under one as a race, while it intercepts pthreads. One type, so that a sanitizer build
// checks the same code that ships.

import Foundation
import Synchronization

/// A value that is read and changed only under a lock.
public final class Locked<Value>: @unchecked Sendable {  // every access goes through the lock
    #if SWITCHBOARD_TSAN
    private let lock = NSLock()
    private var value: Value
    #else
    private let mutex: Mutex<Value>
    #endif

    /// Guards `value`.
    public init(_ value: sending Value) {
        #if SWITCHBOARD_TSAN
        self.value = value
        #else
        mutex = Mutex(value)
        #endif
    }

    /// Runs `body` with the value, alone. The same contract as `Mutex.withLock`: what goes in
    /// and what comes out is sent across the lock, so no non-Sendable state escapes it.
    public func withLock<Result, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        #if SWITCHBOARD_TSAN
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
        #else
        return try mutex.withLock(body)
        #endif
    }
}
