// The HTTP API: the generic `api` channel for integrations (/v1/messages), operator routes
// (conversations, audit, confirmations, tools, preferences), and monitoring:
//
//   GET /healthz       the process is up
//   GET /readyz        the database answers and every channel has started (connected, or
//                      retrying with backoff); 503 otherwise, with the details either way.
//                      Tool servers (MCP) are shown too, but one that is down does not make
//                      the gateway unready: everything else still works, and its tools say so.
//   GET /metrics       Prometheus text: every swift-metrics counter, gauge and timer, plus
//                      inbox and outbox depth and age and channel states read at scrape time
//   GET /openapi.json  the OpenAPI 3.1 description of all of it
//
// Every error, an unknown route included, is JSON of one shape: {"error": {"code", "message"}}.

import Foundation
import Hummingbird
public import Logging
import Metrics
import NIOCore
public import Prometheus
public import ServiceLifecycle
public import SwitchboardChannels
public import SwitchboardModel
public import SwitchboardStorage

/// Where and how the HTTP API listens.
///
/// Keys: `http.enabled` (`auto`: with a network channel), `http.host`, `http.port`,
/// `http.max_body_bytes`, `http.request_timeout_seconds`, `http.idle_timeout_seconds`,
/// `http.max_wait_seconds`, `http.public_health`, `http.public_metrics`,
/// `http.callback_secret` (or `_file`), `http.callback_allow_private`.
public struct HTTPConfiguration: Sendable {
    /// Whether `serve` runs the API: nil means only beside a network channel.
    public var enabled: Bool?
    /// The address to bind.
    public var host: String = "127.0.0.1"
    /// The port.
    public var port: Int = 8080
    /// The largest request body accepted.
    public var maxBodyBytes: Int = 1 << 20
    /// How long a client may take to send a request body.
    public var requestTimeout: Int = 60
    /// How long an idle keep-alive connection (or one that never finishes its headers) stays open.
    public var idleTimeout: Int = 60
    /// The longest `?wait=` a caller may ask for.
    public var maxWaitSeconds: Double = 30
    /// Whether /healthz and /readyz answer without a key.
    public var publicHealth = true
    /// Whether /metrics answers without a key.
    public var publicMetrics = true
    /// The key that signs callbacks (HMAC-SHA256).
    public var callbackSecret: Secret?
    /// Whether callback URLs may name loopback, private or link-local addresses.
    public var callbackAllowPrivate = false
    /// The longest message text accepted (the engine's `engine.max_message_bytes`).
    public var maxTextBytes: Int = 65536

    /// The defaults.
    public init() {}

    /// Reads the `http.*` keys, recording problems in `config`.
    public init(config: inout ConfigValues) {
        switch config.choice("http.enabled", default: "auto", from: ["auto", "true", "false"]) {
        case "true": enabled = true
        case "false": enabled = false
        default: enabled = nil
        }
        host = config.string("http.host", default: host)
        port = config.int("http.port", default: port, range: 1...65535)
        maxBodyBytes = config.int("http.max_body_bytes", default: maxBodyBytes, range: 1024...(64 << 20))
        requestTimeout = config.int("http.request_timeout_seconds", default: requestTimeout, range: 1...3600)
        idleTimeout = config.int("http.idle_timeout_seconds", default: idleTimeout, range: 1...3600)
        maxWaitSeconds = Double(config.int("http.max_wait_seconds", default: Int(maxWaitSeconds), range: 0...3600))
        publicHealth = config.bool("http.public_health", default: publicHealth)
        publicMetrics = config.bool("http.public_metrics", default: publicMetrics)
        callbackSecret = config.secret("http.callback_secret")
        callbackAllowPrivate = config.bool("http.callback_allow_private", default: callbackAllowPrivate)
        if maxWaitSeconds >= Double(requestTimeout) {
            config.report("http.max_wait_seconds", "must be shorter than http.request_timeout_seconds (\(requestTimeout))")
        }
    }
}

/// A tool server's state as /readyz and /metrics show it (an MCP server, seen from here
/// without knowing the protocol).
public struct ToolServerCheck: Sendable, Hashable {
    /// Its configured name.
    public var name: String
    /// `starting`, `up`, `down` or `stopped`.
    public var state: String
    /// The tools it offers now.
    public var tools: Int
    /// Failed attempts since the last success.
    public var failures: Int
    /// The last failure, in words.
    public var lastError: String?

    /// Creates a check.
    public init(name: String, state: String, tools: Int, failures: Int, lastError: String?) {
        self.name = name
        self.state = state
        self.tools = tools
        self.failures = failures
        self.lastError = lastError
    }
}

/// Builds the HTTP service.
public struct HTTPServer: Sendable {
    private let configuration: HTTPConfiguration
    private let store: any Store
    private let channels: [any ChannelAdapter]
    private let toolServers: @Sendable () -> [ToolServerCheck]
    private let models: @Sendable () -> [(model: String, circuit: String)]
    private let routes: APIRoutes
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger

    /// Creates the server's parts.
    ///
    /// - Parameters:
    ///   - api: the `api` channel, which must be among `channels` so its replies are delivered.
    ///   - registry: the Prometheus registry swift-metrics was bootstrapped with.
    ///   - toolServers: the tool servers' states now, for /readyz and /metrics.
    ///   - models: each language model's circuit (`closed`, `open`, `half_open`) now.
    public init(
        configuration: HTTPConfiguration,
        store: any Store,
        inbox: InboxWriter,
        api: APIChannel,
        channels: [any ChannelAdapter],
        operations: any GatewayOperations,
        registry: PrometheusCollectorRegistry,
        toolServers: @escaping @Sendable () -> [ToolServerCheck] = { [] },
        models: @escaping @Sendable () -> [(model: String, circuit: String)] = { [] },
        logger: Logger
    ) {
        self.models = models
        self.configuration = configuration
        self.store = store
        self.channels = channels
        self.toolServers = toolServers
        self.registry = registry
        self.logger = logger
        routes = APIRoutes(configuration: configuration, store: store, inbox: inbox, channel: api, operations: operations, logger: logger)
    }

    /// Makes swift-metrics report into a new Prometheus registry, once per process, and returns it.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// The service to run in the gateway's service group.
    public func service() -> some Service {
        ListeningService(application: application(), host: configuration.host, port: configuration.port)
    }

    /// The OpenAPI 3.1 document served at /openapi.json.
    public var openAPIDocument: String { OpenAPIDocument.text(configuration) }

    /// Every route, for the OpenAPI check.
    public func routeList() -> [(method: String, path: String)] {
        router().routes.map { (String(describing: $0.method), $0.path.description) }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        // Middleware comes before the routes it wraps; the table of methods is filled in once
        // every route is there.
        let methods = MethodTable()
        // A span per request (status and route in its attributes), around the error rendering.
        router.add(middleware: TracingMiddleware())
        router.add(middleware: APIErrorMiddleware(logger: logger, methods: methods))
        router.get("healthz") { request, _ in
            if !configuration.publicHealth { try await routes.authorize(request, .read) }
            return JSONResponse.make(.ok, ["status": "ok"])
        }
        router.get("readyz") { request, _ in
            if !configuration.publicHealth { try await routes.authorize(request, .read) }
            return await readiness()
        }
        router.get("metrics") { request, _ in
            if !configuration.publicMetrics { try await routes.authorize(request, .read) }
            return await metrics()
        }
        router.get("openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: openAPIDocument)))
        }
        routes.register(on: router)
        methods.fill(router.routes.map { (String(describing: $0.method), $0.path.description) })
        return router
    }

    private func application() -> some Service {
        Application(
            router: router(),
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.idleTimeout)))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Switchboard"),
            logger: logger
        )
    }

    private func readiness() async -> Response {
        var ready = true
        var checks: [String: JSONValue] = [:]
        do {
            let store = self.store
            let depth = try await Self.within(Self.databaseCheckLimit) { try await store.read { try $0.depth(channel: nil) } }
            checks["database"] = ["status": "ok", "location": .string(store.locationDescription), "inbox_pending": .int(Int64(depth.pendingInbound)), "outbox_pending": .int(Int64(depth.pendingOutbound))]
        } catch is CheckTimedOut {
            // A database that takes connections and never answers (a stalled network, a full
            // disk on the server): say so now rather than leave the probe hanging.
            ready = false
            checks["database"] = ["status": "unreachable", "error": .string("no answer within \(Int(Self.databaseCheckLimit.components.seconds)) s")]
        } catch {
            ready = false
            checks["database"] = ["status": "unreachable", "error": .string((error as? StoreError)?.description ?? "\(type(of: error))")]
        }
        var channelChecks: [String: JSONValue] = [:]
        for channel in channels {
            let status = channel.status
            if status.state == .starting { ready = false }
            var entry: [String: JSONValue] = ["status": .string(status.state.rawValue)]
            if status.failures > 0 { entry["failures"] = .int(Int64(status.failures)) }
            if let error = status.lastError { entry["last_error"] = .string(error) }
            if !status.circuits.isEmpty { entry["circuits"] = .object(status.circuits.mapValues { .string($0.rawValue) }) }
            channelChecks[channel.channel.rawValue] = .object(entry)
        }
        checks["channels"] = .object(channelChecks)
        let servers = toolServers()
        if !servers.isEmpty {
            var serverChecks: [String: JSONValue] = [:]
            for server in servers {
                var entry: [String: JSONValue] = ["status": .string(server.state), "tools": .int(Int64(server.tools))]
                if server.failures > 0 { entry["failures"] = .int(Int64(server.failures)) }
                if let error = server.lastError { entry["last_error"] = .string(error) }
                serverChecks[server.name] = .object(entry)
            }
            checks["mcp_servers"] = .object(serverChecks)
        }
        // A model whose circuit is open does not make the gateway unready either: the intent
        // engine answers meanwhile, and says so.
        let circuits = models()
        if !circuits.isEmpty {
            checks["models"] = .object(Dictionary(circuits.map { ($0.model, ["circuit": .string($0.circuit)] as JSONValue) }) { first, _ in first })
        }
        return JSONResponse.make(ready ? .ok : .serviceUnavailable, ["status": .string(ready ? "ready" : "not_ready"), "checks": .object(checks)])
    }

    /// How long /readyz and /metrics wait for the database before answering without it.
    static let databaseCheckLimit: Duration = .seconds(2)

    struct CheckTimedOut: Error {}

    /// `body`'s result, or `CheckTimedOut` after `limit`. The body is not waited for after
    /// that: a store call blocked on a dead connection ends on its own time (the store's limit).
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = OneAnswer(continuation)
            let work = Task {
                do { once.resume(with: .success(try await body())) } catch { once.resume(with: .failure(error)) }
            }
            Task {
                try? await Task.sleep(for: limit)
                if once.resume(with: .failure(CheckTimedOut())) { work.cancel() }
            }
        }
    }

    /// A continuation resumed by whichever answer comes first.
    private final class OneAnswer<T: Sendable>: Sendable {
        private let continuation: Locked<CheckedContinuation<T, any Error>?>

        init(_ continuation: CheckedContinuation<T, any Error>) {
            self.continuation = Locked(continuation)
        }

        /// Resumes, unless already resumed; whether this call did.
        @discardableResult
        func resume(with result: Result<T, any Error>) -> Bool {
            guard let waiting = continuation.withLock({ $0.take() }) else { return false }
            waiting.resume(with: result)
            return true
        }
    }

    private func metrics() async -> Response {
        let store = self.store
        if let depth = try? await Self.within(Self.databaseCheckLimit, { try await store.read { try $0.depth(channel: nil) } }) {
            let now = Date()
            Metrics.Gauge(label: "switchboard_inbox_pending").record(depth.pendingInbound)
            Metrics.Gauge(label: "switchboard_outbox_pending").record(depth.pendingOutbound)
            Metrics.Gauge(label: "switchboard_inbox_oldest_age_seconds").record(depth.oldestInbound.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            Metrics.Gauge(label: "switchboard_outbox_oldest_age_seconds").record(depth.oldestOutbound.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
        for channel in channels {
            let status = channel.status
            // 1 connected (or standing by for another instance), 0 starting or retrying: the
            // dependency's state for alerting.
            let up = status.state == .connected || status.state == .standingBy
            Metrics.Gauge(label: "switchboard_channel_up", dimensions: [("channel", channel.channel.rawValue)]).record(up ? 1 : 0)
            Metrics.Gauge(label: "switchboard_channel_consecutive_failures", dimensions: [("channel", channel.channel.rawValue)]).record(status.failures)
        }
        for server in toolServers() {
            Metrics.Gauge(label: "switchboard_mcp_server_up", dimensions: [("server", server.name)]).record(server.state == "up" ? 1 : 0)
            Metrics.Gauge(label: "switchboard_mcp_consecutive_failures", dimensions: [("server", server.name)]).record(server.failures)
        }
        for (model, circuit) in models() {
            Metrics.Gauge(label: "switchboard_llm_circuit_open", dimensions: [("model", model)]).record(circuit == "open" ? 1 : 0)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}

/// The HTTP application, with a clear error when its address is taken.
private struct ListeningService<Wrapped: Service>: Service {
    let application: Wrapped
    let host: String
    let port: Int

    func run() async throws {
        do {
            try await application.run()
        } catch let error as IOError where error.errnoCode == EADDRINUSE || error.errnoCode == EACCES {
            throw HTTPServerError(
                message: "Cannot listen on \(host):\(port): \(error.errnoCode == EADDRINUSE ? "another program uses that port" : "permission denied"). Set http.port (SWITCHBOARD_HTTP_PORT) to a free port."
            )
        }
    }
}

/// The HTTP server could not start.
public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    /// What went wrong and what to do.
    public var message: String
    public var description: String { message }
}
