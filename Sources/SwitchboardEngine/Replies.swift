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
            "This conversation is end-to-end encrypted, and encryption is turned off for me here. Talk to me in an unencrypted room, or ask the operator to set up encryption."
        case .undecryptable:
            "I couldn't decrypt your message: the key to read it never reached me. Please send it again. If this keeps happening, make sure your app shares keys with unverified sessions (or verify mine)."
        case .unencryptedRoom:
            "This room isn't end-to-end encrypted, and I only talk in encrypted rooms. Turn on encryption in the room's settings, or start an encrypted direct chat with me."
        }
    }

    static func help(_ registry: ToolRegistry) -> String {
        var lines = ["Here's what I can do, with a way to ask for each:"]
        var byCategory: [String: [ToolDescriptor]] = [:]
        for descriptor in registry.descriptors { byCategory[descriptor.category, default: []].append(descriptor) }
        for category in byCategory.keys.sorted() {
            let examples = byCategory[category]!.map { descriptor in
                (descriptor.usage ?? descriptor.examples.first).map { "\"\(example($0))\"" } ?? descriptor.summary.lowercased()
            }
            lines.append("• \(category.capitalized): " + examples.joined(separator: " · "))
        }
        lines.append("• Undo: \"undo\" reverts your last change, \"undo 3\" the last three · \"what did you do today\"")
        lines.append("Risky actions wait for you to reply \"yes\" (or \"no\" to cancel).")
        return lines.joined(separator: "\n")
    }

    /// An example request with sample values in its slots.
    static func example(_ template: String) -> String {
        let samples = [
            "text": "buy milk", "query": "milk", "when": "tomorrow at 9", "duration": "an hour", "email": "bob@example.com",
            "name": "Alice", "number": "3", "zone": "Tokyo", "expression": "17% of 240", "room": "!room:example.org",
            "phone": "+44 20 7946 0000", "company": "Acme",
        ]
        var out = template
        for (slot, value) in samples { out = out.replacingOccurrences(of: "{\(slot)}", with: value) }
        return out
    }

    /// What was done for a person in the last 24 hours, from the audit trail: each executed or
    /// undone call, newest first.
    static func history(of person: PersonID, now: Date, registry: ToolRegistry, tx: any StoreReader) throws -> String {
        var query = AuditQuery(person: person, since: now.addingTimeInterval(-86400))
        query.limit = 500
        // What changed something: reads ("list my notes") are in the audit trail, not in this story.
        let records = try tx.auditRecords(query).filter { record in
            (record.entry.status == .executed || record.entry.status == .undone) && registry[record.entry.tool]?.descriptor.effect != .readOnly
        }
        guard !records.isEmpty else { return "I haven't changed anything for you in the last 24 hours." }
        let zone = try tx.preferences(of: person).first { $0.key == "timezone" }?.value.stringValue.flatMap(TimeZone.init(identifier:)) ?? .current
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "EEE HH:mm"
        var lines = ["In the last 24 hours (times in \(zone.identifier)), newest first:"]
        for record in records.reversed().prefix(30) {
            let entry = record.entry
            let verb = entry.status == .undone ? "undid \(entry.tool)" : entry.summary
            lines.append("• \(formatter.string(from: entry.at)) \(entry.tool): \(verb)")
        }
        if records.count > 30 { lines.append("…and \(records.count - 30) earlier.") }
        lines.append("Say \"undo\" to revert the last change, or \"undo 3\" for the last three.")
        return lines.joined(separator: "\n")
    }

    /// A moment as people read it, in their zone: "Mon 30 Nov 09:00 (Europe/Berlin)".
    static func time(_ date: Date, zone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "EEE d MMM HH:mm"
        return "\(formatter.string(from: date)) (\(zone.identifier))"
    }
}
