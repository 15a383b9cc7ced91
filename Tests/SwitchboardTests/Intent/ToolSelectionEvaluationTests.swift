// Which tools a language model is shown, with 155 registered: the 35 built-ins and 120 tools
// of fifteen MCP servers as such servers describe them (Fixtures/tools/catalog.jsonl), each
// server described by its operator in a line (servers.jsonl, `mcp.servers[].description`). For
// each labelled request (Fixtures/tools/requests.jsonl, written as people type, mostly not in
// the tools' own words) the right tool must be among those the planner sends. The issue asks
// for 95%; word matching over names, descriptions, parameters and the server's description
// reaches 91.8% at the default top 8 and no more than 92.4% at any k (the misses share no word
// with their tool: "is the garage door open" for a sensor reader). The floor below is that
// measured figure, so a change that loses recall fails; the misses and the recall at other k
// are printed, so a change that gains shows it. Reaching 95% needs meaning, not words (past
// use per person, or embeddings where a model provider offers them).

import Foundation
import Logging
@testable import SwitchboardApp
import SwitchboardEngine
@testable import SwitchboardLLM
import SwitchboardModel
import SwitchboardSQLite
import Testing

@Suite("Tool selection among 150 tools")
struct ToolSelectionEvaluationTests {
    static let fixtures = packageRoot + "/Tests/SwitchboardTests/Fixtures/tools/"

    static func lines(_ name: String) throws -> [JSONValue] {
        let text = try String(contentsOfFile: fixtures + name, encoding: .utf8)
        return try text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { try JSONValue.parse(String($0)) }
    }

    /// The catalog's tools, named and described as the MCP client names them.
    static func catalog() throws -> [ToolDescriptor] {
        // Each server as its operator describes it (`mcp.servers[].description`).
        var about: [String: String] = [:]
        for server in try lines("servers.jsonl") { about[server["server"]?.stringValue ?? ""] = server["description"]?.stringValue }
        return try lines("catalog.jsonl").map { tool in
            let server = tool["server"]?.stringValue ?? "?"
            let name = tool["name"]?.stringValue ?? "?"
            return ToolDescriptor(
                name: "mcp.\(server).\(name)", category: "mcp.\(server)", summary: tool["description"]?.stringValue ?? "",
                parameters: tool["inputSchema"] ?? ["type": "object"], baseRisk: .high, effect: .irreversible,
                origin: .mcp(server: server), returnsUntrustedContent: true, context: about[server] ?? ""
            )
        }
    }

    /// A planner whose selection is what `serve` would send (`llm.tools_top_k` at its default).
    static func planner(remote: [ToolDescriptor], topK: Int = LLMConfiguration().toolsTopK) -> LLMPlanner {
        var logger = Logger(label: "selection")
        logger.logLevel = .critical
        let store = try! SQLiteStore(path: NSTemporaryDirectory() + "selection-\(UUID().uuidString).sqlite")
        var configuration = LLMConfiguration()
        configuration.toolsTopK = topK
        let router = ModelRouter(configuration: configuration, providers: [:], ledger: UsageLedger(store: store, budget: configuration.budget), logger: logger)
        return LLMPlanner(
            router: router, fallback: CommandPlanner(), hints: IntentEngineHints(remote: { remote }), store: store, clock: SystemWallClock(),
            escalation: false, logger: logger
        )
    }

    @Test("The labelled set is well formed: 150 tools, at least 150 requests, each naming a tool that exists")
    func wellFormed() throws {
        let remote = try Self.catalog()
        let all = BuiltinTools.all.map(\.descriptor) + remote
        #expect(all.count >= 150, "\(all.count) tools")
        #expect(Set(all.map(\.name)).count == all.count, "tool names are unique")
        let requests = try Self.lines("requests.jsonl")
        #expect(requests.count >= 150, "\(requests.count) requests")
        let names = Set(all.map(\.name))
        for request in requests {
            let tool = request["tool"]?.stringValue ?? ""
            #expect(names.contains(tool), "\(request.canonicalText) names no tool")
            let text = request["text"]?.stringValue ?? ""
            #expect(text.count > 2, "\(request.canonicalText) has no text")
        }
        let covered = Set(requests.compactMap { $0["tool"]?.stringValue })
        #expect(covered.filter { $0.hasPrefix("mcp.") }.count >= 80, "requests cover most of the catalog")
    }

    @Test("Recall does not fall below the measured 91.8%: the right tool is among those a model is shown")
    func recall() throws {
        let remote = try Self.catalog()
        let all = BuiltinTools.all.map(\.descriptor) + remote
        let planner = Self.planner(remote: remote)
        let hints = IntentEngineHints(remote: { remote })
        let requests = try Self.lines("requests.jsonl")
        var misses: [String] = []
        var shown = 0
        for request in requests {
            let text = request["text"]?.stringValue ?? ""
            let expected = request["tool"]?.stringValue ?? ""
            let chosen = planner.selectTools(all, ranked: hints.rank(text), used: []).map(\.name)
            shown += chosen.count
            if !chosen.contains(expected) { misses.append("\(text) → wanted \(expected), shown \(chosen.prefix(4).joined(separator: ", "))") }
        }
        let recall = Double(requests.count - misses.count) / Double(requests.count)
        print("tool selection: recall \(String(format: "%.1f", recall * 100))% over \(requests.count) requests, \(String(format: "%.1f", Double(shown) / Double(requests.count))) tools shown on average")
        for miss in misses { print("  miss: \(miss)") }
        for k in [4, 8, 12, 16, 24] {
            let other = Self.planner(remote: remote, topK: k)
            let hits = requests.count { request in
                other.selectTools(all, ranked: hints.rank(request["text"]?.stringValue ?? ""), used: []).contains { $0.name == request["tool"]?.stringValue }
            }
            print("tool selection: top \(k): recall \(String(format: "%.1f", Double(hits) * 100 / Double(requests.count)))%")
        }
        #expect(recall >= 0.918, "recall \(recall): \(misses.count) misses:\n\(misses.joined(separator: "\n"))")
        // Never all of them: the point is a short list.
        #expect(shown <= requests.count * LLMConfiguration().toolsTopK)
    }
}
