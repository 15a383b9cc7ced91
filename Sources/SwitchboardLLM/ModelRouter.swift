// Calls models: the fallback chain for a tier, retries with backoff and jitter, a breaker per
// provider, the daily budget checked before every call, and each call's tokens, cost,
// latency and outcome logged and counted.

public import AsyncHTTPClient
import NIOCore
public import Foundation
public import Logging
import Metrics
public import SwitchboardModel
import Tracing

/// Every model in the chain failed.
public struct ModelsUnavailable: Error, Hashable, Sendable, CustomStringConvertible {
    /// What each model said, in order.
    public var failures: [String]

    public var description: String { "no model answered: " + failures.joined(separator: "; ") }
}

/// Estimates tokens per model family, calibrated against what the provider reports.
public final class TokenEstimator: Sendable {
    private let factors = Locked<[String: Double]>([:])

    public init() {}

    /// Characters per token for the family's tokenizers, on ordinary English and JSON: about 4
    /// for OpenAI-style BPE vocabularies, about 3.5 for Anthropic's.
    static func charactersPerToken(_ provider: ProviderKind) -> Double {
        provider == .anthropic ? 3.5 : 4.0
    }

    /// The estimated tokens of a text for a model, never below the calibrated ratio.
    public func tokens(_ text: String, model: ModelConfiguration) -> Int {
        let factor = factors.withLock { $0[model.name] } ?? 1.1
        let raw = Double(text.utf8.count) / Self.charactersPerToken(model.provider)
        return Int((raw * factor).rounded(.up))
    }

    /// The estimated input tokens of a whole request: the text of every part, plus a few
    /// tokens of framing per message and per tool.
    public func tokens(_ request: ChatRequest, model: ModelConfiguration) -> Int {
        var total = tokens(request.system, model: model) + 4
        for message in request.messages {
            total += tokens(message.content, model: model) + 4
            for call in message.toolCalls { total += tokens(call.name + call.arguments, model: model) + 4 }
        }
        for tool in request.tools { total += tokens(tool, model: model) }
        return total
    }

    /// The estimated tokens of one tool's description.
    public func tokens(_ tool: ToolSpec, model: ModelConfiguration) -> Int {
        tokens(tool.name + tool.description + tool.parameters.canonicalText, model: model) + 8
    }

    /// Learns from a provider's count: the factor moves toward reported / raw estimate, and
    /// stays at least 1.0 above it (estimates err high, so a request never overflows).
    public func calibrate(model: ModelConfiguration, estimated: Int, reported: Int) {
        guard estimated > 0, reported > 0 else { return }
        factors.withLock { factors in
            let current = factors[model.name] ?? 1.1
            let raw = Double(estimated) / current
            let observed = Double(reported) / raw
            // Never below 1: a server that reports fewer tokens than it reads (a prompt cache
            // counted apart) must not talk the estimate down into an overflow.
            let next = min(3.0, max(1.0, current * 0.7 + observed * 0.3))
            factors[model.name] = max(next, observed * 1.05)
        }
    }
}

/// Calls models with recovery.
public final class ModelRouter: Sendable {
    /// The models, as configured.
    public let configuration: LLMConfiguration
    private let providers: [String: any ChatProvider]
    private let breakers: [String: CircuitBreaker]
    let ledger: UsageLedger
    /// The token estimator, shared with the context builder.
    public let estimator = TokenEstimator()
    private let logger: Logger
    private let sleep: @Sendable (TimeInterval) async throws -> Void

    /// Creates a router over explicit providers (tests, the benchmark).
    public init(
        configuration: LLMConfiguration, providers: [String: any ChatProvider], ledger: UsageLedger, logger: Logger,
        sleep: @escaping @Sendable (TimeInterval) async throws -> Void = { try await Task.sleep(for: .seconds($0)) }
    ) {
        self.configuration = configuration
        self.providers = providers
        self.ledger = ledger
        self.logger = logger
        self.sleep = sleep
        var breakers: [String: CircuitBreaker] = [:]
        for model in configuration.models {
            // One breaker per endpoint: two models on one dead server fail together.
            let key = Self.endpoint(model)
            if breakers[key] == nil {
                breakers[key] = CircuitBreaker(threshold: configuration.breakerFailures, cooldown: .seconds(configuration.breakerCooldown))
            }
        }
        self.breakers = breakers
    }

    /// The process's client for model APIs: a 3-second connect timeout, so a provider that
    /// refuses connections costs seconds, not the default ten, before the next model is tried.
    /// Like `HTTPClient.shared`, it lives as long as the process and is never shut down.
    public static let sharedClient = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            // No redirects: a redirect to another host would carry the API key (x-api-key) along.
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(3))
        )
    )

    /// Creates the providers the configuration names, on `client`.
    public static func providers(for configuration: LLMConfiguration, client: HTTPClient) -> [String: any ChatProvider] {
        var providers: [String: any ChatProvider] = [:]
        for model in configuration.models {
            let transport = HTTPTransport(client: client, timeout: model.timeout)
            switch model.provider {
            case .openai: providers[model.name] = OpenAIProvider(transport: transport, baseURL: model.baseURL, model: model.model, apiKey: model.apiKey)
            case .anthropic: providers[model.name] = AnthropicProvider(transport: transport, baseURL: model.baseURL, model: model.model, apiKey: model.apiKey)
            }
        }
        return providers
    }

    static func endpoint(_ model: ModelConfiguration) -> String { "\(model.provider.rawValue) \(model.baseURL)" }

    /// Each configured model's circuit, by model name (models on one endpoint share theirs),
    /// for /readyz and /metrics: names, never URLs, which may carry credentials.
    public var circuits: [(model: String, state: CircuitBreaker.State)] {
        configuration.models.map { ($0.name, breakers[Self.endpoint($0)]?.state ?? .closed) }
    }

    /// The tiers that have models, lowest first.
    public var tiers: [Int] { Array(Set(configuration.models.map(\.tier))).sorted() }

    /// The models to try for a tier, in order: the tier's own in the listed order, then the
    /// higher tiers' (a bigger model can do a small model's work), then the lower tiers'.
    public func chain(tier: Int) -> [ModelConfiguration] {
        let models = configuration.models
        let own = models.filter { $0.tier == tier }
        let higher = models.filter { $0.tier > tier }.sorted { $0.tier < $1.tier }
        let lower = models.filter { $0.tier < tier }.sorted { $0.tier > $1.tier }
        return own + higher + lower
    }

    /// Sends the request `build` makes for each model in `chain` until one answers.
    ///
    /// - Parameters:
    ///   - build: the request for a model (sized to its context window), or nil if it cannot
    ///     fit that model at all.
    ///   - purpose: `plan` or `summary`, for logs and metrics.
    /// - Throws: `BudgetExhausted` when the budget stops the call (checked before each
    ///   attempt, fallbacks included); `ModelsUnavailable` when every model failed.
    public func complete(
        chain: [ModelConfiguration], person: PersonID, purpose: String, now: @Sendable () -> Date,
        build: (ModelConfiguration) -> ChatRequest?
    ) async throws -> (ChatResponse, ModelConfiguration) {
        var failures: [String] = []
        for model in chain {
            guard let provider = providers[model.name], let request = build(model) else {
                failures.append("\(model.name): the request does not fit its context window")
                continue
            }
            let estimate = estimator.tokens(request, model: model)
            let breaker = breakers[Self.endpoint(model)]!
            var attempt = 0
            while true {
                attempt += 1
                // The budget first: a refused call must not take the breaker's one trial.
                try await ledger.check(
                    person: person, tokens: estimate + request.maxOutputTokens,
                    cost: model.cost(input: estimate, output: request.maxOutputTokens), now: now()
                )
                if let wait = breaker.admit() {
                    failures.append("\(model.name): \(ProviderError.circuitOpen(retryIn: wait))")
                    Self.count(model: model, purpose: purpose, outcome: "circuit_open")
                    break
                }
                let started = ContinuousClock.now
                do {
                    let response = try await withSpan("llm.\(purpose)", ofKind: .client) { span in
                        span.attributes["gen_ai.system"] = model.provider.rawValue
                        span.attributes["gen_ai.request.model"] = model.model
                        span.attributes["switchboard.llm.model"] = model.name
                        span.attributes["switchboard.llm.tier"] = model.tier
                        let response = try await provider.complete(request)
                        span.attributes["gen_ai.usage.input_tokens"] = response.usage?.input ?? -1
                        span.attributes["gen_ai.usage.output_tokens"] = response.usage?.output ?? -1
                        span.attributes["gen_ai.response.finish_reasons"] = [response.finish.label]
                        return response
                    }
                    breaker.succeeded()
                    let elapsed = started.duration(to: .now)
                    let usage = response.usage ?? TokenUsage(input: estimate, output: estimator.tokens(response.text, model: model))
                    if let reported = response.usage?.input { estimator.calibrate(model: model, estimated: estimate, reported: reported) }
                    let cost = model.cost(input: usage.input, output: usage.output)
                    try await ledger.record(person: person, model: model.name, usage: usage, cost: cost, now: now())
                    Self.count(model: model, purpose: purpose, outcome: "ok", usage: usage, cost: cost, elapsed: elapsed)
                    logger.info("model call", metadata: [
                        "llm.model": "\(model.name)", "llm.tier": "\(model.tier)", "llm.purpose": "\(purpose)", "llm.outcome": "ok",
                        "llm.finish": "\(response.finish.label)", "llm.tokens.input": "\(usage.input)", "llm.tokens.output": "\(usage.output)",
                        "llm.cost": "\(cost)", "llm.latency_ms": "\(elapsed.milliseconds)", "llm.attempt": "\(attempt)",
                    ])
                    return (response, model)
                } catch let error as ProviderError {
                    // Shutting down: the cancelled request says nothing about the provider.
                    if Task.isCancelled {
                        breaker.released()
                        throw CancellationError()
                    }
                    if error.isProviderFailure { breaker.failed() } else { breaker.released() }
                    let elapsed = started.duration(to: .now)
                    Self.count(model: model, purpose: purpose, outcome: error.label, elapsed: elapsed)
                    logger.warning("model call failed", metadata: [
                        "llm.model": "\(model.name)", "llm.tier": "\(model.tier)", "llm.purpose": "\(purpose)", "llm.outcome": "\(error.label)",
                        "llm.latency_ms": "\(elapsed.milliseconds)", "llm.attempt": "\(attempt)", "error": "\(error)",
                    ])
                    if error.isTransient, attempt < configuration.retry.attempts,
                       let delay = configuration.retry.delay(attempt: attempt, retryAfter: error.retryAfter) {
                        try await sleep(delay)
                        continue
                    }
                    failures.append("\(model.name): \(error)")
                    break
                } catch {
                    breaker.released()
                    throw error
                }
            }
        }
        throw ModelsUnavailable(failures: failures)
    }

    private static func count(
        model: ModelConfiguration, purpose: String, outcome: String, usage: TokenUsage? = nil, cost: Double = 0, elapsed: Duration? = nil
    ) {
        let dimensions = [("model", model.name), ("tier", String(model.tier)), ("purpose", purpose)]
        Counter(label: "switchboard_llm_requests_total", dimensions: dimensions + [("outcome", outcome)]).increment()
        if let usage {
            Counter(label: "switchboard_llm_tokens_total", dimensions: [("model", model.name), ("direction", "input")]).increment(by: usage.input)
            Counter(label: "switchboard_llm_tokens_total", dimensions: [("model", model.name), ("direction", "output")]).increment(by: usage.output)
            FloatingPointCounter(label: "switchboard_llm_cost_total", dimensions: [("model", model.name)]).increment(by: cost)
        }
        if let elapsed {
            Metrics.Timer(label: "switchboard_llm_request_seconds", dimensions: [("model", model.name), ("outcome", outcome == "ok" ? "ok" : "error")])
                .recordNanoseconds(Int64(elapsed.components.seconds) * 1_000_000_000 + Int64(elapsed.components.attoseconds / 1_000_000_000))
        }
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
