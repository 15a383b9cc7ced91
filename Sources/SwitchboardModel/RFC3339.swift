#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// Times as Switchboard writes them for people and programs: RFC 3339 in UTC with
/// milliseconds (`2026-11-29T14:05:06.789Z`).
public enum RFC3339 {
    /// The time as text.
    public static func format(_ date: Date) -> String {
        // By hand: Foundation's format styles cost more than the rest of a response.
        // Whole microseconds first (what the store keeps), then milliseconds rounded down.
        let microseconds = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var (whole, fraction) = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
        if fraction < 0 {
            whole -= 1
            fraction += 1_000_000
        }
        fraction /= 1000
        var seconds = time_t(whole)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
        }
        let year = padded(Int64(parts.tm_year) + 1900, 4)
        let month = padded(Int64(parts.tm_mon) + 1, 2)
        let day = padded(Int64(parts.tm_mday), 2)
        let time = "\(padded(Int64(parts.tm_hour), 2)):\(padded(Int64(parts.tm_min), 2)):\(padded(Int64(parts.tm_sec), 2))"
        return "\(year)-\(month)-\(day)T\(time).\(padded(fraction, 3))Z"
    }

    /// A time written in RFC 3339, with or without fractional seconds.
    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
