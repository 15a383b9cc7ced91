public import SwitchboardEngine
public import SwitchboardModel
import Foundation
import SwitchboardStorage

/// One person across channels: "link my email sam@example.org" sends a code to that address;
/// "link code 123456" from here proves the person holds it, and from then on mail from that
/// address is this person: same preferences, reminders, history and confirmations.
public enum IdentityTools {
    /// Both.
    public static var all: [any Tool] { [IdentityLink(), IdentityVerify()] }

    static let kind = "identity_code"
    /// How long a code is good for.
    static let lifetime: TimeInterval = 15 * 60
    /// Wrong codes before a code is cancelled.
    static let maxAttempts: Int64 = 5
}

/// `identity.link`: sends a code to an email address to link it.
public struct IdentityLink: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "identity.link",
        category: "identity",
        summary: "Link your email address, so mail from it counts as you",
        parameters: [
            "type": "object",
            "properties": ["email": ["type": "string", "format": "email"]],
            "required": ["email"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .irreversible,
        examples: ToolExamples.examples("identity.link"),
        usage: ToolExamples.usage["identity.link"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard let email = arguments["email"]?.stringValue?.trimmingWhitespace().lowercased(), ContactsTools.isEmail(email) else {
            throw ToolFailure("Which address? Try: link my email sam@example.org")
        }
        let identity = PersonID.email(email)
        if try context.linkedPerson(for: identity) == context.person {
            throw ToolFailure("\(email) is already linked to you.")
        }
        guard context.sendingChannels.contains("email") else {
            throw ToolFailure("I can't send the code: no email account is configured for me.")
        }
        // Codes to one address are limited, so nobody can guess through fresh codes or flood a
        // stranger's inbox: three an hour.
        let recent = try context.records.list(owner: context.person, kind: IdentityTools.kind, statuses: nil, from: context.now.addingTimeInterval(-3600), to: nil)
            .filter { $0.title == email && $0.createdAt > context.now.addingTimeInterval(-3600) }
        guard recent.count < 3 else {
            throw ToolFailure("I've sent \(email) three codes in the last hour; wait a while before asking for another.")
        }
        return PreparedCall(arguments: ["email": .string(email)], preview: "Send a code to \(email) to link it to you", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let email = call.arguments["email"]?.stringValue ?? ""
        let code = String(format: "%06d", Int.random(in: 0..<1_000_000))
        // Earlier codes for the same address stop working.
        for old in try context.records.list(owner: context.person, kind: IdentityTools.kind, statuses: ["pending"], from: nil, to: nil)
        where old.title == email {
            var cancelled = old
            cancelled.status = "replaced"
            try context.records.update(cancelled)
        }
        _ = try context.records.add(ToolRecordDraft(
            kind: IdentityTools.kind, owner: context.person, title: email, status: "pending",
            at: context.now.addingTimeInterval(IdentityTools.lifetime), fields: ["code": .string(code), "attempts": 0]
        ), at: context.now)
        try context.send(
            to: ConversationKey(channel: "email", conversation: ConversationID(email)), recipient: .email(email),
            subject: "Your Switchboard link code",
            text: "Someone asked to link this address to their Switchboard assistant. If that was you, tell the assistant:\n\nlink code \(code)\n\nThe code works for 15 minutes. If it wasn't you, ignore this mail; nothing is linked without the code."
        )
        return ToolOutput(
            reply: "I've sent a 6-digit code to \(email). Tell me \"link code\" and the code here within 15 minutes.",
            summary: "sent a link code to \(email)"
        )
    }
}

/// `identity.verify`: checks a code and links the address.
public struct IdentityVerify: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "identity.verify",
        category: "identity",
        summary: "Finish linking an address with the code I sent to it",
        parameters: [
            "type": "object",
            "properties": ["code": ["type": "string", "pattern": "^[0-9]{6}$"]],
            "required": ["code"],
            "additionalProperties": false,
        ],
        baseRisk: .medium,
        effect: .reversible,
        secretArguments: ["code"],
        examples: ToolExamples.examples("identity.verify"),
        usage: ToolExamples.usage["identity.verify"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard let code = arguments["code"]?.stringValue?.filter(\.isNumber), code.count == 6 else {
            throw ToolFailure("The code has 6 digits. Try: link code 123456")
        }
        let pending = try context.records.list(owner: context.person, kind: IdentityTools.kind, statuses: ["pending"], from: context.now, to: nil)
        guard !pending.isEmpty else {
            throw ToolFailure("There's no link waiting for a code (codes work for 15 minutes). Start again with: link my email you@example.org")
        }
        return PreparedCall(arguments: ["code": .string(code)], preview: "Check the link code", risk: descriptor.baseRisk)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let code = call.arguments["code"]?.stringValue ?? ""
        let pending = try context.records.list(owner: context.person, kind: IdentityTools.kind, statuses: ["pending"], from: context.now, to: nil)
        if let match = pending.first(where: { $0.fields["code"]?.stringValue == code }) {
            var used = match
            used.status = "used"
            used.updatedAt = context.now
            try context.records.update(used)
            let identity = PersonID.email(match.title)
            let previous = try context.linkedPerson(for: identity)
            try context.link(identity)
            return ToolOutput(
                reply: "Linked \(match.title): mail from it now counts as you, with your preferences, reminders and history.",
                summary: "linked \(match.title)",
                undo: ["identity": .string(identity.rawValue), "previous": previous.map { .string($0.rawValue) } ?? .null]
            )
        }
        // A wrong code counts against every waiting code; too many and they stop working.
        var left: Int64 = 0
        for var record in pending {
            let attempts = (record.fields["attempts"]?.intValue ?? 0) + 1
            record.fields = ["code": record.fields["code"] ?? .null, "attempts": .int(attempts)]
            if attempts >= IdentityTools.maxAttempts { record.status = "cancelled" }
            record.updatedAt = context.now
            try context.records.update(record)
            left = max(left, IdentityTools.maxAttempts - attempts)
        }
        return ToolOutput(
            reply: left > 0 ? "That code doesn't match. \(left) tr\(left == 1 ? "y" : "ies") left." : "That code doesn't match, and that was the last try: ask for a new code.",
            summary: "wrong link code"
        )
    }

    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        guard let identity = payload["identity"]?.stringValue else { throw ToolFailure("The undo record is damaged.") }
        try context.unlink(PersonID(identity), restoring: payload["previous"]?.stringValue.map { PersonID($0) })
        return "unlinked \(identity.hasPrefix("email:") ? String(identity.dropFirst(6)) : identity)."
    }
}
