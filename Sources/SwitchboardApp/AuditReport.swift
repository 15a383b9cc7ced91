public import Foundation
public import SwitchboardModel
import SwitchboardStorage

/// Reading the audit trail for people: JSON lines or a readable table, and verification.
public enum AuditReport {
    /// One record as a JSON object (one line).
    public static func jsonLine(_ record: AuditRecord) -> String {
        let entry = record.entry
        var object: [String: JSONValue] = [
            "seq": .int(record.sequence),
            "at": .string(timestamp(entry.at)),
            "call_id": .string(entry.callID.rawValue),
            "person": .string(entry.person.rawValue),
            "channel": .string(entry.conversation.channel.rawValue),
            "conversation": .string(entry.conversation.conversation.rawValue),
            "tool": .string(entry.tool),
            "risk": .string(entry.risk.description),
            "status": .string(entry.status.rawValue),
            "arguments": entry.arguments,
            "summary": .string(entry.summary),
            "hash": .string(record.hash),
        ]
        if let correlation = entry.correlationID { object["correlation_id"] = .string(correlation.rawValue) }
        return JSONValue.object(object).canonicalText
    }

    /// One record as a readable line.
    public static func textLine(_ record: AuditRecord) -> String {
        let entry = record.entry
        return "\(record.sequence)\t\(timestamp(entry.at))\t\(entry.person)\t\(entry.tool)\t\(entry.status.rawValue)\t\(entry.risk)\t\(entry.summary.firstLineOnly)"
    }

    /// ISO 8601 with milliseconds, UTC.
    public static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
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
