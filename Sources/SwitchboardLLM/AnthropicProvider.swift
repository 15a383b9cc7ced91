// The Anthropic Messages API: streamed events, tool use blocks whose input arrives as
// partial JSON, and tool results sent back as user content blocks.

import Foundation
public import SwitchboardModel

/// A Messages endpoint: `POST {base_url}/v1/messages`.
public struct AnthropicProvider: ChatProvider {
    let transport: HTTPTransport
    let url: String
    let model: String
    let apiKey: Secret?
    static let version = "2023-06-01"

    /// Creates a provider. `baseURL` is the API's root (`https://api.anthropic.com`); a root
    /// that already ends in `/v1` is accepted too.
    public init(transport: HTTPTransport, baseURL: String, model: String, apiKey: Secret?) {
        self.transport = transport
        var root = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        if root.hasSuffix("/v1") { root = String(root.dropLast(3)) }
        self.url = root + "/v1/messages"
        self.model = model
        self.apiKey = apiKey
    }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        var headers = [("anthropic-version", Self.version)]
        if let apiKey { headers.append(("x-api-key", apiKey.revealed)) }
        switch try await transport.post(url: url, headers: headers, body: Self.body(request, model: model)) {
        case .events(let events): return try Self.parse(events: events)
        case .json(let data): return try Self.parse(json: data)
        }
    }

    /// The request body. Tool results are user messages of `tool_result` blocks; consecutive
    /// results are merged into one user message, as the API requires alternating roles.
    static func body(_ request: ChatRequest, model: String) -> String {
        var messages: [JSONValue] = []
        var pendingResults: [JSONValue] = []
        func flushResults() {
            if !pendingResults.isEmpty {
                messages.append(["role": "user", "content": .array(pendingResults)])
                pendingResults = []
            }
        }
        for message in request.messages {
            switch message.role {
            case .tool:
                var block: [String: JSONValue] = [
                    "type": "tool_result", "tool_use_id": .string(message.toolCallID ?? ""), "content": .string(message.content),
                ]
                if message.isError { block["is_error"] = true }
                pendingResults.append(.object(block))
            case .user, .system:
                flushResults()
                messages.append(["role": "user", "content": .string(message.content)])
            case .assistant:
                flushResults()
                var blocks: [JSONValue] = []
                if !message.content.isEmpty { blocks.append(["type": "text", "text": .string(message.content)]) }
                for call in message.toolCalls {
                    let input = (try? JSONValue.parse(call.arguments)).flatMap { $0.objectValue == nil ? nil : $0 } ?? [:]
                    blocks.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": input])
                }
                messages.append(["role": "assistant", "content": .array(blocks)])
            }
        }
        flushResults()
        var body: [String: JSONValue] = [
            "model": .string(model),
            "system": .string(request.system),
            "messages": .array(messages),
            "max_tokens": .int(Int64(request.maxOutputTokens)),
            "stream": true,
        ]
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { ["name": .string($0.name), "description": .string($0.description), "input_schema": $0.parameters] })
        }
        return JSONValue.object(body).jsonText
    }

    /// A streamed answer: `message_start`, then per content block `content_block_start`,
    /// `content_block_delta` (`text_delta`, or `input_json_delta` pieces of a tool's input)
    /// and `content_block_stop`, then `message_delta` (stop reason, output tokens) and
    /// `message_stop`. `ping` is ignored; `error` ends the stream with an error.
    static func parse(events: [ServerSentEvent]) throws -> ChatResponse {
        var text = ""
        var blocks: [Int: (kind: String, id: String, name: String, input: String)] = [:]
        var order: [Int] = []
        var stop: String?
        var input = 0
        var output = 0
        var sawUsage = false
        var finished = false
        for event in events {
            guard let value = try? JSONValue.parse(event.data) else { throw ProviderError.malformed("a stream event is not JSON") }
            let type = value["type"]?.stringValue ?? event.event ?? ""
            switch type {
            case "message_start":
                if let usage = value["message"]?["usage"] {
                    input = Int(usage["input_tokens"]?.intValue ?? 0)
                    output = Int(usage["output_tokens"]?.intValue ?? 0)
                    sawUsage = true
                }
            case "content_block_start":
                let index = Int(value["index"]?.intValue ?? Int64(order.count))
                let block = value["content_block"]
                let kind = block?["type"]?.stringValue ?? "text"
                blocks[index] = (kind, block?["id"]?.stringValue ?? "", block?["name"]?.stringValue ?? "", "")
                order.append(index)
                if kind == "text", let start = block?["text"]?.stringValue { text += start }
            case "content_block_delta":
                let index = Int(value["index"]?.intValue ?? 0)
                let delta = value["delta"]
                switch delta?["type"]?.stringValue {
                case "text_delta":
                    text += delta?["text"]?.stringValue ?? ""
                case "input_json_delta":
                    guard blocks[index] != nil else { throw ProviderError.malformed("input for a block that never started") }
                    blocks[index]!.input += delta?["partial_json"]?.stringValue ?? ""
                default:
                    break  // thinking and signature deltas carry nothing for the person
                }
            case "message_delta":
                if let reason = value["delta"]?["stop_reason"]?.stringValue { stop = reason }
                if let usage = value["usage"] {
                    if let count = usage["output_tokens"]?.intValue { output = Int(count) }
                    if let count = usage["input_tokens"]?.intValue { input = Int(count) }
                    sawUsage = true
                }
            case "message_stop":
                finished = true
            case "error":
                let error = value["error"]
                let kind = error?["type"]?.stringValue
                throw ProviderError.status(
                    code: kind == "overloaded_error" ? 529 : kind == "rate_limit_error" ? 429 : 500, type: kind,
                    message: error?["message"]?.stringValue ?? "error in stream", retryAfter: nil
                )
            default:
                break  // ping, content_block_stop, and event types added later
            }
        }
        guard finished || stop != nil else { throw ProviderError.transport("the stream ended before the answer was complete") }
        let calls = order.compactMap { index -> ToolCall? in
            guard let block = blocks[index], block.kind == "tool_use" else { return nil }
            return ToolCall(id: block.id, name: block.name, arguments: block.input.isEmpty ? "{}" : block.input)
        }
        return ChatResponse(
            text: text, toolCalls: calls, finish: reason(stop), refusal: stop == "refusal" ? (text.isEmpty ? "declined" : text) : nil,
            usage: sawUsage ? TokenUsage(input: input, output: output) : nil
        )
    }

    /// A whole message (a server that does not stream).
    static func parse(json data: Data) throws -> ChatResponse {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data), value["type"]?.stringValue == "message" else {
            throw ProviderError.malformed("the answer is not a message")
        }
        var text = ""
        var calls: [ToolCall] = []
        for block in value["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use":
                calls.append(ToolCall(
                    id: block["id"]?.stringValue ?? "", name: block["name"]?.stringValue ?? "",
                    arguments: (block["input"] ?? [:]).jsonText
                ))
            default: break
            }
        }
        let stop = value["stop_reason"]?.stringValue
        let usage = value["usage"].map { TokenUsage(input: Int($0["input_tokens"]?.intValue ?? 0), output: Int($0["output_tokens"]?.intValue ?? 0)) }
        return ChatResponse(text: text, toolCalls: calls, finish: reason(stop), refusal: stop == "refusal" ? text : nil, usage: usage)
    }

    /// `stop_reason`: `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    static func reason(_ value: String?) -> FinishReason {
        switch value {
        case "end_turn", "stop_sequence", nil: .stop
        case "tool_use": .toolCalls
        case "max_tokens": .length
        case "refusal": .refusal
        case let other?: .other(other)
        }
    }
}
