// Sends reminders when they fall due. A reminder is a `reminder` record (written by the
// `reminders.add` tool) with the conversation to answer in; firing it marks it `fired` and puts
// the message in the outbox in one transaction, so it is sent once, also across restarts and
// instances. One missed while the gateway was down goes out late, saying so.

public import Foundation
public import Logging
public import ServiceLifecycle
public import SwitchboardModel
public import SwitchboardStorage

/// Fires due reminders into the outbox.
public final class ReminderScheduler: Service, Sendable {
    private let store: any Store
    private let clock: any WallClock
    private let outboxSignal: WorkSignal
    private let wake: WorkSignal
    private let pollInterval: TimeInterval
    private let logger: Logger

    /// A reminder this much past its time is "late" and says so.
    public static let lateAfter: TimeInterval = 120

    /// Creates a scheduler. `wake` is signalled when a reminder may have been added.
    public init(store: any Store, clock: any WallClock, outboxSignal: WorkSignal, wake: WorkSignal, pollInterval: TimeInterval = 5, logger: Logger) {
        self.store = store
        self.clock = clock
        self.outboxSignal = outboxSignal
        self.wake = wake
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        var failures = 0
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    try await fireDue()
                    failures = 0
                    let next = try await store.read { try $0.records.nextDue(kind: "reminder", status: "pending") }
                    let wait = next.map { max(0.05, min(pollInterval, $0.timeIntervalSince(clock.now()))) } ?? pollInterval
                    await wake.wait(timeout: .milliseconds(Int(wait * 1000)))
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    failures += 1
                    let delay = min(30.0, 0.5 * pow(2, Double(min(failures, 6))))
                    logger.error("reminder scheduler failed; retrying", metadata: ["error": "\(error)", "retry.in_s": "\(delay)"])
                    try? await Task.sleep(for: .seconds(delay))
                }
            }
        } onGracefulShutdown: {
            self.wake.signal()
        }
    }

    /// Fires every reminder due now. Returns how many.
    @discardableResult
    public func fireDue() async throws -> Int {
        let now = clock.now()
        let late = Self.lateAfter
        let fired = try await store.write { tx -> [ToolRecord] in
            let due = try tx.records.due(kind: "reminder", status: "pending", now: now, limit: 100)
            for reminder in due {
                guard let channel = reminder.fields["channel"]?.stringValue, let conversation = reminder.fields["conversation"]?.stringValue else {
                    var broken = reminder
                    broken.status = "failed"
                    try tx.records.update(broken)
                    continue
                }
                let preferences = try tx.preferences(of: reminder.owner)
                let name = preferences.first { $0.key == "name" }?.value.stringValue
                var text = "⏰ \(name.map { "\($0), reminder" } ?? "Reminder"): \(reminder.title)"
                if let at = reminder.at, now.timeIntervalSince(at) > late {
                    let zone = preferences.first { $0.key == "timezone" }?.value.stringValue.flatMap(TimeZone.init(identifier:)) ?? .current
                    text += "\n(This is late: it was due \(Replies.time(at, zone: zone)), while I was offline.)"
                }
                _ = try tx.enqueueOutbound(OutboundDraft(
                    deliveryKey: "reminder-\(reminder.id)",
                    conversation: ConversationKey(channel: ChannelID(channel), conversation: ConversationID(conversation)),
                    recipient: reminder.owner, text: text, inReplyTo: nil, thread: nil, kind: .notice, correlationID: nil
                ), at: now)
                var done = reminder
                done.status = "fired"
                done.updatedAt = now
                try tx.records.update(done)
            }
            return due
        }
        if !fired.isEmpty {
            outboxSignal.signal()
            logger.info("reminders fired", metadata: ["count": "\(fired.count)"])
        }
        return fired.count
    }
}
