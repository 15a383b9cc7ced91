import Foundation

/// A repeat said in a message ("every Monday at 9", "every 2 weeks on Friday", "on the last day
/// of each month", "every weekday until 20 December"), as an RRULE (RFC 5545) with the first
/// occurrence from now.
struct RecurrenceMention: Hashable, Sendable {
    /// `FREQ=WEEKLY;BYDAY=MO`, with `UNTIL` in UTC when an end was said.
    var rule: String
    /// The hour and minute said ("at 9", "at 14:30"), if any.
    var time: (hour: Int, minute: Int)?
    /// The token positions it covers.
    var tokens: Set<Int>

    static func == (a: RecurrenceMention, b: RecurrenceMention) -> Bool {
        a.rule == b.rule && a.time?.hour == b.time?.hour && a.time?.minute == b.time?.minute && a.tokens == b.tokens
    }

    func hash(into hasher: inout Hasher) { hasher.combine(rule) }

    /// The first day, on or after the day of `now`, at `hour:minute` and after `now`, that the
    /// rule allows (its interval counts from that first one).
    func first(hour: Int, minute: Int, zone: TimeZone, now: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = Dictionary(uniqueKeysWithValues: rule.split(separator: ";").compactMap { part -> (String, String)? in
            let pair = part.split(separator: "=", maxSplits: 1)
            return pair.count == 2 ? (String(pair[0]), String(pair[1])) : nil
        })
        let days = parts["BYDAY"].map { Set($0.split(separator: ",").map(String.init)) }
        let monthDay = parts["BYMONTHDAY"].flatMap { Int($0) }
        let codes = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
        let today = calendar.startOfDay(for: now)
        for offset in 0..<400 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: today),
                  let at = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day), at > now
            else { continue }
            if let days, !days.contains(codes[calendar.component(.weekday, from: day) - 1]) { continue }
            if let monthDay {
                let dayOfMonth = calendar.component(.day, from: day)
                if monthDay > 0, dayOfMonth != monthDay { continue }
                if monthDay < 0, let range = calendar.range(of: .day, in: .month, for: day), dayOfMonth != range.count + 1 + monthDay { continue }
            }
            return at
        }
        return nil
    }
}

enum RecurrenceReader {
    static let weekdayCodes: [String: String] = [
        "monday": "MO", "mondays": "MO", "mon": "MO", "tuesday": "TU", "tuesdays": "TU", "tue": "TU", "tues": "TU",
        "wednesday": "WE", "wednesdays": "WE", "wed": "WE", "thursday": "TH", "thursdays": "TH", "thu": "TH", "thurs": "TH",
        "friday": "FR", "fridays": "FR", "fri": "FR", "saturday": "SA", "saturdays": "SA", "sat": "SA",
        "sunday": "SU", "sundays": "SU", "sun": "SU",
    ]
    static let plainWeekdays: Set<String> = ["mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays"]
    static let units: [String: String] = [
        "day": "DAILY", "days": "DAILY", "week": "WEEKLY", "weeks": "WEEKLY", "month": "MONTHLY", "months": "MONTHLY",
        "year": "YEARLY", "years": "YEARLY",
    ]

    /// The repeat in the tokens, if there is one.
    static func read(_ tokens: [Token], zone: TimeZone, now: Date) -> RecurrenceMention? {
        let w = tokens.map(\.lower)
        var used = Set<Int>()
        var freq: String?
        var interval = 1
        var byDay: [String] = []
        var monthDay: Int?

        func word(_ i: Int) -> String? { i >= 0 && i < w.count ? w[i] : nil }
        /// Weekday names from i on ("monday and thursday", "mon, wed"); the index after them.
        func weekdays(from start: Int) -> Int {
            var i = start
            while let current = word(i) {
                if let code = weekdayCodes[current] {
                    if !byDay.contains(code) { byDay.append(code) }
                    used.insert(i)
                } else if current == "and" || current == "&", word(i + 1).flatMap({ weekdayCodes[$0] }) != nil {
                    used.insert(i)
                } else {
                    break
                }
                i += 1
            }
            return i
        }

        // "on the last day of each month", "last day of the month".
        if let last = w.indices.first(where: { w[$0] == "last" && word($0 + 1) == "day" && word($0 + 2) == "of" }),
           let month = (last + 3..<min(w.count, last + 6)).first(where: { w[$0] == "month" })
        {
            freq = "MONTHLY"
            monthDay = -1
            used.formUnion(last...month)
            if word(last - 1) == "the" { used.insert(last - 1) }
            if word(last - 2) == "on" { used.insert(last - 2) }
        }
        // "on the 15th of every month", "every month on the 15th".
        if freq == nil, let ordinalAt = w.indices.first(where: { DateParser.ordinal(w[$0]) != nil && (w[$0].hasSuffix("st") || w[$0].hasSuffix("nd") || w[$0].hasSuffix("rd") || w[$0].hasSuffix("th")) }),
           let day = DateParser.ordinal(w[ordinalAt]), (1...31).contains(day),
           let month = (ordinalAt + 1..<min(w.count, ordinalAt + 4)).first(where: { w[$0] == "month" }) ?? (max(0, ordinalAt - 4)..<ordinalAt).first(where: { w[$0] == "month" }),
           ["every", "each"].contains(word(month - 1) ?? "") || ["every", "each"].contains(word(month - 2) ?? "")
        {
            freq = "MONTHLY"
            monthDay = day
            used.formUnion(min(ordinalAt, month - 1)...max(ordinalAt, month))
            if word(min(ordinalAt, month - 1) - 1) == "on" || word(min(ordinalAt, month - 1) - 1) == "the" { used.insert(min(ordinalAt, month - 1) - 1) }
            if word(ordinalAt - 1) == "the" { used.insert(ordinalAt - 1) }
            if word(ordinalAt - 2) == "on" { used.insert(ordinalAt - 2) }
        }
        if freq == nil {
            for (i, current) in w.enumerated() {
                // "daily", "weekly" … are left alone: "the weekly review tomorrow at 10" is one event.
                switch current {
                case "weekdays" where word(i - 1) == "on" || word(i - 1) == "every":
                    freq = "WEEKLY"
                    byDay = ["MO", "TU", "WE", "TH", "FR"]
                    if word(i - 1) == "on" { used.insert(i - 1) }
                case "every", "each":
                    var j = i + 1
                    if let next = word(j), let n = Int(next) ?? DateParser.numberWords[next].flatMap({ $0 > 1 ? $0 : nil }) {
                        interval = n
                        used.insert(j)
                        j += 1
                    } else if word(j) == "other" {
                        interval = 2
                        used.insert(j)
                        j += 1
                    }
                    guard let unitWord = word(j) else { continue }
                    if unitWord == "weekday" || unitWord == "weekdays" || (unitWord == "working" && word(j + 1) == "day") {
                        freq = "WEEKLY"
                        byDay = ["MO", "TU", "WE", "TH", "FR"]
                        used.insert(j)
                        if unitWord == "working" { used.insert(j + 1) }
                    } else if let unit = units[unitWord] {
                        freq = unit
                        used.insert(j)
                        // "every 2 weeks on friday"
                        if unit == "WEEKLY", word(j + 1) == "on", word(j + 2).flatMap({ weekdayCodes[$0] }) != nil {
                            used.insert(j + 1)
                            _ = weekdays(from: j + 2)
                        }
                    } else if weekdayCodes[unitWord] != nil {
                        freq = "WEEKLY"
                        _ = weekdays(from: j)
                    } else {
                        continue
                    }
                    used.insert(i)
                default:
                    // "on mondays"
                    if plainWeekdays.contains(current), word(i - 1) == "on" {
                        freq = "WEEKLY"
                        used.insert(i - 1)
                        _ = weekdays(from: i)
                    }
                }
                if freq != nil {
                    if ["weekdays"].contains(current) { used.insert(i) }
                    break
                }
            }
        }
        guard let freq else { return nil }
        // "every week on tuesday and thursday".
        if freq == "WEEKLY", byDay.isEmpty, let on = w.indices.first(where: { w[$0] == "on" && word($0 + 1).flatMap({ weekdayCodes[$0] }) != nil }) {
            used.insert(on)
            _ = weekdays(from: on + 1)
        }
        var rule = "FREQ=\(freq)"
        if interval > 1 { rule += ";INTERVAL=\(interval)" }
        if !byDay.isEmpty { rule += ";BYDAY=" + byDay.joined(separator: ",") }
        if let monthDay { rule += ";BYMONTHDAY=\(monthDay)" }

        // "until 20 december", "till friday".
        if let until = w.indices.first(where: { ["until", "till", "til", "through"].contains(w[$0]) }), until + 1 < tokens.count {
            let end = min(tokens.count, until + 4)
            let slice = Array(tokens[(until + 1)..<end])
            if case .found(let mention) = DateParser(zone: zone, now: now).scan(slice) {
                var calendar = Calendar(identifier: .gregorian)
                calendar.timeZone = zone
                let lastDay = calendar.startOfDay(for: mention.date).addingTimeInterval(86399)
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "UTC")
                formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
                rule += ";UNTIL=" + formatter.string(from: lastDay)
                used.insert(until)
                used.formUnion(mention.tokens.map { $0 + until + 1 })
            }
        } else if let forAt = w.indices.first(where: { w[$0] == "for" }), let count = word(forAt + 1).flatMap({ Int($0) ?? DateParser.numberWords[$0] }), let unit = word(forAt + 2),
                  ["times", "occurrences"].contains(unit) || units[unit] == freq
        {
            rule += ";COUNT=\(count)"
            used.formUnion([forAt, forAt + 1, forAt + 2])
        }

        // "at 9", "at 9:30am", "at 14:30", "at noon".
        var time: (Int, Int)?
        if let at = w.indices.first(where: { w[$0] == "at" && word($0 + 1).map(isTime) == true }) {
            var text = w[at + 1]
            var covered = [at, at + 1]
            if let suffix = word(at + 2), suffix == "am" || suffix == "pm" {
                text += suffix
                covered.append(at + 2)
            }
            if let parsed = parseTime(text) {
                time = parsed
                used.formUnion(covered)
            }
        }
        return RecurrenceMention(rule: rule, time: time, tokens: used)
    }

    static func isTime(_ word: String) -> Bool { parseTime(word) != nil || word.allSatisfy(\.isNumber) }

    /// "9", "9am", "9:30", "9.30pm", "14:30", "noon", "midday".
    static func parseTime(_ word: String) -> (Int, Int)? {
        if word == "noon" || word == "midday" { return (12, 0) }
        var text = word
        var pm = false
        var am = false
        if text.hasSuffix("pm") { pm = true; text.removeLast(2) } else if text.hasSuffix("am") { am = true; text.removeLast(2) }
        let pieces = text.split(whereSeparator: { $0 == ":" || $0 == "." }).map(String.init)
        guard (1...2).contains(pieces.count), let hour = Int(pieces[0]) else { return nil }
        let minute = pieces.count == 2 ? Int(pieces[1]) : 0
        guard let minute, (0..<60).contains(minute), (0...23).contains(hour) else { return nil }
        if pm, hour < 12 { return (hour + 12, minute) }
        if am, hour == 12 { return (0, minute) }
        // As the date parser reads it: "at 3" is the afternoon unless said otherwise.
        if !am, !pm, pieces.count == 1, (1...6).contains(hour) { return (hour + 12, minute) }
        return (hour, minute)
    }
}
