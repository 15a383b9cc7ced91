// Events as the assistant reads and writes them, over the iCalendar tree: a start and an end in
// a named time zone (with the VTIMEZONE that RFC 5545 wants beside a TZID), a whole day, or UTC;
// a title, a place, a repeat rule. Reading takes what phones and other clients write: TZIDs
// that are IANA names, Outlook's Windows names for the common zones, a path ending in an IANA
// name; DTEND or DURATION; dates without times.

public import Foundation

/// A time in an event: when, and how it was written.
public struct EventTime: Sendable, Hashable {
    public var date: Date
    /// The zone it was written in (nil: UTC, or floating).
    public var zone: TimeZone?
    /// A date without a time (an all-day event).
    public var allDay: Bool

    public init(date: Date, zone: TimeZone?, allDay: Bool = false) {
        self.date = date
        self.zone = zone
        self.allDay = allDay
    }
}

/// An event read from, or written to, a calendar object.
public struct CalendarEvent: Sendable, Hashable {
    public var uid: String
    public var summary: String
    public var location: String?
    public var start: EventTime
    public var end: EventTime
    /// The repeat rule as written (`FREQ=WEEKLY;BYDAY=MO`).
    public var rule: String?
    /// The occurrences a series skips (EXDATE: one cancelled on a phone), as their starts.
    public var exceptions: Set<Date> = []

    public init(uid: String, summary: String, location: String? = nil, start: EventTime, end: EventTime, rule: String? = nil) {
        self.uid = uid
        self.summary = summary
        self.location = location
        self.start = start
        self.end = end
        self.rule = rule
    }

    /// The first VEVENT of a VCALENDAR (the master, not an overridden occurrence).
    public init(calendar: ICalComponent, defaultZone: TimeZone) throws {
        let events = calendar.components("VEVENT")
        guard let event = events.first(where: { $0.property("RECURRENCE-ID") == nil }) ?? events.first else {
            throw ICalError(description: "the calendar object has no event")
        }
        guard let uid = event.property("UID")?.value, !uid.isEmpty else { throw ICalError(description: "the event has no UID") }
        guard let startProperty = event.property("DTSTART") else { throw ICalError(description: "the event has no start (DTSTART)") }
        let start = try Self.time(startProperty, defaultZone: defaultZone)
        var end: EventTime
        if let endProperty = event.property("DTEND") {
            end = try Self.time(endProperty, defaultZone: defaultZone)
        } else if let duration = event.property("DURATION").flatMap({ Self.duration($0.value) }) {
            end = EventTime(date: start.date.addingTimeInterval(duration), zone: start.zone, allDay: start.allDay)
        } else {
            // RFC 5545: a date lasts the day; a date-time, no time at all.
            end = EventTime(date: start.date.addingTimeInterval(start.allDay ? 86400 : 0), zone: start.zone, allDay: start.allDay)
        }
        if end.date < start.date { end = start }
        self.init(
            uid: uid, summary: event.property("SUMMARY")?.text ?? "(no title)", location: event.property("LOCATION")?.text,
            start: start, end: end, rule: event.property("RRULE")?.value
        )
        // EXDATE may list several, comma-separated, in the start's form; one that cannot be
        // read is left out rather than refusing the event.
        for property in event.properties("EXDATE") {
            for part in property.value.split(separator: ",") {
                let one = ICalProperty("EXDATE", String(part), parameters: property.parameters)
                if let time = try? Self.time(one, defaultZone: start.zone ?? defaultZone) { exceptions.insert(time.date) }
            }
        }
    }

    /// Whether an occurrence starting then is one the series skips.
    public func skips(_ occurrence: Date) -> Bool { exceptions.contains(occurrence) }

    /// The event as a new calendar object: VCALENDAR with a VTIMEZONE for its zone, one VEVENT.
    public func calendarObject(stamp: Date) -> ICalComponent {
        var event = ICalComponent("VEVENT")
        event.properties = [
            ICalProperty("UID", uid),
            ICalProperty("DTSTAMP", Self.utc(stamp)),
            Self.property("DTSTART", start),
            Self.property("DTEND", end),
            ICalProperty(text: "SUMMARY", summary),
        ]
        if let location { event.properties.append(ICalProperty(text: "LOCATION", location)) }
        if let rule { event.properties.append(ICalProperty("RRULE", rule)) }
        var calendar = ICalComponent("VCALENDAR", properties: [ICalProperty("VERSION", "2.0"), ICalProperty("PRODID", "-//Switchboard//Switchboard//EN")])
        if let zone = start.zone, !start.allDay { calendar.components.append(VTimeZone.component(zone, around: start.date)) }
        calendar.components.append(event)
        return calendar
    }

    /// Moves the event in an existing object, keeping everything else in it (alarms,
    /// attendees, other clients' properties), and the zone it was written in.
    public static func moved(_ calendar: ICalComponent, to start: Date, end: Date, stamp: Date) throws -> ICalComponent {
        var calendar = calendar
        guard let index = calendar.components.firstIndex(where: { $0.name == "VEVENT" && $0.property("RECURRENCE-ID") == nil }) else {
            throw ICalError(description: "the calendar object has no event")
        }
        var event = calendar.components[index]
        let zone = event.property("DTSTART").flatMap { $0.parameter("TZID") }.flatMap(Self.zone(named:))
        event.set("DTSTART", property("DTSTART", EventTime(date: start, zone: zone)))
        event.set("DURATION", nil)
        event.set("DTEND", property("DTEND", EventTime(date: end, zone: zone)))
        event.set("DTSTAMP", ICalProperty("DTSTAMP", utc(stamp)))
        let sequence = Int(event.property("SEQUENCE")?.value ?? "0") ?? 0
        event.set("SEQUENCE", ICalProperty("SEQUENCE", String(sequence + 1)))
        calendar.components[index] = event
        if let zone, !calendar.components.contains(where: { $0.name == "VTIMEZONE" && $0.property("TZID")?.value == zone.identifier }) {
            calendar.components.insert(VTimeZone.component(zone, around: start), at: 0)
        }
        return calendar
    }

    // MARK: Times

    static func property(_ name: String, _ time: EventTime) -> ICalProperty {
        if time.allDay {
            return ICalProperty(name, format(time.date, zone: time.zone ?? TimeZone(identifier: "UTC")!, pattern: "yyyyMMdd"), parameters: [("VALUE", ["DATE"])])
        }
        guard let zone = time.zone, zone.identifier != "UTC", zone.identifier != "GMT" else { return ICalProperty(name, utc(time.date)) }
        return ICalProperty(name, format(time.date, zone: zone, pattern: "yyyyMMdd'T'HHmmss"), parameters: [("TZID", [zone.identifier])])
    }

    static func utc(_ date: Date) -> String { format(date, zone: TimeZone(identifier: "UTC")!, pattern: "yyyyMMdd'T'HHmmss'Z'") }

    static func format(_ date: Date, zone: TimeZone, pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.calendar = Calendar(identifier: .gregorian)
        formatter.timeZone = zone
        formatter.dateFormat = pattern
        return formatter.string(from: date)
    }

    /// Reads DTSTART/DTEND: `…Z` (UTC), `TZID=…:…` (a zone), `VALUE=DATE:…`, or floating (the
    /// person's zone).
    static func time(_ property: ICalProperty, defaultZone: TimeZone) throws -> EventTime {
        let value = property.value.trimmingCharacters(in: .whitespaces)
        func parse(_ pattern: String, _ text: String, _ zone: TimeZone) -> Date? {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.calendar = Calendar(identifier: .gregorian)
            formatter.timeZone = zone
            formatter.dateFormat = pattern
            formatter.isLenient = false
            return formatter.date(from: text)
        }
        let named = property.parameter("TZID")
        let zone = named.flatMap(zone(named:))
        if property.parameter("VALUE")?.uppercased() == "DATE" || (value.count == 8 && value.allSatisfy(\.isNumber)) {
            guard let date = parse("yyyyMMdd", value, zone ?? defaultZone) else { throw ICalError(description: "\(property.name) \"\(value.prefix(40))\" is not a date") }
            return EventTime(date: date, zone: zone ?? defaultZone, allDay: true)
        }
        if value.hasSuffix("Z") {
            guard let date = parse("yyyyMMdd'T'HHmmss", String(value.dropLast()), TimeZone(identifier: "UTC")!) else {
                throw ICalError(description: "\(property.name) \"\(value.prefix(40))\" is not a date-time")
            }
            return EventTime(date: date, zone: nil)
        }
        // An unknown TZID (a custom name no zone database knows): the person's zone, which is what
        // a floating time means too; the object is kept as it was written.
        guard let date = parse("yyyyMMdd'T'HHmmss", value, zone ?? defaultZone) else {
            throw ICalError(description: "\(property.name) \"\(value.prefix(40))\" is not a date-time")
        }
        return EventTime(date: date, zone: zone ?? defaultZone)
    }

    /// A zone from a TZID: an IANA name, one ending a path ("/mozilla.org/…/Europe/Berlin"),
    /// or a Windows name for the common zones.
    public static func zone(named name: String) -> TimeZone? {
        let trimmed = name.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        if let zone = TimeZone(identifier: trimmed) { return zone }
        let parts = trimmed.split(separator: "/")
        if parts.count >= 2, let zone = TimeZone(identifier: parts.suffix(2).joined(separator: "/")) { return zone }
        if parts.count >= 3, let zone = TimeZone(identifier: parts.suffix(3).joined(separator: "/")) { return zone }
        return windowsZones[trimmed].flatMap(TimeZone.init(identifier:))
    }

    static let windowsZones: [String: String] = [
        "W. Europe Standard Time": "Europe/Berlin", "Romance Standard Time": "Europe/Paris", "GMT Standard Time": "Europe/London",
        "Central Europe Standard Time": "Europe/Budapest", "E. Europe Standard Time": "Europe/Bucharest", "FLE Standard Time": "Europe/Helsinki",
        "Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago", "Mountain Standard Time": "America/Denver",
        "Pacific Standard Time": "America/Los_Angeles", "Tokyo Standard Time": "Asia/Tokyo", "India Standard Time": "Asia/Kolkata",
        "China Standard Time": "Asia/Shanghai", "AUS Eastern Standard Time": "Australia/Sydney", "UTC": "UTC",
    ]

    /// An RFC 5545 duration: `PT1H30M`, `P1D`, `-PT15M`, `P2W`.
    static func duration(_ text: String) -> TimeInterval? {
        var rest = Substring(text.uppercased())
        var sign = 1.0
        if rest.first == "-" { sign = -1; rest = rest.dropFirst() } else if rest.first == "+" { rest = rest.dropFirst() }
        guard rest.first == "P" else { return nil }
        rest = rest.dropFirst()
        var total = 0.0
        var number = ""
        var inTime = false
        for character in rest {
            if character.isNumber {
                number.append(character)
                continue
            }
            if character == "T" { inTime = true; continue }
            guard let amount = Double(number) else { return nil }
            number = ""
            switch (character, inTime) {
            case ("W", false): total += amount * 7 * 86400
            case ("D", false): total += amount * 86400
            case ("H", true): total += amount * 3600
            case ("M", true): total += amount * 60
            case ("S", true): total += amount
            default: return nil
            }
        }
        return number.isEmpty ? sign * total : nil
    }
}

/// The VTIMEZONE for a zone, made from the zone database: its rules as yearly observances
/// (`BYMONTH`/`BYDAY`), the way calendar clients write them, from the transitions around the
/// event.
public enum VTimeZone {
    public static func component(_ zone: TimeZone, around date: Date) -> ICalComponent {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var component = ICalComponent("VTIMEZONE", properties: [ICalProperty("TZID", zone.identifier)])
        // The two transitions following the start of the event's year, if the zone has any.
        let year = calendar.component(.year, from: date)
        let from = calendar.date(from: DateComponents(year: year, month: 1, day: 1))!
        var transitions: [Date] = []
        var cursor = from
        while transitions.count < 2, let next = zone.nextDaylightSavingTimeTransition(after: cursor), next < from.addingTimeInterval(400 * 86400) {
            transitions.append(next)
            cursor = next
        }
        if transitions.isEmpty {
            let offset = zone.secondsFromGMT(for: date)
            component.components.append(observance("STANDARD", zone: zone, at: from, before: offset, after: offset, yearly: false))
            return component
        }
        for transition in transitions {
            let before = zone.secondsFromGMT(for: transition.addingTimeInterval(-1))
            let after = zone.secondsFromGMT(for: transition)
            let kind = zone.isDaylightSavingTime(for: transition) ? "DAYLIGHT" : "STANDARD"
            component.components.append(observance(kind, zone: zone, at: transition, before: before, after: after, yearly: true))
        }
        return component
    }

    static func observance(_ kind: String, zone: TimeZone, at transition: Date, before: Int, after: Int, yearly: Bool) -> ICalComponent {
        // DTSTART is the wall-clock time of the change in the offset before it.
        let local = transition.addingTimeInterval(TimeInterval(before))
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let parts = utc.dateComponents([.year, .month, .day, .weekday], from: local)
        var properties = [
            ICalProperty("DTSTART", CalendarEvent.format(local, zone: utc.timeZone, pattern: "yyyyMMdd'T'HHmmss")),
            ICalProperty("TZOFFSETFROM", offset(before)),
            ICalProperty("TZOFFSETTO", offset(after)),
        ]
        if let name = zone.abbreviation(for: transition), !name.hasPrefix("GMT+"), !name.hasPrefix("GMT-") {
            properties.append(ICalProperty(text: "TZNAME", name))
        }
        if yearly, let month = parts.month, let day = parts.day, let weekday = parts.weekday {
            let days = utc.range(of: .day, in: .month, for: local)?.count ?? 31
            let week = day + 7 > days ? "-1" : String((day - 1) / 7 + 1)
            let names = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
            properties.append(ICalProperty("RRULE", "FREQ=YEARLY;BYMONTH=\(month);BYDAY=\(week)\(names[weekday - 1])"))
        }
        return ICalComponent(kind, properties: properties)
    }

    static func offset(_ seconds: Int) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let magnitude = abs(seconds)
        return String(format: "%@%02d%02d", sign, magnitude / 3600, (magnitude % 3600) / 60)
    }
}
