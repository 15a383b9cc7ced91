// What the assistant learns from what people do, and how it decides a learned default.
//
// Learning reads only committed history (the audit trail, in its commit order) in a background
// service, never a message on its way through. What it learns is kept per person in the
// preference store, under keys of its own (`learned:…`), beside what the person stated: one
// place to show, export and forget. Each learned key holds its evidence, a weighted count per
// value in which older observations weigh less (a person's habits change), so that what is
// shown as "learned from 6 of your last 7 meetings" is what decides. A value is used only when
// enough observations agree (`minimumEvidence`, `confidence`): half the meetings 30 minutes and
// half 60 teach nothing. The same value observed again within `burstWindow` counts once, so a
// loop with another bot is not a habit.
//
// What a person states always beats what was learned, and nothing learned lowers a tool's risk:
// only a standing approval the person accepted in words (`approvals.allow`) lets a high-risk
// call of one scope (email to one address) run without asking, until it expires.

public import Foundation
public import SwitchboardModel
public import SwitchboardStorage

/// How the assistant learns, from configuration (`learning.*`).
public struct LearningPolicy: Sendable, Hashable {
    /// Learning on for everyone (each person may still turn it off for themselves).
    public var enabled = true
    /// Observations needed before a value is used.
    public var minimumEvidence = 3
    /// The share of the (weighted) observations the value must have.
    public var confidence = 0.7
    /// The same value observed again within this many seconds counts once.
    public var burstWindow: TimeInterval = 600
    /// Each new observation multiplies the weight of the earlier ones by this.
    public var decay = 0.9
    /// How many times a learned default is said when used ("for 45 minutes, as usual").
    public var announceUses = 3
    /// Confirmations of one kind within `standingWindow` before a standing approval is offered.
    public var standingThreshold = 3
    /// The window those confirmations are counted in (seconds).
    public var standingWindow: TimeInterval = 7 * 86400
    /// How long an accepted standing approval lasts (seconds).
    public var standingLifetime: TimeInterval = 30 * 86400
    /// Tools or categories for which a standing approval is never offered nor accepted.
    public var neverStanding: Set<String> = []
    /// How often the background service reads new history.
    public var interval: Duration = .seconds(30)

    /// The defaults.
    public init() {}

    /// Whether a standing approval may exist for the tool.
    public func allowsStanding(_ tool: ToolDescriptor) -> Bool {
        enabled && StandingScope.argument(for: tool.name) != nil && !neverStanding.contains(tool.name) && !neverStanding.contains(tool.category)
    }
}

/// The keys of the preference store that learning uses.
public enum LearnedKey {
    /// Every learned key starts with this.
    public static let prefix = "learned:"
    /// A stated preference: `off` stops learning for the person.
    public static let switchKey = "learning"
    /// When the person last had their learned rows forgotten: history before it is not read.
    public static let resetKey = "learning.reset"
    /// Standing approvals: `approval:<tool>:<value>`.
    public static let approvalPrefix = "approval:"

    /// Meeting length in minutes.
    public static let meetingMinutes = "meeting_minutes"
    /// Which tools the person uses.
    public static let tools = "tools"
    /// The hours of the day (in their zone) the person is active.
    public static let hours = "hours"
    /// The channel the person writes on.
    public static let channel = "channel"

    /// The time of day ("07:30") a person means by a part of the day: `morning`, `afternoon`,
    /// `evening`. Also the key of the stated preference.
    public static func time(_ part: DayPart) -> String { part.rawValue }

    /// The address a person means by a first name ("bob" → bob@example.org).
    public static func recipient(_ name: String) -> String { "recipient:" + name }
    /// Confirmations of one scope of a tool ("confirmed:email.send:bob@example.org").
    public static func confirmed(_ tool: String, _ value: String) -> String { "confirmed:\(tool):\(value)" }
    /// A standing approval of one scope of a tool.
    public static func approval(_ tool: String, _ value: String) -> String { "\(approvalPrefix)\(tool):\(value)" }

    /// Whether a preference key is one of learning's own (shown apart from what was stated).
    public static func isInternal(_ key: String) -> Bool {
        key.hasPrefix(prefix) || key.hasPrefix(approvalPrefix) || key == resetKey
    }
}

/// Which argument of a high-risk tool scopes a standing approval: the recipient of an email,
/// the room of a post. A tool without one is never approved in advance.
public enum StandingScope {
    /// The argument, if the tool has one.
    public static func argument(for tool: String) -> String? {
        switch tool {
        case "email.send": return "to"
        case "matrix.post": return "room"
        default: return nil
        }
    }

    /// How the scope reads in a sentence ("emails to bob@example.org").
    public static func describe(_ tool: String, _ value: String) -> String {
        switch tool {
        case "email.send": return "emails to \(value)"
        case "matrix.post": return "posts in \(value)"
        default: return "\(tool) with \(value)"
        }
    }
}

/// The evidence behind one learned key: a weighted count per observed value.
public struct LearnedEvidence: Sendable, Hashable {
    /// Weight per value; older observations weigh less.
    public var weights: [String: Double] = [:]
    /// Observations counted (bursts excluded).
    public var observations = 0
    /// When the last one was counted, and its value.
    public var last: Date?
    public var lastValue: String?
    /// Times the learned value was used as a default.
    public var uses = 0
    /// Times, for confirmation counts (`confirmed:` keys), within the window.
    public var times: [Date] = []
    /// When a standing approval was last offered for this scope.
    public var offered: Date?

    public init() {}

    /// Counts an observation unless it repeats the last one within the burst window (measured
    /// from the last repetition, so a loop that never pauses counts once). Returns whether it
    /// counted.
    @discardableResult
    public mutating func observe(_ value: String, at time: Date, policy: LearningPolicy) -> Bool {
        if let last, lastValue == value, abs(time.timeIntervalSince(last)) < policy.burstWindow {
            self.last = max(last, time)
            return false
        }
        for key in weights.keys { weights[key]! *= policy.decay }
        weights = weights.filter { $0.value >= 0.01 }
        weights[value, default: 0] += 1
        observations += 1
        last = time
        lastValue = value
        return true
    }

    /// The value to use, and its share of the evidence, if enough observations agree.
    public func decision(_ policy: LearningPolicy) -> (value: String, confidence: Double)? {
        guard observations >= policy.minimumEvidence, let top = weights.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) else { return nil }
        let share = top.value / weights.values.reduce(0, +)
        return share >= policy.confidence ? (top.key, share) : nil
    }

    /// Each value's share of the evidence.
    public var shares: [String: Double] {
        let total = weights.values.reduce(0, +)
        guard total > 0 else { return [:] }
        return weights.mapValues { $0 / total }
    }

    /// How many of the counted observations had the value, roughly (for "6 of your last 7").
    public func count(of value: String) -> Int {
        Int(((shares[value] ?? 0) * Double(observations)).rounded())
    }

    /// Confirmations within the window before `now`.
    public func recent(_ now: Date, window: TimeInterval) -> Int {
        times.count { now.timeIntervalSince($0) < window && $0 <= now }
    }

    /// As stored.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "weights": .object(weights.mapValues { .double(($0 * 1000).rounded() / 1000) }),
            "observations": .int(Int64(observations)),
            "uses": .int(Int64(uses)),
        ]
        if let last { object["last"] = .string(RFC3339.format(last)) }
        if let lastValue { object["last_value"] = .string(lastValue) }
        if !times.isEmpty { object["times"] = .array(times.map { .string(RFC3339.format($0)) }) }
        if let offered { object["offered"] = .string(RFC3339.format(offered)) }
        return .object(object)
    }

    /// From what was stored; a damaged row reads as no evidence.
    public init(json: JSONValue) {
        for (key, value) in json["weights"]?.objectValue ?? [:] {
            if let weight = value.doubleValue { weights[key] = weight }
        }
        observations = Int(json["observations"]?.intValue ?? 0)
        uses = Int(json["uses"]?.intValue ?? 0)
        last = json["last"]?.stringValue.flatMap(RFC3339.parse)
        lastValue = json["last_value"]?.stringValue
        times = (json["times"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap(RFC3339.parse) }
        offered = json["offered"]?.stringValue.flatMap(RFC3339.parse)
    }
}

/// A person's learned profile, read from their preferences.
public struct LearnedProfile: Sendable {
    /// Evidence by learned key (without the `learned:` prefix).
    public var evidence: [String: LearnedEvidence]
    /// What the person stated, by key.
    public var stated: [String: JSONValue]
    /// Standing approvals by key (`approval:…`), with their expiry.
    public var approvals: [String: Date]
    /// Learning is off for the person (or for everyone).
    public var off: Bool

    /// Reads a profile from a person's preferences.
    public init(_ preferences: [Preference], policy: LearningPolicy) {
        var evidence: [String: LearnedEvidence] = [:]
        var stated: [String: JSONValue] = [:]
        var approvals: [String: Date] = [:]
        for preference in preferences {
            if preference.key.hasPrefix(LearnedKey.prefix) {
                evidence[String(preference.key.dropFirst(LearnedKey.prefix.count))] = LearnedEvidence(json: preference.value)
            } else if preference.key.hasPrefix(LearnedKey.approvalPrefix) {
                if let until = preference.value["until"]?.stringValue.flatMap(RFC3339.parse) { approvals[preference.key] = until }
            } else {
                stated[preference.key] = preference.value
            }
        }
        self.evidence = evidence
        self.stated = stated
        self.approvals = approvals
        off = !policy.enabled || stated[LearnedKey.switchKey]?.stringValue == "off"
    }

    /// A default: what the person stated for `key`, else what was learned, if confident.
    public func value(_ key: String, policy: LearningPolicy) -> (value: String, learned: LearnedEvidence?)? {
        if let stated = stated[key] { return (stated.stringValue ?? stated.canonicalText, nil) }
        guard !off, let evidence = evidence[key], let decision = evidence.decision(policy) else { return nil }
        return (decision.value, evidence)
    }

    /// The learned habits in one short line, for a language model's context: at most
    /// `limit` characters, nothing below the confidence threshold, no counts kept for offers.
    public func contextLine(_ policy: LearningPolicy, limit: Int = 400) -> String? {
        guard !off else { return nil }
        var parts: [String] = []
        if stated[LearnedKey.meetingMinutes] == nil, let minutes = evidence[LearnedKey.meetingMinutes]?.decision(policy) {
            parts.append("meetings usually \(minutes.value) minutes")
        }
        for (key, evidence) in evidence.sorted(by: { $0.key < $1.key }) where key.hasPrefix("recipient:") {
            if let address = evidence.decision(policy) { parts.append("\"\(key.dropFirst("recipient:".count))\" in an email means \(address.value)") }
        }
        let tools = toolShares(policy).filter { $0.value >= 0.15 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(3)
        if !tools.isEmpty { parts.append("uses mostly " + tools.map(\.key).joined(separator: ", ")) }
        for part in DayPart.allCases where stated[LearnedKey.time(part)] == nil {
            if let time = evidence[LearnedKey.time(part)]?.decision(policy) { parts.append("\"in the \(part.rawValue)\" means \(time.value)") }
        }
        if let channel = evidence[LearnedKey.channel]?.decision(policy) { parts.append("writes mostly on \(channel.value)") }
        var line = ""
        for part in parts {
            let next = line.isEmpty ? part : line + "; " + part
            if next.count > limit { break }
            line = next
        }
        return line.isEmpty ? nil : line
    }

    /// Tools the person uses most (a share of at least 15%, at most `count`), best first.
    public func habitualTools(_ policy: LearningPolicy, count: Int = 3) -> [String] {
        toolShares(policy).filter { $0.value >= 0.15 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(count).map(\.key)
    }

    /// Each tool's share of the person's use, if there is enough of it to be a habit.
    public func toolShares(_ policy: LearningPolicy) -> [String: Double] {
        guard !off, let tools = evidence[LearnedKey.tools], tools.observations >= policy.minimumEvidence else { return [:] }
        return tools.shares
    }
}

extension ToolContext {
    /// The person's learned profile.
    public func learnedProfile() throws -> LearnedProfile {
        LearnedProfile(try tx.preferences(of: person), policy: learning)
    }

    /// Records that a learned default was used once more (it is said the first few times);
    /// returns how many times it had been used before.
    @discardableResult
    public func noteLearnedUse(_ key: String) throws -> Int {
        let stored = LearnedKey.prefix + key
        guard let row = try tx.preferences(of: person).first(where: { $0.key == stored }) else { return 0 }
        var evidence = LearnedEvidence(json: row.value)
        evidence.uses += 1
        try tx.setPreference(person, key: stored, value: evidence.json, at: now)
        return evidence.uses - 1
    }

    /// The time for a part of the day the person said ("tomorrow morning"), on the day `at` is
    /// on: the time they stated for it, else the one learned from the times they gave, else, when
    /// the default falls in their quiet hours, the nearest hour of that part they are active in.
    /// Nil when none of that applies (the default stands) or the time found has already passed.
    public func usualTime(_ part: DayPart, on at: Date, zone: TimeZone) throws -> (date: Date, from: String)? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        func on(_ hour: Int, _ minute: Int) -> Date? {
            calendar.date(bySettingHour: hour, minute: minute, second: 0, of: at).flatMap { $0 > now ? $0 : nil }
        }
        let profile = try learnedProfile()
        if let usual = profile.value(LearnedKey.time(part), policy: learning), let time = DayPart.parseClock(usual.value) {
            return on(time.hour, time.minute).map { ($0, usual.learned == nil ? "preference" : "learned") }
        }
        // Quiet hours: the hours with almost none of the person's activity, once there is enough.
        guard !profile.off, let hours = profile.evidence[LearnedKey.hours], hours.observations >= learning.minimumEvidence * 5 else { return nil }
        let shares = hours.shares
        func active(_ hour: Int) -> Bool { (shares[String(hour)] ?? 0) >= 0.02 }
        let hour = calendar.component(.hour, from: at)
        guard !active(hour) else { return nil }
        let candidates = (0..<24).filter { active($0) && DayPart.of(hour: $0) == part }.sorted { abs($0 - hour) < abs($1 - hour) }
        guard let nearest = candidates.first else { return nil }
        return on(nearest, 0).map { ($0, "quiet_hours") }
    }

    /// The address the person always means by a first name, once that is clear.
    public func usualAddress(for name: String) throws -> String? {
        try learnedProfile().value(LearnedKey.recipient(name.lowercased()), policy: learning)?.value
    }

    /// Removes preference rows, returning what they held (for an undo record).
    public func removePreferences(_ keys: [String]) throws -> [String: JSONValue] {
        let current = try preferences()
        var before: [String: JSONValue] = [:]
        for key in keys {
            if let value = current[key] { before[key] = value }
            _ = try removePreference(key)
        }
        return before
    }

    /// Puts preference rows back as an undo record holds them; a null value was unset.
    public func restorePreferences(_ before: [String: JSONValue]) throws {
        for (key, value) in before {
            if value == .null { _ = try removePreference(key) } else { try setPreference(key, value) }
        }
    }
}
