// One configured MCP server, kept connected: the gateway starts it (stdio) or reaches it
// (streamable HTTP), initialises the session, lists its tools, refreshes them when the server
// says they changed, pings it while idle, and starts again with backoff when it goes away.
//
// What the rest of the gateway reads (state and tools) is a snapshot behind a lock, so the
// planners and the gate, which ask for every message, never wait for the actor. A call made
// while the server is down fails at once with a plain sentence.
//
// The SDK's pending requests do not end when the awaiting task is cancelled: every wait here
// (connecting, a call, a ping) is raced with a timer, and the loser is ended explicitly
// (`cancelRequest` for a call, `disconnect` for a session).

import Foundation
public import Logging
public import MCP
import Metrics
import SwitchboardEngine
public import SwitchboardModel

/// What `/readyz`, the metrics and `switchboard tools list` show of a server.
public struct MCPServerStatus: Sendable, Hashable {
    /// Where the connection is.
    public enum State: String, Sendable, Hashable {
        /// Connecting for the first time, or again after a failure.
        case starting
        /// Initialised, tools listed.
        case up
        /// The last attempt failed; another follows after a backoff.
        case down
        /// The gateway is shutting down.
        case stopped
    }

    /// The server's name.
    public var server: String
    /// Where the connection is.
    public var state: State = .starting
    /// The last failure, in words (never a secret).
    public var lastError: String?
    /// Failed attempts since the last success.
    public var consecutiveFailures = 0
    /// Sessions started after the first.
    public var restarts = 0
    /// The tools offered.
    public var toolCount = 0
    /// Tools the server lists that the gateway does not offer, with the reason.
    public var refused: [String: String] = [:]
    /// The server's own name and version, once initialised.
    public var serverInfo: String?
}

/// A supervised connection to one MCP server.
public actor MCPServerConnection {
    /// The server's configuration.
    public nonisolated let configuration: MCPServerConfiguration
    private let logger: Logger
    private let makeTransport: @Sendable (_ onClose: @escaping @Sendable () -> Void) -> any Transport
    private let snapshot: Locked<Snapshot>
    private var client: Client?
    /// How often an idle session is pinged.
    private let pingInterval: Duration

    struct Snapshot {
        var status: MCPServerStatus
        var tools: [String: MCPTool] = [:]
    }

    /// Creates a connection; `run` connects and supervises.
    ///
    /// - Parameter makeTransport: a fresh transport for each session; it calls `onClose` when
    ///   the server goes away (its process exited, its session expired).
    public init(
        _ configuration: MCPServerConfiguration, logger: Logger, pingInterval: Duration = .seconds(30),
        makeTransport: @escaping @Sendable (_ onClose: @escaping @Sendable () -> Void) -> any Transport
    ) {
        self.configuration = configuration
        self.logger = logger
        self.makeTransport = makeTransport
        self.pingInterval = pingInterval
        snapshot = Locked(Snapshot(status: MCPServerStatus(server: configuration.name)))
    }

    /// The server's status now.
    public nonisolated var status: MCPServerStatus { snapshot.withLock { $0.status } }

    /// The tools offered now, by full name (none while the server is down).
    public nonisolated var tools: [String: MCPTool] {
        snapshot.withLock { $0.status.state == .up ? $0.tools : [:] }
    }

    /// Connects, and reconnects with backoff whenever the session ends, until cancelled.
    public func run() async {
        var failures = 0
        var sessions = 0
        while !Task.isCancelled {
            let (signal, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            do {
                try await start(onClose: { continuation.yield() })
                if sessions > 0 { update { $0.status.restarts += 1 } }
                sessions += 1
                failures = 0
                Counter(label: "switchboard_mcp_sessions_total", dimensions: [("server", configuration.name)]).increment()
                await watch(signal, continuation)
                if Task.isCancelled { break }
                logger.warning("MCP server went away; starting again", metadata: ["mcp.server": "\(configuration.name)"])
                failed("the server went away", failures: 1)
            } catch {
                if Task.isCancelled { break }
                failures += 1
                let reason = Self.describe(error)
                failed(reason, failures: failures)
                logger.warning("cannot connect to an MCP server", metadata: [
                    "mcp.server": "\(configuration.name)", "error": "\(reason)", "attempt": "\(failures)",
                ])
            }
            await teardown()
            // 0.5 s, 1 s, 2 s … up to a minute, with a little jitter so restarted gateways spread out.
            let backoff = min(60, 0.5 * pow(2, Double(max(0, failures - 1)))) * Double.random(in: 0.8...1.2)
            try? await Task.sleep(for: .milliseconds(Int(backoff * 1000)))
        }
        await teardown()
        update { $0.status.state = .stopped }
    }

    /// Calls a tool, within the server's timeout.
    ///
    /// - Throws: `ToolFailure` in plain words: the server is down, the call timed out, it failed.
    func call(_ name: String, arguments: [String: Value], idempotencyKey: String, toolName: String) async throws -> CallTool.Result {
        guard let client, status.state == .up else {
            throw unavailable(toolName)
        }
        let context: RequestContext<CallTool.Result>
        do {
            context = try await client.callTool(
                name: name, arguments: arguments, meta: Metadata(additionalFields: ["idempotencyKey": .string(idempotencyKey)])
            )
        } catch {
            throw unavailable(toolName)
        }
        switch await Self.race(context, within: .seconds(configuration.timeout), client: client) {
        case .success(let result):
            return result
        case .timedOut:
            throw ToolFailure("\(toolName) did not answer within \(Int(configuration.timeout)) seconds; I asked it to stop, but I don't know whether it acted.")
        case .failure(let error as MCPError):
            if case .connectionClosed = error {
                throw ToolFailure("\(toolName)'s server went away during the call; I don't know whether it acted.")
            }
            throw ToolFailure("\(toolName) failed: \(Self.describe(error))")
        case .failure(let error):
            throw ToolFailure("\(toolName) failed: \(Self.describe(error))")
        }
    }

    private func unavailable(_ toolName: String) -> ToolFailure {
        let reason = status.lastError.map { "the \(configuration.name) server is down: \($0)" } ?? "the \(configuration.name) server is not connected"
        return ToolFailure("\(toolName): that service is unavailable right now (\(reason)). Nothing was changed.")
    }

    // MARK: - Sessions

    private func start(onClose: @escaping @Sendable () -> Void) async throws {
        update { $0.status.state = $0.status.consecutiveFailures == 0 && $0.status.restarts == 0 ? .starting : $0.status.state }
        let client = Client(name: "switchboard", version: "1")
        let transport = makeTransport(onClose)
        let initialize = Task { try await client.connect(transport: transport) }
        let result: Initialize.Result
        do {
            result = try await Self.within(.seconds(configuration.connectTimeout), task: initialize) { await client.disconnect() }
        } catch {
            await client.disconnect()
            throw error
        }
        self.client = client
        await client.onNotification(ToolListChangedNotification.self) { [weak self] _ in
            // Not awaited here: the handler runs on the client's receive loop, which the listing needs.
            Task { await self?.refresh() }
        }
        try await listTools(client)
        update {
            $0.status.state = .up
            $0.status.lastError = nil
            $0.status.consecutiveFailures = 0
            $0.status.serverInfo = "\(result.serverInfo.name) \(result.serverInfo.version)"
        }
        Gauge(label: "switchboard_mcp_server_up", dimensions: [("server", configuration.name)]).record(1)
        logger.info("MCP server connected", metadata: [
            "mcp.server": "\(configuration.name)", "mcp.server_info": "\(result.serverInfo.name) \(result.serverInfo.version)",
            "tools": "\(tools.count)",
        ])
    }

    /// Waits until the session ends: the transport closed, or a ping went unanswered.
    private func watch(_ signal: AsyncStream<Void>, _ continuation: AsyncStream<Void>.Continuation) async {
        guard let client else { return }
        let pinger = Task { [pingInterval, limit = configuration.connectTimeout, logger, name = configuration.name] in
            while !Task.isCancelled {
                guard (try? await Task.sleep(for: pingInterval)) != nil else { return }
                do {
                    try await Self.within(.seconds(limit), task: Task { try await client.ping() }) {}
                } catch {
                    logger.warning("MCP server did not answer a ping", metadata: ["mcp.server": "\(name)"])
                    continuation.yield()
                    return
                }
            }
        }
        for await _ in signal { break }
        pinger.cancel()
    }

    private func teardown() async {
        if let client {
            self.client = nil
            await client.disconnect()
        }
        Gauge(label: "switchboard_mcp_server_up", dimensions: [("server", configuration.name)]).record(0)
    }

    /// Lists the tools again (the server said they changed).
    func refresh() async {
        guard let client else { return }
        do {
            try await listTools(client)
            logger.info("MCP server's tools changed", metadata: ["mcp.server": "\(configuration.name)", "tools": "\(tools.count)"])
        } catch {
            logger.warning("cannot list an MCP server's changed tools", metadata: ["mcp.server": "\(configuration.name)", "error": "\(Self.describe(error))"])
        }
    }

    /// Lists every page of the server's tools and publishes those offered.
    private func listTools(_ client: Client) async throws {
        var listed: [MCP.Tool] = []
        var cursor: String?
        for _ in 0..<100 {
            let list = Task { [cursor] in try await client.listTools(cursor: cursor) }
            let page = try await Self.within(.seconds(configuration.timeout), task: list) { await client.disconnect() }
            listed += page.tools
            cursor = page.nextCursor
            if cursor == nil || listed.count > 10_000 { break }
        }
        var offered: [String: MCPTool] = [:]
        var refused: [String: String] = [:]
        for tool in listed {
            if let allow = configuration.allow, !allow.contains(tool.name) { continue }
            if configuration.deny.contains(tool.name) { continue }
            switch MCPTool.make(tool, server: configuration, connection: self) {
            case .success(let made):
                if offered[made.descriptor.name] != nil {
                    refused[tool.name] = "the server lists it twice"
                    continue
                }
                offered[made.descriptor.name] = made
            case .failure(let refusal):
                refused[refusal.tool] = refusal.reason
            }
        }
        for (tool, reason) in refused {
            logger.warning("an MCP server's tool is not offered", metadata: ["mcp.server": "\(configuration.name)", "tool": "\(tool)", "reason": "\(reason)"])
        }
        update {
            $0.tools = offered
            $0.status.toolCount = offered.count
            $0.status.refused = refused
        }
        Gauge(label: "switchboard_mcp_tools", dimensions: [("server", configuration.name)]).record(offered.count)
    }

    private func failed(_ reason: String, failures: Int) {
        update {
            $0.status.state = .down
            $0.status.lastError = reason
            $0.status.consecutiveFailures = failures
        }
        Gauge(label: "switchboard_mcp_server_up", dimensions: [("server", configuration.name)]).record(0)
        Counter(label: "switchboard_mcp_failures_total", dimensions: [("server", configuration.name)]).increment()
    }

    private nonisolated func update(_ change: (inout Snapshot) -> Void) {
        snapshot.withLock { change(&$0) }
    }

    // MARK: - Waiting with a limit

    enum Raced<Value: Sendable>: Sendable {
        case success(Value)
        case failure(any Error)
        case timedOut
    }

    /// A call's answer, or `.timedOut` (the request then cancelled at the server).
    static func race<Output>(_ context: RequestContext<Output>, within limit: Duration, client: Client) async -> Raced<Output> {
        let outcome = await withTaskGroup(of: Raced<Output>.self) { group in
            group.addTask {
                do { return .success(try await context.value) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return .timedOut
            }
            let first = await group.next()!
            if case .timedOut = first {
                // Ends the waiting child: the SDK resumes the request with a cancellation.
                try? await client.cancelRequest(context.requestID, reason: "timed out")
            }
            group.cancelAll()
            return first
        }
        return outcome
    }

    /// The task's value, or a timeout error after `limit` (then `onTimeout` ends the task's wait).
    static func within<Output: Sendable>(
        _ limit: Duration, task: Task<Output, any Error>, onTimeout: @escaping @Sendable () async -> Void
    ) async throws -> Output {
        let outcome = await withTaskGroup(of: Raced<Output>.self) { group in
            group.addTask {
                do { return .success(try await task.value) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return .timedOut
            }
            let first = await group.next()!
            if case .timedOut = first {
                task.cancel()
                await onTimeout()
            }
            group.cancelAll()
            return first
        }
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw error
        case .timedOut: throw MCPConnectionTimeout(seconds: Int(limit.components.seconds))
        }
    }

    /// An error in words for the status and the logs.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let timeout as MCPConnectionTimeout: return "no answer within \(timeout.seconds) seconds"
        case let failure as ToolFailure: return failure.message
        case let error as MCPError:
            switch error {
            case .connectionClosed: return "the connection closed"
            case .serverError(let code, let message): return "\(message) (\(code))"
            case .internalError(let detail): return detail ?? "internal error"
            case .methodNotFound(let detail): return "method not found\(detail.map { ": \($0)" } ?? "")"
            case .invalidParams(let detail): return "invalid arguments\(detail.map { ": \($0)" } ?? "")"
            case .invalidRequest(let detail): return "invalid request\(detail.map { ": \($0)" } ?? "")"
            case .transportError(let underlying): return String(underlying.localizedDescription.prefix(200))
            default: return String(error.localizedDescription.prefix(200))
            }
        case is CancellationError: return "cancelled"
        default: return String(String(describing: error).prefix(200))
        }
    }
}

/// Connecting or a request took longer than allowed.
struct MCPConnectionTimeout: Error {
    var seconds: Int
}

extension MCPServerConnection {
    /// Calls one of the server's tools `count` times in a row and returns each round trip in
    /// seconds, the server's own time included (`switchboard bench-tools`).
    public func timeCalls(_ tool: String, arguments: JSONValue, count: Int) async throws -> [Double] {
        let values = (arguments.objectValue ?? [:]).mapValues(MCP.Value.init)
        var times: [Double] = []
        for number in 0..<count {
            let start = ContinuousClock.now
            let result = try await call(tool, arguments: values, idempotencyKey: "switchboard-bench-\(number)", toolName: "mcp.\(configuration.name).\(tool)")
            let elapsed = ContinuousClock.now - start
            if result.isError == true { throw ToolFailure("mcp.\(configuration.name).\(tool) reported an error: \(MCPTool.text(of: result).prefix(200))") }
            times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        return times
    }
}
