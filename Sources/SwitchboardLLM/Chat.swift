// The provider-neutral shape of a model conversation: what the planner sends and what comes
// back, whichever API carried it.

public import Foundation
public import SwitchboardModel

/// One message in a model conversation.
public struct ChatMessage: Hashable, Sendable {
    /// Who speaks.
    public enum Role: String, Hashable, Sendable {
        case system, user, assistant, tool
    }

    /// Who speaks.
    public var role: Role
    /// The text (for a tool message, the tool's result).
    public var content: String
    /// For an assistant message: the tool calls it made.
    public var toolCalls: [ToolCall]
    /// For a tool message: the call it answers.
    public var toolCallID: String?
    /// For a tool message: the result is an error the model should correct.
    public var isError: Bool

    /// Creates a message.
    public init(role: Role, content: String, toolCalls: [ToolCall] = [], toolCallID: String? = nil, isError: Bool = false) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.isError = isError
    }
}

/// A tool call a model proposed.
public struct ToolCall: Hashable, Sendable {
    /// The provider's id for the call, echoed with its result.
    public var id: String
    /// The provider-side tool name (`notes_add`).
    public var name: String
    /// The arguments as the model wrote them: JSON text, not yet trusted.
    public var arguments: String

    /// Creates a call.
    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

/// A tool offered to a model.
public struct ToolSpec: Hashable, Sendable {
    /// The provider-side name.
    public var name: String
    /// What it does.
    public var description: String
    /// The JSON Schema of its arguments.
    public var parameters: JSONValue

    /// Creates a spec.
    public init(name: String, description: String, parameters: JSONValue) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

/// A request to a model.
public struct ChatRequest: Sendable {
    /// The system prompt.
    public var system: String
    /// The conversation, oldest first (no system messages).
    public var messages: [ChatMessage]
    /// The tools it may call.
    public var tools: [ToolSpec]
    /// The most tokens it may write.
    public var maxOutputTokens: Int

    /// Creates a request.
    public init(system: String, messages: [ChatMessage], tools: [ToolSpec], maxOutputTokens: Int) {
        self.system = system
        self.messages = messages
        self.tools = tools
        self.maxOutputTokens = maxOutputTokens
    }
}

/// Why a model stopped.
public enum FinishReason: Hashable, Sendable {
    /// It finished its answer.
    case stop
    /// It wants tools run.
    case toolCalls
    /// It ran out of output tokens.
    case length
    /// It declined to answer.
    case refusal
    /// A content filter stopped it.
    case contentFilter
    /// Anything else the provider said, as it said it.
    case other(String)

    /// The label for metrics and logs.
    public var label: String {
        switch self {
        case .stop: "stop"
        case .toolCalls: "tool_calls"
        case .length: "length"
        case .refusal: "refusal"
        case .contentFilter: "content_filter"
        case .other(let value): value
        }
    }
}

/// Tokens a call used, as the provider reported them.
public struct TokenUsage: Hashable, Sendable {
    /// Prompt tokens.
    public var input: Int
    /// Completion tokens.
    public var output: Int

    /// Creates a count.
    public init(input: Int, output: Int) {
        self.input = input
        self.output = output
    }
}

/// A model's answer.
public struct ChatResponse: Hashable, Sendable {
    /// Its text (possibly empty when it only calls tools).
    public var text: String
    /// The tools it wants run, in order.
    public var toolCalls: [ToolCall]
    /// Why it stopped.
    public var finish: FinishReason
    /// The refusal message, when it refused.
    public var refusal: String?
    /// What it used, if the provider said.
    public var usage: TokenUsage?

    /// Creates a response.
    public init(text: String, toolCalls: [ToolCall], finish: FinishReason, refusal: String? = nil, usage: TokenUsage? = nil) {
        self.text = text
        self.toolCalls = toolCalls
        self.finish = finish
        self.refusal = refusal
        self.usage = usage
    }
}

/// What went wrong talking to a provider.
public enum ProviderError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The provider answered with an error status.
    case status(code: Int, type: String?, message: String, retryAfter: TimeInterval?)
    /// The connection failed or dropped.
    case transport(String)
    /// No answer in time.
    case timeout
    /// The answer was not what the provider's API documents.
    case malformed(String)
    /// The provider's breaker is open after repeated failures.
    case circuitOpen(retryIn: TimeInterval)

    /// Worth trying again (the same model, after a wait): rate limits, overload, server
    /// errors, timeouts, dropped connections.
    public var isTransient: Bool {
        switch self {
        case .status(let code, _, _, _): code == 408 || code == 409 || code == 429 || code >= 500
        case .transport, .timeout: true
        case .malformed, .circuitOpen: false
        }
    }

    /// Counts against the provider's health (a 400 for a bad request is our fault, not theirs).
    public var isProviderFailure: Bool {
        switch self {
        case .status(let code, _, _, _): code == 429 || code >= 500 || code == 401 || code == 403
        case .transport, .timeout, .malformed: true
        case .circuitOpen: false
        }
    }

    /// The provider asked to wait this long.
    public var retryAfter: TimeInterval? {
        if case .status(_, _, _, let after) = self { return after }
        return nil
    }

    /// A label for metrics.
    public var label: String {
        switch self {
        case .status(let code, _, _, _): "http_\(code)"
        case .transport: "transport"
        case .timeout: "timeout"
        case .malformed: "malformed"
        case .circuitOpen: "circuit_open"
        }
    }

    public var description: String {
        switch self {
        case .status(let code, let type, let message, let retryAfter):
            var text = "HTTP \(code)"
            if let type { text += " \(type)" }
            text += ": \(message)"
            if let retryAfter { text += " (retry after \(retryAfter)s)" }
            return text
        case .transport(let message): return "connection failed: \(message)"
        case .timeout: return "timed out"
        case .malformed(let message): return "unexpected response: \(message)"
        case .circuitOpen(let retryIn): return "circuit open; retrying in \(Int(retryIn.rounded(.up)))s"
        }
    }
}

/// A model API.
public protocol ChatProvider: Sendable {
    /// Sends a request and returns the whole answer (streamed where the API streams).
    func complete(_ request: ChatRequest) async throws -> ChatResponse
}

extension JSONValue {
    /// Compact JSON text, for request bodies.
    var jsonText: String { canonicalText }
}
