// The language-model round benchmark: the gateway's own cost per model round (routing,
// context and summary, tool selection, request encoding, stream parsing, schema validation,
// the gate with its audit and undo records, usage accounting, the commit), with a replayed
// provider that answers at once, so nothing of the time is the model's. And the time to build
// a request's body with 125 tools registered.

import Foundation
import Logging
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardIntent
import SwitchboardLLM
import SwitchboardModel
import SwitchboardSQLite
import SwitchboardStorage

/// Results of the round benchmark.
public struct LLMBenchResult: Sendable {
    public var messages: Int
    public var toolsRegistered: Int
    public var toolsSent: Int
    public var requestBytes: Int
    /// Per model round, seconds.
    public var roundP50: Double
    public var roundP99: Double
    /// Per request build (context, selection, encoding), seconds.
    public var buildP50: Double
    public var buildP99: Double

    public var json: String {
        func ms(_ v: Double) -> JSONValue { .double((v * 1_000_000).rounded() / 1000) }
        return JSONValue.object([
            "messages": .int(Int64(messages)), "tools_registered": .int(Int64(toolsRegistered)), "tools_sent": .int(Int64(toolsSent)),
            "request_bytes": .int(Int64(requestBytes)), "round_overhead_p50_ms": ms(roundP50), "round_overhead_p99_ms": ms(roundP99),
            "request_build_p50_ms": ms(buildP50), "request_build_p99_ms": ms(buildP99),
        ]).canonicalText
    }
}

/// A read-only tool that exists to be registered: the benchmark's extra tools.
struct BenchLookupTool: Tool {
    let descriptor: ToolDescriptor

    init(index: Int) {
        descriptor = ToolDescriptor(
            name: "bench.lookup_\(index)", category: "bench", summary: "Looks up record \(index) of the benchmark catalogue by name and date.",
            parameters: [
                "type": "object",
                "properties": [
                    "name": ["type": "string", "minLength": 1, "maxLength": 100], "date": ["type": "string", "format": "date-time"],
                    "limit": ["type": "integer", "minimum": 1, "maximum": 50],
                ],
                "required": ["name"], "additionalProperties": false,
            ],
            baseRisk: .low, effect: .readOnly
        )
    }

    func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        PreparedCall(arguments: arguments, preview: "Look up \(arguments["name"]?.stringValue ?? "")", risk: .low)
    }

    func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        ToolOutput(reply: "Nothing found.", summary: "looked up")
    }
}

/// Runs the round benchmark.
public enum LLMBench {
    public static func run(messages: Int, tools toolCount: Int, conversations: Int) async throws -> LLMBenchResult {
        let directory = NSTemporaryDirectory() + "switchboard-llm-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteStore(path: directory + "/bench.sqlite")
        var logger = Logger(label: "switchboard.llm-bench")
        logger.logLevel = .error

        var tools = BuiltinTools.all
        var index = 0
        while tools.count < toolCount {
            tools.append(BenchLookupTool(index: index))
            index += 1
        }
        var engineConfiguration = EngineConfiguration()
        engineConfiguration.rateLimits = RateLimitPolicy(defaultLimit: RateLimit(perMinute: 1e9, burst: 1e9))
        let gate = ToolGate(
            registry: ToolRegistry(tools), access: engineConfiguration.access, riskPolicy: engineConfiguration.risk,
            rateLimits: engineConfiguration.rateLimits, confirmationLifetime: 600, sealer: .ephemeral(), logger: logger
        )
        var llm = LLMConfiguration()
        llm.models = [ModelConfiguration(name: "replay", provider: .openai, baseURL: "http://replay.invalid/v1", model: "replay", tier: 1, contextWindow: 32000)]
        llm.intentConfidence = 1.0
        let provider = ReplayProvider(
            toolCall: ReplayProvider.toolCallStream(id: "call_1", name: "notes_add", arguments: #"{"text":"bench note"}"#),
            text: ReplayProvider.textStream("Added it; you now have more notes.")
        )
        let router = ModelRouter(configuration: llm, providers: ["replay": provider], ledger: UsageLedger(store: store, budget: LLMBudget()), logger: logger)
        let clock = SystemWallClock()
        let intent = IntentPlanner(engine: { BuiltinTools.intentEngine }, tools: tools.map(\.descriptor), clock: clock, zoneOf: { _ in nil })
        let planner = LLMPlanner(
            router: router, fallback: intent, fallbackFailed: { IntentPlanner.cannotServe($0) }, hints: IntentEngineHints(), store: store,
            clock: clock, escalation: false, logger: logger
        )
        let inboxSignal = WorkSignal()
        let inbox = InboxWriter(store: store, signal: inboxSignal)
        let engine = ConversationEngine(
            store: store, planner: planner, gate: gate, configuration: engineConfiguration, clock: clock,
            inboxSignal: inboxSignal, outboxSignal: WorkSignal(), logger: logger
        )
        func message(_ number: Int) -> InboundMessage {
            let conversation = number % conversations
            return InboundMessage(
                externalID: "m\(number)", conversation: ConversationKey(channel: "bench", conversation: ConversationID("c\(conversation)")),
                sender: Sender(id: PersonID("person\(conversation)")),
                text: "please put bench note \(number) in my notes, and then tell me how many notes I have",
                trust: TrustFacts(senderAuthenticated: true), receivedAt: Date()
            )
        }
        let warmUp = min(20, messages / 10)
        var rounds: [Double] = []
        let timer = ContinuousClock()
        for number in 0..<(messages + warmUp) {
            _ = try await inbox.accept([message(number)])
            let start = timer.now
            let answered = try await engine.processBatch()
            let elapsed = start.duration(to: timer.now)
            guard answered == 1 else { throw BenchError("message \(number) was not answered") }
            // Two model rounds per message: the tool call, then the answer.
            if number >= warmUp { rounds.append(elapsed.seconds / 2) }
        }
        let notes = try await store.read { try $0.notes.list(owner: PersonID("person0")) }
        guard notes.count >= (messages + warmUp) / conversations else { throw BenchError("the replayed tool calls did not all run") }

        var builds: [Double] = []
        var sent = 0
        var bytes = 0
        for number in 0..<(messages + warmUp) {
            let start = timer.now
            guard let built = try await planner.firstRequest(for: message(number), tools: gate.registry.descriptors) else {
                throw BenchError("no request could be built")
            }
            let elapsed = start.duration(to: timer.now)
            if number >= warmUp { builds.append(elapsed.seconds) }
            sent = built.request.tools.count
            bytes = built.body.utf8.count
        }
        rounds.sort()
        builds.sort()
        func percentile(_ values: [Double], _ p: Double) -> Double { values[min(values.count - 1, Int(Double(values.count) * p))] }
        return LLMBenchResult(
            messages: messages, toolsRegistered: tools.count, toolsSent: sent, requestBytes: bytes,
            roundP50: percentile(rounds, 0.5), roundP99: percentile(rounds, 0.99), buildP50: percentile(builds, 0.5), buildP99: percentile(builds, 0.99)
        )
    }

    struct BenchError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
