public import SwitchboardEngine
public import SwitchboardModel
import SwitchboardStorage

/// The notes tools: add, list, search, delete (one or many).
public enum NotesTools {
    /// All of them.
    public static var all: [any Tool] { [NotesAdd(), NotesList(), NotesSearch(), NotesDelete()] }

    /// The longest note accepted.
    static let maxLength = 4000

    static func quote(_ note: Note) -> String {
        "\(note.id): \(note.text.count > 80 ? String(note.text.prefix(77)) + "…" : note.text)"
    }

    static func notesPayload(_ notes: [Note]) -> JSONValue {
        .array(notes.map { note in
            ["id": .int(note.id), "text": .string(note.text), "created_us": .int(AuditChain.microseconds(note.createdAt))]
        })
    }

    static func notes(fromPayload payload: JSONValue, owner: PersonID) throws -> [Note] {
        guard let items = payload.arrayValue else { throw ToolFailure("The undo record is damaged.") }
        return try items.map { item in
            guard let id = item["id"]?.intValue, let text = item["text"]?.stringValue, let created = item["created_us"]?.intValue else {
                throw ToolFailure("The undo record is damaged.")
            }
            return Note(id: id, owner: owner, text: text, createdAt: AuditChain.date(microseconds: created))
        }
    }
}

/// `notes.add`: adds a note. Medium risk, undone by deleting it.
public struct NotesAdd: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "notes.add",
        category: "notes",
        summary: "Add a note",
        parameters: [
            "type": "object",
            "properties": ["text": ["type": "string", "minLength": 1, "maxLength": 4000]],
            "required": ["text"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("notes.add"),
        usage: ToolExamples.usage["notes.add"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard let text = arguments["text"]?.stringValue?.trimmingWhitespace(), !text.isEmpty else {
            throw ToolFailure("What should the note say? Try: add a note: buy milk")
        }
        guard text.count <= NotesTools.maxLength else {
            throw ToolFailure("That note is \(text.count) characters long; notes can be up to \(NotesTools.maxLength).")
        }
        return PreparedCall(arguments: ["text": .string(text)], preview: "Add a note: \(text)", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let text = call.arguments["text"]?.stringValue ?? ""
        let note = try context.notes.add(owner: context.person, text: text, at: context.now)
        return ToolOutput(reply: "Added note \(note.id): \(note.text)", summary: "added note \(note.id)", undo: ["id": .int(note.id)])
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        guard let id = payload["id"]?.intValue else { throw ToolFailure("The undo record is damaged.") }
        let deleted = try context.notes.delete(owner: context.person, ids: [id])
        return deleted == 1 ? "removed note \(id)." : "note \(id) was already gone."
    }
}

/// `notes.list`: lists the person's notes.
public struct NotesList: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "notes.list",
        category: "notes",
        summary: "List your notes",
        parameters: ["type": "object", "properties": [:], "additionalProperties": false],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("notes.list"),
        usage: ToolExamples.usage["notes.list"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        PreparedCall(arguments: [:], preview: "List your notes", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let notes = try context.notes.list(owner: context.person)
        guard !notes.isEmpty else { return ToolOutput(reply: "You have no notes.", summary: "0 notes") }
        let lines = notes.map { "\($0.id): \($0.text)" }
        let header = notes.count == 1 ? "You have 1 note:" : "You have \(notes.count) notes:"
        return ToolOutput(reply: ([header] + lines).joined(separator: "\n"), summary: "\(notes.count) notes")
    }
}

/// `notes.search`: finds notes containing some text.
public struct NotesSearch: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "notes.search",
        category: "notes",
        summary: "Search your notes",
        parameters: [
            "type": "object",
            "properties": ["query": ["type": "string", "minLength": 1]],
            "required": ["query"],
            "additionalProperties": false,
        ],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("notes.search"),
        usage: ToolExamples.usage["notes.search"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard let query = arguments["query"]?.stringValue?.trimmingWhitespace(), !query.isEmpty else {
            throw ToolFailure("What should I search for? Try: search notes for milk")
        }
        return PreparedCall(arguments: ["query": .string(query)], preview: "Search your notes for \"\(query)\"", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let query = call.arguments["query"]?.stringValue ?? ""
        let notes = try context.notes.search(owner: context.person, query: query)
        guard !notes.isEmpty else {
            return ToolOutput(reply: "No notes contain \"\(query)\".", summary: "0 matches")
        }
        let header = notes.count == 1 ? "1 note contains \"\(query)\":" : "\(notes.count) notes contain \"\(query)\":"
        return ToolOutput(reply: ([header] + notes.map { "\($0.id): \($0.text)" }).joined(separator: "\n"), summary: "\(notes.count) matches")
    }
}

/// `notes.delete`: deletes one note (medium risk) or many (high risk: asks first). Undone by
/// restoring the deleted notes with their ids.
///
/// Arguments: `{"id": N}`, `{"ids": [N, …]}`, `{"query": "text"}` or `{"all": true}`. Prepare
/// resolves them to the exact ids, so the confirmation shows, and the execution deletes, exactly
/// the notes that existed when it was asked.
public struct NotesDelete: Tool {
    public init() {}

    /// More notes than this in one call is a bulk delete: high risk.
    public static let bulkThreshold = 1

    public let descriptor = ToolDescriptor(
        name: "notes.delete",
        category: "notes",
        summary: "Delete notes (several at once after you confirm)",
        parameters: [
            "type": "object",
            "properties": [
                "id": ["type": "integer"],
                "ids": ["type": "array", "items": ["type": "integer"], "minItems": 1],
                "query": ["type": "string", "minLength": 1],
                "all": ["type": "boolean"],
            ],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("notes.delete"),
        usage: ToolExamples.usage["notes.delete"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let notes: [Note]
        if let id = arguments["id"]?.intValue {
            notes = try context.notes.notes(owner: context.person, ids: [id])
            guard !notes.isEmpty else { throw ToolFailure("You have no note \(id).") }
        } else if let ids = arguments["ids"]?.arrayValue?.compactMap(\.intValue), !ids.isEmpty {
            notes = try context.notes.notes(owner: context.person, ids: ids)
            let missing = Set(ids).subtracting(notes.map(\.id)).sorted()
            guard missing.isEmpty else {
                throw ToolFailure(missing.count == 1 ? "You have no note \(missing[0])." : "You have no notes \(missing.map(String.init).joined(separator: ", ")).")
            }
        } else if let query = arguments["query"]?.stringValue, !query.isEmpty {
            notes = try context.notes.search(owner: context.person, query: query)
            guard !notes.isEmpty else { throw ToolFailure("No notes contain \"\(query)\", so there's nothing to delete.") }
        } else if arguments["all"] == .bool(true) {
            notes = try context.notes.list(owner: context.person)
            guard !notes.isEmpty else { throw ToolFailure("You have no notes, so there's nothing to delete.") }
        } else {
            throw ToolFailure("Which notes? Try: delete note 3, or delete all my notes.")
        }
        let risk: Risk = notes.count > Self.bulkThreshold ? .high : descriptor.baseRisk
        let preview: String
        if notes.count == 1 {
            preview = "This will delete note \(NotesTools.quote(notes[0]))"
        } else {
            preview = (["This will delete \(notes.count) notes:"] + notes.map { "• " + NotesTools.quote($0) }).joined(separator: "\n")
        }
        return PreparedCall(arguments: ["ids": .array(notes.map { .int($0.id) })], preview: preview, risk: risk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let ids = call.arguments["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        let notes = try context.notes.notes(owner: context.person, ids: ids)
        guard !notes.isEmpty else {
            throw ToolFailure("Those notes are already gone; nothing was deleted.")
        }
        let deleted = try context.notes.delete(owner: context.person, ids: notes.map(\.id))
        let reply: String
        if deleted == 1 {
            reply = "Deleted note \(NotesTools.quote(notes[0])). Say \"undo\" to bring it back."
        } else {
            reply = "Deleted \(deleted) notes. Say \"undo\" to bring them back."
        }
        let gone = ids.count - notes.count
        let suffix = gone > 0 ? " (\(gone) were already gone)" : ""
        return ToolOutput(
            reply: reply + suffix,
            summary: "deleted \(deleted) notes: \(notes.map { String($0.id) }.joined(separator: ", "))",
            undo: NotesTools.notesPayload(notes)
        )
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        let notes = try NotesTools.notes(fromPayload: payload, owner: context.person)
        try context.notes.restore(notes)
        return notes.count == 1 ? "restored note \(NotesTools.quote(notes[0]))." : "restored \(notes.count) notes."
    }
}
