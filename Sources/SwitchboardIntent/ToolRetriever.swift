// Finds the tools a request is about among many (an MCP server's, declared HTTP tools): a
// BM25 ranking over each tool's name parts, server name and description. The intent engine
// uses it when no built-in intent fits ("search the wiki for onboarding" → mcp.wiki.search),
// and the language-model planner to choose which of 125+ tools a model is shown.
//
// The index is built once per set of tools (names and descriptions), so ranking a message is
// a few dictionary lookups per word: microseconds, even with hundreds of tools.

import Foundation
public import SwitchboardEngine
public import SwitchboardModel

/// A BM25 index over tool descriptions.
public struct ToolRetriever: Sendable {
    /// One tool's match for a text.
    public struct Match: Sendable, Hashable {
        /// The tool.
        public var tool: String
        /// Its BM25 score.
        public var score: Double
        /// The request's words the tool matched (stemmed).
        public var matched: Set<String>
        /// Whether a matched word is part of the tool's name or server.
        public var matchedName: Bool
    }

    struct Document: Sendable {
        var name: String
        var terms: [String: Int]
        var nameTerms: Set<String>
        var length: Int
    }

    private let documents: [Document]
    private let postings: [String: [Int]]
    private let idf: [String: Double]
    private let averageLength: Double
    /// What the index was built from: rebuilt when a server's tools change.
    public let signature: Int

    /// Builds the index.
    public init(_ tools: [ToolDescriptor]) {
        var documents: [Document] = []
        var postings: [String: [Int]] = [:]
        var hasher = Hasher()
        for tool in tools.sorted(by: { $0.name < $1.name }) {
            hasher.combine(tool.name)
            hasher.combine(tool.summary)
            hasher.combine(tool.context)
            // The name's parts count twice: "mcp.wiki.search" is about the wiki and searching.
            let nameTerms = Self.terms(tool.name.replacingOccurrences(of: "mcp.", with: ""))
            var counts: [String: Int] = [:]
            let described = Self.terms(tool.summary) + Self.terms(tool.context) + tool.examples.flatMap(Self.terms)
            for term in nameTerms + nameTerms + described + Self.parameterTerms(tool.parameters) { counts[term, default: 0] += 1 }
            for term in counts.keys { postings[term, default: []].append(documents.count) }
            documents.append(Document(name: tool.name, terms: counts, nameTerms: Set(nameTerms), length: counts.values.reduce(0, +)))
        }
        let count = Double(max(1, documents.count))
        idf = postings.mapValues { log(1 + (count - Double($0.count) + 0.5) / (Double($0.count) + 0.5)) }
        self.documents = documents
        self.postings = postings
        averageLength = documents.isEmpty ? 1 : Double(documents.map(\.length).reduce(0, +)) / count
        signature = hasher.finalize()
    }

    /// The tools that match `text`, best first (at most `limit`).
    public func rank(_ text: String, limit: Int = 8) -> [Match] {
        let query = Self.query(text)
        var scores: [Int: Double] = [:]
        var matched: [Int: Set<String>] = [:]
        for (term, boost) in query {
            guard let hits = postings[term], let weight = idf[term] else { continue }
            for index in hits {
                let document = documents[index]
                let frequency = Double(document.terms[term] ?? 0)
                let k1 = 1.2, b = 0.75
                let score = weight * frequency * (k1 + 1) / (frequency + k1 * (1 - b + b * Double(document.length) / averageLength))
                scores[index, default: 0] += boost * score
                // Only the request's own words (and their verb synonyms) count as matched: the
                // intent engine calls a tool directly only on those, never on a related word.
                if boost == 1 { matched[index, default: []].insert(term) }
            }
        }
        return scores.sorted { $0.value != $1.value ? $0.value > $1.value : documents[$0.key].name < documents[$1.key].name }
            .prefix(limit)
            .map { index, score in
                let words = matched[index] ?? []
                return Match(tool: documents[index].name, score: score, matched: words, matchedName: !words.isDisjoint(with: documents[index].nameTerms))
            }
    }

    /// What a tool's arguments say about it: each property's name, description and allowed
    /// values ("temperature", "brightness in percent", "heat | cool"), which people often use
    /// for the tool itself ("set the heating to 21 degrees").
    static func parameterTerms(_ schema: JSONValue) -> [String] {
        guard case .object(let properties)? = schema["properties"] else { return [] }
        var words: [String] = []
        for (name, property) in properties.sorted(by: { $0.key < $1.key }) {
            words += terms(name.replacingOccurrences(of: "_", with: " "))
            if let description = property["description"]?.stringValue { words += terms(description) }
            if case .array(let values)? = property["enum"] { words += values.compactMap(\.stringValue).flatMap(terms) }
        }
        return words
    }

    /// A request's terms, each with its weight: the words themselves and their verb synonyms
    /// count fully, what the vocabulary relates them to half ("umbrella" finds the weather
    /// without outweighing a tool that says "umbrella"). A `#name` is a chat channel and an
    /// `ABC-123` an issue key.
    static func query(_ text: String) -> [String: Double] {
        var query: [String: Double] = [:]
        let own = terms(text)
        for term in own {
            query[term] = 1
            for same in synonyms[term] ?? [] { query[same] = 1 }
        }
        for word in text.split(whereSeparator: \.isWhitespace) {
            if word.count > 1, word.first == "#" { query["channel"] = 1 }
            if isIssueKey(word) { query["issue"] = 1 }
        }
        for term in own {
            for related in expansions[term] ?? [] where query[related] == nil { query[related] = 0.5 }
        }
        return query
    }

    /// Whether a word is an issue key such as OPS-123 (capitals, a dash, digits).
    static func isIssueKey(_ word: Substring) -> Bool {
        // Cheap first: most words have no dash.
        guard word.contains("-") else { return false }
        let word = word.trimmingCharacters(in: keyEdges)
        let parts = word.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let project = parts.first, let number = parts.last, project.count >= 2, !number.isEmpty else { return false }
        return project.first!.isUppercase && project.allSatisfy { ($0.isUppercase && $0.isASCII) || $0.isNumber } && number.allSatisfy(\.isNumber)
    }

    /// What may stand around an issue key in a sentence ("(OPS-12),").
    static let keyEdges = CharacterSet.punctuationCharacters.subtracting(CharacterSet(charactersIn: "-"))

    /// Verbs people use for what tool names say otherwise (stems).
    static let synonyms: [String: [String]] = [
        "find": ["search", "lookup"], "look": ["search", "find"], "lookup": ["search", "find"], "search": ["find"],
        "show": ["get", "list"], "fetch": ["get"], "read": ["get"], "new": ["create", "add"], "make": ["create", "add"],
        "open": ["create"], "add": ["create"], "create": ["add"], "remove": ["delete"], "delete": ["remove"], "drop": ["delete"],
        "change": ["update", "edit"], "edit": ["update"], "update": ["edit"], "send": ["post"], "post": ["send"],
    ]

    /// Words that say nothing about which tool is meant.
    static let stopWords: Set<String> = [
        "a", "an", "the", "for", "of", "to", "in", "on", "at", "by", "with", "about", "and", "or", "my", "me", "i", "you", "your",
        "please", "can", "could", "would", "is", "are", "be", "it", "this", "that", "what", "which", "from", "into", "all", "any",
        "some", "do", "does", "mcp", "tool", "tools", "using", "use", "via", "our", "we", "us",
    ]

    /// Lower-case word stems of a text, without stop words.
    static func terms(_ text: String) -> [String] {
        var words: [String] = []
        var current = ""
        for character in text.lowercased() {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if !current.isEmpty {
                words.append(current)
                current = ""
            }
        }
        if !current.isEmpty { words.append(current) }
        return words.filter { !stopWords.contains($0) }.map(stem)
    }

    /// A light suffix stripper: "searching", "searches", "searched" → "search".
    static func stem(_ word: String) -> String {
        for suffix in ["ing", "ies", "es", "ed", "s"] where word.count > suffix.count + 3 && word.hasSuffix(suffix) {
            let base = String(word.dropLast(suffix.count))
            return suffix == "ies" ? base + "y" : base
        }
        return word
    }
}

/// The retriever for the tools a registry has now, rebuilt only when they change.
public final class ToolRetrieverCache: Sendable {
    private let current = Locked<ToolRetriever?>(nil)

    /// Creates an empty cache.
    public init() {}

    /// The index for these tools.
    public func retriever(for tools: [ToolDescriptor]) -> ToolRetriever {
        var hasher = Hasher()
        for tool in tools.sorted(by: { $0.name < $1.name }) {
            // Not the parameters: hashing 150 schemas per request would double the ranking's
            // cost, and a server that changes a schema changes its description or tool list
            // with it nearly always (at worst, the index lags until then).
            hasher.combine(tool.name)
            hasher.combine(tool.summary)
            hasher.combine(tool.context)
        }
        let signature = hasher.finalize()
        if let cached = current.withLock({ $0 }), cached.signature == signature { return cached }
        let built = ToolRetriever(tools)
        current.withLock { $0 = built }
        return built
    }
}
