// Dotted tool names (`notes.add`) are not valid function names for the providers, which accept
// `^[a-zA-Z0-9_-]{1,64}$`. The mapping is reversible per request: a model's call is looked up
// in the table built for the tools it was offered, never guessed back from the text.

import Foundation
import SwitchboardModel

/// Provider-side names for a set of tools, and the way back.
struct ToolNames: Sendable {
    private(set) var toProvider: [String: String] = [:]
    private(set) var toTool: [String: String] = [:]

    init(_ names: [String]) {
        for name in names.sorted() { _ = add(name) }
    }

    /// Adds a tool; returns its provider-side name.
    @discardableResult
    mutating func add(_ name: String) -> String {
        if let existing = toProvider[name] { return existing }
        var base = String(name.unicodeScalars.map { scalar -> Character in
            let c = Character(scalar)
            return (c.isASCII && (c.isLetter || c.isNumber)) || c == "_" || c == "-" ? c : "_"
        })
        if base.isEmpty { base = "tool" }
        if base.count > 64 { base = String(base.prefix(64)) }
        var candidate = base
        var suffix = 2
        // Two names that differ only in punctuation ("a.b" and "a_b") get distinct names.
        while let owner = toTool[candidate], owner != name {
            let tail = "_\(suffix)"
            candidate = String(base.prefix(64 - tail.count)) + tail
            suffix += 1
        }
        toProvider[name] = candidate
        toTool[candidate] = name
        return candidate
    }

    func providerName(_ tool: String) -> String? { toProvider[tool] }
    func tool(_ providerName: String) -> String? { toTool[providerName] }
}
