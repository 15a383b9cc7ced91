// The intent engine's way to the tools of other systems: when no built-in intent fits, the
// tool retriever looks for an MCP or HTTP tool whose name and description match the request,
// and the request's remaining words become its one text argument ("search the wiki for
// onboarding" → mcp.wiki.search with query "onboarding"). A tool that needs more than that is
// named with the `run` form to use; two close matches are offered as a choice. The gate then
// treats the call as any other: a risky tool still waits for a yes.

import Foundation
import SwitchboardEngine
import SwitchboardModel

extension IntentPlanner {
    /// Argument names that take the free text of a request when the schema requires none.
    static let textArgumentNames = ["query", "q", "text", "search", "term", "keywords", "question", "prompt", "input"]

    /// The plan for a tool of another system, if one clearly matches.
    ///
    /// - Parameter builtin: the built-in tool the engine chose; then only a request that names
    ///   the other system (its server, or an HTTP tool's first name part) and not the built-in
    ///   tool's area is taken from it.
    func remotePlan(_ text: String, namingSystemOver builtin: String? = nil) -> Plan? {
        let tools = remoteTools()
        guard !tools.isEmpty else { return nil }
        let matches = retrievers.retriever(for: tools).rank(text, limit: 2)
        guard let best = matches.first, best.matchedName, best.matched.count >= 2,
            let descriptor = tools.first(where: { $0.name == best.tool })
        else { return nil }
        if let builtin {
            let words = Set(ToolRetriever.terms(text))
            let system: String
            switch descriptor.origin {
            case .mcp(let server): system = server
            default: system = String(descriptor.name.split(separator: ".").first ?? "")
            }
            let builtinArea = ToolRetriever.terms(String(builtin.split(separator: ".").first ?? ""))
            guard ToolRetriever.terms(system).contains(where: words.contains), !builtinArea.contains(where: words.contains) else { return nil }
        }
        if let second = matches.dropFirst().first, second.matchedName, second.score * 1.15 > best.score,
            let other = tools.first(where: { $0.name == second.tool })
        {
            return .reply(
                "\(Self.unsure) Do you mean \(descriptor.name) (\(descriptor.summary)) or \(other.name) (\(other.summary))? Say run and the tool's name with its arguments, such as: \(Self.usage(descriptor))"
            )
        }
        let properties = descriptor.parameters["properties"]?.objectValue ?? [:]
        let required = (descriptor.parameters["required"]?.arrayValue ?? []).compactMap(\.stringValue)
        let target: String?
        if required.count == 1 {
            target = required[0]
        } else if required.isEmpty {
            target = Self.textArgumentNames.first { properties[$0] != nil } ?? (properties.count == 1 ? properties.keys.first : nil)
        } else {
            target = nil
        }
        guard let target, properties[target]?["type"]?.stringValue ?? "string" == "string" else {
            return .reply("That sounds like \(descriptor.name): \(descriptor.summary) It needs \(required.joined(separator: ", ")); say: \(Self.usage(descriptor))")
        }
        let value = Self.freeText(of: text, matched: best.matched)
        guard !value.isEmpty else {
            return .reply("That sounds like \(descriptor.name): \(descriptor.summary) What should \(target) be? Say: run \(descriptor.name) \(target)=\"…\"")
        }
        return .call(tool: descriptor.name, arguments: .object([target: .string(value)]))
    }

    /// The part of a request that is its subject: what follows "for", "about", "named",
    /// "called" or a colon; otherwise the words that did not pick the tool.
    static func freeText(of text: String, matched: Set<String>) -> String {
        let lower = text.lowercased()
        var cut: String.Index?
        for marker in [" for ", " about ", " named ", " called ", " titled ", ": "] {
            if let range = lower.range(of: marker, options: .backwards), cut.map({ range.upperBound > $0 }) ?? true { cut = range.upperBound }
        }
        if let cut {
            let offset = lower.distance(from: lower.startIndex, to: cut)
            return trimmed(String(text.dropFirst(offset)))
        }
        let words = text.split(whereSeparator: \.isWhitespace).filter { word in
            let terms = ToolRetriever.terms(String(word))
            return !terms.isEmpty && terms.allSatisfy { !matched.contains($0) }
        }
        return trimmed(words.joined(separator: " "))
    }

    private static func trimmed(_ text: String) -> String {
        var text = text.trimmingCharacters(in: .whitespaces)
        while let last = text.last, ".!?".contains(last) { text.removeLast() }
        if text.count >= 2, let first = text.first, first == text.last, first == "\"" || first == "'" { text = String(text.dropFirst().dropLast()) }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// `run NAME a="…" b="…"` for a tool's required arguments.
    static func usage(_ descriptor: ToolDescriptor) -> String {
        let required = (descriptor.parameters["required"]?.arrayValue ?? []).compactMap(\.stringValue)
        return (["run \(descriptor.name)"] + required.map { "\($0)=\"…\"" }).joined(separator: " ")
    }
}
