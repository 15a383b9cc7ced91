// A small, exact command language, enough to drive the notes tools from any channel, and
// `run TOOL key=value …` (or `run TOOL {json}`) to call any tool by name: the way to reach an
// MCP server's or an HTTP tool without a language model.
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
        // Taken as written: punctuation at the end may be part of a value.
        let written = raw.trimmingWhitespace()
        if written.lowercased() == "run" || written.lowercased().hasPrefix("run ") {
            return runCommand(String(written.dropFirst(3)))
        }
        var text = written
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
        case "help", "what can you do", "commands", "?", "tools", "list tools", "which tools", "what tools do you have":
            return .help
        default:
            break
        }
        for prefix in ["search my notes for ", "search notes for ", "find notes about ", "find notes with ", "search notes "] where lower.hasPrefix(prefix) {
            let query = String(text.dropFirst(prefix.count)).trimmingWhitespace()
            guard !query.isEmpty else { break }
            return .call(tool: "notes.search", arguments: ["query": .string(query)])
        }
        if let learning = learningCommand(text: text, lower: lower) { return learning }
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

extension CommandPlanner {
    /// What learning and standing approvals are steered with, word for word (the sentences the
    /// assistant itself tells people to say).
    static func learningCommand(text: String, lower: String) -> Plan? {
        switch lower {
        case "stop learning about me", "stop learning", "don't learn about me", "turn learning off", "learning off":
            return .call(tool: "preferences.set", arguments: ["key": "learning", "value": "off"])
        case "start learning about me", "learn about me", "turn learning on", "learning on", "start learning again":
            return .call(tool: "preferences.set", arguments: ["key": "learning", "value": "on"])
        case "forget what you learned", "forget what you learned about me", "forget everything you learned", "forget what you've learned":
            return .call(tool: "learning.forget", arguments: [:])
        case "revoke all approvals", "stop allowing everything", "take back all approvals", "revoke my standing approvals":
            return .call(tool: "approvals.revoke", arguments: [:])
        default:
            break
        }
        for prefix in ["forget what you learned about ", "forget what you've learned about "] where lower.hasPrefix(prefix) {
            let topic = String(lower.dropFirst(prefix.count)).trimmingWhitespace()
            if !topic.isEmpty { return .call(tool: "learning.forget", arguments: ["topic": .string(topic)]) }
        }
        // "always allow emails to bob@example.org", "stop allowing posts in !room:example.org"
        let scopes: [(String, String)] = [
            ("emails to ", "email.send"), ("email to ", "email.send"), ("posts in ", "matrix.post"), ("posts to ", "matrix.post"),
        ]
        for (verb, tool) in [("always allow ", "approvals.allow"), ("stop allowing ", "approvals.revoke"), ("revoke approval for ", "approvals.revoke")] where lower.hasPrefix(verb) {
            let rest = String(text.dropFirst(verb.count)).trimmingWhitespace()
            for (scope, target) in scopes where rest.lowercased().hasPrefix(scope) {
                let value = String(rest.dropFirst(scope.count)).trimmingWhitespace()
                guard !value.isEmpty else { return .reply("Whose? Say, e.g.: \(verb)\(scope)bob@example.org") }
                return .call(tool: tool, arguments: ["tool": .string(target), "value": .string(value)])
            }
        }
        // "no, my meetings are usually 30 minutes", "my meetings last an hour"
        var sentence = lower
        for prefix in ["no, ", "no ", "actually, ", "actually "] where sentence.hasPrefix(prefix) { sentence = String(sentence.dropFirst(prefix.count)) }
        // "by morning I mean 7:30", "no, my evenings start at 8"
        for part in DayPart.allCases.map(\.rawValue) {
            for prefix in ["by \(part) i mean ", "in the \(part) i mean ", "by \"\(part)\" i mean ", "\(part) means ", "my \(part)s start at ", "my \(part)s begin at "] where sentence.hasPrefix(prefix) {
                let time = String(sentence.dropFirst(prefix.count)).trimmingWhitespace()
                guard !time.isEmpty else { return nil }
                return .call(tool: "preferences.set", arguments: ["key": .string(part), "value": .string(time)])
            }
        }
        for prefix in ["my meetings are usually ", "my meetings usually last ", "my meetings last ", "my meetings are ", "meetings are usually "] where sentence.hasPrefix(prefix) {
            guard let minutes = minutes(in: String(sentence.dropFirst(prefix.count))) else { return nil }
            return .call(tool: "preferences.set", arguments: ["key": "meeting_minutes", "value": .string(String(minutes))])
        }
        return nil
    }

    /// "30 minutes", "45 min", "an hour", "1.5 hours", "90": minutes.
    static func minutes(in text: String) -> Int? {
        let words = text.split(separator: " ").map(String.init)
        guard let first = words.first else { return nil }
        let unit = words.count > 1 ? words[1] : "minutes"
        let amount: Double? = ["an", "a", "one"].contains(first) ? 1 : (first == "half" ? 0.5 : Double(first))
        guard let amount, amount > 0 else { return nil }
        if unit.hasPrefix("hour") || unit == "h" || unit == "hr" || unit == "hrs" { return Int((amount * 60).rounded()) }
        if unit.hasPrefix("min") || unit == "m" { return Int(amount.rounded()) }
        return nil
    }

    static let runUsage = "Say run, the tool's name, then its arguments as key=value (quote values with spaces) or as one JSON object: run mcp.wiki.search query=\"onboarding\" limit=3. Say \"tools\" to see the tools."

    /// `run TOOL key=value …` or `run TOOL {json}`. Values of the key=value form are text; a
    /// tool converts them to the numbers or flags its schema declares.
    static func runCommand(_ rest: String) -> Plan {
        let rest = rest.trimmingWhitespace()
        let name = String(rest.prefix { !$0.isWhitespace })
        guard !name.isEmpty else { return .reply(runUsage) }
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }), name.count <= 128 else {
            return .reply("\"\(name.prefix(80))\" is not a tool name. \(runUsage)")
        }
        let arguments = String(rest.dropFirst(name.count)).trimmingWhitespace()
        if arguments.hasPrefix("{") {
            guard let parsed = try? JSONValue.parse(arguments), parsed.objectValue != nil else {
                return .reply("The arguments for \(name) are not a JSON object I can read. \(runUsage)")
            }
            return .call(tool: name, arguments: parsed)
        }
        switch keyValues(arguments) {
        case .success(let members): return .call(tool: name, arguments: .object(members))
        case .failure(let problem): return .reply("\(problem.message) \(runUsage)")
        }
    }

    struct ArgumentProblem: Error {
        var message: String
    }

    /// `a=1 b="two words" c='it''s'`: each key once, values optionally quoted.
    static func keyValues(_ text: String) -> Result<[String: JSONValue], ArgumentProblem> {
        var members: [String: JSONValue] = [:]
        var index = text.startIndex
        func skipSpaces() { while index < text.endIndex, text[index].isWhitespace { index = text.index(after: index) } }
        skipSpaces()
        while index < text.endIndex {
            let keyStart = index
            while index < text.endIndex, text[index] != "=", !text[index].isWhitespace { index = text.index(after: index) }
            let key = String(text[keyStart..<index])
            guard index < text.endIndex, text[index] == "=", !key.isEmpty else {
                return .failure(ArgumentProblem(message: "\"\(key.prefix(60))\" has no value: write key=value."))
            }
            index = text.index(after: index)
            var value = ""
            if index < text.endIndex, text[index] == "\"" || text[index] == "'" {
                let quote = text[index]
                index = text.index(after: index)
                var closed = false
                while index < text.endIndex {
                    let character = text[index]
                    index = text.index(after: index)
                    if character == "\\", quote == "\"", index < text.endIndex {
                        value.append(text[index])
                        index = text.index(after: index)
                    } else if character == quote {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { return .failure(ArgumentProblem(message: "The value of \(key) starts with \(quote) but never ends with one.")) }
                if index < text.endIndex, !text[index].isWhitespace {
                    return .failure(ArgumentProblem(message: "Leave a space after the quoted value of \(key)."))
                }
            } else {
                while index < text.endIndex, !text[index].isWhitespace {
                    value.append(text[index])
                    index = text.index(after: index)
                }
            }
            guard members[key] == nil else { return .failure(ArgumentProblem(message: "\(key) is given twice.")) }
            members[key] = .string(value)
            skipSpaces()
        }
        return .success(members)
    }
}

extension Substring {
    fileprivate func replacingNonDigitsWithSpaces() -> String {
        String(map { $0.isNumber ? $0 : " " })
    }
}
