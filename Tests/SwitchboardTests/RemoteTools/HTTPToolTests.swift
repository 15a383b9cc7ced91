// Declared HTTP tools against a real local HTTP server: the request the template makes, the
// compensating undo, errors in plain words, the size cut; and the `http_tools` and
// `mcp.servers` configuration with its bad inputs.

import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
@testable import SwitchboardEngine
import SwitchboardModel
import SwitchboardRemoteTools
import Testing

/// A small API: POST /items creates (201 with an id), DELETE /items/{id} removes, GET /big
/// answers 64 KiB, GET /broken answers 500. Every request is recorded.
final class ItemsServer: Sendable {
    struct Seen: Sendable {
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
    }

    final class Recorder: Sendable {
        let requests = Locked<[Seen]>([])
    }

    let url: String
    private let task: Task<Void, any Error>
    private let recorder = Recorder()
    var seen: [Seen] { recorder.requests.withLock { $0 } }

    init() async throws {
        let port = try freePort()
        url = "http://127.0.0.1:\(port)"
        let router = Router()
        let recorder = recorder
        let record: @Sendable (Request, String) -> Void = { request, body in
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            recorder.requests.withLock { $0.append(Seen(method: String(describing: request.method), path: request.uri.path, headers: headers, body: body)) }
        }
        router.post("items") { request, _ -> Response in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 20))
            record(request, body)
            return Response(status: .created, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"id":"item-42","ok":true}"#)))
        }
        router.delete("items/:id") { request, context -> Response in
            record(request, "")
            return Response(status: context.parameters.get("id") == "item-42" ? .noContent : .notFound)
        }
        router.get("big") { request, _ -> Response in
            record(request, "")
            return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: String(repeating: "x", count: 65536))))
        }
        router.get("broken") { request, _ -> Response in
            record(request, "")
            return Response(status: .internalServerError)
        }
        var logger = Logger(label: "items-server")
        logger.logLevel = .critical
        let ready = AsyncStream<Void>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { _ in ready.continuation.yield() }, logger: logger
        )
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        for await _ in ready.stream { break }
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

@Suite("Declared HTTP tools")
struct HTTPToolTests {
    let person = PersonID("sam")

    func context(_ call: String) -> RemoteCallContext {
        RemoteCallContext(
            person: person, conversation: ConversationKey(channel: "test", conversation: ConversationID("room")),
            callID: ToolCallID(call), correlationID: nil, idempotencyKey: "switchboard-\(call)"
        )
    }

    func configuration(_ yaml: [String: ConfigValue]) -> (RemoteToolsConfiguration, [ConfigProblem]) {
        var config = ConfigValues()
        for (key, value) in yaml { config.set(key, value, source: .commandLine, secret: RemoteToolsConfiguration.isSecret(key)) }
        let parsed = RemoteToolsConfiguration(config: &config, builtin: ["notes.add"])
        return (parsed, config.problems)
    }

    @Test("A POST tool sends the templated request with its secret header and idempotency key, and its undo deletes what it made")
    func createAndUndo() async throws {
        let server = try await ItemsServer()
        defer { Task { await server.stop() } }
        let (parsed, problems) = configuration([
            "http_tools.0.name": .scalar("items.create"),
            "http_tools.0.description": .scalar("Create an item in the inventory"),
            "http_tools.0.parameters": .scalar(#"{"type":"object","properties":{"title":{"type":"string"}},"required":["title"]}"#),
            "http_tools.0.method": .scalar("post"),
            "http_tools.0.url": .scalar(server.url + "/items"),
            "http_tools.0.body": .scalar(#"{"name":"{title}","source":"switchboard"}"#),
            "http_tools.0.bearer_token": .scalar("tok-secret-123"),
            "http_tools.0.undo.method": .scalar("delete"),
            "http_tools.0.undo.url": .scalar(server.url + "/items/{response.id}"),
        ])
        #expect(problems.isEmpty, "\(problems)")
        let tool = try #require(parsed.httpTools.first.map { HTTPTool($0, client: HTTPTool.sharedClient) })
        #expect(tool.descriptor.baseRisk == .high)
        #expect(tool.descriptor.effect == .reversible)
        #expect(tool.descriptor.returnsUntrustedContent)

        let arguments = try JSONValue.parse(#"{"title":"Desk lamp"}"#)
        let prepared = PreparedCall(
            arguments: try RemoteToolSupport.checked(arguments, descriptor: tool.descriptor),
            preview: RemoteToolSupport.preview(arguments, descriptor: tool.descriptor, target: "POST /items"), risk: .high
        )
        #expect(prepared.preview.contains("title: \"Desk lamp\""))
        let output = try await tool.perform(prepared, approval: Approval(callID: ToolCallID("c1"), person: person), context: context("c1"))
        #expect(output.reply.contains("item-42"))
        #expect(!output.summary.contains("item-42"), "the audit summary is a digest, not the third party's text")
        #expect(output.summary.contains("sha256"))

        let reverted = try await tool.revert(try #require(output.undo), approval: Approval(callID: ToolCallID("c2"), person: person), context: context("c1"))
        #expect(reverted.contains("204"))
        let seen = server.seen
        #expect(seen.map(\.path) == ["/items", "/items/item-42"])
        #expect(seen[0].headers["authorization"] == "Bearer tok-secret-123")
        #expect(seen[0].headers["idempotency-key"] == "switchboard-c1")
        #expect(try JSONValue.parse(seen[0].body) == JSONValue.parse(#"{"name":"Desk lamp","source":"switchboard"}"#))
        #expect(seen[1].headers["idempotency-key"] == "switchboard-c1-undo")
    }

    @Test("Arguments that fail the schema, a 500 and a refused connection are errors in plain words; a long answer is cut")
    func errors() async throws {
        let server = try await ItemsServer()
        defer { Task { await server.stop() } }
        let (parsed, problems) = configuration([
            "http_tools.0.name": .scalar("items.broken"), "http_tools.0.description": .scalar("Always fails"),
            "http_tools.0.url": .scalar(server.url + "/broken"),
            "http_tools.1.name": .scalar("items.big"), "http_tools.1.description": .scalar("A long answer"),
            "http_tools.1.url": .scalar(server.url + "/big"), "http_tools.1.max_response_bytes": .scalar("2048"),
            "http_tools.2.name": .scalar("items.gone"), "http_tools.2.description": .scalar("Nobody listens"),
            "http_tools.2.url": .scalar("http://127.0.0.1:\(try freePort())/x"),
            "http_tools.3.name": .scalar("items.typed"), "http_tools.3.description": .scalar("Takes a number"),
            "http_tools.3.url": .scalar(server.url + "/big"),
            "http_tools.3.parameters": .scalar(#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}"#),
        ])
        #expect(problems.isEmpty, "\(problems)")
        let tools = parsed.httpTools.map { HTTPTool($0, client: HTTPTool.sharedClient) }
        #expect(tools.map(\.descriptor.baseRisk) == [.low, .low, .low, .low])
        func run(_ tool: HTTPTool) async throws -> ToolOutput {
            let call = PreparedCall(arguments: .object([:]), preview: "", risk: .low)
            return try await tool.perform(call, approval: Approval(callID: ToolCallID("c"), person: person), context: context("c"))
        }
        await #expect(throws: ToolFailure("items.broken answered 500 Internal Server Error, so it was not done.")) { try await run(tools[0]) }
        let big = try await run(tools[1])
        #expect(big.reply.contains("longer than 2048 bytes"))
        #expect(big.summary.contains("2048 bytes"))
        let refused = await #expect(throws: ToolFailure.self) { try await run(tools[2]) }
        #expect(refused?.message.contains("unavailable right now") == true)
        let wrong = #expect(throws: ToolFailure.self) {
            try RemoteToolSupport.checked(JSONValue.parse(#"{"n":"seven"}"#), descriptor: tools[3].descriptor)
        }
        #expect(wrong?.message.contains("don't fit") == true)
    }

    @Test("Bad declarations are reported by key, and secrets are recognised as secrets")
    func badConfiguration() {
        let (parsed, problems) = configuration([
            "http_tools.0.name": .scalar("Bad Name!"), "http_tools.0.url": .scalar("http://example.org/"),
            "http_tools.1.name": .scalar("notes.add"), "http_tools.1.description": .scalar("Clash"), "http_tools.1.url": .scalar("http://example.org/"),
            "http_tools.2.name": .scalar("crm.find"), "http_tools.2.description": .scalar("Odd schema"), "http_tools.2.url": .scalar("http://example.org/"),
            "http_tools.2.parameters": .scalar(#"{"type":"object","if":{"required":["a"]}}"#),
            "mcp.servers.0.name": .scalar("wiki"), "mcp.servers.0.transport": .scalar("stdio"),
            "mcp.servers.1.name": .scalar("files"), "mcp.servers.1.url": .scalar("ftp://files.example.org/"),
            "mcp.servers.2.name": .scalar("search"), "mcp.servers.2.url": .scalar("https://mcp.example.org/mcp"),
            "mcp.servers.2.bearer_token": .scalar("mcp-secret"), "mcp.servers.2.trusted": .scalar("true"),
            "mcp.servers.2.tools.delete_page.risk": .scalar("medium"),
        ])
        let keys = Set(problems.map(\.key))
        #expect(keys.isSuperset(of: [
            "http_tools.0.name", "http_tools.1.name", "http_tools.2.parameters", "mcp.servers.0.command", "mcp.servers.1.url",
        ]), "\(problems)")
        #expect(parsed.servers.map(\.name) == ["search"])
        #expect(parsed.servers.first?.trusted == true)
        #expect(parsed.servers.first?.overrides["delete_page"]?.risk == .medium)
        #expect(RemoteToolsConfiguration.isSecret("mcp.servers.2.bearer_token"))
        #expect(RemoteToolsConfiguration.isSecret("mcp.servers.0.env.API_KEY"))
        #expect(!RemoteToolsConfiguration.isSecret("mcp.servers.0.command"))
        #expect(RemoteToolsConfiguration.isKnown("mcp.servers.0.tools.search.category"))
        #expect(!RemoteToolsConfiguration.isKnown("mcp.servers.0.colour"))
        #expect(RemoteToolsConfiguration.key(forEnvironment: "SWITCHBOARD_MCP_SERVERS_1_URL") == "mcp.servers.1.url")
        #expect(RemoteToolsConfiguration.key(forEnvironment: "SWITCHBOARD_HTTP_TOOLS_0_BEARER_TOKEN_FILE") == "http_tools.0.bearer_token_file")
    }

    @Test("URL placeholders are percent-encoded, and a brace left open is kept as text")
    func templates() {
        let values: [String: JSONValue] = ["q": .string("a b/c&d"), "n": .int(3)]
        #expect(HTTPTemplate.url("https://x.example/search?q={q}&n={n}", values: values) == "https://x.example/search?q=a%20b%2Fc%26d&n=3")
        #expect(HTTPTemplate.url("https://x.example/a{b", values: values) == "https://x.example/a{b")
    }
}
