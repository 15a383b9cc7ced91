// The OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, llama.cpp's server,
// LiteLLM, OpenRouter…): streamed, with tool calls assembled from their chunks.

import Foundation
public import SwitchboardModel

/// A Chat Completions endpoint: `POST {base_url}/chat/completions`.
public struct OpenAIProvider: ChatProvider {
    let transport: HTTPTransport
    let baseURL: String
    let model: String
    let apiKey: Secret?

    /// Creates a provider. `baseURL` includes the version path (`https://api.openai.com/v1`,
    /// `http://localhost:11434/v1`).
    public init(transport: HTTPTransport, baseURL: String, model: String, apiKey: Secret?) {
        self.transport = transport
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.model = model
        self.apiKey = apiKey
    }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        var headers: [(String, String)] = []
        if let apiKey { headers.append(("authorization", "Bearer \(apiKey.revealed)")) }
        let body = Self.body(request, model: model, limitField: Self.limitField(baseURL: baseURL))
        switch try await transport.post(url: baseURL + "/chat/completions", headers: headers, body: body) {
        case .events(let events): return try Self.parse(events: events)
        case .json(let data): return try Self.parse(json: data)
        }
    }

    /// The name of the output limit: OpenAI's own API wants `max_completion_tokens` (its
    /// reasoning models refuse `max_tokens`); the compatible servers (Ollama, vLLM, llama.cpp,
    /// LiteLLM) know `max_tokens`.
    static func limitField(baseURL: String) -> String {
        URL(string: baseURL)?.host?.lowercased() == "api.openai.com" ? "max_completion_tokens" : "max_tokens"
    }

    /// The request body.
    static func body(_ request: ChatRequest, model: String, limitField: String = "max_tokens") -> String {
        var messages: [JSONValue] = [["role": "system", "content": .string(request.system)]]
        for message in request.messages {
            switch message.role {
            case .system:
                messages.append(["role": "system", "content": .string(message.content)])
            case .user:
                messages.append(["role": "user", "content": .string(message.content)])
            case .assistant:
                var object: [String: JSONValue] = ["role": "assistant", "content": message.content.isEmpty ? .null : .string(message.content)]
                if !message.toolCalls.isEmpty {
                    object["tool_calls"] = .array(message.toolCalls.map { call in
                        ["id": .string(call.id), "type": "function", "function": ["name": .string(call.name), "arguments": .string(call.arguments)]]
                    })
                }
                messages.append(.object(object))
            case .tool:
                messages.append(["role": "tool", "tool_call_id": .string(message.toolCallID ?? ""), "content": .string(message.content)])
            }
        }
        var body: [String: JSONValue] = [
            "model": .string(model),
            "messages": .array(messages),
            "stream": true,
            "stream_options": ["include_usage": true],
            limitField: .int(Int64(request.maxOutputTokens)),
        ]
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                ["type": "function", "function": ["name": .string(tool.name), "description": .string(tool.description), "parameters": tool.parameters]]
            })
        }
        return JSONValue.object(body).jsonText
    }

    /// A streamed answer: `data:` chunks of `chat.completion.chunk`, then `data: [DONE]`.
    /// Tool calls arrive in pieces keyed by `index`: the first piece has the id and name, the
    /// rest append to the arguments.
    static func parse(events: [ServerSentEvent]) throws -> ChatResponse {
        var text = ""
        var refusal: String?
        var calls: [Int: (id: String, name: String, arguments: String)] = [:]
        var order: [Int] = []
        var finish: String?
        var usage: TokenUsage?
        var done = false
        for event in events {
            let data = event.data.trimmingCharacters(in: .whitespaces)
            if data == "[DONE]" { done = true; break }
            guard let chunk = try? JSONValue.parse(data) else { throw ProviderError.malformed("a stream chunk is not JSON") }
            if let error = chunk["error"] {
                throw ProviderError.status(
                    code: Int(error["code"]?.intValue ?? 500), type: error["type"]?.stringValue,
                    message: error["message"]?.stringValue ?? "error in stream", retryAfter: nil
                )
            }
            if let reported = chunk["usage"], reported != .null {
                usage = TokenUsage(input: Int(reported["prompt_tokens"]?.intValue ?? 0), output: Int(reported["completion_tokens"]?.intValue ?? 0))
            }
            for choice in chunk["choices"]?.arrayValue ?? [] {
                if let reason = choice["finish_reason"]?.stringValue { finish = reason }
                guard let delta = choice["delta"] else { continue }
                if let piece = delta["content"]?.stringValue { text += piece }
                if let piece = delta["refusal"]?.stringValue { refusal = (refusal ?? "") + piece }
                for piece in delta["tool_calls"]?.arrayValue ?? [] {
                    let index = Int(piece["index"]?.intValue ?? Int64(order.count))
                    if calls[index] == nil { calls[index] = ("", "", ""); order.append(index) }
                    if let id = piece["id"]?.stringValue { calls[index]!.id = id }
                    // The name comes once (some servers repeat it whole in later pieces).
                    if let name = piece["function"]?["name"]?.stringValue, calls[index]!.name.isEmpty { calls[index]!.name = name }
                    if let arguments = piece["function"]?["arguments"]?.stringValue { calls[index]!.arguments += arguments }
                }
            }
        }
        guard done || finish != nil else { throw ProviderError.transport("the stream ended before the answer was complete") }
        let toolCalls = try order.map { index -> ToolCall in
            let call = calls[index]!
            guard !call.name.isEmpty else { throw ProviderError.malformed("a tool call without a name") }
            return ToolCall(id: call.id.isEmpty ? "call_\(index)" : call.id, name: call.name, arguments: call.arguments.isEmpty ? "{}" : call.arguments)
        }
        return ChatResponse(text: text, toolCalls: toolCalls, finish: reason(finish, refusal: refusal, calls: !toolCalls.isEmpty), refusal: refusal, usage: usage)
    }

    /// A whole `chat.completion` (a server that ignored `stream`).
    static func parse(json data: Data) throws -> ChatResponse {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else { throw ProviderError.malformed("the answer is not JSON") }
        guard let choice = value["choices"]?.arrayValue?.first, let message = choice["message"] else {
            throw ProviderError.malformed("the answer has no choices")
        }
        let toolCalls = try (message["tool_calls"]?.arrayValue ?? []).enumerated().map { index, call -> ToolCall in
            guard let name = call["function"]?["name"]?.stringValue else { throw ProviderError.malformed("a tool call without a name") }
            return ToolCall(
                id: call["id"]?.stringValue ?? "call_\(index)", name: name,
                arguments: call["function"]?["arguments"]?.stringValue ?? "{}"
            )
        }
        let refusal = message["refusal"]?.stringValue
        let usage = value["usage"].map { TokenUsage(input: Int($0["prompt_tokens"]?.intValue ?? 0), output: Int($0["completion_tokens"]?.intValue ?? 0)) }
        return ChatResponse(
            text: message["content"]?.stringValue ?? "", toolCalls: toolCalls,
            finish: reason(choice["finish_reason"]?.stringValue, refusal: refusal, calls: !toolCalls.isEmpty), refusal: refusal, usage: usage
        )
    }

    /// `finish_reason`: `stop`, `length`, `tool_calls` (older servers: `function_call`),
    /// `content_filter`; a refusal is reported in its own field.
    static func reason(_ value: String?, refusal: String?, calls: Bool) -> FinishReason {
        if refusal != nil { return .refusal }
        switch value {
        case "stop": return calls ? .toolCalls : .stop
        case "tool_calls", "function_call": return .toolCalls
        case "length": return .length
        case "content_filter": return .contentFilter
        case nil: return calls ? .toolCalls : .stop
        case let other?: return .other(other)
        }
    }
}
