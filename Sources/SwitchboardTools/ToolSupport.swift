// What the record-keeping tools share: reading arguments, finding the record a request means,
// writing times in the person's zone, and undoing any change to records.

public import Foundation
public import SwitchboardEngine
public import SwitchboardModel
import SwitchboardStorage

/// A tool whose changes are to records, undone by `RecordTools.undo` from the payload its
/// execution returned (`undoCreate`, `undoRestore`).
public protocol RecordTool: Tool {}

extension RecordTool {
    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        try RecordTools.undo(payload, context: context)
    }
}

/// Helpers for the tools built on `RecordStore`.
enum RecordTools {
    /// The person's time zone: their `timezone` preference, else this machine's.
    static func zone(_ context: ToolContext) -> TimeZone {
        if let name = (try? context.preferences())?["timezone"]?.stringValue, let zone = TimeZone(identifier: name) {
            return zone
        }
        return TimeZone.current
    }

    /// A time as people read it, in a zone: "Mon 30 Nov 09:00", with the year when it is not this one.
    static func describe(_ date: Date, zone: TimeZone, now: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        let sameYear = calendar.component(.year, from: date) == calendar.component(.year, from: now)
        formatter.dateFormat = sameYear ? "EEE d MMM HH:mm" : "EEE d MMM yyyy HH:mm"
        return formatter.string(from: date)
    }

    /// The schema of `day_part`: set when a time came from a part of the day, not a clock time.
    static let dayPartProperty: JSONValue = [
        "type": "string", "enum": .array(DayPart.allCases.map { .string($0.rawValue) }),
        "description": "only when the person named a part of the day (\"tomorrow morning\", \"tonight\") and no clock time: the time they usually mean by it is used",
    ]

    /// A time given as a part of the day, moved to the time the person means by it (stated,
    /// learned, or out of their quiet hours). Returns the time and the prepared arguments to
    /// add: `day_part`, and `time_from` when the time was moved (what the learner and the
    /// announcement read).
    static func usualTime(_ arguments: JSONValue, at: Date, context: ToolContext) throws -> (Date, [String: JSONValue]) {
        guard let name = arguments["day_part"]?.stringValue else { return (at, [:]) }
        guard let part = DayPart(rawValue: name) else {
            throw ToolFailure("\"\(name)\" isn't a part of the day I know; say morning, afternoon or evening, or give a time.")
        }
        var added: [String: JSONValue] = ["day_part": .string(part.rawValue)]
        guard let usual = try context.usualTime(part, on: at, zone: zone(context)) else { return (at, added) }
        added["time_from"] = .string(usual.from)
        return (usual.date, added)
    }

    /// What to say about a moved time: a learned one the first few times it is used, one moved
    /// out of quiet hours each time. Empty otherwise.
    static func usualTimeNote(_ arguments: JSONValue, at: Date, context: ToolContext) throws -> String {
        guard let part = arguments["day_part"]?.stringValue.flatMap(DayPart.init(rawValue:)) else { return "" }
        let time = CalendarTools.timeOnly(at, zone: zone(context))
        switch arguments["time_from"]?.stringValue {
        case "learned":
            guard try context.noteLearnedUse(LearnedKey.time(part)) < context.learning.announceUses else { return "" }
            return "\nAt \(time), your usual \(part.rawValue); give a time (\"at 9\") to change it, or say \"by \(part.rawValue) I mean 9:00\"."
        case "quiet_hours":
            return "\nAt \(time), when you're usually around; give a time to change it."
        default:
            return ""
        }
    }

    /// Reads a time argument: ISO 8601 with an offset (`2026-11-30T09:00:00+01:00`) or in UTC (`…Z`).
    static func time(_ value: JSONValue?, name: String) throws -> Date? {
        guard let value, value != .null else { return nil }
        guard let text = value.stringValue, let date = parseISO(text) else {
            throw ToolFailure("\"\(value.stringValue ?? value.canonicalText)\" isn't a time I can use for \(name); give a date and time such as 2026-11-30T09:00:00+01:00.")
        }
        return date
    }

    static func parseISO(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// Writes a time for arguments: ISO 8601 in UTC, whole seconds.
    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    /// A required, trimmed, non-empty text argument of at most `maxLength` characters.
    static func text(_ arguments: JSONValue, _ name: String, required message: String, maxLength: Int = 1000) throws -> String {
        guard let text = arguments[name]?.stringValue?.trimmingWhitespace(), !text.isEmpty else { throw ToolFailure(message) }
        guard text.count <= maxLength else {
            throw ToolFailure("That \(name) is \(text.count) characters long; the limit is \(maxLength).")
        }
        return text
    }

    /// An optional trimmed text argument; nil when absent or empty.
    static func optionalText(_ arguments: JSONValue, _ name: String, maxLength: Int = 1000) throws -> String? {
        guard let raw = arguments[name], raw != .null else { return nil }
        guard let text = raw.stringValue else { throw ToolFailure("\(name) must be text.") }
        let trimmed = text.trimmingWhitespace()
        guard trimmed.count <= maxLength else {
            throw ToolFailure("That \(name) is \(trimmed.count) characters long; the limit is \(maxLength).")
        }
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The one record of `kind` an `id` or a `query` argument names; a clear failure when there is
    /// none, or when the query matches several (listing them, so the person can pick a number).
    static func one(
        _ arguments: JSONValue, kind: String, noun: String, statuses: [String]? = nil, context: ToolContext
    ) throws -> ToolRecord {
        if let id = arguments["id"]?.intValue {
            guard let record = try context.records.records(owner: context.person, kind: kind, ids: [id]).first else {
                throw ToolFailure("You have no \(noun) \(id).")
            }
            return record
        }
        guard let query = arguments["query"]?.stringValue?.trimmingWhitespace(), !query.isEmpty else {
            throw ToolFailure("Which \(noun)? Give its number, or a word from it.")
        }
        var matches = try context.records.search(owner: context.person, kind: kind, query: query)
        if let statuses, matches.count > 1 {
            let narrowed = matches.filter { statuses.contains($0.status) }
            if !narrowed.isEmpty { matches = narrowed }
        }
        switch matches.count {
        case 0:
            throw ToolFailure("I found no \(noun) matching \"\(query)\".")
        case 1:
            return matches[0]
        default:
            let list = matches.prefix(5).map { "• \($0.id): \($0.title)" }.joined(separator: "\n")
            throw ToolFailure("Several \(noun)s match \"\(query)\":\n\(list)\nSay which by number.")
        }
    }

    // MARK: Undo

    /// An undo payload that deletes records this call created.
    static func undoCreate(_ records: [ToolRecord]) -> JSONValue {
        ["kind": .string(records.first?.kind ?? ""), "delete": .array(records.map { .int($0.id) })]
    }

    /// An undo payload that puts records back as they were before this call (changed or deleted).
    static func undoRestore(_ before: [ToolRecord], created: [ToolRecord] = []) -> JSONValue {
        var payload: [String: JSONValue] = ["restore": .array(before.map(encode))]
        if !created.isEmpty {
            payload["kind"] = .string(created[0].kind)
            payload["delete"] = .array(created.map { .int($0.id) })
        }
        return .object(payload)
    }

    /// Reverts a change to records from its payload. Returns what it did, in words.
    static func undo(_ payload: JSONValue, context: ToolContext) throws -> String {
        var done: [String] = []
        if let ids = payload["delete"]?.arrayValue?.compactMap(\.intValue), !ids.isEmpty, let kind = payload["kind"]?.stringValue {
            let removed = try context.records.delete(owner: context.person, kind: kind, ids: ids)
            done.append(removed == ids.count ? "removed \(describe(kind, ids))" : "removed \(removed) of \(ids.count) \(kind)s (the rest were gone)")
        }
        if let items = payload["restore"]?.arrayValue {
            let records = try items.map(decode)
            for record in records where record.owner != context.person {
                throw ToolFailure("The undo record belongs to someone else.")
            }
            var restored: [Int64] = []
            var reverted: [Int64] = []
            for record in records {
                if try context.records.update(record) {
                    reverted.append(record.id)
                } else {
                    try context.records.restore([record])
                    restored.append(record.id)
                }
            }
            if let kind = records.first?.kind {
                if !restored.isEmpty { done.append("restored \(describe(kind, restored))") }
                if !reverted.isEmpty { done.append("put back \(describe(kind, reverted)) as it was") }
            }
        }
        guard !done.isEmpty else { throw ToolFailure("The undo record is damaged.") }
        return done.joined(separator: " and ") + "."
    }

    private static func describe(_ kind: String, _ ids: [Int64]) -> String {
        let noun = kind == "event" ? "event" : kind
        return ids.count == 1 ? "\(noun) \(ids[0])" : "\(noun)s \(ids.map(String.init).joined(separator: ", "))"
    }

    static func encode(_ record: ToolRecord) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .int(record.id), "kind": .string(record.kind), "owner": .string(record.owner.rawValue),
            "title": .string(record.title), "status": .string(record.status), "fields": record.fields,
            "created_us": .int(AuditChain.microseconds(record.createdAt)), "updated_us": .int(AuditChain.microseconds(record.updatedAt)),
        ]
        if let at = record.at { object["at_us"] = .int(AuditChain.microseconds(at)) }
        if let end = record.endAt { object["end_us"] = .int(AuditChain.microseconds(end)) }
        return .object(object)
    }

    static func decode(_ value: JSONValue) throws -> ToolRecord {
        guard let id = value["id"]?.intValue, let kind = value["kind"]?.stringValue, let owner = value["owner"]?.stringValue,
              let title = value["title"]?.stringValue, let status = value["status"]?.stringValue,
              let created = value["created_us"]?.intValue, let updated = value["updated_us"]?.intValue
        else { throw ToolFailure("The undo record is damaged.") }
        return ToolRecord(
            id: id, kind: kind, owner: PersonID(owner), title: title, status: status,
            at: value["at_us"]?.intValue.map(AuditChain.date(microseconds:)),
            endAt: value["end_us"]?.intValue.map(AuditChain.date(microseconds:)),
            fields: value["fields"] ?? [:], createdAt: AuditChain.date(microseconds: created), updatedAt: AuditChain.date(microseconds: updated)
        )
    }

    /// The JSON Schema of an `{id}` or `{query}` choice of one record.
    static let pickOne: JSONValue = [
        "type": "object",
        "properties": ["id": ["type": "integer"], "query": ["type": "string", "minLength": 1]],
        "additionalProperties": false,
    ]
}
