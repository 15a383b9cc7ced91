public import SwitchboardEngine
public import SwitchboardModel
import Foundation
import SwitchboardStorage

/// What the assistant learned, shown and taken back, and standing approvals: scoped, expiring
/// permissions to run one kind of high-risk call without asking, which only the person grants.
public enum LearningTools {
    /// All of them; `tools` are the other tools' descriptors (a standing approval names one).
    public static func all(tools: [ToolDescriptor]) -> [any Tool] {
        [ApprovalsAllow(tools: tools), ApprovalsRevoke(), LearningForget()]
    }

    /// The lines of "what do you know about me" for what was learned.
    static func describe(_ profile: LearnedProfile, policy: LearningPolicy, now: Date, zone: TimeZone) -> [String] {
        var lines: [String] = []
        for key in profile.evidence.keys.sorted() {
            guard let evidence = profile.evidence[key] else { continue }
            if key == LearnedKey.tools {
                let shares = profile.toolShares(policy).sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(3)
                if !shares.isEmpty {
                    lines.append("• Learned: you mostly use " + shares.map { "\($0.key) (\(percent($0.value)))" }.joined(separator: ", ") + " [forget: tools]")
                }
                continue
            }
            if key == LearnedKey.hours {
                if evidence.observations >= policy.minimumEvidence, let span = activeSpan(evidence) {
                    lines.append("• Learned: you're usually active \(span) (from \(evidence.observations) actions) [forget: hours]")
                }
                continue
            }
            guard let decision = evidence.decision(policy) else { continue }
            let basis = "\(evidence.count(of: decision.value)) of your last \(evidence.observations), \(percent(decision.confidence))"
            if key == LearnedKey.meetingMinutes {
                lines.append("• Learned: your meetings usually last \(decision.value) minutes (\(basis)) [forget: meetings]")
            } else if let part = DayPart(rawValue: key) {
                lines.append("• Learned: by \"\(part.rawValue)\" you mean \(decision.value), the time you give most in the \(part.rawValue) (\(basis)) [forget: \(part.rawValue)]")
            } else if key == LearnedKey.channel {
                lines.append("• Learned: you usually write on \(decision.value) (\(basis)) [forget: channel]")
            } else if key.hasPrefix("recipient:") {
                let name = String(key.dropFirst("recipient:".count))
                lines.append("• Learned: \"\(name.capitalized)\" in an email means \(decision.value) (\(basis)) [forget: \(name)]")
            }
        }
        for (key, until) in profile.approvals.sorted(by: { $0.key < $1.key }) where until > now {
            let rest = key.dropFirst(LearnedKey.approvalPrefix.count)
            guard let colon = rest.firstIndex(of: ":") else { continue }
            let scope = StandingScope.describe(String(rest[..<colon]), String(rest[rest.index(after: colon)...]))
            lines.append("• You allowed \(scope) without asking, until \(day(until, zone: zone))")
        }
        return lines
    }

    static func percent(_ share: Double) -> String { "\(Int((share * 100).rounded()))%" }

    /// A day in the person's zone: "13 January 2027".
    static func day(_ date: Date, zone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.timeZone = zone
        formatter.dateFormat = "d MMMM yyyy"
        return formatter.string(from: date)
    }

    /// The hours with most of the activity, as "between 8:00 and 18:00"; quiet hours are the
    /// rest. Nil when activity is spread over the whole day.
    static func activeSpan(_ evidence: LearnedEvidence) -> String? {
        let shares = evidence.shares
        let hours = (0..<24).filter { (shares[String($0)] ?? 0) >= 0.02 }
        guard let first = hours.first, let last = hours.last, hours.count < 20 else { return nil }
        return "between \(first):00 and \(last + 1):00 (your time zone)"
    }

    /// The learned key a person's words name: "meetings", "tools", "hours", "channel", or a
    /// first name.
    static func key(for topic: String) -> String {
        let word = topic.lowercased().trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters))
        switch word {
        case "meetings", "meeting", "meeting length", "my meetings", "meeting_minutes": return LearnedKey.meetingMinutes
        case "tools", "my tools": return LearnedKey.tools
        case "hours", "my hours": return LearnedKey.hours
        case "channel", "my channel": return LearnedKey.channel
        case "morning", "mornings", "my mornings", "the morning": return LearnedKey.time(.morning)
        case "afternoon", "afternoons", "my afternoons", "the afternoon": return LearnedKey.time(.afternoon)
        case "evening", "evenings", "my evenings", "the evening", "tonight": return LearnedKey.time(.evening)
        default: return LearnedKey.recipient(word)
        }
    }
}

/// `approvals.allow`: a standing approval for one scope of a high-risk tool.
public struct ApprovalsAllow: Tool {
    private let tools: [String: ToolDescriptor]

    public init(tools: [ToolDescriptor]) {
        self.tools = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public let descriptor = ToolDescriptor(
        name: "approvals.allow",
        category: "preferences",
        summary: "Stop asking before one kind of risky action (emails to one address), for a while",
        parameters: [
            "type": "object",
            "properties": [
                "tool": ["type": "string", "description": "email.send or matrix.post"],
                "value": ["type": "string", "description": "the address or room the approval covers"],
            ],
            "required": ["tool", "value"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let name = arguments["tool"]?.stringValue ?? ""
        guard let tool = tools[name], let argument = StandingScope.argument(for: name) else {
            throw ToolFailure("I can only stop asking for emails to one address or posts in one room.")
        }
        guard context.learning.allowsStanding(tool) else {
            throw ToolFailure("The person who runs this assistant wants me to always ask before \(StandingScope.describe(name, "anyone").replacingOccurrences(of: " anyone", with: "")), so I can't stop asking.")
        }
        var value = (arguments["value"]?.stringValue ?? "").trimmingWhitespace().lowercased()
        if argument == "to", !ContactsTools.isEmail(value) {
            guard let address = try context.usualAddress(for: value) else {
                throw ToolFailure("Which address? Say, e.g.: always allow emails to bob@example.org")
            }
            value = address
        }
        guard !value.isEmpty, value.count <= 320 else { throw ToolFailure("Which address or room?") }
        if try context.preferences()["confirm:\(name)"]?.stringValue == "always" || context.preferences()["confirm:\(tool.category)"]?.stringValue == "always" {
            throw ToolFailure("You asked me to always ask before \(name), so I'll keep asking. Say \"don't ask again for \(name)\" first if you want a standing approval.")
        }
        let until = context.now.addingTimeInterval(context.learning.standingLifetime)
        let scope = StandingScope.describe(name, value)
        return PreparedCall(
            arguments: ["tool": .string(name), "value": .string(value), "until": .string(RFC3339.format(until))],
            preview: "Stop asking before \(scope) until \(LearningTools.day(until, zone: RecordTools.zone(context)))", risk: descriptor.baseRisk
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let name = call.arguments["tool"]?.stringValue ?? ""
        let value = call.arguments["value"]?.stringValue ?? ""
        let key = LearnedKey.approval(name, value)
        let before = try context.preferences()[key]
        try context.setPreference(key, ["until": call.arguments["until"] ?? .null, "granted": .string(RFC3339.format(context.now))])
        return ToolOutput(
            reply: "OK: \(call.preview.prefix(1).lowercased() + call.preview.dropFirst()). Say \"stop allowing \(StandingScope.describe(name, value))\" to take it back.",
            summary: "standing approval for \(StandingScope.describe(name, value))",
            undo: ["key": .string(key), "before": before ?? .null]
        )
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        guard let key = payload["key"]?.stringValue else { throw ToolFailure("The undo record is damaged.") }
        try context.restorePreferences([key: payload["before"] ?? .null])
        return "I'll ask again before those."
    }
}

/// `approvals.revoke`: takes back one standing approval, or all of them.
public struct ApprovalsRevoke: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "approvals.revoke",
        category: "preferences",
        summary: "Take back standing approvals, so I ask again",
        parameters: [
            "type": "object",
            "properties": ["tool": ["type": "string"], "value": ["type": "string"]],
            "additionalProperties": false,
        ],
        baseRisk: .low,
        effect: .reversible
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let all = try context.preferences().filter { $0.key.hasPrefix(LearnedKey.approvalPrefix) }
        var chosen = all
        if let name = arguments["tool"]?.stringValue, let value = arguments["value"]?.stringValue?.trimmingWhitespace().lowercased() {
            var resolved = value
            if StandingScope.argument(for: name) == "to", !ContactsTools.isEmail(value), let address = try context.usualAddress(for: value) {
                resolved = address
            }
            chosen = all.filter { $0.key == LearnedKey.approval(name, resolved) }
            guard !chosen.isEmpty else { throw ToolFailure("You have no standing approval for \(StandingScope.describe(name, resolved)).") }
        }
        guard !chosen.isEmpty else { throw ToolFailure("You have no standing approvals; I ask before every risky action.") }
        return PreparedCall(
            arguments: ["keys": .array(chosen.keys.sorted().map(JSONValue.string))],
            preview: "Take back \(chosen.count) standing approval\(chosen.count == 1 ? "" : "s")", risk: .low
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let before = try context.removePreferences((call.arguments["keys"]?.arrayValue ?? []).compactMap(\.stringValue))
        return ToolOutput(
            reply: "Done: I'll ask again before \(before.count == 1 ? "those" : "all of those") (\(before.count) standing approval\(before.count == 1 ? "" : "s") taken back).",
            summary: "revoked \(before.count) standing approvals", undo: .object(before)
        )
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        try context.restorePreferences(payload.objectValue ?? [:])
        return "put back \(payload.objectValue?.count ?? 0) standing approvals."
    }
}

/// `learning.forget`: forgets what was learned, one thing or everything. History before an
/// all-forget is not read again.
public struct LearningForget: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "learning.forget",
        category: "preferences",
        summary: "Forget what I learned about you (one thing, or everything)",
        parameters: [
            "type": "object",
            "properties": ["topic": ["type": "string", "description": "meetings, tools, hours, channel, or a first name; none for everything"]],
            "additionalProperties": false,
        ],
        // Medium: it changes the person's data, so a sender the channel could not verify
        // (a forged From) cannot do it in their name.
        baseRisk: .medium,
        effect: .reversible
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let learned = try context.preferences().filter { $0.key.hasPrefix(LearnedKey.prefix) }
        if let topic = arguments["topic"]?.stringValue, !topic.trimmingWhitespace().isEmpty {
            let key = LearnedKey.prefix + LearningTools.key(for: topic)
            guard learned[key] != nil else { throw ToolFailure("I haven't learned anything about \(topic).") }
            return PreparedCall(arguments: ["keys": [.string(key)], "all": false], preview: "Forget what I learned about \(topic)", risk: descriptor.baseRisk)
        }
        return PreparedCall(
            arguments: ["keys": .array(learned.keys.sorted().map(JSONValue.string)), "all": true],
            preview: "Forget everything I learned about you (\(learned.count) item\(learned.count == 1 ? "" : "s"))", risk: descriptor.baseRisk
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let before = try context.removePreferences((call.arguments["keys"]?.arrayValue ?? []).compactMap(\.stringValue))
        var undo = before
        if call.arguments["all"] == true {
            // What happened before now is not read again, even by a learner that lags behind.
            undo[LearnedKey.resetKey] = try context.preferences()[LearnedKey.resetKey] ?? .null
            try context.setPreference(LearnedKey.resetKey, .string(RFC3339.format(context.now)))
        }
        let what = call.arguments["all"] == true ? "everything I learned about you (\(before.count) item\(before.count == 1 ? "" : "s"))" : "that"
        return ToolOutput(reply: "Forgotten: \(what). Say \"undo\" if that was a mistake.", summary: "forgot \(before.count) learned items", undo: .object(undo))
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        try context.restorePreferences(payload.objectValue ?? [:])
        return "remembered what I had learned again."
    }
}
