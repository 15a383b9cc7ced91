// What a model sees of a conversation: a rolling summary of the older part and the recent
// messages verbatim. The summary is stored (records of kind `llm.summary`, one per
// conversation) and refreshed when messages leave the verbatim window; the full history stays
// in the inbox and outbox. Before a summary replaces history, a mechanical check makes sure it
// still holds what the conversation depends on.

public import Foundation
public import SwitchboardModel
import SwitchboardStorage

/// One line of conversation history.
public struct HistoryLine: Hashable, Sendable {
    /// Who spoke: the person or the assistant.
    public var fromAssistant: Bool
    /// What was said.
    public var text: String
    /// When.
    public var at: Date
    /// The line carries a third party's text (a forwarded email).
    public var untrusted: Bool

    /// Creates a line.
    public init(fromAssistant: Bool, text: String, at: Date, untrusted: Bool = false) {
        self.fromAssistant = fromAssistant
        self.text = text
        self.at = at
        self.untrusted = untrusted
    }
}

/// A conversation's stored summary.
public struct ConversationSummary: Hashable, Sendable {
    /// The summary text.
    public var text: String
    /// The facts it must keep (checked mechanically).
    public var facts: [String]
    /// The last message it covers.
    public var through: Date
    /// It was made from lines that carried a third party's text.
    public var untrusted = false
    /// The record id, once stored.
    var recordID: Int64?
}

/// The facts a summary must keep, found mechanically: numbers (amounts, times, ids), dates
/// and weekdays, email addresses, capitalised names, stated preferences, and the previews of
/// pending confirmations and open tasks.
public enum FactExtractor {
    static let weekdays: Set<String> = [
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow", "yesterday",
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    ]
    static let common: Set<String> = [
        "I", "I'm", "I'll", "I've", "I'd", "The", "A", "An", "And", "But", "Or", "So", "Please", "Thanks", "Thank", "OK", "Ok",
        "Yes", "No", "Hi", "Hello", "Hey", "Can", "Could", "Would", "Will", "What", "When", "Where", "Who", "Why", "How", "Is",
        "Are", "Do", "Does", "Did", "It", "It's", "That", "This", "There", "Here", "You", "Your", "We", "My", "Me", "Sorry",
        "Done", "Added", "Deleted", "Reply", "Nothing", "Got", "Sure", "Also", "Then", "Now", "Note", "Notes", "Task", "Tasks",
    ]

    /// The facts in some text, in order of appearance, without repeats.
    public static func facts(in text: String) -> [String] {
        var found: [String] = []
        var seen = Set<String>()
        func add(_ fact: String) {
            let trimmed = fact.trimmingCharacters(in: CharacterSet(charactersIn: ".,;:!?()[]\"'"))
            guard trimmed.count >= 1, seen.insert(trimmed.lowercased()).inserted else { return }
            found.append(trimmed)
        }
        for sentence in text.split(separator: "\n") {
            let words = sentence.split(separator: " ").map(String.init)
            for (index, word) in words.enumerated() {
                let bare = word.trimmingCharacters(in: CharacterSet(charactersIn: ".,;:!?()[]\"'"))
                if bare.isEmpty { continue }
                if bare.contains("@") && bare.contains(".") { add(bare); continue }
                if bare.contains(where: \.isNumber) { add(bare); continue }
                if weekdays.contains(bare.lowercased()) { add(bare); continue }
                if let first = bare.first, first.isUppercase, index > 0, !common.contains(bare),
                   !(words[index - 1].last.map { ".!?".contains($0) } ?? false) {
                    add(bare)
                }
            }
            let lower = sentence.lowercased()
            for marker in ["i prefer ", "i like ", "i don't like ", "my name is ", "call me ", "i'm allergic to ", "i am allergic to "] {
                if let range = lower.range(of: marker) {
                    add(String(sentence[range.lowerBound...].prefix(80)))
                }
            }
        }
        return found
    }

    /// The facts of `required` that `summary` lost (compared ignoring case).
    public static func missing(_ required: [String], in summary: String) -> [String] {
        let haystack = summary.lowercased()
        return required.filter { !haystack.contains($0.lowercased()) }
    }
}

/// Reads and keeps a conversation's memory.
public struct ConversationMemory: Sendable {
    static let kind = "llm.summary"
    let store: any Store

    /// A summary is of one person's exchanges with the assistant in a conversation: in a shared
    /// room, one member's words never reach another's context through it.
    static func owner(_ conversation: ConversationKey, _ person: PersonID) -> PersonID {
        PersonID("conversation:\(conversation.channel.rawValue):\(conversation.conversation.rawValue):\(person.rawValue)")
    }

    /// The stored summary, if any.
    public func summary(of conversation: ConversationKey, for person: PersonID) async throws -> ConversationSummary? {
        try await store.read { try Self.summary(of: conversation, for: person, in: $0) }
    }

    /// The stored summary, read in a transaction the caller has open.
    static func summary(of conversation: ConversationKey, for person: PersonID, in reader: any StoreReader) throws -> ConversationSummary? {
        let records = try reader.records.list(owner: owner(conversation, person), kind: kind, statuses: nil, from: nil, to: nil)
        guard let record = records.last else { return nil }
        return ConversationSummary(
            text: record.fields["text"]?.stringValue ?? record.title,
            facts: record.fields["facts"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            through: record.at ?? .distantPast, untrusted: record.fields["untrusted"] == .bool(true), recordID: record.id
        )
    }

    /// What `person` said to the assistant in a conversation and what it answered them, after
    /// `since` (exclusive) and before `before` (exclusive), oldest first, at most `limit` of the
    /// newest. Other people's messages in a shared room, asides not addressed to the assistant,
    /// gestures and unreadable messages are left out: a room member must not be able to put
    /// words in the requester's mouth.
    public func history(of conversation: ConversationKey, for person: PersonID, after since: Date?, before: Date, limit: Int) async throws -> [HistoryLine] {
        try await store.read { try Self.history(of: conversation, for: person, after: since, before: before, limit: limit, in: $0) }
    }

    /// The history, read in a transaction the caller has open.
    static func history(
        of conversation: ConversationKey, for person: PersonID, after since: Date?, before: Date, limit: Int, in reader: any StoreReader
    ) throws -> [HistoryLine] {
        let inbound = try reader.inboundRecords(in: conversation, before: before, limit: limit)
        let outbound = try reader.outboundRecords(in: conversation, before: before, limit: limit)
        var lines = inbound.compactMap { record -> HistoryLine? in
            let message = record.stored.message
            guard message.sender.id == person, message.addressed, message.gesture == nil, message.unreadable == nil,
                  !message.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
            return HistoryLine(fromAssistant: false, text: message.text, at: message.receivedAt, untrusted: message.trust.containsUntrustedContent)
        }
        lines += outbound.compactMap { record -> HistoryLine? in
            let message = record.message
            guard message.recipient == nil || message.recipient == person, !message.text.isEmpty else { return nil }
            return HistoryLine(fromAssistant: true, text: message.text, at: message.createdAt)
        }
        if let since { lines.removeAll { $0.at <= since } }
        lines.removeAll { $0.at >= before }
        lines.sort { $0.at < $1.at }
        return Array(lines.suffix(limit))
    }

    /// Stores a new summary in place of the old.
    public func store(_ summary: ConversationSummary, for conversation: ConversationKey, person: PersonID, now: Date) async throws {
        let fields: JSONValue = [
            "text": .string(summary.text), "facts": .array(summary.facts.map(JSONValue.string)), "untrusted": .bool(summary.untrusted),
        ]
        try await store.write { tx in
            let owner = Self.owner(conversation, person)
            if let id = summary.recordID, var record = try tx.records.records(owner: owner, kind: Self.kind, ids: [id]).first {
                record.fields = fields
                record.title = "summary"
                record.at = summary.through
                record.updatedAt = now
                try tx.records.update(record)
            } else {
                _ = try tx.records.add(ToolRecordDraft(kind: Self.kind, owner: owner, title: "summary", status: "current", at: summary.through, fields: fields), at: now)
            }
        }
    }

    /// A summary made without a model: the old summary, then the lines that carry facts
    /// (shortened), then every fact the check requires that is still missing.
    public static func extractive(previous: ConversationSummary?, lines: [HistoryLine], required: [String], limit: Int) -> String {
        var parts: [String] = []
        if let previous, !previous.text.isEmpty { parts.append(previous.text) }
        for line in lines where !FactExtractor.facts(in: line.text).isEmpty {
            let text = line.text.count > 160 ? String(line.text.prefix(160)) + "…" : line.text
            parts.append("\(line.fromAssistant ? "Assistant" : "Person"): \(text.replacingOccurrences(of: "\n", with: " "))")
        }
        var summary = parts.joined(separator: "\n")
        if summary.count > limit { summary = String(summary.suffix(limit)) }
        let missing = FactExtractor.missing(required, in: summary)
        if !missing.isEmpty { summary += "\nKeep in mind: " + missing.joined(separator: "; ") }
        return summary
    }
}
