public import SwitchboardEngine
public import SwitchboardModel
import Foundation
import SwitchboardStorage

/// The preferences tools: what a person tells the assistant about themselves and how they
/// want to be served. Keys: `timezone`, `name`, `reply_length` (`short`/`normal`), and
/// `confirm:<tool or category>` (`always`/`never`), which the tool gate reads.
public enum PreferencesTools {
    /// All of them; `tools` are the other tools' descriptors, for checking `confirm:` keys.
    public static func all(tools: [ToolDescriptor]) -> [any Tool] {
        [PreferencesSet(tools: tools), PreferencesShow(), PreferencesForget()] + LearningTools.all(tools: tools)
    }

    static func describe(_ key: String, _ value: JSONValue) -> String {
        let text = value.stringValue ?? value.canonicalText
        switch key {
        case "timezone": return "Your time zone: \(text)"
        case "name": return "I call you: \(text)"
        case "reply_length": return "Answers: \(text)"
        case LearnedKey.meetingMinutes: return "Your meetings last \(text) minutes unless you say otherwise"
        case LearnedKey.switchKey: return text == "off" ? "Learning about you: off" : "Learning about you: on"
        case _ where DayPart(rawValue: key) != nil: return "By \"\(key)\" you mean \(text)"
        default:
            if key.hasPrefix("confirm:") {
                let target = key.dropFirst("confirm:".count)
                return text == "always" ? "Always ask before \(target)" : "Don't ask before \(target) (unless it's high-risk)"
            }
            return "\(key): \(text)"
        }
    }
}

/// `preferences.set`: sets one preference.
public struct PreferencesSet: Tool {
    private let tools: [String: ToolDescriptor]
    private let categories: Set<String>

    /// Creates the tool, knowing the other tools so `confirm:` keys can be checked.
    public init(tools: [ToolDescriptor]) {
        self.tools = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.categories = Set(tools.map(\.category))
    }

    public let descriptor = ToolDescriptor(
        name: "preferences.set",
        category: "preferences",
        summary: "Remember a preference: your time zone, your name, short answers, when to ask first",
        parameters: [
            "type": "object",
            "properties": [
                "key": ["type": "string", "description": "timezone, name, reply_length, meeting_minutes, morning/afternoon/evening (the time you mean by it, e.g. 7:30), learning (on/off), or confirm:<tool or category>"],
                "value": ["type": "string"],
            ],
            "required": ["key", "value"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("preferences.set"),
        usage: ToolExamples.usage["preferences.set"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard let key = arguments["key"]?.stringValue?.trimmingWhitespace().lowercased(), !key.isEmpty else {
            throw ToolFailure("Which preference? I know your time zone, your name, short answers, and when to ask first.")
        }
        let value = try RecordTools.text(arguments, "value", required: "What should \(key) be?", maxLength: 100)
        var stored = value
        var note = ""
        switch key {
        case "timezone":
            guard let zone = UtilityTools.zone(named: value) else {
                throw ToolFailure("I don't know the time zone \"\(value)\". Use a name such as Europe/Berlin or America/New_York.")
            }
            stored = zone.identifier
        case "name":
            guard value.count <= 60, !value.contains(where: \.isNewline) else { throw ToolFailure("That's a long name; keep it under 60 characters.") }
        case "reply_length":
            guard ["short", "normal"].contains(value.lowercased()) else { throw ToolFailure("Answers can be short or normal.") }
            stored = value.lowercased()
        case LearnedKey.meetingMinutes:
            guard let minutes = Int(value), (5...720).contains(minutes) else { throw ToolFailure("A meeting length is a number of minutes from 5 to 720.") }
            stored = String(minutes)
        case LearnedKey.switchKey:
            guard ["on", "off"].contains(value.lowercased()) else { throw ToolFailure("Learning can be on or off.") }
            stored = value.lowercased()
            if stored == "off" { note = ". I keep what I learned before but don't use it; say \"forget what you learned\" to remove it" }
        case _ where DayPart(rawValue: key) != nil:
            let part = DayPart(rawValue: key)!
            guard let time = part.spokenTime(value) else {
                let range = part == .morning ? "5:00 and 11:59" : (part == .afternoon ? "12:00 and 16:59" : "17:00 and 22:59")
                throw ToolFailure("\"\(value)\" isn't a time in the \(key); give one between \(range), e.g. \(part == .morning ? "7:30" : (part == .afternoon ? "14:00" : "19:30")).")
            }
            stored = DayPart.clock(hour: time.hour, minute: time.minute)
        default:
            guard key.hasPrefix("confirm:") else {
                throw ToolFailure("I don't have a preference called \(key). I know: timezone, name, reply_length, meeting_minutes, morning, afternoon, evening, learning, confirm:<tool>.")
            }
            let target = String(key.dropFirst("confirm:".count))
            guard ["always", "never"].contains(value.lowercased()) else { throw ToolFailure("Say always or never.") }
            stored = value.lowercased()
            let affected = tools[target].map { [$0] } ?? tools.values.filter { $0.category == target }
            guard !affected.isEmpty else { throw ToolFailure("I have no tool or category called \(target).") }
            if stored == "never" {
                let floor = affected.filter { $0.baseRisk == .high }.map(\.name).sorted()
                if !floor.isEmpty {
                    note = " (\(floor.joined(separator: ", ")) \(floor.count == 1 ? "is" : "are") high-risk, so I'll still ask for \(floor.count == 1 ? "it" : "them"))"
                }
            }
        }
        return PreparedCall(
            arguments: ["key": .string(key), "value": .string(stored)],
            preview: PreferencesTools.describe(key, .string(stored)) + note, risk: descriptor.baseRisk
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let key = call.arguments["key"]?.stringValue ?? ""
        let value = call.arguments["value"] ?? .null
        let before = try context.preferences()[key]
        try context.setPreference(key, value)
        return ToolOutput(
            reply: "Got it. \(call.preview)",
            summary: "set preference \(key)",
            undo: ["key": .string(key), "before": before ?? .null]
        )
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        guard let key = payload["key"]?.stringValue else { throw ToolFailure("The undo record is damaged.") }
        if let before = payload["before"], before != .null {
            try context.setPreference(key, before)
            return "put \(key) back to \(before.stringValue ?? before.canonicalText)."
        }
        _ = try context.removePreference(key)
        return "forgot \(key)."
    }
}

/// `preferences.show`: what the assistant knows about the person.
public struct PreferencesShow: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "preferences.show",
        category: "preferences",
        summary: "Show what I know about you",
        parameters: ["type": "object", "properties": [:], "additionalProperties": false],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("preferences.show"),
        usage: ToolExamples.usage["preferences.show"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        PreparedCall(arguments: [:], preview: "Show your preferences", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let preferences = try context.preferences().filter { !LearnedKey.isInternal($0.key) }
        let profile = try context.learnedProfile()
        let learned = profile.off ? [] : LearningTools.describe(profile, policy: context.learning, now: context.now, zone: RecordTools.zone(context))
        let linked = try context.linkedIdentities().map { $0.rawValue.hasPrefix("email:") ? String($0.rawValue.dropFirst(6)) : $0.rawValue }
        guard !preferences.isEmpty || !linked.isEmpty || !learned.isEmpty else {
            return ToolOutput(reply: "I don't know anything about you yet. Tell me, e.g.: my timezone is Europe/Berlin, or call me Sam.", summary: "0 preferences")
        }
        var lines = preferences.keys.sorted().map { "• " + PreferencesTools.describe($0, preferences[$0]!) }
        if !linked.isEmpty { lines.append("• Linked addresses: " + linked.joined(separator: ", ")) }
        lines += learned
        var footer = "Say \"forget my preferences\" to clear them."
        if !learned.isEmpty {
            footer = "Correct me (\"my meetings are usually 30 minutes\"), say \"forget what you learned about meetings\" (or the word in brackets), \"forget what you learned\", or \"stop learning about me\"."
        }
        return ToolOutput(reply: (["Here's what I know about you:"] + lines + [footer]).joined(separator: "\n"), summary: "\(preferences.count) preferences, \(learned.count) learned")
    }
}

/// `preferences.forget`: forgets all of the person's preferences (undo brings them back).
public struct PreferencesForget: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "preferences.forget",
        category: "preferences",
        summary: "Forget your preferences",
        parameters: ["type": "object", "properties": [:], "additionalProperties": false],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("preferences.forget"),
        usage: ToolExamples.usage["preferences.forget"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let count = try context.preferences().count
        guard count > 0 else { throw ToolFailure("I don't have any preferences of yours to forget.") }
        return PreparedCall(arguments: [:], preview: "Forget your \(count) preference\(count == 1 ? "" : "s")", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let before = try context.preferences()
        let count = try context.forgetPreferences()
        return ToolOutput(
            reply: "Done: I've forgotten your \(count) preference\(count == 1 ? "" : "s"). Say \"undo\" if that was a mistake.",
            summary: "forgot \(count) preferences", undo: .object(before)
        )
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        guard let before = payload.objectValue else { throw ToolFailure("The undo record is damaged.") }
        for (key, value) in before { try context.setPreference(key, value) }
        return "remembered your \(before.count) preferences again."
    }
}
