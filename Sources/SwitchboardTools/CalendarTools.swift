public import SwitchboardEngine
public import SwitchboardModel
public import Foundation
import SwitchboardStorage

/// The calendar tools: events with a start, an end, a title, attendees and a location.
public enum CalendarTools {
    /// All of them.
    public static var all: [any Tool] { [CalendarCreate(), CalendarList(), CalendarMove(), CalendarCancel(), CalendarExport()] }

    static let kind = "event"
    /// An event without an end lasts this long.
    static let defaultLength: TimeInterval = 3600
    /// The longest event accepted.
    static let maxLength: TimeInterval = 14 * 86400

    static func line(_ event: ToolRecord, context: ToolContext) -> String {
        let zone = RecordTools.zone(context)
        var line = "\(event.id): \(event.at.map { RecordTools.describe($0, zone: zone, now: context.now) } ?? "?")"
        if let end = event.endAt { line += "–\(timeOnly(end, zone: zone))" }
        line += " \(event.title)"
        if let location = event.fields["location"]?.stringValue { line += " @ \(location)" }
        if let attendees = event.fields["attendees"]?.arrayValue?.compactMap(\.stringValue), !attendees.isEmpty {
            line += " (with \(attendees.joined(separator: ", ")))"
        }
        return line
    }

    static func timeOnly(_ date: Date, zone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "HH:mm"
        return formatter.string(from: date)
    }

    /// Other events of the person that overlap [start, end).
    static func conflicts(start: Date, end: Date, except id: Int64?, context: ToolContext) throws -> [ToolRecord] {
        try events(from: start, to: end, context: context).filter { $0.id != id }
    }

    /// The range a list or an export covers: `from`/`to` when given, else `days` days from the
    /// start of today in the person's zone.
    static func range(_ arguments: JSONValue, days: Int, context: ToolContext) throws -> (Date, Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = RecordTools.zone(context)
        let from = try RecordTools.time(arguments["from"], name: "the start of the range") ?? calendar.startOfDay(for: context.now)
        let to = try RecordTools.time(arguments["to"], name: "the end of the range") ?? calendar.date(byAdding: .day, value: days, to: calendar.startOfDay(for: from))!
        guard to > from else { throw ToolFailure("That range ends before it starts.") }
        guard to.timeIntervalSince(from) <= 400 * 86400 else { throw ToolFailure("I can show up to about a year at a time.") }
        return (from, to)
    }

    /// The events going on at any time in [from, to): also those that started before `from`.
    static func events(from: Date, to: Date, context: ToolContext) throws -> [ToolRecord] {
        try context.records.list(owner: context.person, kind: kind, statuses: ["confirmed"], from: from.addingTimeInterval(-maxLength), to: to)
            .filter { ($0.endAt ?? $0.at ?? from) > from }
    }

    /// A booking over other events waits for a yes: the preview names them ("you already have
    /// Dentist 15:00–16:00 then; book it anyway?") and the call is marked so the reply after
    /// the yes does not say it again.
    static func askingAboutOverlaps(_ call: PreparedCall, overlaps: [String]) -> PreparedCall {
        guard !overlaps.isEmpty else { return call }
        var arguments = call.arguments.objectValue ?? [:]
        arguments["overlaps"] = "asked"
        let preview = call.preview + "\nYou already have " + overlaps.joined(separator: "; ") + " then; book it anyway?"
        return PreparedCall(arguments: .object(arguments), preview: preview, risk: max(call.risk, .high))
    }

    static func conflictWarning(_ conflicts: [ToolRecord], context: ToolContext) -> String {
        guard !conflicts.isEmpty else { return "" }
        return "\nHeads up: this overlaps with " + conflicts.map { "event \(line($0, context: context))" }.joined(separator: "; ") + "."
    }

    /// Start and end from `start` plus `end` or `duration_minutes`; a clear failure for an end
    /// before the start or an event too long.
    static func span(_ arguments: JSONValue, defaultLength: TimeInterval) throws -> (Date, Date) {
        guard let start = try RecordTools.time(arguments["start"], name: "the start") else {
            throw ToolFailure("When does it start? Try: meeting with Alice on Friday at 3pm")
        }
        var end = start.addingTimeInterval(defaultLength)
        if let explicit = try RecordTools.time(arguments["end"], name: "the end") {
            end = explicit
        } else if let minutes = arguments["duration_minutes"]?.intValue {
            guard minutes > 0 else { throw ToolFailure("An event has to last at least a minute.") }
            end = start.addingTimeInterval(TimeInterval(minutes) * 60)
        }
        guard end > start else { throw ToolFailure("That event would end before it starts; check the times.") }
        guard end.timeIntervalSince(start) <= maxLength else { throw ToolFailure("Events can last up to 14 days.") }
        return (start, end)
    }
}

/// `calendar.create`: adds an event, warning about overlaps.
public struct CalendarCreate: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "calendar.create",
        category: "calendar",
        summary: "Put an event in your calendar",
        parameters: [
            "type": "object",
            "properties": [
                "title": ["type": "string", "minLength": 1, "maxLength": 300],
                "start": ["type": "string", "format": "date-time"],
                "day_part": RecordTools.dayPartProperty,
                "end": ["type": "string", "format": "date-time"],
                "duration_minutes": ["type": "integer", "minimum": 1],
                "location": ["type": "string", "maxLength": 300],
                "attendees": ["type": "array", "items": ["type": "string"]],
                "repeat": [
                    "type": "string", "maxLength": 200,
                    "description": "an RFC 5545 RRULE for a repeating event, with FREQ, INTERVAL, BYDAY, BYMONTHDAY and UNTIL or COUNT: FREQ=WEEKLY;BYDAY=MO",
                ],
            ],
            "required": ["title", "start"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("calendar.create"),
        usage: ToolExamples.usage["calendar.create"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        if arguments["repeat"] != nil {
            throw ToolFailure("Repeating events go on your own calendar server, and you have none linked (the operator links one with `switchboard dav connect`). I can add a single event: say it without \"every\".")
        }
        let call = try prepareEvent(arguments, context: context)
        let (start, end) = try CalendarTools.span(call.arguments, defaultLength: CalendarTools.defaultLength)
        let conflicts = try CalendarTools.conflicts(start: start, end: end, except: nil, context: context)
        return CalendarTools.askingAboutOverlaps(call, overlaps: conflicts.map { CalendarTools.line($0, context: context).drop { $0 != " " }.dropFirst() }.map(String.init))
    }

    /// The event's checks, defaults and preview, without reading the calendar (the CalDAV tool
    /// reads the person's server for overlaps instead).
    func prepareEvent(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let title = try RecordTools.text(arguments, "title", required: "What's the event called? Try: meeting with Alice on Friday at 3pm", maxLength: 300)
        if arguments["repeat"] != nil {
            throw ToolFailure("Repeating events go on your own calendar server, and you have none linked (the operator links one with `switchboard dav connect`). I can add a single event: say it without \"every\".")
        }
        // A length the person gave; else the one they stated as their default; else the one
        // learned from the meetings they booked, when it is clear enough; else an hour.
        let stated = arguments["end"] != nil || arguments["duration_minutes"] != nil
        var length = CalendarTools.defaultLength
        var lengthFrom: String?
        if !stated, let usual = try context.learnedProfile().value(LearnedKey.meetingMinutes, policy: context.learning), let minutes = Int(usual.value), minutes > 0 {
            length = TimeInterval(minutes * 60)
            lengthFrom = usual.learned == nil ? "preference" : "learned"
        }
        var given = arguments
        // "tomorrow morning": the time the person means by it, unless an end pins the start.
        var usual: [String: JSONValue] = [:]
        if arguments["end"] == nil, var object = arguments.objectValue, let start = try RecordTools.time(arguments["start"], name: "the start") {
            let moved: Date
            (moved, usual) = try RecordTools.usualTime(arguments, at: start, context: context)
            object["start"] = .string(RecordTools.iso(moved))
            given = .object(object)
        }
        let (start, end) = try CalendarTools.span(given, defaultLength: length)
        var prepared: [String: JSONValue] = ["title": .string(title), "start": .string(RecordTools.iso(start)), "end": .string(RecordTools.iso(end))]
        prepared.merge(usual) { $1 }
        if stated || lengthFrom != nil { prepared["duration_minutes"] = .int(Int64((end.timeIntervalSince(start) / 60).rounded())) }
        if let lengthFrom { prepared["length_from"] = .string(lengthFrom) }
        if let location = try RecordTools.optionalText(arguments, "location", maxLength: 300) { prepared["location"] = .string(location) }
        let attendees = (arguments["attendees"]?.arrayValue ?? []).compactMap { $0.stringValue?.trimmingWhitespace() }.filter { !$0.isEmpty }
        if !attendees.isEmpty { prepared["attendees"] = .array(attendees.map(JSONValue.string)) }
        let draft = ToolRecord(
            id: 0, kind: CalendarTools.kind, owner: context.person, title: title, status: "confirmed", at: start, endAt: end,
            fields: .object(prepared.filter { ["location", "attendees"].contains($0.key) }), createdAt: context.now, updatedAt: context.now
        )
        return PreparedCall(arguments: .object(prepared), preview: "Add to your calendar: \(CalendarTools.line(draft, context: context).drop { $0 != " " }.dropFirst())", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let arguments = call.arguments
        let (start, end) = try CalendarTools.span(arguments, defaultLength: CalendarTools.defaultLength)
        var fields: [String: JSONValue] = [:]
        if let location = arguments["location"] { fields["location"] = location }
        if let attendees = arguments["attendees"] { fields["attendees"] = attendees }
        // Overlaps were asked about before the yes; otherwise (a call prepared before that
        // check, or an event added meanwhile) they are said after.
        let conflicts = arguments["overlaps"]?.stringValue == "asked" ? [] : try CalendarTools.conflicts(start: start, end: end, except: nil, context: context)
        let event = try context.records.add(ToolRecordDraft(
            kind: CalendarTools.kind, owner: context.person, title: arguments["title"]?.stringValue ?? "", status: "confirmed",
            at: start, endAt: end, fields: .object(fields)
        ), at: context.now)
        // A learned length is said the first few times it is used, so the person can object.
        var usual = ""
        if arguments["length_from"]?.stringValue == "learned" {
            let minutes = Int((end.timeIntervalSince(start) / 60).rounded())
            if try context.noteLearnedUse(LearnedKey.meetingMinutes) < context.learning.announceUses {
                usual = "\nFor \(minutes) minutes, as usual; say \"for an hour\" to change, or \"my meetings are usually 30 minutes\"."
            }
        }
        usual += try RecordTools.usualTimeNote(arguments, at: start, context: context)
        return ToolOutput(
            reply: "Added event \(CalendarTools.line(event, context: context))" + usual + CalendarTools.conflictWarning(conflicts, context: context),
            summary: "added event \(event.id)", undo: RecordTools.undoCreate([event])
        )
    }
}

/// `calendar.list`: the events in a range (today when none is given).
public struct CalendarList: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "calendar.list",
        category: "calendar",
        summary: "Show your calendar for a day or a range",
        parameters: [
            "type": "object",
            "properties": ["from": ["type": "string", "format": "date-time"], "to": ["type": "string", "format": "date-time"]],
            "additionalProperties": false,
        ],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("calendar.list"),
        usage: ToolExamples.usage["calendar.list"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let (from, to) = try CalendarTools.range(arguments, days: 1, context: context)
        return PreparedCall(
            arguments: ["from": .string(RecordTools.iso(from)), "to": .string(RecordTools.iso(to))],
            preview: "Show your calendar", risk: .low
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let (from, to) = try CalendarTools.range(call.arguments, days: 1, context: context)
        let zone = RecordTools.zone(context)
        let events = try CalendarTools.events(from: from, to: to, context: context)
        let range = "\(RecordTools.describe(from, zone: zone, now: context.now)) to \(RecordTools.describe(to, zone: zone, now: context.now))"
        guard !events.isEmpty else { return ToolOutput(reply: "Nothing in your calendar from \(range).", summary: "0 events") }
        let header = events.count == 1 ? "1 event from \(range):" : "\(events.count) events from \(range):"
        return ToolOutput(reply: ([header] + events.map { CalendarTools.line($0, context: context) }).joined(separator: "\n"), summary: "\(events.count) events")
    }
}

/// `calendar.move`: gives an event a new start (keeping its length, unless a new end is given).
public struct CalendarMove: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "calendar.move",
        category: "calendar",
        summary: "Move an event to another time",
        parameters: [
            "type": "object",
            "properties": [
                "id": ["type": "integer"], "query": ["type": "string", "minLength": 1],
                "start": ["type": "string", "format": "date-time"], "end": ["type": "string", "format": "date-time"],
            ],
            "required": ["start"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("calendar.move"),
        usage: ToolExamples.usage["calendar.move"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let event = try RecordTools.one(arguments, kind: CalendarTools.kind, noun: "event", statuses: ["confirmed"], context: context)
        guard event.status == "confirmed" else { throw ToolFailure("Event \(event.id) was cancelled.") }
        let length = (event.endAt ?? event.at ?? context.now).timeIntervalSince(event.at ?? context.now)
        let (start, end) = try CalendarTools.span(arguments, defaultLength: max(60, length))
        var moved = event
        moved.at = start
        moved.endAt = end
        return PreparedCall(
            arguments: ["id": .int(event.id), "start": .string(RecordTools.iso(start)), "end": .string(RecordTools.iso(end))],
            preview: "Move event \(CalendarTools.line(event, context: context)) to \(CalendarTools.line(moved, context: context).drop { $0 != " " }.dropFirst())",
            risk: descriptor.baseRisk
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        guard let id = call.arguments["id"]?.intValue,
              let event = try context.records.records(owner: context.person, kind: CalendarTools.kind, ids: [id]).first,
              event.status == "confirmed"
        else { throw ToolFailure("That event is gone.") }
        let (start, end) = try CalendarTools.span(call.arguments, defaultLength: CalendarTools.defaultLength)
        var moved = event
        moved.at = start
        moved.endAt = end
        moved.updatedAt = context.now
        try context.records.update(moved)
        let conflicts = try CalendarTools.conflicts(start: start, end: end, except: id, context: context)
        return ToolOutput(
            reply: "Moved event \(CalendarTools.line(moved, context: context))" + CalendarTools.conflictWarning(conflicts, context: context),
            summary: "moved event \(id)", undo: RecordTools.undoRestore([event])
        )
    }
}

/// `calendar.cancel`: cancels an event (kept, marked cancelled, so undo can bring it back).
public struct CalendarCancel: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "calendar.cancel",
        category: "calendar",
        summary: "Cancel an event, or every event in a range",
        parameters: [
            "type": "object",
            "properties": [
                "id": ["type": "integer"], "query": ["type": "string", "minLength": 1],
                "all": ["type": "boolean", "description": "every event from `from` to `to` (\"cancel all my meetings tomorrow\"); always asks first"],
                "from": ["type": "string", "format": "date-time"], "to": ["type": "string", "format": "date-time"],
            ],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("calendar.cancel"),
        usage: ToolExamples.usage["calendar.cancel"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        if arguments["all"]?.boolValue == true {
            // Every event of a range: the preview lists them, and it waits for a yes.
            let (from, to) = try CalendarTools.range(arguments, days: 1, context: context)
            let events = try CalendarTools.events(from: from, to: to, context: context)
            let zone = RecordTools.zone(context)
            let range = "from \(RecordTools.describe(from, zone: zone, now: context.now)) to \(RecordTools.describe(to, zone: zone, now: context.now))"
            guard !events.isEmpty else { throw ToolFailure("There is nothing in your calendar \(range) to cancel.") }
            guard events.count <= 50 else { throw ToolFailure("That is \(events.count) events; I cancel up to 50 at a time. Give a shorter range.") }
            return PreparedCall(
                arguments: ["ids": .array(events.map { .int($0.id) })],
                preview: "Cancel \(events.count == 1 ? "this event" : "these \(events.count) events") \(range):\n" + events.map { "- " + CalendarTools.line($0, context: context) }.joined(separator: "\n"),
                risk: .high
            )
        }
        let event = try RecordTools.one(arguments, kind: CalendarTools.kind, noun: "event", statuses: ["confirmed"], context: context)
        guard event.status == "confirmed" else { throw ToolFailure("Event \(event.id) (\(event.title)) is already cancelled.") }
        return PreparedCall(arguments: ["id": .int(event.id)], preview: "Cancel event \(CalendarTools.line(event, context: context))", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        if let ids = call.arguments["ids"]?.arrayValue?.compactMap(\.intValue) {
            let events = try context.records.records(owner: context.person, kind: CalendarTools.kind, ids: ids).filter { $0.status == "confirmed" }
            guard !events.isEmpty else { throw ToolFailure("Those events are already cancelled.") }
            for event in events {
                var cancelled = event
                cancelled.status = "cancelled"
                cancelled.updatedAt = context.now
                try context.records.update(cancelled)
            }
            return ToolOutput(
                reply: "Cancelled \(events.count == 1 ? "1 event" : "\(events.count) events"):\n" + events.map { CalendarTools.line($0, context: context) }.joined(separator: "\n"),
                summary: "cancelled events \(events.map { String($0.id) }.joined(separator: ", "))", undo: RecordTools.undoRestore(events)
            )
        }
        guard let id = call.arguments["id"]?.intValue,
              let event = try context.records.records(owner: context.person, kind: CalendarTools.kind, ids: [id]).first,
              event.status == "confirmed"
        else { throw ToolFailure("That event is already cancelled.") }
        var cancelled = event
        cancelled.status = "cancelled"
        cancelled.updatedAt = context.now
        try context.records.update(cancelled)
        return ToolOutput(reply: "Cancelled event \(CalendarTools.line(event, context: context))", summary: "cancelled event \(id)", undo: RecordTools.undoRestore([event]))
    }
}

/// `calendar.export`: the events of a range as iCalendar (RFC 5545) text.
public struct CalendarExport: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "calendar.export",
        category: "calendar",
        summary: "Export your calendar as iCalendar (.ics) text",
        parameters: [
            "type": "object",
            "properties": ["from": ["type": "string", "format": "date-time"], "to": ["type": "string", "format": "date-time"]],
            "additionalProperties": false,
        ],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("calendar.export"),
        usage: ToolExamples.usage["calendar.export"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let (from, to) = try CalendarTools.range(arguments, days: 30, context: context)
        return PreparedCall(arguments: ["from": .string(RecordTools.iso(from)), "to": .string(RecordTools.iso(to))], preview: "Export your calendar", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let (from, to) = try CalendarTools.range(call.arguments, days: 30, context: context)
        let events = try CalendarTools.events(from: from, to: to, context: context)
        return ToolOutput(reply: ICalendar.document(events, stamp: context.now), summary: "exported \(events.count) events")
    }
}

/// Writes iCalendar (RFC 5545): CRLF line ends, lines folded at 75 octets, text escaped, times in UTC.
public enum ICalendar {
    /// A VCALENDAR with one VEVENT per event.
    public static func document(_ events: [ToolRecord], stamp: Date) -> String {
        var lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Switchboard//Switchboard//EN", "CALSCALE:GREGORIAN"]
        for event in events {
            guard let start = event.at else { continue }
            lines.append("BEGIN:VEVENT")
            lines.append("UID:event-\(event.id)@switchboard")
            lines.append("DTSTAMP:\(utc(stamp))")
            lines.append("DTSTART:\(utc(start))")
            lines.append("DTEND:\(utc(event.endAt ?? start.addingTimeInterval(CalendarTools.defaultLength)))")
            lines.append("SUMMARY:\(escape(event.title))")
            if let location = event.fields["location"]?.stringValue { lines.append("LOCATION:\(escape(location))") }
            for attendee in event.fields["attendees"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                if attendee.contains("@") && !attendee.contains(" ") {
                    lines.append("ATTENDEE:mailto:\(attendee)")
                } else {
                    lines.append("ATTENDEE;CN=\(parameter(attendee)):invalid:nomail")
                }
            }
            lines.append("END:VEVENT")
        }
        lines.append("END:VCALENDAR")
        return lines.map(fold).joined(separator: "\r\n") + "\r\n"
    }

    static func utc(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// TEXT values (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines escaped.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case ";": out += "\\;"
            case ",": out += "\\,"
            case "\n", "\r\n", "\r": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// A parameter value (RFC 5545 §3.2): quoted, with no double quotes or control characters inside.
    static func parameter(_ text: String) -> String {
        "\"" + String(text.unicodeScalars.filter { $0 != "\"" && $0.value >= 0x20 && $0 != "\u{7F}" }.map(Character.init)) + "\""
    }

    /// Folds a content line into lines of at most 75 octets, never splitting a UTF-8 sequence.
    public static func fold(_ line: String) -> String {
        var result = ""
        var count = 0
        var limit = 75
        for character in line {
            let size = String(character).utf8.count
            if count + size > limit {
                result += "\r\n "
                count = 0
                limit = 74
            }
            result.append(character)
            count += size
        }
        return result
    }
}
