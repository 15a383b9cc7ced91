/// A changing set of tools from outside the build: an MCP server's tools, declared HTTP tools.
///
/// Implementers must be cheap to ask (the gate asks for every call, and the planners for every
/// message) and must never hand out two tools of one name.
public protocol ToolSource: Sendable {
    /// The tools available now.
    var tools: [any Tool] { get }
    /// The tool with this name, if the source has it now.
    func tool(named name: String) -> (any Tool)?
    /// Returns once the source has made its first attempt to list its tools (an MCP server
    /// connected or failed), or after a bounded wait: a message that arrives while the gateway
    /// starts finds the tools rather than "unavailable".
    func firstListing() async
}

extension ToolSource {
    /// Sources whose tools are known at once need no wait.
    public func firstListing() async {}
}

/// The tools the engine knows, by name: the built-in ones, and those of the sources (MCP
/// servers, HTTP tools), which may change while the gateway runs.
public struct ToolRegistry: Sendable {
    private var tools: [String: any Tool] = [:]
    private let sources: [any ToolSource]
    private let remoteBuiltins: Bool

    /// Creates a registry.
    ///
    /// - Precondition: tool names are unique. A duplicate is a programming error.
    public init(_ tools: [any Tool], sources: [any ToolSource] = []) {
        self.sources = sources
        for tool in tools {
            precondition(self.tools[tool.descriptor.name] == nil, "duplicate tool \(tool.descriptor.name)")
            self.tools[tool.descriptor.name] = tool
        }
        remoteBuiltins = tools.contains { $0 is any RemoteTool }
    }

    /// The tool with this name: a built-in one first, then the sources in order.
    public subscript(name: String) -> (any Tool)? {
        if let tool = tools[name] { return tool }
        for source in sources {
            if let tool = source.tool(named: name) { return tool }
        }
        return nil
    }

    /// Waits for every source's first listing (each bounded by the source).
    public func sourcesListed() async {
        for source in sources { await source.firstListing() }
    }

    /// Whether any tool may reach another system: sources are configured, or a built-in tool
    /// works on a person's own server (the calendar on CalDAV).
    public var hasSources: Bool { !sources.isEmpty || remoteBuiltins }

    /// The built-in tools' descriptors, by name.
    public var builtinDescriptors: [ToolDescriptor] { tools.values.map(\.descriptor).sorted { $0.name < $1.name } }

    /// Every descriptor, by name; a source's tool never hides a built-in one of the same name.
    public var descriptors: [ToolDescriptor] {
        guard !sources.isEmpty else { return builtinDescriptors }
        var all = tools.mapValues(\.descriptor)
        for source in sources {
            for tool in source.tools where all[tool.descriptor.name] == nil { all[tool.descriptor.name] = tool.descriptor }
        }
        return all.values.sorted { $0.name < $1.name }
    }

    /// Every category.
    public var categories: Set<String> { Set(descriptors.map(\.category)) }
}
