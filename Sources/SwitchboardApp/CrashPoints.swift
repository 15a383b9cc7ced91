#if canImport(Glibc)
import SwitchboardModel
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named crash points for the system tests: `SWITCHBOARD_TEST_CRASH_AT=NAME` (or `NAME:N` for
/// the Nth time the point is reached) makes the process kill itself with SIGKILL there, which
/// is what a power cut or an OOM kill looks like to the store. Unset, it does nothing.
///
/// Points: `after_inbox_commit`, `before_engine_commit`, `after_engine_commit`,
/// `after_deliver_before_record`, `email_after_fetch` (mail fetched, not yet committed), and
/// the engine's `remote_call_dispatched` / `remote_call_performed` around a remote tool call.
final class CrashPoints: Sendable {
    private let target: String
    private let occurrence: Int
    private let counter = Locked(0)

    init?(environment: [String: String]) {
        guard let spec = environment["SWITCHBOARD_TEST_CRASH_AT"], !spec.isEmpty else { return nil }
        let parts = spec.split(separator: ":", maxSplits: 1)
        target = String(parts[0])
        occurrence = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
    }

    func reach(_ name: String) {
        guard name == target else { return }
        let count = counter.withLock { value -> Int in
            value += 1
            return value
        }
        if count == occurrence {
            kill(getpid(), SIGKILL)
        }
    }
}
