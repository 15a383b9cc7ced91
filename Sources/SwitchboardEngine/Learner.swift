// The background service that learns: it reads the audit trail after its cursor, in the trail's
// commit order, and folds each record into the evidence of the person it is about. One write
// transaction per batch moves the cursor and the evidence together, so a crash repeats or skips
// nothing. With several instances on one PostgreSQL, the batch also takes the lease `learner`,
// so one instance learns for the deployment and another takes over when it dies.

import Foundation
public import Logging
public import ServiceLifecycle
public import SwitchboardModel
public import SwitchboardStorage

/// Learns from committed history, off the path of any message.
public struct Learner: Service {
    let store: any Store
    let policy: LearningPolicy
    let sharing: WorkSharing?
    let clock: any WallClock
    let logger: Logger
    /// Records read per transaction.
    let batch: Int

    /// The cursor: the sequence number of the last audit record read.
    public static let cursor = "learning.audit"
    /// Tools whose use says nothing about a person's habits.
    static let unlearned = ["preferences.", "approvals.", "learning.", "identity.", "outbox."]

    public init(store: any Store, policy: LearningPolicy, sharing: WorkSharing? = nil, clock: any WallClock, logger: Logger, batch: Int = 500) {
        self.store = store
        self.policy = policy
        self.sharing = sharing
        self.clock = clock
        self.logger = logger
        self.batch = batch
    }

    public func run() async throws {
        // Off: stay until shutdown. A service that returns ends the whole group.
        guard policy.enabled else {
            try? await gracefulShutdown()
            return
        }
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let read = try await catchUp()
                    if read > 0 { logger.debug("learned from history", metadata: ["records": "\(read)"]) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("could not learn from history; trying again", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: policy.interval)
            }
        }
    }

    /// Reads everything new; returns how many records were read.
    @discardableResult
    public func catchUp() async throws -> Int {
        var total = 0
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let read = try await round()
            total += read
            if read < batch { break }
            // Background work: between batches the writer is left to the messages for at least
            // as long as the batch held it, so catching up on a long history (after an upgrade,
            // or a learner that was off) takes at most half of the database's time.
            try await Task.sleep(for: max(.milliseconds(10), ContinuousClock.now - started))
        }
        return total
    }

    /// One batch, in one transaction; returns how many records were read (0 when another
    /// instance holds the lease).
    public func round() async throws -> Int {
        let now = clock.now()
        let policy = self.policy
        let sharing = self.sharing
        let batch = self.batch
        return try await store.write { tx in
            if let sharing {
                let taken = try tx.acquireLeases(["learner"], holder: sharing.instance, until: now.addingTimeInterval(sharing.lease), now: now)
                guard !taken.isEmpty else { return 0 }
            }
            let after = Int64(try tx.cursor(Self.cursor) ?? "0") ?? 0
            let records = try tx.auditRecords(AuditQuery(afterSequence: after, limit: batch))
            guard let last = records.last else { return 0 }
            var people: [PersonID: (profile: LearnedProfile, changed: Set<String>, reset: Date?, zone: TimeZone)] = [:]
            for record in records {
                let entry = record.entry
                if people[entry.person] == nil {
                    let preferences = try tx.preferences(of: entry.person)
                    let profile = LearnedProfile(preferences, policy: policy)
                    let reset = profile.stated[LearnedKey.resetKey]?.stringValue.flatMap(RFC3339.parse)
                    let zone = profile.stated["timezone"]?.stringValue.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
                    people[entry.person] = (profile, [], reset, zone)
                }
                guard var person = people[entry.person], !person.profile.off else { continue }
                // The forgetting call itself, and everything before it, teach nothing.
                if let reset = person.reset, entry.at <= reset { continue }
                for (key, value) in Self.observations(entry, zone: person.zone) {
                    // Kept even when it did not count: a repetition moves the burst window on.
                    var evidence = person.profile.evidence[key] ?? LearnedEvidence()
                    evidence.observe(value, at: entry.at, policy: policy)
                    person.profile.evidence[key] = evidence
                    person.changed.insert(key)
                }
                if let key = Self.confirmationKey(entry) {
                    var evidence = person.profile.evidence[key] ?? LearnedEvidence()
                    evidence.times = evidence.times.filter { entry.at.timeIntervalSince($0) < policy.standingWindow } + [entry.at]
                    person.profile.evidence[key] = evidence
                    person.changed.insert(key)
                }
                people[entry.person] = person
            }
            for (id, person) in people {
                for key in person.changed.sorted() {
                    try tx.setPreference(id, key: LearnedKey.prefix + key, value: person.profile.evidence[key]!.json, at: now)
                }
            }
            try tx.setCursor(Self.cursor, value: String(last.sequence))
            return records.count
        }
    }

    /// What one audit record says about its person's habits.
    static func observations(_ entry: AuditEntry, zone: TimeZone) -> [(String, String)] {
        guard entry.status == .executed || entry.status == .confirmed, !unlearned.contains(where: entry.tool.hasPrefix) else { return [] }
        var found: [(String, String)] = []
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        found.append((LearnedKey.hours, String(calendar.component(.hour, from: entry.at))))
        found.append((LearnedKey.channel, entry.conversation.channel.rawValue))
        guard entry.status == .executed else { return found }
        found.append((LearnedKey.tools, entry.tool))
        // The clock times the person gives, per part of the day: what they mean by "morning".
        // Only times on the quarter hour, the way people say them ("at 7:30"); a time worked out
        // from "in 2 hours", or from a part of the day, says nothing about it.
        let given = entry.tool == "reminders.add" ? "at" : (entry.tool == "calendar.create" ? "start" : nil)
        if let given, entry.arguments["day_part"] == nil, let text = entry.arguments[given]?.stringValue, let time = RFC3339.parse(text) {
            let parts = calendar.dateComponents([.hour, .minute, .second], from: time)
            if let hour = parts.hour, let minute = parts.minute, parts.second == 0, minute % 15 == 0, let part = DayPart.of(hour: hour) {
                found.append((LearnedKey.time(part), DayPart.clock(hour: hour, minute: minute)))
            }
        }
        switch entry.tool {
        case "calendar.create":
            // Only a length the person gave: a default (the tool's or a learned one) teaches nothing.
            if let minutes = entry.arguments["duration_minutes"]?.intValue, entry.arguments["length_from"] == nil {
                found.append((LearnedKey.meetingMinutes, String(minutes)))
            }
        case "email.send":
            if let to = entry.arguments["to"]?.stringValue?.lowercased(), let name = firstName(of: to) {
                found.append((LearnedKey.recipient(name), to))
            }
        default:
            break
        }
        return found
    }

    /// A confirmation the requester gave for a tool with a standing scope: its counting key.
    static func confirmationKey(_ entry: AuditEntry) -> String? {
        guard entry.status == .confirmed, entry.summary == "confirmed by requester",
              let argument = StandingScope.argument(for: entry.tool),
              let value = entry.arguments[argument]?.stringValue?.lowercased() else { return nil }
        return LearnedKey.confirmed(entry.tool, value)
    }

    /// The first name an address suggests: "bob.smith@example.org" → "bob". Nil for role
    /// addresses and anything not a name.
    public static func firstName(of address: String) -> String? {
        guard let local = address.split(separator: "@").first else { return nil }
        let first = local.split(whereSeparator: { ".-_+".contains($0) }).first.map { String($0).lowercased() } ?? ""
        guard first.count >= 2, first.allSatisfy(\.isLetter),
              !["info", "team", "admin", "support", "sales", "contact", "hello", "noreply", "office", "billing"].contains(first) else { return nil }
        return first
    }
}
