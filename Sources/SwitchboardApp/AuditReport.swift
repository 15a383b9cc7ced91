public import Foundation
public import SwitchboardModel
import SwitchboardStorage

/// Reading the audit trail for people: JSON lines or a readable table, and verification.
public enum AuditReport {
    /// One record as a JSON object (one line), in the shape the HTTP API uses too.
    public static func jsonLine(_ record: AuditRecord) -> String {
        record.jsonValue.canonicalText
    }

    /// One record as a readable line.
    public static func textLine(_ record: AuditRecord) -> String {
        let entry = record.entry
        return "\(record.sequence)\t\(timestamp(entry.at))\t\(entry.person)\t\(entry.tool)\t\(entry.status.rawValue)\t\(entry.risk)\t\(entry.summary.firstLineOnly)"
    }

    /// ISO 8601 with milliseconds, UTC.
    public static func timestamp(_ date: Date) -> String {
        RFC3339.format(date)
    }

    /// Parses `--since`: ISO 8601 (date or date-time), or a duration back from now (`15m`, `2h`, `3d`).
    public static func parseSince(_ text: String, now: Date = Date()) -> Date? {
        let trimmed = text.trimmingWhitespace()
        if let unit = trimmed.last, let amount = Double(trimmed.dropLast()), amount >= 0 {
            let seconds: Double? = switch unit {
            case "s": amount
            case "m": amount * 60
            case "h": amount * 3600
            case "d": amount * 86400
            default: nil
            }
            if let seconds { return now.addingTimeInterval(-seconds) }
        }
        if let date = try? Date(trimmed, strategy: .iso8601) { return date }
        if let date = try? Date(trimmed + "T00:00:00Z", strategy: .iso8601) { return date }
        return nil
    }
}

extension String {
    var firstLineOnly: String { split(separator: "\n", maxSplits: 1).first.map(String.init) ?? self }
}
