public import Foundation
import SwitchboardEngine

/// The repeats the calendar tools write: an RRULE (RFC 5545) with FREQ (daily, weekly, monthly,
/// yearly), INTERVAL, BYDAY (plain weekdays), BYMONTHDAY (-1 is the last day), and UNTIL or
/// COUNT. It reads back what it writes, says it in words, and finds occurrences in a range.
/// Rules outside that set (from another app: BYSETPOS, BYDAY=2MO …) are not written here, and
/// when read, are shown as "repeats" from their first date.
public struct RepeatRule: Hashable, Sendable {
    public enum Frequency: String, Sendable { case daily = "DAILY", weekly = "WEEKLY", monthly = "MONTHLY", yearly = "YEARLY" }

    public var frequency: Frequency
    public var interval: Int
    /// RFC 5545 weekday codes, MO to SU.
    public var weekdays: [String]
    public var monthDay: Int?
    public var until: Date?
    public var count: Int?

    static let codes = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
    static let names = ["SU": "Sunday", "MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday"]
    static let order = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]

    static func utcFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter
    }

    /// Reads a rule.
    ///
    /// - Throws: `ToolFailure` saying what is not supported, for a rule outside the set.
    public init(_ text: String) throws {
        var frequency: Frequency?
        var interval = 1
        var weekdays: [String] = []
        var monthDay: Int?
        var until: Date?
        var count: Int?
        let parts = text.trimmingCharacters(in: .whitespaces).uppercased().split(separator: ";")
        guard !parts.isEmpty, parts.count <= 8 else { throw ToolFailure("\"\(text)\" isn't a repeat I can use; say it as: every Monday, every 2 weeks on Friday, every weekday until 20 December.") }
        for part in parts {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw ToolFailure("\"\(text)\" isn't a repeat I can use (\(part)).") }
            switch pair[0] {
            case "FREQ":
                guard let value = Frequency(rawValue: pair[1]) else { throw ToolFailure("Events can repeat daily, weekly, monthly or yearly, not \(pair[1].lowercased()).") }
                frequency = value
            case "INTERVAL":
                guard let value = Int(pair[1]), (1...366).contains(value) else { throw ToolFailure("A repeat's interval must be from 1 to 366.") }
                interval = value
            case "BYDAY":
                weekdays = pair[1].split(separator: ",").map(String.init)
                guard !weekdays.isEmpty, weekdays.allSatisfy(Self.codes.contains) else {
                    throw ToolFailure("I can repeat on weekdays (MO to SU), not on \(pair[1]) (such as \"the second Monday\").")
                }
            case "BYMONTHDAY":
                guard let value = Int(pair[1]), value != 0, (-31...31).contains(value) else { throw ToolFailure("A day of the month must be 1 to 31, or -1 for the last.") }
                monthDay = value
            case "UNTIL":
                guard let value = Self.utcFormatter().date(from: pair[1]) else { throw ToolFailure("The end of a repeat must be a UTC time such as 20261220T225959Z.") }
                until = value
            case "COUNT":
                guard let value = Int(pair[1]), (1...1000).contains(value) else { throw ToolFailure("A repeat can happen 1 to 1,000 times.") }
                count = value
            default:
                throw ToolFailure("I can't write a repeat with \(pair[0]); say it as: every Monday, every 2 weeks on Friday, on the last day of each month.")
            }
        }
        guard let frequency else { throw ToolFailure("How often should it repeat? Say: every day, every week, every month.") }
        guard until == nil || count == nil else { throw ToolFailure("A repeat ends on a date or after a number of times, not both.") }
        if !weekdays.isEmpty, frequency != .weekly { throw ToolFailure("Weekdays go with a weekly repeat.") }
        if monthDay != nil, frequency != .monthly { throw ToolFailure("A day of the month goes with a monthly repeat.") }
        self.frequency = frequency
        self.interval = interval
        self.weekdays = Self.order.filter(weekdays.contains)
        self.monthDay = monthDay
        self.until = until
        self.count = count
    }

    /// As written to the server, in a fixed order.
    public var text: String {
        var text = "FREQ=\(frequency.rawValue)"
        if interval > 1 { text += ";INTERVAL=\(interval)" }
        if let until { text += ";UNTIL=" + Self.utcFormatter().string(from: until) }
        if let count { text += ";COUNT=\(count)" }
        if !weekdays.isEmpty { text += ";BYDAY=" + weekdays.joined(separator: ",") }
        if let monthDay { text += ";BYMONTHDAY=\(monthDay)" }
        return text
    }

    /// "every Monday", "every 2 weeks on Friday", "every weekday until Sun 20 Dec",
    /// "on the last day of each month, 10 times".
    public func describe(zone: TimeZone, now: Date) -> String {
        let unit = ["DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"][frequency.rawValue]!
        let every = interval == 1 ? "every \(unit)" : interval == 2 ? "every other \(unit)" : "every \(interval) \(unit)s"
        var words: String
        if weekdays == ["MO", "TU", "WE", "TH", "FR"], interval == 1 {
            words = "every weekday"
        } else if !weekdays.isEmpty {
            let names = weekdays.compactMap { Self.names[$0] }
            let list = names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " and " + names.last!
            words = interval == 1 ? "every \(list)" : "\(every) on \(list)"
        } else if let monthDay {
            let day = monthDay == -1 ? "the last day" : monthDay < 0 ? "\(-monthDay) days before the end" : "the \(Self.ordinal(monthDay))"
            words = "on \(day) of " + (interval == 1 ? "each month" : every + "s").replacingOccurrences(of: "monthss", with: "months")
        } else {
            words = every
        }
        if let until {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = zone
            formatter.dateFormat = calendar.component(.year, from: until) == calendar.component(.year, from: now) ? "EEE d MMM" : "EEE d MMM yyyy"
            words += " until " + formatter.string(from: until)
        }
        if let count { words += count == 1 ? ", once" : ", \(count) times" }
        return words
    }

    static func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : [1: "st", 2: "nd", 3: "rd"][n % 10] ?? "th"
        return "\(n)\(suffix)"
    }

    /// The starts of the occurrences in [from, to), for a series that starts at `start` (its
    /// time of day in `zone`), at most `limit`.
    public func occurrences(start: Date, from: Date, to: Date, zone: TimeZone, limit: Int = 100) -> [Date] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        calendar.firstWeekday = 2
        let hour = calendar.component(.hour, from: start)
        let minute = calendar.component(.minute, from: start)
        let first = calendar.startOfDay(for: start)
        let startWeekday = Self.codes[calendar.component(.weekday, from: start) - 1]
        let startDay = calendar.component(.day, from: start)
        let startWeek = calendar.dateInterval(of: .weekOfYear, for: start)?.start ?? first
        var found: [Date] = []
        var counted = 0
        var day = first
        // Day by day from the series' first: a rule of years is at most a few thousand steps.
        for _ in 0..<(366 * 30) {
            guard let at = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day) else { break }
            if at >= to || (until.map { at > $0 } ?? false) || (count.map { counted >= $0 } ?? false) { break }
            if matches(day, calendar: calendar, first: first, startWeek: startWeek, startWeekday: startWeekday, startDay: startDay), at >= start {
                counted += 1
                if at >= from {
                    found.append(at)
                    if found.count >= limit { break }
                }
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { break }
            day = next
        }
        return found
    }

    private func matches(_ day: Date, calendar: Calendar, first: Date, startWeek: Date, startWeekday: String, startDay: Int) -> Bool {
        let weekday = Self.codes[calendar.component(.weekday, from: day) - 1]
        let dayOfMonth = calendar.component(.day, from: day)
        switch frequency {
        case .daily:
            let days = calendar.dateComponents([.day], from: first, to: day).day ?? 0
            return days % interval == 0
        case .weekly:
            let week = calendar.dateInterval(of: .weekOfYear, for: day)?.start ?? day
            let weeks = (calendar.dateComponents([.day], from: startWeek, to: week).day ?? 0) / 7
            return weeks % interval == 0 && (weekdays.isEmpty ? weekday == startWeekday : weekdays.contains(weekday))
        case .monthly:
            let months = (calendar.component(.year, from: day) - calendar.component(.year, from: first)) * 12
                + calendar.component(.month, from: day) - calendar.component(.month, from: first)
            guard months % interval == 0 else { return false }
            let length = calendar.range(of: .day, in: .month, for: day)?.count ?? 31
            let wanted = monthDay.map { $0 > 0 ? $0 : length + 1 + $0 } ?? startDay
            return dayOfMonth == wanted
        case .yearly:
            let years = calendar.component(.year, from: day) - calendar.component(.year, from: first)
            return years % interval == 0 && calendar.component(.month, from: day) == calendar.component(.month, from: first) && dayOfMonth == startDay
        }
    }
}
