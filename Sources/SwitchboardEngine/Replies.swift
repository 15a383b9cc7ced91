import Foundation
import SwitchboardModel
import SwitchboardStorage

/// The engine's own sentences.
enum Replies {
    static let notUnderstood = """
        Sorry, I didn't understand that. Say "help" to see what I can do.
        """

    static func unreadable(_ content: UnreadableContent) -> String {
        switch content {
        case .media(let what):
            "I can only read text for now, so I couldn't read \(what). Please write your request as a message."
        case .encrypted:
            "This conversation is end-to-end encrypted, and I can't read encrypted messages yet. Talk to me in an unencrypted room, or ask the operator about encryption support."
        }
    }

    static func help(_ registry: ToolRegistry) -> String {
        var lines = ["Here's what I can do:"]
        let examples: [String: String] = [
            "notes.add": "add a note: buy milk",
            "notes.list": "list my notes",
            "notes.search": "search notes for milk",
            "notes.delete": "delete note 3 · delete all my notes",
        ]
        for descriptor in registry.descriptors {
            let example = examples[descriptor.name].map { " — e.g. \"\($0)\"" } ?? ""
            lines.append("• \(descriptor.summary)\(example)")
        }
        lines.append("• Undo your last change — \"undo\"")
        lines.append("Risky actions wait for you to reply \"yes\" (or \"no\" to cancel).")
        return lines.joined(separator: "\n")
    }

    /// What was done for a person in the last 24 hours, from the audit trail: each executed or
    /// undone call, newest first.
    static func history(of person: PersonID, now: Date, tx: any StoreReader) throws -> String {
        var query = AuditQuery(person: person, since: now.addingTimeInterval(-86400))
        query.limit = 500
        let records = try tx.auditRecords(query).filter { $0.entry.status == .executed || $0.entry.status == .undone }
        guard !records.isEmpty else { return "I haven't done anything for you in the last 24 hours." }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm"
        var lines = ["In the last 24 hours (times in UTC), newest first:"]
        for record in records.reversed().prefix(30) {
            let entry = record.entry
            let verb = entry.status == .undone ? "undid \(entry.tool)" : entry.summary
            lines.append("• \(formatter.string(from: entry.at)) \(entry.tool): \(verb)")
        }
        if records.count > 30 { lines.append("…and \(records.count - 30) earlier.") }
        lines.append("Say \"undo\" to revert the last change, or \"undo 3\" for the last three.")
        return lines.joined(separator: "\n")
    }
}
