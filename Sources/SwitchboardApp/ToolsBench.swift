// `switchboard bench-tools`: how long choosing among many tools takes (the tool retriever, and
// the whole ranking the model planner asks for per message), and, with an MCP server named,
// the round trip of a call through the MCP client (the server's own time included).

import Foundation
import Logging
import SwitchboardEngine
import SwitchboardIntent
public import SwitchboardModel
import SwitchboardRemoteTools

/// What the tools benchmark measured, in seconds.
public struct ToolsBenchResult: Sendable {
    public var tools: Int
    public var requests: Int
    public var retrieverP50: Double
    public var retrieverP99: Double
    public var rankingP50: Double
    public var rankingP99: Double
    /// Calls made to the MCP server, and their round trips.
    public var calls: Int = 0
    public var callP50: Double = 0
    public var callP99: Double = 0
    public var server: String?

    /// One JSON object, times in milliseconds.
    public var json: String {
        func ms(_ value: Double) -> JSONValue { .double((value * 1_000_000).rounded() / 1000) }
        var object: [String: JSONValue] = [
            "tools": .int(Int64(tools)), "requests": .int(Int64(requests)),
            "retriever_p50_ms": ms(retrieverP50), "retriever_p99_ms": ms(retrieverP99),
            "ranking_p50_ms": ms(rankingP50), "ranking_p99_ms": ms(rankingP99),
        ]
        if let server {
            object["server"] = .string(server)
            object["calls"] = .int(Int64(calls))
            object["call_p50_ms"] = ms(callP50)
            object["call_p99_ms"] = ms(callP99)
        }
        return JSONValue.object(object).canonicalText
    }
}

/// The tools benchmark.
public enum ToolsBench {
    static let systems = ["wiki", "tickets", "drive", "crm", "calendar", "chat", "billing", "deploy", "metrics", "home", "hr", "docs", "search", "git", "support"]
    static let actions: [(String, String)] = [
        ("search", "Search %@ for a word or phrase."), ("get", "Get one item from %@ by its id."), ("create", "Create a new item in %@."),
        ("update", "Change an item in %@."), ("delete", "Delete an item from %@."), ("list_recent", "List the most recent items in %@."),
        ("comment", "Add a comment to an item in %@."), ("assign", "Assign an item in %@ to a person."), ("export", "Export items from %@ as a file."),
        ("summarize", "Summarize what changed in %@ today."),
    ]

    /// `count` tools like a set of MCP servers offers: ten actions on each of fifteen systems.
    static func syntheticTools(_ count: Int) -> [ToolDescriptor] {
        var tools: [ToolDescriptor] = []
        outer: for system in systems {
            for (action, summary) in actions {
                guard tools.count < count else { break outer }
                tools.append(ToolDescriptor(
                    name: "mcp.\(system).\(action)", category: "mcp.\(system)", summary: summary.replacingOccurrences(of: "%@", with: "the \(system)"),
                    parameters: ["type": "object", "properties": ["query": ["type": "string"]], "required": ["query"]],
                    baseRisk: .medium, effect: .irreversible, origin: .mcp(server: system), returnsUntrustedContent: true
                ))
            }
        }
        return tools
    }

    static let requests = [
        "search the wiki for onboarding", "open a ticket about the broken printer", "what changed in billing today",
        "assign the deploy to sam", "export the crm contacts", "remind me tomorrow at 9 to call bob", "add a note: buy milk",
        "delete the old item from the drive", "list recent support cases", "comment on the git pull request",
    ]

    /// Runs the selection benchmark, and the call benchmark when `server` is given.
    public static func run(
        tools count: Int, rounds: Int, configuration: AppConfiguration?, server name: String?, tool: String?, arguments: JSONValue, calls: Int
    ) async throws -> ToolsBenchResult {
        var server: MCPServerConfiguration?
        if let name {
            guard let found = configuration?.remoteTools.servers.first(where: { $0.name == name }) else {
                throw GatewayError("No MCP server is called \"\(name)\" in the configuration.")
            }
            server = found
        }
        let tools = syntheticTools(count)
        let cache = ToolRetrieverCache()
        let hints = IntentEngineHints(remote: { tools })
        _ = hints.rank("warm up")
        var retrieval: [Double] = []
        var ranking: [Double] = []
        for round in 0..<rounds {
            let text = requests[round % requests.count]
            let start = ContinuousClock.now
            _ = cache.retriever(for: tools).rank(text, limit: 8)
            retrieval.append(seconds(ContinuousClock.now - start))
            let ranked = ContinuousClock.now
            _ = hints.rank(text)
            ranking.append(seconds(ContinuousClock.now - ranked))
        }
        var result = ToolsBenchResult(
            tools: tools.count, requests: rounds, retrieverP50: percentile(retrieval, 0.5), retrieverP99: percentile(retrieval, 0.99),
            rankingP50: percentile(ranking, 0.5), rankingP99: percentile(ranking, 0.99)
        )
        guard let server, let tool else { return result }
        var logger = Logger(label: "switchboard.bench")
        logger.logLevel = .error
        let connection = RemoteToolCatalog.connection(for: server, logger: logger)
        let running = Task { await connection.run() }
        defer { running.cancel() }
        let deadline = Date().addingTimeInterval(server.connectTimeout + 2)
        while connection.status.state != .up, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard let mcp = connection.tools["mcp.\(server.name).\(tool)"] else {
            running.cancel()
            throw GatewayError("MCP server \(server.name) is \(connection.status.state.rawValue)\(connection.status.lastError.map { " (\($0))" } ?? "") or has no tool \(tool).")
        }
        let checked = try RemoteToolSupport.checked(arguments, descriptor: mcp.descriptor)
        // The first call warms the session and is not counted.
        let times = Array(try await connection.timeCalls(tool, arguments: checked, count: calls + 1).dropFirst())
        running.cancel()
        await running.value
        result.server = server.name
        result.calls = times.count
        result.callP50 = percentile(times, 0.5)
        result.callP99 = percentile(times, 0.99)
        return result
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
}
