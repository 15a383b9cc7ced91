/// The tools the engine knows, by name.
public struct ToolRegistry: Sendable {
    private var tools: [String: any Tool] = [:]

    /// Creates a registry.
    ///
    /// - Precondition: tool names are unique. A duplicate is a programming error.
    public init(_ tools: [any Tool]) {
        for tool in tools {
            precondition(self.tools[tool.descriptor.name] == nil, "duplicate tool \(tool.descriptor.name)")
            self.tools[tool.descriptor.name] = tool
        }
    }

    /// The tool with this name.
    public subscript(name: String) -> (any Tool)? { tools[name] }

    /// Every descriptor, by name.
    public var descriptors: [ToolDescriptor] { tools.values.map(\.descriptor).sorted { $0.name < $1.name } }

    /// Every category.
    public var categories: Set<String> { Set(tools.values.map(\.descriptor.category)) }
}
