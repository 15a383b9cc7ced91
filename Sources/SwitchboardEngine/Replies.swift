import SwitchboardModel

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
}
