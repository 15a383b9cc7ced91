// The streamable-HTTP transport of MCP (specification 2025-03-26 and later), on AsyncHTTPClient:
// each JSON-RPC message is POSTed to the endpoint, and the answer comes back as JSON or as a
// server-sent event stream; a GET opens the stream on which the server sends notifications
// (tools/list_changed) outside any request.
//
// The SDK's own HTTP client transport does not stream server-sent events on Linux, hence this
// one. Headers from the configuration (a bearer token) go with every request and never into a
// log. A failed POST is thrown at the SDK, which fails that request at once; a session the
// server forgot (404) or an unreachable server ends the session, so the supervisor starts a
// new one.

public import AsyncHTTPClient
public import Foundation
public import Logging
public import MCP
import NIOCore
import NIOHTTP1
public import SwitchboardModel

/// An MCP server reached over streamable HTTP.
public actor StreamableHTTPTransport: Transport {
    public nonisolated let logger: Logger
    private let endpoint: URL
    private let headers: [String: Secret]
    private let client: HTTPClient
    private let maxMessageBytes: Int
    private let requestTimeout: TimeInterval
    private let serverName: String
    private let log: Logger
    private let onClose: @Sendable () -> Void
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var sessionID: String?
    private var protocolVersion: String?
    private var listener: Task<Void, Never>?
    private var closed = false

    /// Creates a transport.
    ///
    /// - Parameters:
    ///   - requestTimeout: the longest one POST may stream its answer.
    ///   - onClose: called once when the session ends (expired, or the server unreachable).
    public init(
        server: String, url: URL, headers: [String: Secret], client: HTTPClient, maxMessageBytes: Int, requestTimeout: TimeInterval,
        logger: Logger, onClose: @escaping @Sendable () -> Void
    ) {
        self.serverName = server
        self.endpoint = url
        self.headers = headers
        self.client = client
        self.maxMessageBytes = maxMessageBytes
        self.requestTimeout = requestTimeout
        self.log = logger
        self.onClose = onClose
        self.logger = Logger(label: "switchboard.mcp.sdk", factory: { _ in SwiftLogNoOpLogHandler() })
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self, bufferingPolicy: .unbounded)
    }

    /// The client for MCP over HTTP: no redirects (they would carry the headers elsewhere), and
    /// a refused connection fails at once (the supervisor retries with its own backoff, and the
    /// status says "connection refused" rather than a timeout).
    public static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: HTTPClient.Configuration.Timeout(connect: .seconds(5))
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public func connect() async throws {}

    public func disconnect() async {
        guard !closed else { return }
        closed = true
        listener?.cancel()
        listener = nil
        if let sessionID {
            // Tells the server it may forget the session; a server that does not allow it answers 405.
            var request = request(method: .DELETE)
            request.headers.replaceOrAdd(name: "Mcp-Session-Id", value: sessionID)
            _ = try? await client.execute(request, timeout: .seconds(2))
        }
        continuation.finish(throwing: MCPError.connectionClosed)
    }

    public nonisolated func receive() -> AsyncThrowingStream<Data, any Error> { stream }

    public func send(_ data: Data) async throws {
        guard !closed else { throw MCPError.connectionClosed }
        let message = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        let isInitialize = message?["method"] as? String == "initialize"
        var request = request(method: .POST)
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        request.body = .bytes(ByteBuffer(bytes: data))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(Int64(requestTimeout)))
        } catch {
            if !isInitialize { end("the server is unreachable") }
            throw MCPError.internalError("the server is unreachable (\(HTTPTool.describe(error)))")
        }
        let status = response.status
        if status == .notFound && sessionID != nil && !isInitialize {
            end("the server forgot the session")
            throw MCPError.connectionClosed
        }
        if status == .unauthorized || status == .forbidden {
            throw MCPError.internalError("the server refused the credentials (\(status.code) \(status.reasonPhrase))")
        }
        guard (200..<300).contains(status.code) else {
            throw MCPError.internalError("the server answered \(status.code) \(status.reasonPhrase)")
        }
        if isInitialize, let id = response.headers.first(name: "Mcp-Session-Id") { sessionID = id }
        if status == .accepted || status == .noContent { return }
        let type = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        if type.hasPrefix("text/event-stream") {
            try await relayEvents(response.body)
        } else {
            let body = try await Self.collect(response.body, limit: maxMessageBytes)
            guard let body else { throw MCPError.internalError("the answer was larger than \(maxMessageBytes) bytes") }
            if !body.isEmpty { yield(Data(body), initializing: isInitialize) }
        }
        if isInitialize && sessionID != nil && listener == nil { startListening() }
    }

    // MARK: - Helpers

    private func request(method: HTTPMethod) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: endpoint.absoluteString)
        request.method = method
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value.revealed) }
        request.headers.replaceOrAdd(name: "User-Agent", value: "switchboard")
        if let sessionID { request.headers.replaceOrAdd(name: "Mcp-Session-Id", value: sessionID) }
        if let protocolVersion { request.headers.replaceOrAdd(name: "MCP-Protocol-Version", value: protocolVersion) }
        return request
    }

    /// Hands a message to the SDK; the initialize answer also names the protocol version,
    /// which every later request carries.
    private func yield(_ data: Data, initializing: Bool) {
        if initializing, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let version = (object["result"] as? [String: Any])?["protocolVersion"] as? String
        {
            protocolVersion = version
        }
        continuation.yield(data)
    }

    /// Passes on each `message` event of a stream, dropping any over the size limit.
    private func relayEvents(_ body: HTTPClientResponse.Body) async throws {
        var parser = ServerSentEventParser()
        for try await chunk in body {
            for event in parser.feed(Array(chunk.readableBytesView)) { relay(event) }
            if parser.buffered > maxMessageBytes {
                log.error("an MCP server's event was over the size limit; the stream was closed", metadata: [
                    "mcp.server": "\(serverName)", "limit": "\(maxMessageBytes)",
                ])
                throw MCPError.internalError("the answer was larger than \(maxMessageBytes) bytes")
            }
        }
        for event in parser.finish() { relay(event) }
    }

    private func relay(_ event: ServerSentEvent) {
        guard event.event == nil || event.event == "message", !event.data.isEmpty else { return }
        guard event.data.utf8.count <= maxMessageBytes else {
            log.error("an MCP server's message was over the size limit and was dropped", metadata: ["mcp.server": "\(serverName)"])
            return
        }
        yield(Data(event.data.utf8), initializing: protocolVersion == nil)
    }

    /// Opens the GET stream for the server's own notifications, and keeps it open while the
    /// session lasts; a server without one answers 405 and is not asked again.
    private func startListening() {
        listener = Task { [weak self] in
            var failures = 0
            while !Task.isCancelled, let self {
                let outcome = await self.listenOnce()
                switch outcome {
                case .notOffered: return
                case .ended: failures = 0
                case .failed: failures += 1
                }
                try? await Task.sleep(for: .milliseconds(min(30_000, 500 << min(failures, 6))))
            }
        }
    }

    enum ListenOutcome { case notOffered, ended, failed }

    private func listenOnce() async -> ListenOutcome {
        var request = request(method: .GET)
        request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
        do {
            // A day: the stream is meant to stay open; the server's keep-alives or a new GET follow.
            let response = try await client.execute(request, timeout: .hours(24))
            if response.status == .methodNotAllowed { return .notOffered }
            if response.status == .notFound {
                end("the server forgot the session")
                return .notOffered
            }
            guard response.status == .ok else { return .failed }
            try await relayEvents(response.body)
            return .ended
        } catch {
            return .failed
        }
    }

    /// Ends the session: the supervisor hears of it and starts another.
    private func end(_ reason: String) {
        guard !closed else { return }
        log.warning("MCP session ended", metadata: ["mcp.server": "\(serverName)", "reason": "\(reason)"])
        onClose()
    }

    /// The whole body, or nil when it is larger than `limit`.
    static func collect(_ body: HTTPClientResponse.Body, limit: Int) async throws -> [UInt8]? {
        var collected: [UInt8] = []
        for try await chunk in body {
            guard collected.count + chunk.readableBytes <= limit else { return nil }
            collected += chunk.readableBytesView
        }
        return collected
    }
}
