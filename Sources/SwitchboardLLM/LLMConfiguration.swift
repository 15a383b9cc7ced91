// The `llm.*` keys: the models, their tiers and prices, the budgets, and the planner's limits.

public import Foundation
public import SwitchboardModel

/// Which API a model speaks.
public enum ProviderKind: String, Hashable, Sendable {
    /// Any OpenAI-compatible Chat Completions server.
    case openai
    /// The Anthropic Messages API.
    case anthropic
}

/// One configured model.
public struct ModelConfiguration: Hashable, Sendable {
    /// The operator's name for it (logs, metrics).
    public var name: String
    /// Its API.
    public var provider: ProviderKind
    /// The API's base URL.
    public var baseURL: String
    /// The provider's model id.
    public var model: String
    /// The API key, if the server needs one.
    public var apiKey: Secret?
    /// 1 for small and cheap, higher for larger; tier 0 is the intent engine.
    public var tier: Int
    /// Tokens the model reads and writes in one call, together.
    public var contextWindow: Int
    /// Price per 1000 input tokens, in the operator's currency.
    public var costPer1kInput: Double
    /// Price per 1000 output tokens.
    public var costPer1kOutput: Double
    /// The most tokens one answer may have.
    public var maxOutputTokens: Int
    /// The longest one call may take.
    public var timeout: TimeInterval

    /// Creates a model.
    public init(
        name: String, provider: ProviderKind, baseURL: String, model: String, apiKey: Secret? = nil, tier: Int = 1,
        contextWindow: Int = 8192, costPer1kInput: Double = 0, costPer1kOutput: Double = 0, maxOutputTokens: Int = 1024,
        timeout: TimeInterval = 60
    ) {
        self.name = name
        self.provider = provider
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.tier = tier
        self.contextWindow = contextWindow
        self.costPer1kInput = costPer1kInput
        self.costPer1kOutput = costPer1kOutput
        self.maxOutputTokens = maxOutputTokens
        self.timeout = timeout
    }

    /// What a call with these counts costs.
    public func cost(input: Int, output: Int) -> Double {
        Double(input) / 1000 * costPer1kInput + Double(output) / 1000 * costPer1kOutput
    }
}

/// Daily limits on model use; nil means no limit.
public struct LLMBudget: Hashable, Sendable {
    /// Tokens (input and output) per person per day (UTC).
    public var tokensPerPerson: Int?
    /// Cost per person per day.
    public var costPerPerson: Double?
    /// Tokens for everyone together per day.
    public var tokens: Int?
    /// Cost for everyone together per day.
    public var cost: Double?

    /// Creates a budget.
    public init(tokensPerPerson: Int? = nil, costPerPerson: Double? = nil, tokens: Int? = nil, cost: Double? = nil) {
        self.tokensPerPerson = tokensPerPerson
        self.costPerPerson = costPerPerson
        self.tokens = tokens
        self.cost = cost
    }
}

/// The language-model settings.
///
/// Keys (each also `SWITCHBOARD_<KEY>`; list items as `SWITCHBOARD_LLM_MODELS_<N>_<FIELD>`):
/// - `llm.models`: a list; each item has `name`, `provider` (`openai` or `anthropic`),
///   `base_url`, `model`, `api_key` (secret) or `api_key_file`, `tier` (1–9), `context_window`,
///   `cost_per_1k_input`, `cost_per_1k_output`, and optionally `max_output_tokens` (default
///   1024) and `timeout_seconds` (default 60). Models of one tier are tried in the listed order.
/// - `llm.budget.daily_tokens_per_person`, `llm.budget.daily_cost_per_person`,
///   `llm.budget.daily_tokens`, `llm.budget.daily_cost`: limits per UTC day; unset means none.
/// - `llm.max_tool_rounds` (1–20, default 6): model rounds per message.
/// - `llm.history_messages` (2–200, default 12): messages kept verbatim; older ones are summarised.
/// - `llm.tools_top_k` (1–100, default 8): tool descriptions sent per request.
/// - `llm.intent_confidence` (0–1, default 0.85): a simple request the intent engine is this sure
///   of is served without a model (tier 0).
/// - `llm.retry_attempts` (1–10, default 3), `llm.retry_base_ms` (1–60000, default 500),
///   `llm.retry_cap_seconds` (1–300, default 8): retries per model.
/// - `llm.breaker_failures` (1–1000, default 5), `llm.breaker_cooldown_seconds` (1–3600, default 30).
public struct LLMConfiguration: Sendable {
    /// The models, in the listed order.
    public var models: [ModelConfiguration] = []
    /// The budget.
    public var budget = LLMBudget()
    /// Model rounds per message.
    public var maxToolRounds = 6
    /// Messages kept verbatim.
    public var historyMessages = 12
    /// Tool descriptions per request.
    public var toolsTopK = 8
    /// The intent engine's confidence that serves a simple request without a model.
    public var intentConfidence = 0.85
    /// Retries.
    public var retry = ModelRetryPolicy()
    /// Failures in a row that open a provider's breaker.
    public var breakerFailures = 5
    /// How long an open breaker waits.
    public var breakerCooldown: TimeInterval = 30

    /// No models: the intent engine serves alone.
    public init() {}

    /// The fields of one `llm.models` item.
    public static let modelFields: Set<String> = [
        "name", "provider", "base_url", "model", "api_key", "tier", "context_window", "cost_per_1k_input", "cost_per_1k_output",
        "max_output_tokens", "timeout_seconds",
    ]

    /// The fixed keys.
    public static let keys: Set<String> = [
        "llm.budget.daily_tokens_per_person", "llm.budget.daily_cost_per_person", "llm.budget.daily_tokens", "llm.budget.daily_cost",
        "llm.max_tool_rounds", "llm.history_messages", "llm.tools_top_k", "llm.intent_confidence", "llm.retry_attempts",
        "llm.retry_base_ms", "llm.retry_cap_seconds", "llm.breaker_failures", "llm.breaker_cooldown_seconds",
    ]

    /// Whether `key` is a model item's field (`llm.models.0.base_url`).
    public static func isModelKey(_ key: String) -> Bool {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "llm" && parts[1] == "models" && UInt(parts[2]) != nil && modelFields.contains(String(parts[3]))
    }

    /// Reads the keys, recording problems in `config`.
    public init(config: inout ConfigValues) {
        let indices = config.children(of: "llm.models").compactMap(Int.init).sorted()
        var names = Set<String>()
        for index in indices {
            let prefix = "llm.models.\(index)"
            let name = config.string("\(prefix).name")?.trimmingWhitespace() ?? ""
            if name.isEmpty { config.report("\(prefix).name", "every model needs a name") }
            if !name.isEmpty && !names.insert(name).inserted { config.report("\(prefix).name", "another model is called \"\(name)\"") }
            let kind = ProviderKind(rawValue: config.choice("\(prefix).provider", default: "openai", from: ["openai", "anthropic"])) ?? .openai
            if !config.has("\(prefix).provider") { config.report("\(prefix).provider", "say which API the model speaks: openai or anthropic") }
            let defaultURL = kind == .anthropic ? "https://api.anthropic.com" : ""
            let baseURL = config.string("\(prefix).base_url")?.trimmingWhitespace() ?? defaultURL
            if let url = URL(string: baseURL), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil {
                // fine
            } else {
                config.report("\(prefix).base_url", baseURL.isEmpty
                    ? "needs the API's base URL, such as https://api.openai.com/v1 or http://localhost:11434/v1"
                    : "expected an http or https URL, got \"\(baseURL)\"")
            }
            let model = config.string("\(prefix).model")?.trimmingWhitespace() ?? ""
            if model.isEmpty { config.report("\(prefix).model", "needs the provider's model id, such as gpt-4o-mini") }
            let window = config.int("\(prefix).context_window", default: 8192, range: 512...10_000_000)
            let output = config.int("\(prefix).max_output_tokens", default: 1024, range: 16...1_000_000)
            if output * 2 > window {
                config.report("\(prefix).max_output_tokens", "\(output) leaves too little of the \(window)-token context window for the request")
            }
            models.append(ModelConfiguration(
                name: name, provider: kind, baseURL: baseURL, model: model, apiKey: config.secret("\(prefix).api_key"),
                tier: config.int("\(prefix).tier", default: 1, range: 1...9), contextWindow: window,
                costPer1kInput: config.double("\(prefix).cost_per_1k_input", default: 0, range: 0...1_000_000),
                costPer1kOutput: config.double("\(prefix).cost_per_1k_output", default: 0, range: 0...1_000_000),
                maxOutputTokens: output, timeout: TimeInterval(config.int("\(prefix).timeout_seconds", default: 60, range: 1...3600))
            ))
        }
        func optionalInt(_ key: String) -> Int? {
            config.has(key) ? config.int(key, default: 0, range: 0...Int(Int32.max)) : nil
        }
        func optionalDouble(_ key: String) -> Double? {
            config.has(key) ? config.double(key, default: 0, range: 0...1_000_000_000) : nil
        }
        budget = LLMBudget(
            tokensPerPerson: optionalInt("llm.budget.daily_tokens_per_person"), costPerPerson: optionalDouble("llm.budget.daily_cost_per_person"),
            tokens: optionalInt("llm.budget.daily_tokens"), cost: optionalDouble("llm.budget.daily_cost")
        )
        maxToolRounds = config.int("llm.max_tool_rounds", default: maxToolRounds, range: 1...20)
        historyMessages = config.int("llm.history_messages", default: historyMessages, range: 2...200)
        toolsTopK = config.int("llm.tools_top_k", default: toolsTopK, range: 1...100)
        intentConfidence = config.double("llm.intent_confidence", default: intentConfidence, range: 0...1)
        retry = ModelRetryPolicy(
            attempts: config.int("llm.retry_attempts", default: 3, range: 1...10),
            base: Double(config.int("llm.retry_base_ms", default: 500, range: 1...60000)) / 1000,
            cap: Double(config.int("llm.retry_cap_seconds", default: 8, range: 1...300))
        )
        breakerFailures = config.int("llm.breaker_failures", default: breakerFailures, range: 1...1000)
        breakerCooldown = TimeInterval(config.int("llm.breaker_cooldown_seconds", default: 30, range: 1...3600))
    }
}
