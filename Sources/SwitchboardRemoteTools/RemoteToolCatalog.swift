// The tools of other systems, as one source for the registry: the declared HTTP tools, and the
// tools each configured MCP server offers now. It also runs the servers' connections for as
// long as the gateway runs.

public import AsyncHTTPClient
public import Foundation
public import Logging
import MCP
public import ServiceLifecycle
public import SwitchboardEngine
import SwitchboardModel

/// Every remote tool: a `ToolSource` for the registry and a service that keeps the MCP
/// servers connected.
public final class RemoteToolCatalog: ToolSource, Service {
    /// The MCP servers' connections, in configuration order.
    public let connections: [MCPServerConnection]
    private let httpTools: [String: HTTPTool]
    private let connectionsByName: [String: MCPServerConnection]
    private let created = Date()

    /// Creates the catalog; `run` connects the servers.
    public init(_ configuration: RemoteToolsConfiguration, httpClient: HTTPClient = HTTPTool.sharedClient, logger: Logger) {
        httpTools = Dictionary(uniqueKeysWithValues: configuration.httpTools.map { ($0.name, HTTPTool($0, client: httpClient)) })
        connections = configuration.servers.map { Self.connection(for: $0, logger: logger) }
        connectionsByName = Dictionary(uniqueKeysWithValues: connections.map { ($0.configuration.name, $0) })
    }

    /// A supervised connection for one server, over the transport its configuration names.
    public static func connection(for server: MCPServerConfiguration, logger: Logger) -> MCPServerConnection {
        MCPServerConnection(server, logger: logger) { onClose in
            switch server.transport {
            case .stdio(let command, let arguments, let environment, let directory):
                return ProcessTransport(
                    server: server.name, command: command, arguments: arguments,
                    environment: childEnvironment(environment.mapValues(\.revealed)), directory: directory,
                    secrets: server.secretValues, maxLineBytes: server.maxResultBytes + 65536, logger: logger, onClose: onClose
                )
            case .http(let url, let headers):
                return StreamableHTTPTransport(
                    server: server.name, url: url, headers: headers, client: StreamableHTTPTransport.sharedClient,
                    maxMessageBytes: server.maxResultBytes + 65536, requestTimeout: server.timeout + 5, logger: logger, onClose: onClose
                )
            }
        }
    }

    /// The environment a server's process gets: a few harmless variables of the gateway's own
    /// (never its secrets), and what the configuration gives it.
    public static func childEnvironment(_ configured: [String: String], inherited: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var environment = inherited.filter { name, _ in
            ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME"].contains(name) || name.hasPrefix("LC_")
        }
        environment.merge(configured) { _, new in new }
        return environment
    }

    public var tools: [any SwitchboardEngine.Tool] {
        var all: [any SwitchboardEngine.Tool] = Array(httpTools.values)
        for connection in connections { all += connection.tools.values.map { $0 as any SwitchboardEngine.Tool } }
        return all
    }

    public func tool(named name: String) -> (any SwitchboardEngine.Tool)? {
        if let tool = httpTools[name] { return tool }
        guard name.hasPrefix("mcp.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let connection = connectionsByName[String(rest[..<dot])] else { return nil }
        if let tool = connection.tools[name] { return tool }
        let status = connection.status
        guard status.state != .up else { return nil }
        let reason = status.lastError.map { "the \(status.server) server is down: \($0)" } ?? "the \(status.server) server is still starting"
        return UnavailableTool(name: name, server: status.server, reason: reason)
    }

    /// Waits while a server makes its first attempt, at most its connect timeout (and a second)
    /// from when the catalog was made.
    public func firstListing() async {
        for connection in connections {
            let deadline = created.addingTimeInterval(connection.configuration.connectTimeout + 1)
            while connection.status.state == .starting, Date() < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Each server's status, in configuration order.
    public var statuses: [MCPServerStatus] { connections.map(\.status) }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask { await connection.run() }
            }
            // The connections run until cancelled: end them when the gateway shuts down (they
            // are started before the engine, so they stop after it).
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
