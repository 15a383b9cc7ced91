public import SwitchboardEngine
public import SwitchboardModel
import Foundation
import SwitchboardStorage

/// The reminders tools. A reminder is a message back to the same person, in the same
/// conversation and channel, at a time; the engine's `ReminderScheduler` sends it when due, also
/// after a restart (late, with a note, when it was missed).
public enum RemindersTools {
    /// All of them.
    public static var all: [any Tool] { [RemindersAdd(), RemindersList(), RemindersCancel()] }

    /// The record kind.
    public static let kind = "reminder"
    /// How far ahead a reminder may be set.
    static let maxAhead: TimeInterval = 5 * 366 * 86400

    static func line(_ reminder: ToolRecord, context: ToolContext) -> String {
        let when = reminder.at.map { RecordTools.describe($0, zone: RecordTools.zone(context), now: context.now) } ?? "?"
        return "\(reminder.id): \(when) — \(reminder.title)"
    }
}

/// `reminders.add`: schedules a reminder.
public struct RemindersAdd: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "reminders.add",
        category: "reminders",
        summary: "Remind you of something at a time",
        parameters: [
            "type": "object",
            "properties": [
                "text": ["type": "string", "minLength": 1, "maxLength": 1000],
                "at": ["type": "string", "format": "date-time"],
                "day_part": RecordTools.dayPartProperty,
            ],
            "required": ["text", "at"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("reminders.add"),
        usage: ToolExamples.usage["reminders.add"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let text = try RecordTools.text(arguments, "text", required: "What should I remind you of? Try: remind me tomorrow at 9 to call Bob")
        guard let given = try RecordTools.time(arguments["at"], name: "the reminder") else {
            throw ToolFailure("When should I remind you? Try: remind me tomorrow at 9 to \(text)")
        }
        let (at, usual) = try RecordTools.usualTime(arguments, at: given, context: context)
        let zone = RecordTools.zone(context)
        guard at > context.now else {
            throw ToolFailure("\(RecordTools.describe(at, zone: zone, now: context.now)) has already passed; give me a time in the future.")
        }
        guard at.timeIntervalSince(context.now) <= RemindersTools.maxAhead else {
            throw ToolFailure("That's more than five years ahead; I only keep reminders up to five years out.")
        }
        return PreparedCall(
            arguments: .object(["text": .string(text), "at": .string(RecordTools.iso(at))].merging(usual) { $1 }),
            preview: "Remind you \(RecordTools.describe(at, zone: zone, now: context.now)) (\(zone.identifier)): \(text)",
            risk: descriptor.baseRisk
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let text = call.arguments["text"]?.stringValue ?? ""
        let at = try RecordTools.time(call.arguments["at"], name: "the reminder")
        let reminder = try context.records.add(ToolRecordDraft(
            kind: RemindersTools.kind, owner: context.person, title: text, status: "pending", at: at,
            fields: ["channel": .string(context.conversation.channel.rawValue), "conversation": .string(context.conversation.conversation.rawValue)]
        ), at: context.now)
        let zone = RecordTools.zone(context)
        let note = try RecordTools.usualTimeNote(call.arguments, at: reminder.at ?? context.now, context: context)
        return ToolOutput(
            reply: "OK, I'll remind you \(RecordTools.describe(reminder.at ?? context.now, zone: zone, now: context.now)) (\(zone.identifier)): \(text) (reminder \(reminder.id))" + note,
            summary: "added reminder \(reminder.id)", undo: RecordTools.undoCreate([reminder])
        )
    }
}

/// `reminders.list`: the reminders still to come.
public struct RemindersList: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "reminders.list",
        category: "reminders",
        summary: "List your upcoming reminders",
        parameters: ["type": "object", "properties": [:], "additionalProperties": false],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("reminders.list"),
        usage: ToolExamples.usage["reminders.list"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        PreparedCall(arguments: [:], preview: "List your reminders", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let reminders = try context.records.list(owner: context.person, kind: RemindersTools.kind, statuses: ["pending"], from: nil, to: nil)
        guard !reminders.isEmpty else { return ToolOutput(reply: "You have no upcoming reminders.", summary: "0 reminders") }
        let header = reminders.count == 1 ? "You have 1 upcoming reminder:" : "You have \(reminders.count) upcoming reminders:"
        return ToolOutput(
            reply: ([header] + reminders.map { RemindersTools.line($0, context: context) }).joined(separator: "\n"),
            summary: "\(reminders.count) reminders"
        )
    }
}

/// `reminders.cancel`: cancels a reminder that has not fired yet.
public struct RemindersCancel: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "reminders.cancel",
        category: "reminders",
        summary: "Cancel a reminder",
        parameters: RecordTools.pickOne,
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("reminders.cancel"),
        usage: ToolExamples.usage["reminders.cancel"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let reminder = try RecordTools.one(arguments, kind: RemindersTools.kind, noun: "reminder", statuses: ["pending"], context: context)
        guard reminder.status == "pending" else {
            throw ToolFailure("Reminder \(reminder.id) (\(reminder.title)) was \(reminder.status == "fired" ? "already sent" : "already cancelled").")
        }
        return PreparedCall(arguments: ["id": .int(reminder.id)], preview: "Cancel reminder \(RemindersTools.line(reminder, context: context))", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        guard let id = call.arguments["id"]?.intValue,
              let reminder = try context.records.records(owner: context.person, kind: RemindersTools.kind, ids: [id]).first,
              reminder.status == "pending"
        else { throw ToolFailure("That reminder was already sent or cancelled.") }
        var cancelled = reminder
        cancelled.status = "cancelled"
        cancelled.updatedAt = context.now
        try context.records.update(cancelled)
        return ToolOutput(
            reply: "Cancelled reminder \(RemindersTools.line(reminder, context: context))",
            summary: "cancelled reminder \(id)", undo: RecordTools.undoRestore([reminder])
        )
    }
}
