public import Foundation
public import SwitchboardModel

/// A date or time found in a message, resolved in the person's zone.
public struct DateMention: Hashable, Sendable {
    /// The instant meant (for a day without a time: that day's start).
    public var date: Date
    /// Whether a time of day was said ("at 3pm", "in 2 hours"), not only a day.
    public var hasTime: Bool
    /// For a span ("next week", "this weekend"): its end; nil for a day or an instant.
    public var end: Date?
    /// A second time said with it ("from 3pm to 4pm", "until 5"), for an event's end.
    public var until: Date?
    /// The token positions it covers, to cut it out of the text.
    var tokens: [Int]
    /// The part of the day the time came from ("tomorrow morning", "tonight"), when no clock
    /// time was said: the person may mean another time by it than the default.
    public var dayPart: DayPart?
}

/// What the date scan found.
public enum DateScan: Hashable, Sendable {
    /// No date or time.
    case none
    /// One, resolved.
    case found(DateMention)
    /// A phrase with several readings ("3/4", "next Friday" said on a Friday): ask which.
    case ambiguous(phrase: String, options: [Date])
    /// A date that cannot exist ("31 February").
    case invalid(String)
}

/// Reads English dates and times: "tomorrow at 3pm", "next Friday", "in 2 hours", "on 12 March",
/// "at noon", "3/4", "2026-12-03 14:00", "this weekend", "tonight".
public struct DateParser: Sendable {
    /// The zone the words mean.
    public let zone: TimeZone
    /// Now.
    public let now: Date

    /// Made once: a calendar is costly to set up, and a scan asks it many questions.
    private let calendar: Calendar

    /// Creates a parser for a zone and a moment.
    public init(zone: TimeZone, now: Date) {
        self.zone = zone
        self.now = now
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        calendar.firstWeekday = 2
        self.calendar = calendar
    }

    static let timeWords: Set<String> = ["noon", "midday", "midnight", "morning", "afternoon", "evening"]

    static let months: [String: Int] = [
        "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5, "june": 6,
        "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10,
        "november": 11, "nov": 11, "december": 12, "dec": 12,
    ]
    static let weekdays: [String: Int] = [
        "sunday": 1, "sun": 1, "monday": 2, "mon": 2, "tuesday": 3, "tue": 3, "tues": 3, "wednesday": 4, "wed": 4,
        "thursday": 5, "thu": 5, "thur": 5, "thurs": 5, "friday": 6, "fri": 6, "saturday": 7, "sat": 7,
    ]
    static let units: [String: Int] = [
        "minute": 60, "minutes": 60, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
        "day": 86400, "days": 86400, "week": 604800, "weeks": 604800, "second": 1, "seconds": 1, "sec": 1, "secs": 1,
    ]
    static let numberWords: [String: Int] = [
        "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
        "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45, "sixty": 60,
    ]

    private enum DaySpec { case date(year: Int?, month: Int, day: Int), offset(Int), span(start: Date, end: Date) }

    /// Scans a message for one date and time.
    public func scan(_ text: String) -> DateScan {
        scan(Tokenizer.tokens(text))
    }

    func scan(_ tokens: [Token]) -> DateScan {
        // "this week's", "Friday's": the day without the possessive.
        let words = tokens.map { $0.lower.hasSuffix("'s") || $0.lower.hasSuffix("’s") ? String($0.lower.dropLast(2)) : $0.lower }
        var used: [Int] = []
        var day: DaySpec?
        var times: [(hour: Int, minute: Int, index: [Int])] = []
        var relative: TimeInterval?
        /// Whether a weekday said alone ("Monday", not "this Monday") fell on today.
        var weekdayIsToday = false
        /// The part of the day the first time came from, if it did.
        var firstPart: DayPart?
        var i = 0
        func word(_ k: Int) -> String? { k >= 0 && k < words.count ? words[k] : nil }

        while i < words.count {
            let w = words[i]
            // Relative: "in 2 hours", "in half an hour", "in an hour and a half".
            if w == "in", let next = word(i + 1) {
                if next == "half", word(i + 2) == "an" || word(i + 2) == "a", let unit = word(i + 3), let seconds = Self.units[unit] {
                    relative = Double(seconds) / 2
                    used += [i, i + 1, i + 2, i + 3]
                    i += 4
                    continue
                }
                if let amount = Self.amount(next), let unit = word(i + 2), let seconds = Self.units[unit] {
                    relative = amount * Double(seconds)
                    used += [i, i + 1, i + 2]
                    i += 3
                    continue
                }
                if let (amount, seconds) = Self.glued(next) {
                    relative = amount * Double(seconds)
                    used += [i, i + 1]
                    i += 2
                    continue
                }
            }
            if day == nil {
                if w == "today" { day = .offset(0); used.append(i); i += 1; continue }
                if w == "tonight" {
                    day = .offset(0)
                    if times.isEmpty { firstPart = .evening }
                    times.append((20, 0, []))
                    used.append(i)
                    i += 1
                    continue
                }
                if ["tomorrow", "tmrw", "tomorow", "tommorow", "tommorrow", "tmr", "tmw"].contains(w) {
                    if word(i - 1) == "after", word(i - 2) == "day", word(i - 3) == "the" {
                        day = .offset(2)
                        used += [i - 3, i - 2, i - 1, i]
                    } else {
                        day = .offset(1)
                        used.append(i)
                    }
                    i += 1
                    continue
                }
                if w == "yesterday" { day = .offset(-1); used.append(i); i += 1; continue }
                if let weekday = Self.weekdays[w], w.count > 4 || ["on", "this", "next", "coming", "by", "until", "till", "before", "from"].contains(word(i - 1) ?? "")
                    || word(i + 1) == "at" || word(i + 1)?.first?.isNumber == true {
                    // A short form ("sat", "sun", "wed") is a day only beside a preposition or a
                    // time: "I sat down" is no date.
                    var start = i
                    var next = false
                    var this = false
                    // "on", "this", "next" and "coming" belong to the date; "by Friday" keeps its "by".
                    if let before = word(i - 1), ["on", "this", "next", "coming"].contains(before) {
                        this = before == "this"
                        next = before == "next"
                        start = i - 1
                        if before == "next" || before == "this", word(i - 2) == "on" { start = i - 2 }
                    }
                    let today = calendar.component(.weekday, from: now)
                    let ahead = (weekday - today + 7) % 7
                    if ahead == 0 && next {
                        let phrase = tokens[start...i].map(\.text).joined(separator: " ")
                        return .ambiguous(phrase: phrase, options: [dayStart(offset: 7), dayStart(offset: 14)])
                    }
                    weekdayIsToday = ahead == 0 && !this
                    day = .offset(ahead)
                    used += Array(start...i)
                    i += 1
                    continue
                }
                if (w == "week" || w == "weekend" || w == "month"), let before = word(i - 1), before == "next" || before == "this" {
                    if let span = span(w, next: before == "next") {
                        day = span
                        used += [i - 1, i]
                        if word(i - 2) == "for" || word(i - 2) == "of" { used.append(i - 2) }
                        i += 1
                        continue
                    }
                }
                if w == "weekend", let span = span("weekend", next: false) {
                    day = span
                    used.append(i)
                    if word(i - 1) == "the" { used.append(i - 1) }
                    i += 1
                    continue
                }
                // "12 march", "12th of march", "march 12", "march 12th", "2026-12-03", "3/4".
                if let dayNumber = Self.ordinal(w), dayNumber >= 1, dayNumber <= 31 {
                    var k = i + 1
                    if word(k) == "of" { k += 1 }
                    if let m = word(k).flatMap({ Self.months[$0] }) {
                        var year: Int?
                        var last = k
                        if let y = word(k + 1).flatMap(Int.init), y >= 1900, y < 3000 { year = y; last = k + 1 }
                        day = .date(year: year, month: m, day: dayNumber)
                        used += Array(i...last)
                        if word(i - 1) == "on" { used.append(i - 1) }
                        if word(i - 1) == "the", word(i - 2) == "on" { used += [i - 2, i - 1] }
                        i = last + 1
                        continue
                    }
                }
                if let m = Self.months[w], w != "may" || Self.ordinal(word(i + 1) ?? "") != nil, let dayNumber = word(i + 1).flatMap(Self.ordinal), dayNumber <= 31 {
                    var year: Int?
                    var last = i + 1
                    if let y = word(i + 2).flatMap(Int.init), y >= 1900, y < 3000 { year = y; last = i + 2 }
                    day = .date(year: year, month: m, day: dayNumber)
                    used += Array(i...last)
                    if word(i - 1) == "on" { used.append(i - 1) }
                    i = last + 1
                    continue
                }
                // A month alone after a preposition: "in March", "for december": that whole month,
                // the next one to come ("march" and "may" alone are verbs too).
                if let m = Self.months[w], ["in", "for", "during", "of"].contains(word(i - 1) ?? ""),
                   word(i + 1).flatMap(Self.ordinal) == nil, word(i - 1).flatMap(Self.ordinal) == nil {
                    let thisMonth = calendar.component(.month, from: now)
                    var year = calendar.component(.year, from: now)
                    if m < thisMonth { year += 1 }
                    var start = calendar.date(from: DateComponents(year: year, month: m, day: 1))!
                    if m == thisMonth { start = calendar.startOfDay(for: now) }
                    let end = calendar.date(from: DateComponents(year: year, month: m + 1, day: 1))!
                    day = .span(start: start, end: end)
                    used.append(i)
                    if let before = word(i - 1), ["in", "for", "during", "of"].contains(before) { used.append(i - 1) }
                    i += 1
                    continue
                }
                if let iso = Self.isoDate(w) {
                    day = .date(year: iso.0, month: iso.1, day: iso.2)
                    used.append(i)
                    if word(i - 1) == "on" { used.append(i - 1) }
                    i += 1
                    continue
                }
                if let (a, b, year) = Self.slashDate(w) {
                    if a != b, a <= 12, b <= 12 {
                        // Day/month or month/day: both readings exist.
                        guard let first = resolve(year: year, month: b, day: a), let second = resolve(year: year, month: a, day: b) else {
                            return .invalid(tokens[i].text)
                        }
                        return .ambiguous(phrase: tokens[i].text, options: [first, second])
                    }
                    let (dayNumber, month) = a > 12 ? (a, b) : (b, a)
                    day = .date(year: year, month: month, day: dayNumber)
                    used.append(i)
                    if word(i - 1) == "on" { used.append(i - 1) }
                    i += 1
                    continue
                }
            }
            // Times.
            if let time = time(at: i, words: words) {
                if times.isEmpty { firstPart = DayPart(rawValue: words[i]) }
                times.append((time.hour, time.minute, time.tokens))
                used += time.tokens
                i = (time.tokens.max() ?? i) + 1
                continue
            }
            i += 1
        }

        if let relative {
            // Whole days and weeks by the calendar, so "in 2 days" keeps the time of day across
            // a daylight-saving change.
            var date = now.addingTimeInterval(relative)
            if relative >= 86400, relative.truncatingRemainder(dividingBy: 86400) == 0,
               let byCalendar = calendar.date(byAdding: .day, value: Int(relative / 86400), to: now) {
                date = byCalendar
            }
            return .found(DateMention(date: date, hasTime: true, end: nil, until: nil, tokens: used.sorted()))
        }
        guard day != nil || !times.isEmpty else { return .none }

        var start: Date
        var end: Date?
        switch day {
        case .date(let year, let month, let dayNumber):
            guard let resolved = resolve(year: year, month: month, day: dayNumber) else {
                return .invalid(tokens[used.first ?? 0].text)
            }
            start = resolved
        case .offset(let days):
            start = dayStart(offset: days)
        case .span(let from, let to):
            start = from
            end = to
        case nil:
            start = dayStart(offset: 0)
        }
        var hasTime = false
        var until: Date?
        if let first = times.first {
            hasTime = true
            end = nil
            start = calendar.date(bySettingHour: first.hour, minute: first.minute, second: 0, of: start) ?? start
            // A bare time that has passed today means tomorrow; "Monday at 9" said on Monday at
            // 10 means next Monday.
            if day == nil, start <= now { start = calendar.date(byAdding: .day, value: 1, to: start) ?? start }
            if weekdayIsToday, start <= now { start = calendar.date(byAdding: .day, value: 7, to: start) ?? start }
            if times.count > 1 {
                let second = times[1]
                var later = calendar.date(bySettingHour: second.hour, minute: second.minute, second: 0, of: start) ?? start
                if later <= start, second.hour < 12, let pm = calendar.date(byAdding: .hour, value: 12, to: later), pm > start { later = pm }
                until = later
            }
        }
        return .found(DateMention(date: start, hasTime: hasTime, end: end, until: until, tokens: Array(Set(used)).sorted(), dayPart: hasTime ? firstPart : nil))
    }

    /// A time of day at token `i`: "3pm", "3 pm", "15:30", "at 9", "noon", "9:30am", "morning".
    private func time(at i: Int, words: [String]) -> (hour: Int, minute: Int, tokens: [Int])? {
        let w = words[i]
        // Most words are no time: only digits or the few time words can start one.
        guard w.first?.isNumber == true || Self.timeWords.contains(w) else { return nil }
        let previous = i > 0 ? words[i - 1] : ""
        let lead = ["at", "by", "@", "from", "until", "till", "til", "to", "around"].contains(previous) ? [i - 1] : []
        switch w {
        case "noon", "midday": return (12, 0, lead + [i])
        case "midnight": return (23, 59, lead + [i])
        case "morning" where ["this", "in", "the", "tomorrow"].contains(previous): return (9, 0, (previous == "tomorrow" ? [] : [i - 1]) + [i])
        case "afternoon" where ["this", "in", "the", "tomorrow"].contains(previous): return (15, 0, (previous == "tomorrow" ? [] : [i - 1]) + [i])
        case "evening" where ["this", "in", "the", "tomorrow"].contains(previous): return (19, 0, (previous == "tomorrow" ? [] : [i - 1]) + [i])
        default: break
        }
        var text = w
        var tokens = [i]
        var meridiem: String?
        for suffix in ["am", "pm", "a.m", "p.m", "a.m.", "p.m."] where text.hasSuffix(suffix) && text.count > suffix.count {
            meridiem = suffix.hasPrefix("a") ? "am" : "pm"
            text = String(text.dropLast(suffix.count))
            break
        }
        if meridiem == nil, i + 1 < words.count, ["am", "pm", "a.m", "p.m", "a.m.", "p.m."].contains(words[i + 1]) {
            meridiem = words[i + 1].hasPrefix("a") ? "am" : "pm"
            tokens.append(i + 1)
        }
        if text.hasSuffix("h"), text.count > 1 { text.removeLast() }
        var hour: Int
        var minute = 0
        if text.contains(":" as Character) || text.contains("." as Character) && meridiem != nil {
            let parts = text.split(whereSeparator: { $0 == ":" || $0 == "." })
            guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), parts[1].count == 2, (0...23).contains(h), (0...59).contains(m) else { return nil }
            hour = h
            minute = m
        } else {
            guard let h = Int(text), (0...23).contains(h) else { return nil }
            // A bare number is a time only after "at"/"by"… or with am/pm or "o'clock".
            let oclock = i + 1 < words.count && (words[i + 1] == "o'clock" || words[i + 1] == "oclock")
            guard meridiem != nil || !lead.isEmpty || oclock else { return nil }
            if oclock { tokens.append(i + 1) }
            hour = h
        }
        if let meridiem {
            guard (1...12).contains(hour) else { return nil }
            if meridiem == "pm", hour < 12 { hour += 12 }
            if meridiem == "am", hour == 12 { hour = 0 }
        } else if !text.contains(":" as Character), (1...6).contains(hour) {
            // "at 3" means the afternoon; nobody books 3 in the morning without saying so.
            hour += 12
        }
        return (hour, minute, lead + tokens)
    }

    private func dayStart(offset: Int) -> Date {
        calendar.date(byAdding: .day, value: offset, to: calendar.startOfDay(for: now)) ?? now
    }

    private func span(_ unit: String, next: Bool) -> DaySpec? {
        let today = calendar.startOfDay(for: now)
        switch unit {
        case "week":
            guard let thisWeek = calendar.dateInterval(of: .weekOfYear, for: today) else { return nil }
            let start = next ? thisWeek.end : today
            return .span(start: start, end: next ? calendar.date(byAdding: .day, value: 7, to: start)! : thisWeek.end)
        case "month":
            guard let thisMonth = calendar.dateInterval(of: .month, for: today) else { return nil }
            if next, let following = calendar.dateInterval(of: .month, for: thisMonth.end) {
                return .span(start: following.start, end: following.end)
            }
            return .span(start: today, end: thisMonth.end)
        case "weekend":
            let weekday = calendar.component(.weekday, from: today)
            var ahead = (7 - weekday + 7) % 7
            if weekday == 1 { ahead = -1 }
            if next { ahead += 7 }
            let saturday = calendar.date(byAdding: .day, value: ahead, to: today)!
            return .span(start: max(saturday, today), end: calendar.date(byAdding: .day, value: 2, to: saturday)!)
        default:
            return nil
        }
    }

    /// A calendar date; without a year, the next one from today. Nil when it cannot exist.
    private func resolve(year: Int?, month: Int, day: Int) -> Date? {
        let today = calendar.startOfDay(for: now)
        var components = DateComponents(year: year ?? calendar.component(.year, from: today), month: month, day: day)
        guard let date = calendar.date(from: components), calendar.component(.day, from: date) == day else {
            // No such day this year; without a year, a later year may have it (29 February).
            guard year == nil else { return nil }
            for _ in 0..<8 {
                components.year! += 1
                if let next = calendar.date(from: components), calendar.component(.day, from: next) == day { return next }
            }
            return nil
        }
        guard year == nil, date < today else { return date }
        // The next year that has this day (29 February: up to eight years on).
        for _ in 0..<8 {
            components.year! += 1
            if let next = calendar.date(from: components), calendar.component(.day, from: next) == day { return next }
        }
        return nil
    }

    static func amount(_ word: String) -> Double? {
        if let value = Double(word), value > 0, value < 100_000 { return value }
        return numberWords[word].map(Double.init)
    }

    /// "2h", "30min", "90m".
    static func glued(_ word: String) -> (Double, Int)? {
        guard let split = word.firstIndex(where: { !$0.isNumber && $0 != "." }), split > word.startIndex,
              let amount = Double(word[..<split]), amount > 0, amount < 100_000 else { return nil }
        let unit = String(word[split...])
        if unit == "m" { return (amount, 60) }
        return units[unit].map { (amount, $0) }
    }

    static func ordinal(_ word: String) -> Int? {
        var digits = word
        for suffix in ["st", "nd", "rd", "th"] where digits.hasSuffix(suffix) { digits = String(digits.dropLast(2)) }
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), digits.count <= 2 else { return nil }
        return Int(digits)
    }

    static func isoDate(_ word: String) -> (Int, Int, Int)? {
        let parts = word.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), (1...31).contains(d) else { return nil }
        return (y, m, d)
    }

    static func slashDate(_ word: String) -> (Int, Int, Int?)? {
        let parts = word.split(separator: "/")
        guard parts.count == 2 || parts.count == 3, let a = Int(parts[0]), let b = Int(parts[1]), (1...31).contains(a), (1...31).contains(b) else { return nil }
        guard a <= 12 || b <= 12 else { return nil }
        var year: Int?
        if parts.count == 3 {
            guard let y = Int(parts[2]) else { return nil }
            year = y < 100 ? 2000 + y : y
        }
        return (a, b, year)
    }
}

/// Durations: "for 2 hours", "for an hour", "for 30 minutes", "for 90 min".
enum DurationParser {
    static func scan(_ tokens: [Token]) -> (seconds: Int, tokens: [Int])? {
        let words = tokens.map(\.lower)
        for i in words.indices where words[i] == "for" {
            guard i + 1 < words.count else { continue }
            if words[i + 1] == "half", i + 3 < words.count, words[i + 2] == "an" || words[i + 2] == "a", let unit = DateParser.units[words[i + 3]] {
                return (unit / 2, [i, i + 1, i + 2, i + 3])
            }
            if let amount = DateParser.amount(words[i + 1]), i + 2 < words.count, let unit = DateParser.units[words[i + 2]] {
                return (Int(amount * Double(unit)), [i, i + 1, i + 2])
            }
            if let (amount, unit) = DateParser.glued(words[i + 1]) {
                return (Int(amount * Double(unit)), [i, i + 1])
            }
        }
        return nil
    }
}
