// The provider formats without a network: stream parsing (chunks split anywhere, parallel
// tool calls, refusals, stop reasons, usage, errors in the stream), error bodies, Retry-After,
// the schema validator, tool names, retries and the breaker, and the `llm.*` configuration.

import Foundation
import NIOHTTP1
@testable import SwitchboardLLM
import SwitchboardEngine
import SwitchboardModel
import SwitchboardTools
import Testing

@Suite("LLM provider formats and recovery")
struct ProviderFormatTests {
    static func events(_ text: String, pieces: Int) -> [ServerSentEvent] {
        var parser = ServerSentEventParser()
        let bytes = Array(text.utf8)
        var events: [ServerSentEvent] = []
        for start in stride(from: 0, to: bytes.count, by: pieces) {
            events += parser.feed(Array(bytes[start..<min(start + pieces, bytes.count)]))
        }
        return events + parser.finish()
    }

    static func sse(_ payloads: [(String?, String)]) -> String {
        payloads.map { (event, data) in (event.map { "event: \($0)\r\n" } ?? "") + "data: \(data)\r\n\r\n" }.joined()
    }

    @Test("Server-sent events: CRLF or LF, comments, multi-line data, any split of the bytes")
    func serverSentEvents() {
        let text = ": keep-alive\n\nevent: a\ndata: one\ndata: two\n\ndata: three\r\n\r\n"
        for size in [1, 2, 3, 5, 64] {
            let events = Self.events(text, pieces: size)
            #expect(events == [ServerSentEvent(event: "a", data: "one\ntwo"), ServerSentEvent(event: nil, data: "three")], "pieces of \(size)")
        }
    }

    @Test("OpenAI: parallel tool calls assembled by index, usage from the last chunk")
    func openAIParallelCalls() throws {
        func chunk(_ delta: String, finish: String = "null") -> (String?, String) {
            (nil, #"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":\#(delta),"finish_reason":\#(finish)}]}"#)
        }
        let text = Self.sse([
            chunk(#"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"notes_add","arguments":""}}]}"#),
            chunk(#"{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"notes_list","arguments":""}}]}"#),
            chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"te"}}]}"#),
            chunk(#"{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}"#),
            chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"xt\":\"milk\"}"}}]}"#),
            chunk("{}", finish: #""tool_calls""#),
            (nil, #"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":57,"completion_tokens":17,"total_tokens":74}}"#),
            (nil, "[DONE]"),
        ])
        let response = try OpenAIProvider.parse(events: Self.events(text, pieces: 11))
        #expect(response.toolCalls == [
            ToolCall(id: "call_a", name: "notes_add", arguments: #"{"text":"milk"}"#), ToolCall(id: "call_b", name: "notes_list", arguments: "{}"),
        ])
        #expect(response.finish == .toolCalls)
        #expect(response.usage == TokenUsage(input: 57, output: 17))
    }

    @Test("OpenAI: refusals, length, content filter, a stream cut short, an error inside the stream, a whole JSON answer")
    func openAIOutcomes() throws {
        let refusal = Self.sse([
            (nil, #"{"choices":[{"index":0,"delta":{"refusal":"I can't help "},"finish_reason":null}]}"#),
            (nil, #"{"choices":[{"index":0,"delta":{"refusal":"with that."},"finish_reason":"stop"}]}"#), (nil, "[DONE]"),
        ])
        let refused = try OpenAIProvider.parse(events: Self.events(refusal, pieces: 7))
        #expect(refused.finish == .refusal && refused.refusal == "I can't help with that.")
        let long = Self.sse([(nil, #"{"choices":[{"index":0,"delta":{"content":"abc"},"finish_reason":"length"}]}"#), (nil, "[DONE]")])
        #expect(try OpenAIProvider.parse(events: Self.events(long, pieces: 100)).finish == .length)
        let filtered = Self.sse([(nil, #"{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#), (nil, "[DONE]")])
        #expect(try OpenAIProvider.parse(events: Self.events(filtered, pieces: 100)).finish == .contentFilter)
        let cut = Self.sse([(nil, #"{"choices":[{"index":0,"delta":{"content":"half an ans"},"finish_reason":null}]}"#)])
        #expect(throws: ProviderError.self) { try OpenAIProvider.parse(events: Self.events(cut, pieces: 100)) }
        let failing = Self.sse([(nil, #"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#)])
        #expect {
            try OpenAIProvider.parse(events: Self.events(failing, pieces: 100))
        } throws: { error in
            (error as? ProviderError)?.isTransient == true && "\(error)".contains("The server had an error")
        }
        let whole = #"""
            {"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,
            "tool_calls":[{"id":"call_x","type":"function","function":{"name":"notes_list","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}
            """#
        let parsed = try OpenAIProvider.parse(json: Data(whole.utf8))
        #expect(parsed.toolCalls == [ToolCall(id: "call_x", name: "notes_list", arguments: "{}")] && parsed.usage == TokenUsage(input: 10, output: 5))
    }

    @Test("Anthropic: text and several tool_use blocks with partial JSON input, stop reasons, usage, error events")
    func anthropicStream() throws {
        let text = Self.sse([
            ("message_start", #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"usage":{"input_tokens":472,"output_tokens":2}}}"#),
            ("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            ("ping", #"{"type":"ping"}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}"#),
            ("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            ("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"notes_add","input":{}}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"text\": \"mi"}}"#),
            ("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"lk\"}"}}"#),
            ("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
            ("content_block_start", #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"notes_list","input":{}}}"#),
            ("content_block_stop", #"{"type":"content_block_stop","index":2}"#),
            ("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#),
            ("message_stop", #"{"type":"message_stop"}"#),
        ])
        let response = try AnthropicProvider.parse(events: Self.events(text, pieces: 13))
        #expect(response.text == "Okay")
        #expect(response.toolCalls == [ToolCall(id: "toolu_1", name: "notes_add", arguments: #"{"text": "milk"}"#), ToolCall(id: "toolu_2", name: "notes_list", arguments: "{}")])
        #expect(response.finish == .toolCalls && response.usage == TokenUsage(input: 472, output: 89))
        #expect(AnthropicProvider.reason("max_tokens") == .length && AnthropicProvider.reason("refusal") == .refusal && AnthropicProvider.reason("pause_turn") == .other("pause_turn"))
        let overloaded = Self.sse([
            ("message_start", #"{"type":"message_start","message":{"usage":{"input_tokens":1,"output_tokens":1}}}"#),
            ("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        ])
        #expect {
            try AnthropicProvider.parse(events: Self.events(overloaded, pieces: 100))
        } throws: { error in
            guard case .status(529, "overloaded_error", "Overloaded", nil)? = error as? ProviderError else { return false }
            return true
        }
    }

    @Test("Anthropic request: system apart, tool results as user blocks, consecutive results merged, is_error kept")
    func anthropicRequest() throws {
        let request = ChatRequest(system: "sys", messages: [
            ChatMessage(role: .user, content: "hi"),
            ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "t1", name: "a", arguments: #"{"x":1}"#), ToolCall(id: "t2", name: "b", arguments: "{}")]),
            ChatMessage(role: .tool, content: "ok", toolCallID: "t1"),
            ChatMessage(role: .tool, content: "bad", toolCallID: "t2", isError: true),
        ], tools: [ToolSpec(name: "a", description: "A", parameters: ["type": "object"])], maxOutputTokens: 100)
        let body = try JSONValue.parse(AnthropicProvider.body(request, model: "m"))
        #expect(body["system"] == "sys" && body["max_tokens"] == .int(100))
        let messages = body["messages"]?.arrayValue ?? []
        #expect(messages.map { $0["role"]?.stringValue ?? "" } == ["user", "assistant", "user"])
        let results = messages[2]["content"]?.arrayValue ?? []
        #expect(results.count == 2 && results[1]["is_error"] == .bool(true) && results[0]["tool_use_id"] == "t1")
        #expect(messages[1]["content"]?.arrayValue?.first?["input"]?["x"] == .int(1))
        #expect(body["tools"]?.arrayValue?.first?["input_schema"] != nil)
    }

    @Test("OpenAI request: tool calls and results tied by id; the output limit named as each server expects")
    func openAIRequest() throws {
        let request = ChatRequest(system: "sys", messages: [
            ChatMessage(role: .user, content: "hi"),
            ChatMessage(role: .assistant, content: "", toolCalls: [ToolCall(id: "c1", name: "notes_list", arguments: "{}")]),
            ChatMessage(role: .tool, content: "none", toolCallID: "c1"),
        ], tools: [ToolSpec(name: "notes_list", description: "List", parameters: ["type": "object"])], maxOutputTokens: 64)
        let body = try JSONValue.parse(OpenAIProvider.body(request, model: "m"))
        let messages = body["messages"]?.arrayValue ?? []
        #expect(messages.map { $0["role"]?.stringValue ?? "" } == ["system", "user", "assistant", "tool"])
        #expect(messages[2]["content"] == .null && messages[2]["tool_calls"]?.arrayValue?.first?["id"] == "c1")
        #expect(messages[3]["tool_call_id"] == "c1")
        #expect(body["tools"]?.arrayValue?.first?["type"] == "function" && body["max_tokens"] == .int(64))
        #expect(OpenAIProvider.limitField(baseURL: "https://api.openai.com/v1") == "max_completion_tokens")
        #expect(OpenAIProvider.limitField(baseURL: "http://127.0.0.1:11434/v1") == "max_tokens")
    }

    @Test("Error bodies and Retry-After, in seconds or as a date")
    func errorsAndRetryAfter() {
        let openAI = HTTPTransport.errorDetails(Data(#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#.utf8))
        #expect(openAI.type == "requests" && openAI.message == "Rate limit reached")
        let anthropic = HTTPTransport.errorDetails(Data(#"{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#.utf8))
        #expect(anthropic.type == "rate_limit_error" && anthropic.message == "Slow down")
        #expect(HTTPTransport.errorDetails(Data("<html>Bad Gateway</html>".utf8)).message == "<html>Bad Gateway</html>")
        #expect(HTTPTransport.retryAfter(HTTPHeaders([("Retry-After", "7")])) == 7)
        #expect(HTTPTransport.retryAfter(HTTPHeaders([("retry-after-ms", "1500")])) == 1.5)
        let date = HTTPTransport.retryAfter(HTTPHeaders([("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")]))
        #expect(date == 0, "a date in the past means now")
        #expect(HTTPTransport.retryAfter(HTTPHeaders([("Retry-After", "soon")])) == nil)
    }

    @Test("Backoff: full jitter under a doubling ceiling, Retry-After honoured, too long a Retry-After moves on")
    func backoff() {
        let policy = ModelRetryPolicy(attempts: 4, base: 0.5, cap: 8)
        #expect(policy.delay(attempt: 1, retryAfter: nil, random: 1) == 0.5)
        #expect(policy.delay(attempt: 3, retryAfter: nil, random: 1) == 2)
        #expect(policy.delay(attempt: 3, retryAfter: nil, random: 0.25) == 0.5)
        #expect(policy.delay(attempt: 10, retryAfter: nil, random: 1) == 8)
        #expect(policy.delay(attempt: 1, retryAfter: 3, random: 0) == 3)
        #expect(policy.delay(attempt: 1, retryAfter: 60, random: 0) == nil)
    }

    @Test("Circuit breaker: opens after the threshold, lets one trial through after the cooldown, closes on success")
    func breaker() {
        let breaker = CircuitBreaker(threshold: 2, cooldown: .seconds(10))
        let start = ContinuousClock.now
        #expect(breaker.admit(now: start) == nil)
        breaker.failed(now: start)
        #expect(breaker.admit(now: start) == nil, "one failure is not enough")
        breaker.failed(now: start)
        #expect((breaker.admit(now: start + .seconds(1)) ?? 0) > 8, "open")
        #expect(breaker.admit(now: start + .seconds(11)) == nil, "the trial")
        #expect(breaker.admit(now: start + .seconds(11)) != nil, "only one trial at a time")
        breaker.failed(now: start + .seconds(11))
        #expect(breaker.admit(now: start + .seconds(12)) != nil, "the failed trial reopens it")
        #expect(breaker.admit(now: start + .seconds(22)) == nil)
        breaker.succeeded()
        #expect(breaker.state == .closed && breaker.admit() == nil)
    }

    @Test("Schema validation: types, required, extra arguments, bounds, formats, enums, items, with paths")
    func schema() {
        let schema: JSONValue = [
            "type": "object",
            "properties": [
                "text": ["type": "string", "minLength": 1, "maxLength": 5],
                "at": ["type": "string", "format": "date-time"],
                "to": ["type": "string", "format": "email"],
                "minutes": ["type": "integer", "minimum": 1],
                "kind": ["enum": ["a", "b"]],
                "ids": ["type": "array", "items": ["type": "integer"], "minItems": 1],
            ],
            "required": ["text"],
            "additionalProperties": false,
        ]
        #expect(SchemaValidator.validate(["text": "ok", "at": "2026-03-12T15:00:00+01:00", "to": "a@b.org", "minutes": 3, "kind": "a", "ids": [1, 2]], against: schema).isEmpty)
        #expect(SchemaValidator.validate(["minutes": .double(3.0), "text": "x"], against: schema).isEmpty, "3.0 is an integer")
        let problems = SchemaValidator.validate(
            ["text": "toolong", "at": "tomorrow", "to": "nobody", "minutes": 0, "kind": "c", "ids": [1, "2"], "extra": true], against: schema
        )
        #expect(problems.contains("text must be at most 5 characters"))
        #expect(problems.contains { $0.hasPrefix("at must be a date and time") })
        #expect(problems.contains("to must be an email address"))
        #expect(problems.contains("minutes must be at least 1"))
        #expect(problems.contains { $0.hasPrefix("kind must be one of") })
        #expect(problems.contains("ids/1 must be integer, not a string"))
        #expect(problems.contains { $0.hasPrefix("extra is not an argument this tool takes") })
        #expect(SchemaValidator.validate([:], against: schema) == ["text is required"])
        #expect(SchemaValidator.validate("x", against: schema) == ["the arguments must be object, not a string"])
        #expect(SchemaValidator.unsupportedKeywords(in: ["type": "object", "properties": ["a": ["type": "string", "contentEncoding": "base64"]]]) == ["contentEncoding"])
    }

    @Test("Every built-in tool's schema uses only keywords the argument check enforces")
    func builtinSchemasSupported() {
        let tools: [any Tool] = NotesTools.all + TasksTools.all + RemindersTools.all + CalendarTools.all + ContactsTools.all
            + UtilityTools.all + SendingTools.all + IdentityTools.all
        let all = tools + PreferencesTools.all(tools: tools.map(\.descriptor))
        #expect(all.count > 30)
        for tool in all {
            #expect(SchemaValidator.unsupportedKeywords(in: tool.descriptor.parameters).isEmpty, "\(tool.descriptor.name)")
        }
    }

    @Test("Tool names: dotted names map to provider-safe ones and back, without collisions")
    func toolNames() {
        let names = ToolNames(["notes.add", "notes_add", "calendar.add-event", "ünïcode.tool"])
        let mapped = ["notes.add", "notes_add", "calendar.add-event", "ünïcode.tool"].map { names.providerName($0)! }
        #expect(Set(mapped).count == 4)
        for name in mapped { #expect(name.range(of: "^[a-zA-Z0-9_-]{1,64}$", options: .regularExpression) != nil, "\(name)") }
        for tool in ["notes.add", "notes_add", "calendar.add-event"] { #expect(names.tool(names.providerName(tool)!) == tool) }
        #expect(names.tool("notes.add") == nil, "only the provider's names are looked up")
    }

    @Test("Token estimates err high and calibrate toward the provider's counts")
    func calibration() {
        let model = ModelConfiguration(name: "m", provider: .openai, baseURL: "http://x", model: "m")
        let estimator = TokenEstimator()
        let text = String(repeating: "word ", count: 400)
        let before = estimator.tokens(text, model: model)
        #expect(before >= 500, "2000 bytes at 4 per token, plus a margin: \(before)")
        for _ in 0..<10 { estimator.calibrate(model: model, estimated: estimator.tokens(text, model: model), reported: 800) }
        let after = estimator.tokens(text, model: model)
        #expect(after >= 800 && after < 1000, "moved up to at least what the provider counts: \(after)")
    }
}
