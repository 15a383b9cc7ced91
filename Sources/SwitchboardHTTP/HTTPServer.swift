// The HTTP API, first part: what operators and monitoring need to run the gateway.
//
//   GET /healthz   the process is up
//   GET /readyz    the database answers and every channel has started (connected, or
//                  retrying with backoff); 503 otherwise, with the details either way
//   GET /metrics   Prometheus text: every swift-metrics counter, gauge and timer of the
//                  process, plus inbox and outbox depth read at scrape time
//
// Every error, an unknown route included, is JSON of one shape: {"error": {"code", "message"}}.
// The routes for integrations (messages, audit, confirmations, keys) come with their issue.

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

/// Where the HTTP API listens.
///
/// Keys: `http.host` (default `127.0.0.1`), `http.port` (1–65535, default 8080).
public struct HTTPConfiguration: Sendable {
    /// The address to bind.
    public var host: String = "127.0.0.1"
    /// The port.
    public var port: Int = 8080

    /// The defaults.
    public init() {}

    /// Reads the `http.*` keys, recording problems in `config`.
    public init(config: inout ConfigValues) {
        host = config.string("http.host", default: host)
        port = config.int("http.port", default: port, range: 1...65535)
    }
}

/// Builds the HTTP service.
public struct HTTPServer: Sendable {
    private let configuration: HTTPConfiguration
    private let store: any Store
    private let channels: [any ChannelAdapter]
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let inboxDepth: Metrics.Gauge
    private let outboxDepth: Metrics.Gauge

    /// Creates the server's parts.
    ///
    /// - Parameter registry: the Prometheus registry swift-metrics was bootstrapped with.
    public init(
        configuration: HTTPConfiguration,
        store: any Store,
        channels: [any ChannelAdapter],
        registry: PrometheusCollectorRegistry,
        logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.channels = channels
        self.registry = registry
        self.logger = logger
        inboxDepth = Metrics.Gauge(label: "switchboard_inbox_pending")
        outboxDepth = Metrics.Gauge(label: "switchboard_outbox_pending")
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

    private func application() -> some Service {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware(logger: logger))
        router.get("healthz") { _, _ in
            Self.json(.ok, ["status": "ok"])
        }
        router.get("readyz") { _, _ in
            await readiness()
        }
        router.get("metrics") { _, _ in
            await metrics()
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Switchboard"),
            logger: logger
        )
    }

    private func readiness() async -> Response {
        var ready = true
        var checks: [String: JSONValue] = [:]
        do {
            let depth = try await store.read { try $0.depth(channel: nil) }
            checks["database"] = ["status": "ok", "location": .string(store.locationDescription), "inbox_pending": .int(Int64(depth.pendingInbound)), "outbox_pending": .int(Int64(depth.pendingOutbound))]
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
            channelChecks[channel.channel.rawValue] = .object(entry)
        }
        checks["channels"] = .object(channelChecks)
        return Self.json(ready ? .ok : .serviceUnavailable, ["status": .string(ready ? "ready" : "not_ready"), "checks": .object(checks)])
    }

    private func metrics() async -> Response {
        if let depth = try? await store.read({ try $0.depth(channel: nil) }) {
            inboxDepth.record(depth.pendingInbound)
            outboxDepth.record(depth.pendingOutbound)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: value.canonicalText + "\n")))
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

/// Turns every error into `{"error": {"code", "message"}}` with the right status.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .methodNotAllowed: code = "method_not_allowed"
            case .badRequest: code = "bad_request"
            case .contentTooLarge: code = "too_large"
            default: code = "http_\(error.status.code)"
            }
            let message = error.body ?? (error.status == .notFound ? "There is nothing at \(request.uri.path)." : error.status.reasonPhrase)
            return HTTPServer.json(error.status, ["error": ["code": .string(code), "message": .string(message)]])
        } catch {
            logger.error("request failed", metadata: ["http.path": "\(request.uri.path)", "error": "\(type(of: error))"])
            return HTTPServer.json(.internalServerError, ["error": ["code": "internal", "message": "Something went wrong on our side."]])
        }
    }
}
