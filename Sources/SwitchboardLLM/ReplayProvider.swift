// A provider that answers from pre-rendered OpenAI-style stream bytes in this process: every
// step a network provider takes on our side (encoding the request body, splitting the event
// stream, assembling tool calls) with no network and no model. For measuring the gateway's own
// overhead per model round; never configured by operators.

import Foundation
public import SwitchboardModel

/// Answers like a model that calls one tool, then sums up: a tool call to a request that does
/// not yet carry a tool result, text to one that does, and text to a request with no tools (a
/// summary).
public final class ReplayProvider: ChatProvider, Sendable {
    private let toolCall: [UInt8]
    private let text: [UInt8]

    /// Creates a provider from answers written as OpenAI `chat.completion.chunk` streams.
    public init(toolCall: String, text: String) {
        self.toolCall = Array(toolCall.utf8)
        self.text = Array(text.utf8)
    }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        let body = OpenAIProvider.body(request, model: "replay")
        guard !body.isEmpty else { throw ProviderError.malformed("empty body") }
        let bytes = request.tools.isEmpty || request.messages.last?.role == .tool ? text : toolCall
        var parser = ServerSentEventParser()
        // Network-sized pieces, as a socket would deliver them.
        var events: [ServerSentEvent] = []
        for start in stride(from: 0, to: bytes.count, by: 1400) {
            events += parser.feed(Array(bytes[start..<min(start + 1400, bytes.count)]))
        }
        return try OpenAIProvider.parse(events: events + parser.finish())
    }

    /// A stream that calls one tool, as OpenAI sends it.
    public static func toolCallStream(id: String, name: String, arguments: String) -> String {
        let first: JSONValue = ["choices": [["index": 0, "delta": ["role": "assistant", "tool_calls": [[
            "index": 0, "id": .string(id), "type": "function", "function": ["name": .string(name), "arguments": .string(arguments)],
        ]]], "finish_reason": .null]]]
        let last: JSONValue = ["choices": [["index": 0, "delta": [:], "finish_reason": "tool_calls"]]]
        let usage: JSONValue = ["choices": [], "usage": ["prompt_tokens": 900, "completion_tokens": 20]]
        return [first, last, usage].map { "data: \($0.canonicalText)\n\n" }.joined() + "data: [DONE]\n\n"
    }

    /// A stream that answers in text.
    public static func textStream(_ text: String) -> String {
        let first: JSONValue = ["choices": [["index": 0, "delta": ["role": "assistant", "content": .string(text)], "finish_reason": .null]]]
        let last: JSONValue = ["choices": [["index": 0, "delta": [:], "finish_reason": "stop"]]]
        let usage: JSONValue = ["choices": [], "usage": ["prompt_tokens": 950, "completion_tokens": 12]]
        return [first, last, usage].map { "data: \($0.canonicalText)\n\n" }.joined() + "data: [DONE]\n\n"
    }
}
