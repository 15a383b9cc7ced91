// What `switchboard tools list` and `switchboard mcp check` show: every tool with its source,
// risk and category, and each MCP server's state, after connecting to the servers for a moment.

import Foundation
import SwitchboardEngine
public import SwitchboardHTTP
import SwitchboardModel
import SwitchboardRemoteTools
import SwitchboardTools

extension Gateway {
    /// Every tool, the MCP servers' included once each server has answered or failed (at most
    /// its connect timeout), and the servers' states.
    ///
    /// - Parameter server: only this MCP server (and no built-in or HTTP tool).
    public func toolListing(server: String? = nil) async throws -> (tools: [ToolSummary], servers: [ToolServerCheck]) {
        var remote = configuration.remoteTools
        if let server {
            guard remote.servers.contains(where: { $0.name == server }) else {
                throw GatewayError("No MCP server is called \"\(server)\"; configured: \(remote.servers.map(\.name).joined(separator: ", ").nonEmpty ?? "none").")
            }
            remote.servers = remote.servers.filter { $0.name == server }
            remote.httpTools = []
        }
        let catalog = RemoteToolCatalog(remote, logger: logger)
        let running = Task { await withDiscardingTaskGroup { group in for connection in catalog.connections { group.addTask { await connection.run() } } } }
        let limit = (remote.servers.map(\.connectTimeout).max() ?? 0) + 2
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline, catalog.statuses.contains(where: { $0.state == .starting }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        var tools: [ToolDescriptor] = server == nil ? BuiltinTools.all.map(\.descriptor) : []
        tools += catalog.tools.map(\.descriptor)
        let servers = catalog.statuses.map {
            ToolServerCheck(name: $0.server, state: $0.state.rawValue, tools: $0.toolCount, failures: $0.consecutiveFailures, lastError: $0.lastError)
        }
        running.cancel()
        await running.value
        let summaries = tools.sorted { $0.name < $1.name }.map {
            ToolSummary(
                name: $0.name, category: $0.category, description: $0.summary, parameters: $0.parameters, risk: $0.baseRisk,
                effect: $0.effect.rawValue, secretParameters: $0.secretArguments.sorted(), source: $0.origin.description
            )
        }
        return (summaries, servers)
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
