// A small, exact command language, enough to drive the notes tools from any channel.
//
// The natural-language intent engine replaces it as the default planner; this one stays as the
// predictable fallback. It matches whole sentences, case-insensitively, ignoring a leading
// "please" and trailing punctuation.

public import SwitchboardModel

/// Plans the fixed command sentences.
public struct CommandPlanner: Planner {
    /// Creates the planner.
    public init() {}

    /// Commands are planned from their own text alone.
    public var plansFromHistory: Bool { false }

    public func plan(_ message: InboundMessage) async throws -> Plan {
        Self.plan(text: message.text)
    }

    /// The plan for a text. Pure.
    public static func plan(text raw: String) -> Plan {
        var text = raw.trimmingWhitespace()
        while let last = text.last, ".!?".contains(last) { text.removeLast() }
        text = text.trimmingWhitespace()
        var lower = text.lowercased()
        for prefix in ["please ", "pls ", "can you ", "could you "] where lower.hasPrefix(prefix) {
            text = String(text.dropFirst(prefix.count)).trimmingWhitespace()
            lower = text.lowercased()
        }

        // add a note: TEXT | add note TEXT | note: TEXT
        for prefix in ["add a note:", "add a note", "add note:", "add note", "note:", "new note:", "remember:"] where lower.hasPrefix(prefix) {
            let body = String(text.dropFirst(prefix.count)).trimmingWhitespace()
            guard !body.isEmpty else { return .reply("What should the note say? Try: add a note: buy milk") }
            return .call(tool: "notes.add", arguments: ["text": .string(body)])
        }
        switch lower {
        case "list my notes", "list notes", "show my notes", "show notes", "my notes", "notes", "what are my notes":
            return .call(tool: "notes.list", arguments: [:])
        case "delete all my notes", "delete all notes", "delete my notes", "remove all my notes", "clear my notes":
            return .call(tool: "notes.delete", arguments: ["all": true])
        case "undo", "undo that", "undo last", "revert":
            return .undo()
        case "help", "what can you do", "commands", "?":
            return .help
        default:
            break
        }
        for prefix in ["search my notes for ", "search notes for ", "find notes about ", "find notes with ", "search notes "] where lower.hasPrefix(prefix) {
            let query = String(text.dropFirst(prefix.count)).trimmingWhitespace()
            guard !query.isEmpty else { break }
            return .call(tool: "notes.search", arguments: ["query": .string(query)])
        }
        for prefix in ["delete notes containing ", "delete notes matching ", "delete notes about ", "delete my notes about "] where lower.hasPrefix(prefix) {
            let query = String(text.dropFirst(prefix.count)).trimmingWhitespace()
            guard !query.isEmpty else { break }
            return .call(tool: "notes.delete", arguments: ["query": .string(query)])
        }
        for prefix in ["delete note ", "delete notes ", "remove note ", "remove notes "] where lower.hasPrefix(prefix) {
            let rest = lower.dropFirst(prefix.count).replacingNonDigitsWithSpaces()
            let ids = rest.split(separator: " ").compactMap { Int64($0) }
            guard !ids.isEmpty else { break }
            return .call(tool: "notes.delete", arguments: ["ids": .array(ids.map(JSONValue.int))])
        }
        return .notUnderstood
    }
}

extension Substring {
    fileprivate func replacingNonDigitsWithSpaces() -> String {
        String(map { $0.isNumber ? $0 : " " })
    }
}
