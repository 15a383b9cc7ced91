// One tool of an MCP server, as the gate sees it: `mcp.<server>.<tool>`, its schema as the
// server declares it, its risk from the server's annotations (only where the operator trusts
// the server) or the operator's override, and its answer handed on as third-party content.

import Foundation
public import MCP
public import SwitchboardEngine
public import SwitchboardModel

/// A tool an MCP server offers.
public struct MCPTool: RemoteTool {
    public let descriptor: ToolDescriptor
    /// The tool's name as the server knows it.
    public let remoteName: String
    let connection: MCPServerConnection

    /// Names a server's tool may have: what the MCP specification recommends, and what fits
    /// into `mcp.<server>.<tool>` for the models' 64-character limit after mapping.
    static var remoteNamePattern: Regex<Substring> { /^[A-Za-z0-9_.-]{1,64}$/ }

    /// The tool for a server's declaration, or why it is not offered.
    static func make(_ tool: MCP.Tool, server: MCPServerConfiguration, connection: MCPServerConnection) -> Result<MCPTool, Refusal> {
        guard tool.name.wholeMatch(of: remoteNamePattern) != nil else {
            return .failure(Refusal(tool: String(tool.name.prefix(80)), reason: "its name may use only letters, digits, _, . and - (at most 64)"))
        }
        let schema = JSONValue(tool.inputSchema)
        guard schema.objectValue?["type"]?.stringValue ?? "object" == "object" else {
            return .failure(Refusal(tool: tool.name, reason: "its arguments are not a JSON object"))
        }
        let override = server.overrides[tool.name]
        let annotations = tool.annotations
        let readOnly = server.trusted && annotations.readOnlyHint == true
        let description = [tool.description, annotations.title, tool.title].compactMap { $0 }.first { !$0.isEmpty }
        let descriptor = ToolDescriptor(
            name: "mcp.\(server.name).\(tool.name)", category: override?.category ?? "mcp.\(server.name)",
            summary: description.map { String($0.prefix(500)) } ?? "\(tool.name) on the \(server.name) MCP server.",
            parameters: schema.objectValue == nil ? .object(["type": "object"]) : schema,
            baseRisk: risk(annotations, trusted: server.trusted, override: override?.risk),
            effect: readOnly ? .readOnly : .irreversible, origin: .mcp(server: server.name), returnsUntrustedContent: true,
            context: server.description
        )
        return .success(MCPTool(descriptor: descriptor, remoteName: tool.name, connection: connection))
    }

    /// A tool the server offers and the gateway does not.
    struct Refusal: Error, Sendable, Hashable {
        var tool: String
        var reason: String
    }

    /// The risk of a server's tool.
    ///
    /// The operator's override wins. An untrusted server's tools are high. For a trusted one the
    /// annotations decide: `readOnlyHint` → low; `destructiveHint` or `openWorldHint` → high;
    /// both explicitly false → medium. Unset hints count as the specification's defaults
    /// (destructive and open-world true), so a tool that says nothing about itself is high.
    public static func risk(_ annotations: MCP.Tool.Annotations, trusted: Bool, override: Risk?) -> Risk {
        if let override { return override }
        guard trusted else { return .high }
        if annotations.readOnlyHint == true { return .low }
        if annotations.destructiveHint ?? true || annotations.openWorldHint ?? true { return .high }
        return .medium
    }

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let checked = try RemoteToolSupport.checked(arguments, descriptor: descriptor)
        return PreparedCall(
            arguments: checked,
            preview: RemoteToolSupport.preview(checked, descriptor: descriptor, target: "on the \(connection.configuration.name) MCP server"),
            risk: descriptor.baseRisk
        )
    }

    public func perform(_ call: PreparedCall, approval: Approval, context: RemoteCallContext) async throws -> ToolOutput {
        let arguments = (call.arguments.objectValue ?? [:]).mapValues(Value.init)
        let result = try await connection.call(remoteName, arguments: arguments, idempotencyKey: context.idempotencyKey, toolName: descriptor.name)
        let text = Self.text(of: result)
        let bytes = Array(text.utf8)
        let limit = connection.configuration.maxResultBytes
        guard bytes.count <= limit else {
            throw ToolFailure("\(descriptor.name) answered with more than \(limit) bytes, more than I keep; it may have acted, so check before asking again.")
        }
        if result.isError == true {
            throw ToolFailure("\(descriptor.name) reported an error: \(RemoteToolSupport.cut(text.isEmpty ? "(no details)" : text, limit: 500))")
        }
        return ToolOutput(
            reply: text.isEmpty ? "Done: \(descriptor.name) finished without a message." : RemoteToolSupport.cut(text),
            summary: RemoteToolSupport.digestSummary(bytes, prefix: "mcp answered")
        )
    }

    /// The answer in words: its text parts, a short note for each other part, and the
    /// structured content when there is no text.
    package static func text(of result: CallTool.Result) -> String {
        var parts: [String] = []
        for content in result.content {
            switch content {
            case .text(let text, _, _): parts.append(text)
            case .image(let data, let mimeType, _, _): parts.append("[\(mimeType) image, \(data.count * 3 / 4) bytes]")
            case .audio(let data, let mimeType, _, _): parts.append("[\(mimeType) audio, \(data.count * 3 / 4) bytes]")
            case .resource(let resource, _, _): parts.append(resource.text ?? "[resource \(resource.uri)]")
            case .resourceLink(let uri, let name, _, _, _, _): parts.append("\(name): \(uri)")
            }
        }
        if parts.isEmpty, let structured = result.structuredContent { parts.append(JSONValue(structured).canonicalText) }
        return parts.joined(separator: "\n")
    }
}

/// What a configured server's tool names answer while the server is down: a clear sentence,
/// at once, instead of a call that hangs.
struct UnavailableTool: SwitchboardEngine.Tool {
    let descriptor: ToolDescriptor
    let reason: String

    init(name: String, server: String, reason: String) {
        descriptor = ToolDescriptor(
            name: name, category: "mcp.\(server)", summary: "A tool of the \(server) MCP server, which is unavailable.",
            parameters: .object(["type": "object"]), baseRisk: .high, effect: .irreversible, origin: .mcp(server: server),
            returnsUntrustedContent: true
        )
        self.reason = reason
    }

    func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        throw ToolFailure("\(descriptor.name): that service is unavailable right now (\(reason)). Nothing was changed.")
    }

    func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        throw ToolFailure("\(descriptor.name): that service is unavailable right now (\(reason)). Nothing was changed.")
    }
}
