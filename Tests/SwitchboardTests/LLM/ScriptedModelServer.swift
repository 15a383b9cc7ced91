// Scripted model servers on 127.0.0.1 for the language-model tests: an OpenAI-compatible
// Chat Completions endpoint and an Anthropic Messages endpoint, replaying response bodies
// shaped as the providers document them (streamed chunks, tool calls split across chunks,
// error bodies, rate-limit headers). No real model is reachable from the test machines.

import Foundation
import Hummingbird
import Logging
import HTTPTypes
import NIOCore
import SwitchboardModel

/// One scripted answer.
enum ScriptedReply: Sendable {
    /// A `text/event-stream` of these events, written in small pieces.
    case stream([(event: String?, data: String)])
    /// A status with a JSON body and extra headers.
    case json(status: Int, body: String, headers: [(String, String)])
}

/// A server answering from a script; every request is recorded.
final class ScriptedModelServer: Sendable {
    let port: Int
    let url: String
    private let state = Locked<(queue: [ScriptedReply], requests: [JSONValue], headers: [[String: String]], unexpected: Int)>(([], [], [], 0))
    private let responder: (@Sendable (JSONValue) -> ScriptedReply?)?
    private let task: Task<Void, any Error>

    /// Starts a server. `responder` answers first, where it wants to (by looking at the
    /// request); otherwise the queue answers in order.
    init(path: String, responder: (@Sendable (JSONValue) -> ScriptedReply?)? = nil) async throws {
        let port = try freePort()
        self.port = port
        self.url = "http://127.0.0.1:\(port)"
        self.responder = responder
        let router = Router()
        let ready = AsyncStream<Void>.makeStream()
        // The handler reaches the server's state through a box set once the server exists.
        let box = ServerBox()
        router.post(RouterPath(path)) { request, _ -> Response in
            let body = try await request.body.collect(upTo: 16 * 1024 * 1024)
            let value = (try? JSONValue.parse(String(buffer: body))) ?? .null
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            return box.server!.answer(value, headers: headers)
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { _ in ready.continuation.yield() }, logger: Self.quiet
        )
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        box.server = self
        for await _ in ready.stream { break }
    }

    /// Stopping the server mid-connection is expected here; its log lines are not findings.
    static let quiet: Logger = {
        var logger = Logger(label: "scripted-model-server")
        logger.logLevel = .critical
        return logger
    }()

    func enqueue(_ replies: ScriptedReply...) {
        state.withLock { $0.queue += replies }
    }

    /// The request bodies received, in order.
    var requests: [JSONValue] { state.withLock { $0.requests } }
    /// The request headers received, in order (names in lower case).
    var headers: [[String: String]] { state.withLock { $0.headers } }
    /// Requests that found nothing scripted.
    var unexpected: Int { state.withLock { $0.unexpected } }
    /// Scripted replies not yet used.
    var remaining: Int { state.withLock { $0.queue.count } }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    private func answer(_ request: JSONValue, headers: [String: String]) -> Response {
        let reply = state.withLock { state -> ScriptedReply? in
            state.requests.append(request)
            state.headers.append(headers)
            if let reply = responder?(request) { return reply }
            if state.queue.isEmpty {
                state.unexpected += 1
                return nil
            }
            return state.queue.removeFirst()
        }
        switch reply {
        case nil:
            return Self.json(500, #"{"error":{"message":"nothing scripted for this request","type":"server_error"}}"#, [])
        case .json(let status, let body, let headers)?:
            return Self.json(status, body, headers)
        case .stream(let events)?:
            var text = ""
            for event in events {
                if let name = event.event { text += "event: \(name)\n" }
                text += "data: \(event.data)\n\n"
            }
            // Small pieces, so lines and events straddle reads as they do on a real network.
            let bytes = Array(text.utf8)
            let pieces = stride(from: 0, to: bytes.count, by: 37).map { ByteBuffer(bytes: bytes[$0..<min($0 + 37, bytes.count)]) }
            var fields = HTTPFields()
            fields[.contentType] = "text/event-stream"
            fields[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: fields, body: ResponseBody(contentsOf: pieces))
        }
    }

    private static func json(_ status: Int, _ body: String, _ headers: [(String, String)]) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
        return Response(status: .init(code: status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

private final class ServerBox: @unchecked Sendable {  // set once, before the first request
    var server: ScriptedModelServer?
}

/// Bodies shaped like OpenAI's documented Chat Completions stream.
enum OpenAIScript {
    static func chunk(_ delta: JSONValue, finish: String? = nil) -> (event: String?, data: String) {
        let choice: JSONValue = ["index": 0, "delta": delta, "finish_reason": finish.map(JSONValue.string) ?? .null]
        let body: JSONValue = [
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_780_000_000, "model": "test-model",
            "choices": [choice],
        ]
        return (nil, body.canonicalText)
    }

    static func usage(_ input: Int, _ output: Int) -> (event: String?, data: String) {
        let body: JSONValue = [
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_780_000_000, "model": "test-model", "choices": [],
            "usage": ["prompt_tokens": .int(Int64(input)), "completion_tokens": .int(Int64(output)), "total_tokens": .int(Int64(input + output))],
        ]
        return (nil, body.canonicalText)
    }

    /// A text answer, in two content pieces.
    static func text(_ text: String, input: Int = 120, output: Int = 20) -> ScriptedReply {
        let middle = text.index(text.startIndex, offsetBy: text.count / 2)
        return .stream([
            chunk(["role": "assistant", "content": ""]),
            chunk(["content": .string(String(text[..<middle]))]),
            chunk(["content": .string(String(text[middle...]))]),
            chunk([:], finish: "stop"),
            usage(input, output),
            (nil, "[DONE]"),
        ])
    }

    /// Tool calls (parallel when several), each one's arguments split over three chunks.
    static func toolCalls(_ calls: [(id: String, name: String, arguments: String)], input: Int = 150, output: Int = 30) -> ScriptedReply {
        var events = [chunk(["role": "assistant", "content": .null])]
        for (index, call) in calls.enumerated() {
            events.append(chunk(["tool_calls": [[
                "index": .int(Int64(index)), "id": .string(call.id), "type": "function",
                "function": ["name": .string(call.name), "arguments": ""],
            ]]]))
            let arguments = Array(call.arguments)
            let third = max(1, arguments.count / 3)
            for start in stride(from: 0, to: arguments.count, by: third) {
                let piece = String(arguments[start..<min(start + third, arguments.count)])
                events.append(chunk(["tool_calls": [["index": .int(Int64(index)), "function": ["arguments": .string(piece)]]]]))
            }
        }
        events += [chunk([:], finish: "tool_calls"), usage(input, output), (nil, "[DONE]")]
        return .stream(events)
    }

    static func error(_ status: Int, type: String, message: String, headers: [(String, String)] = []) -> ScriptedReply {
        .json(status: status, body: (["error": ["message": .string(message), "type": .string(type), "param": .null, "code": .null]] as JSONValue).canonicalText, headers: headers)
    }
}

/// Bodies shaped like Anthropic's documented Messages stream.
enum AnthropicScript {
    static func event(_ name: String, _ body: JSONValue) -> (event: String?, data: String) {
        (name, body.canonicalText)
    }

    static func start(input: Int) -> (event: String?, data: String) {
        event("message_start", ["type": "message_start", "message": [
            "id": "msg_test", "type": "message", "role": "assistant", "content": [], "model": "claude-test",
            "stop_reason": .null, "stop_sequence": .null, "usage": ["input_tokens": .int(Int64(input)), "output_tokens": 1],
        ]])
    }

    static func stop(_ reason: String, output: Int) -> [(event: String?, data: String)] {
        [
            event("message_delta", ["type": "message_delta", "delta": ["stop_reason": .string(reason), "stop_sequence": .null], "usage": ["output_tokens": .int(Int64(output))]]),
            event("message_stop", ["type": "message_stop"]),
        ]
    }

    static func text(_ text: String, input: Int = 120, output: Int = 20) -> ScriptedReply {
        let middle = text.index(text.startIndex, offsetBy: text.count / 2)
        return .stream([
            start(input: input),
            event("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]),
            event("ping", ["type": "ping"]),
            event("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(String(text[..<middle]))]]),
            event("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(String(text[middle...]))]]),
            event("content_block_stop", ["type": "content_block_stop", "index": 0]),
        ] + stop("end_turn", output: output))
    }

    /// A short text block, then tool_use blocks whose input arrives as partial JSON.
    static func toolUse(_ calls: [(id: String, name: String, input: String)], lead: String = "Let me do that.", input: Int = 150, output: Int = 40) -> ScriptedReply {
        var events = [
            start(input: input),
            event("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]),
            event("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(lead)]]),
            event("content_block_stop", ["type": "content_block_stop", "index": 0]),
        ]
        for (offset, call) in calls.enumerated() {
            let index = JSONValue.int(Int64(offset + 1))
            events.append(event("content_block_start", ["type": "content_block_start", "index": index, "content_block": [
                "type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": [:],
            ]]))
            let characters = Array(call.input)
            let half = max(1, characters.count / 2)
            for start in stride(from: 0, to: characters.count, by: half) {
                let piece = String(characters[start..<min(start + half, characters.count)])
                events.append(event("content_block_delta", ["type": "content_block_delta", "index": index, "delta": ["type": "input_json_delta", "partial_json": .string(piece)]]))
            }
            events.append(event("content_block_stop", ["type": "content_block_stop", "index": index]))
        }
        return .stream(events + stop("tool_use", output: output))
    }

    static func error(_ status: Int, type: String, message: String, headers: [(String, String)] = []) -> ScriptedReply {
        .json(status: status, body: (["type": "error", "error": ["type": .string(type), "message": .string(message)]] as JSONValue).canonicalText, headers: headers)
    }
}
