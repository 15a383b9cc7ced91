public import SwitchboardEngine
public import SwitchboardModel
import Foundation
import SwitchboardStorage

/// The contacts tools: people with emails, a phone, a company, tags and notes, and a log of
/// interactions with them.
public enum ContactsTools {
    /// All of them.
    public static var all: [any Tool] {
        [ContactsAdd(), ContactsFind(), ContactsUpdate(), ContactsDelete(), ContactsLog(), ContactsMerge()]
    }

    static let kind = "contact"
    static let interactionKind = "interaction"
    static let fieldNames = ["emails", "phone", "company", "tags", "notes"]

    static func card(_ contact: ToolRecord) -> String {
        var parts = ["\(contact.id): \(contact.title)"]
        if let emails = contact.fields["emails"]?.arrayValue?.compactMap(\.stringValue), !emails.isEmpty { parts.append(emails.joined(separator: ", ")) }
        if let phone = contact.fields["phone"]?.stringValue { parts.append(phone) }
        if let company = contact.fields["company"]?.stringValue { parts.append(company) }
        if let tags = contact.fields["tags"]?.arrayValue?.compactMap(\.stringValue), !tags.isEmpty { parts.append("#" + tags.joined(separator: " #")) }
        var card = parts.joined(separator: " · ")
        if let notes = contact.fields["notes"]?.stringValue { card += "\n  \(notes)" }
        return card
    }

    /// Reads and checks the contact fields among the arguments.
    static func fields(_ arguments: JSONValue) throws -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if let value = arguments["emails"] ?? arguments["email"].map({ JSONValue.array([$0]) }) {
            let emails = (value.arrayValue ?? []).compactMap { $0.stringValue?.trimmingWhitespace().lowercased() }
            for email in emails where !isEmail(email) { throw ToolFailure("\"\(email)\" doesn't look like an email address.") }
            fields["emails"] = .array(emails.map(JSONValue.string))
        }
        if let phone = try RecordTools.optionalText(arguments, "phone", maxLength: 40) {
            guard phone.allSatisfy({ $0.isNumber || " +-().".contains($0) }), phone.contains(where: \.isNumber) else {
                throw ToolFailure("\"\(phone)\" doesn't look like a phone number.")
            }
            fields["phone"] = .string(phone)
        }
        if let company = try RecordTools.optionalText(arguments, "company", maxLength: 200) { fields["company"] = .string(company) }
        if let tags = arguments["tags"]?.arrayValue {
            fields["tags"] = .array(tags.compactMap { $0.stringValue?.trimmingWhitespace().lowercased() }.filter { !$0.isEmpty }.map(JSONValue.string))
        }
        if let notes = try RecordTools.optionalText(arguments, "notes", maxLength: 2000) { fields["notes"] = .string(notes) }
        return fields
    }

    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !text.contains(where: { $0.isWhitespace || $0 == "," || $0 == "<" || $0 == ">" })
    }

    /// The contact an `id` or `name` (or `query`) argument names.
    static func one(_ arguments: JSONValue, context: ToolContext) throws -> ToolRecord {
        var pick = arguments
        if pick["id"] == nil, pick["query"] == nil, let name = arguments["name"] {
            pick = ["query": name]
        }
        return try RecordTools.one(pick, kind: kind, noun: "contact", context: context)
    }

    static let properties: [String: JSONValue] = [
        "name": ["type": "string", "minLength": 1, "maxLength": 200],
        "emails": ["type": "array", "items": ["type": "string", "format": "email"]],
        "email": ["type": "string", "format": "email"],
        "phone": ["type": "string", "maxLength": 40],
        "company": ["type": "string", "maxLength": 200],
        "tags": ["type": "array", "items": ["type": "string"]],
        "notes": ["type": "string", "maxLength": 2000],
    ]
}

/// `contacts.add`: adds a person.
public struct ContactsAdd: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "contacts.add",
        category: "contacts",
        summary: "Add a contact",
        parameters: ["type": "object", "properties": .object(ContactsTools.properties), "required": ["name"], "additionalProperties": false],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("contacts.add"),
        usage: ToolExamples.usage["contacts.add"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let name = try RecordTools.text(arguments, "name", required: "What's their name? Try: add contact Alice Smith, alice@example.com", maxLength: 200)
        var prepared = try ContactsTools.fields(arguments)
        prepared["name"] = .string(name)
        let card = ContactsTools.card(ToolRecord(id: 0, kind: ContactsTools.kind, owner: context.person, title: name, status: "active", at: nil, endAt: nil, fields: .object(prepared), createdAt: context.now, updatedAt: context.now))
        return PreparedCall(arguments: .object(prepared), preview: "Add contact \(card.drop { $0 != " " }.dropFirst())", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        var fields = call.arguments.objectValue ?? [:]
        let name = fields.removeValue(forKey: "name")?.stringValue ?? ""
        let existing = try context.records.search(owner: context.person, kind: ContactsTools.kind, query: name).filter { $0.title.lowercased() == name.lowercased() }
        let contact = try context.records.add(
            ToolRecordDraft(kind: ContactsTools.kind, owner: context.person, title: name, status: "active", fields: .object(fields)), at: context.now
        )
        var reply = "Added contact \(ContactsTools.card(contact))"
        if let twin = existing.first { reply += "\nYou already had a contact named \(twin.title) (\(twin.id)); say \"merge contacts \(twin.id) and \(contact.id)\" if they're the same person." }
        return ToolOutput(reply: reply, summary: "added contact \(contact.id)", undo: RecordTools.undoCreate([contact]))
    }
}

/// `contacts.find`: finds people by any detail, with their latest interactions.
public struct ContactsFind: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "contacts.find",
        category: "contacts",
        summary: "Find a contact (or list them all)",
        parameters: ["type": "object", "properties": ["query": ["type": "string"]], "additionalProperties": false],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("contacts.find"),
        usage: ToolExamples.usage["contacts.find"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let query = try RecordTools.optionalText(arguments, "query", maxLength: 200)
        return PreparedCall(arguments: query.map { ["query": .string($0)] } ?? [:], preview: query.map { "Find contacts matching \"\($0)\"" } ?? "List your contacts", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let query = call.arguments["query"]?.stringValue
        let contacts = try query.map { try context.records.search(owner: context.person, kind: ContactsTools.kind, query: $0) }
            ?? context.records.list(owner: context.person, kind: ContactsTools.kind, statuses: nil, from: nil, to: nil)
        guard !contacts.isEmpty else {
            return ToolOutput(reply: query.map { "No contacts match \"\($0)\"." } ?? "You have no contacts yet.", summary: "0 contacts")
        }
        var lines: [String] = []
        for contact in contacts.prefix(20) {
            lines.append(ContactsTools.card(contact))
            if contacts.count <= 3 {
                let log = try context.records.search(owner: context.person, kind: ContactsTools.interactionKind, query: "#contact-\(contact.id)#")
                for entry in log.suffix(3) {
                    lines.append("  \(entry.at.map { RecordTools.describe($0, zone: RecordTools.zone(context), now: context.now) } ?? ""): \(entry.title)")
                }
            }
        }
        if contacts.count > 20 { lines.append("…and \(contacts.count - 20) more; narrow the search.") }
        return ToolOutput(reply: lines.joined(separator: "\n"), summary: "\(contacts.count) contacts")
    }
}

/// `contacts.update`: changes a contact's details.
public struct ContactsUpdate: RecordTool {
    public init() {}

    public let descriptor: ToolDescriptor = {
        var properties = ContactsTools.properties
        properties["id"] = ["type": "integer"]
        properties["query"] = ["type": "string", "minLength": 1]
        properties["new_name"] = ["type": "string", "minLength": 1, "maxLength": 200]
        return ToolDescriptor(
            name: "contacts.update",
            category: "contacts",
            summary: "Change a contact's details",
            parameters: ["type": "object", "properties": .object(properties), "additionalProperties": false],
            baseRisk: .medium,
            effect: .reversible,
            examples: ToolExamples.examples("contacts.update"),
        usage: ToolExamples.usage["contacts.update"]
        )
    }()

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let contact = try ContactsTools.one(arguments, context: context)
        var changes = try ContactsTools.fields(arguments)
        if let newName = try RecordTools.optionalText(arguments, "new_name", maxLength: 200) { changes["name"] = .string(newName) }
        guard !changes.isEmpty else { throw ToolFailure("What should change for \(contact.title)? Try: update \(contact.title)'s phone to +44 20 7946 0000") }
        var prepared = changes
        prepared["id"] = .int(contact.id)
        let what = changes.keys.sorted().map { "\($0) → \(Self.show(changes[$0]!))" }.joined(separator: ", ")
        return PreparedCall(arguments: .object(prepared), preview: "Update \(contact.title) (\(contact.id)): \(what)", risk: descriptor.baseRisk)
    }

    static func show(_ value: JSONValue) -> String {
        value.stringValue ?? value.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? value.canonicalText
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        var changes = call.arguments.objectValue ?? [:]
        guard let id = changes.removeValue(forKey: "id")?.intValue,
              let contact = try context.records.records(owner: context.person, kind: ContactsTools.kind, ids: [id]).first
        else { throw ToolFailure("That contact is gone.") }
        var updated = contact
        if let name = changes.removeValue(forKey: "name")?.stringValue { updated.title = name }
        var fields = contact.fields.objectValue ?? [:]
        for (key, value) in changes { fields[key] = value }
        updated.fields = .object(fields)
        updated.updatedAt = context.now
        try context.records.update(updated)
        return ToolOutput(reply: "Updated \(ContactsTools.card(updated))", summary: "updated contact \(id)", undo: RecordTools.undoRestore([contact]))
    }
}

/// `contacts.delete`: deletes a contact and its interaction log.
public struct ContactsDelete: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "contacts.delete",
        category: "contacts",
        summary: "Delete a contact",
        parameters: ["type": "object", "properties": ["id": ["type": "integer"], "query": ["type": "string", "minLength": 1], "name": ["type": "string", "minLength": 1]], "additionalProperties": false],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("contacts.delete"),
        usage: ToolExamples.usage["contacts.delete"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let contact = try ContactsTools.one(arguments, context: context)
        return PreparedCall(arguments: ["id": .int(contact.id)], preview: "This will delete contact \(ContactsTools.card(contact))", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        guard let id = call.arguments["id"]?.intValue,
              let contact = try context.records.records(owner: context.person, kind: ContactsTools.kind, ids: [id]).first
        else { throw ToolFailure("That contact is already gone.") }
        let log = try context.records.search(owner: context.person, kind: ContactsTools.interactionKind, query: "#contact-\(id)#")
        _ = try context.records.delete(owner: context.person, kind: ContactsTools.kind, ids: [id])
        _ = try context.records.delete(owner: context.person, kind: ContactsTools.interactionKind, ids: log.map(\.id))
        return ToolOutput(
            reply: "Deleted contact \(contact.id): \(contact.title). Say \"undo\" to bring it back.",
            summary: "deleted contact \(id)", undo: RecordTools.undoRestore([contact] + log)
        )
    }
}

/// `contacts.log`: records an interaction with a contact ("log call with Alice: discussed renewal").
public struct ContactsLog: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "contacts.log",
        category: "contacts",
        summary: "Log a call, meeting or message with a contact",
        parameters: [
            "type": "object",
            "properties": [
                "id": ["type": "integer"], "name": ["type": "string", "minLength": 1],
                "text": ["type": "string", "minLength": 1, "maxLength": 2000],
            ],
            "required": ["text"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("contacts.log"),
        usage: ToolExamples.usage["contacts.log"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let text = try RecordTools.text(arguments, "text", required: "What happened? Try: log call with Alice: discussed renewal", maxLength: 2000)
        guard arguments["id"] != nil || arguments["name"] != nil else { throw ToolFailure("With whom? Try: log call with Alice: \(text)") }
        let contact = try ContactsTools.one(arguments, context: context)
        return PreparedCall(arguments: ["id": .int(contact.id), "text": .string(text)], preview: "Log for \(contact.title): \(text)", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        guard let id = call.arguments["id"]?.intValue,
              let contact = try context.records.records(owner: context.person, kind: ContactsTools.kind, ids: [id]).first
        else { throw ToolFailure("That contact is gone.") }
        let text = call.arguments["text"]?.stringValue ?? ""
        // The marker lets search find a contact's log through the one search index.
        let entry = try context.records.add(ToolRecordDraft(
            kind: ContactsTools.interactionKind, owner: context.person, title: text, status: "logged", at: context.now,
            fields: ["contact": .string("#contact-\(id)#")]
        ), at: context.now)
        return ToolOutput(reply: "Logged for \(contact.title): \(text)", summary: "logged interaction \(entry.id) with contact \(id)", undo: RecordTools.undoCreate([entry]))
    }
}

/// `contacts.merge`: merges the second contact into the first (details combined, log moved).
public struct ContactsMerge: RecordTool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "contacts.merge",
        category: "contacts",
        summary: "Merge two contacts that are the same person",
        parameters: [
            "type": "object",
            "properties": [
                "ids": ["type": "array", "items": ["type": "integer"], "minItems": 2, "maxItems": 2],
                "names": ["type": "array", "items": ["type": "string", "minLength": 1], "minItems": 2, "maxItems": 2, "description": "the two contacts by name, the one to keep first"],
            ],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        examples: ToolExamples.examples("contacts.merge"),
        usage: ToolExamples.usage["contacts.merge"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        var ids = arguments["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        if ids.isEmpty, let names = arguments["names"]?.arrayValue?.compactMap(\.stringValue), names.count == 2 {
            ids = try names.map { try ContactsTools.one(["name": .string($0)], context: context).id }
        }
        guard ids.count == 2 else { throw ToolFailure("Which two contacts? Try: merge Bob Smith and Robert Smith (or: merge contacts 3 and 7)") }
        guard ids[0] != ids[1] else { throw ToolFailure("Those are the same contact (\(ids[0])); there's nothing to merge.") }
        let found = try context.records.records(owner: context.person, kind: ContactsTools.kind, ids: ids)
        for id in ids where !found.contains(where: { $0.id == id }) { throw ToolFailure("You have no contact \(id).") }
        let keep = found.first { $0.id == ids[0] }!
        let other = found.first { $0.id == ids[1] }!
        return PreparedCall(
            arguments: ["ids": .array(ids.map(JSONValue.int))],
            preview: "Merge contact \(other.id) (\(other.title)) into \(keep.id) (\(keep.title)); \(other.id) will be removed",
            risk: descriptor.baseRisk
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let ids = call.arguments["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
        let found = try context.records.records(owner: context.person, kind: ContactsTools.kind, ids: ids)
        guard ids.count == 2, let keep = found.first(where: { $0.id == ids[0] }), let other = found.first(where: { $0.id == ids[1] }) else {
            throw ToolFailure("One of those contacts is gone; nothing was merged.")
        }
        var merged = keep
        var fields = keep.fields.objectValue ?? [:]
        let otherFields = other.fields.objectValue ?? [:]
        for key in ["emails", "tags"] {
            let combined = (fields[key]?.arrayValue ?? []) + (otherFields[key]?.arrayValue ?? [])
            var seen = Set<JSONValue>()
            let unique = combined.filter { seen.insert($0).inserted }
            if !unique.isEmpty { fields[key] = .array(unique) }
        }
        for key in ["phone", "company"] where fields[key] == nil { fields[key] = otherFields[key] }
        if let notes = otherFields["notes"]?.stringValue {
            fields["notes"] = .string([fields["notes"]?.stringValue, notes].compactMap { $0 }.joined(separator: "\n"))
        }
        merged.fields = .object(fields)
        merged.updatedAt = context.now
        try context.records.update(merged)
        let log = try context.records.search(owner: context.person, kind: ContactsTools.interactionKind, query: "#contact-\(other.id)#")
        for var entry in log {
            entry.fields = ["contact": .string("#contact-\(keep.id)#")]
            try context.records.update(entry)
        }
        _ = try context.records.delete(owner: context.person, kind: ContactsTools.kind, ids: [other.id])
        return ToolOutput(
            reply: "Merged \(other.title) (\(other.id)) into \(ContactsTools.card(merged))",
            summary: "merged contact \(other.id) into \(keep.id)", undo: RecordTools.undoRestore([keep, other] + log)
        )
    }
}
