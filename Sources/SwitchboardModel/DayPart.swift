// The parts of the day people say instead of a time. The date parser marks a time that came from
// one, so the tool can use the time the person means by it (stated, or learned from the times
// they gave) instead of the assistant's default.

import Foundation

/// A part of the day said instead of a time ("tomorrow morning", "tonight"), which a person may
/// mean differently from the assistant's default.
public enum DayPart: String, Sendable, CaseIterable {
    case morning, afternoon, evening

    /// The part an explicit time of day falls in: 5–12 morning, 12–17 afternoon, 17–23 evening;
    /// the night is none of them.
    public static func of(hour: Int) -> DayPart? {
        switch hour {
        case 5..<12: return .morning
        case 12..<17: return .afternoon
        case 17..<23: return .evening
        default: return nil
        }
    }

    /// "07:30": a time of day as it is stored and shown (what `parseClock` reads).
    public static func clock(hour: Int, minute: Int) -> String {
        String(format: "%02d:%02d", hour, minute)
    }

    /// Reads a time a person says for this part of the day: "7:30", "7", "7am", "8 pm", "19:00".
    /// A bare hour means the part's half of the day ("by evening I mean 8" is 20:00). Nil when
    /// it is no time, or not one in this part.
    public func spokenTime(_ text: String) -> (hour: Int, minute: Int)? {
        var rest = text.lowercased().trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("at ") { rest.removeFirst(3) }
        var meridiem: String?
        for suffix in ["am", "pm", "a.m.", "p.m."] where rest.hasSuffix(suffix) {
            meridiem = String(suffix.prefix(1))
            rest = String(rest.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            break
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let hour = Int(parts[0]), (0..<24).contains(hour) else { return nil }
        let minute = parts.count == 2 ? Int(parts[1]) : 0
        guard let minute, (0..<60).contains(minute), parts.count == 1 || parts[1].count == 2 else { return nil }
        var h = hour
        if let meridiem {
            guard (1...12).contains(hour) else { return nil }
            h = hour % 12 + (meridiem == "p" ? 12 : 0)
        } else if hour < 12, self != .morning, DayPart.of(hour: hour + 12) == self {
            h = hour + 12
        }
        guard DayPart.of(hour: h) == self else { return nil }
        return (h, minute)
    }

    /// Reads "07:30" (as `clock` writes it) back.
    public static func parseClock(_ text: String) -> (hour: Int, minute: Int)? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hour = Int(parts[0]), let minute = Int(parts[1]), (0..<24).contains(hour), (0..<60).contains(minute) else { return nil }
        return (hour, minute)
    }
}
