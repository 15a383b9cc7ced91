// Configuration of tools from other systems: MCP servers (`mcp.servers`) and declared HTTP
// tools (`http_tools`). Both are YAML lists of mappings, flattened to `mcp.servers.N.field` and
// `http_tools.N.field` as the environment spells them too.

public import Foundation
public import SwitchboardModel
import SwitchboardEngine

/// How the gateway reaches an MCP server.
public enum MCPTransportConfiguration: Sendable, Hashable {
    /// A command the gateway starts and supervises, speaking JSON-RPC on its stdin and stdout.
    case stdio(command: String, arguments: [String], environment: [String: Secret], directory: String?)
    /// A streamable-HTTP endpoint.
    case http(url: URL, headers: [String: Secret])
}

/// The operator's word on one of a server's tools.
public struct ToolOverride: Sendable, Hashable {
    /// The risk to use instead of the one the server's annotations give.
    public var risk: Risk?
    /// The rate-limit and permission category instead of `mcp.<server>`.
    public var category: String?

    /// Creates an override.
    public init(risk: Risk? = nil, category: String? = nil) {
        self.risk = risk
        self.category = category
    }
}

/// One MCP server.
public struct MCPServerConfiguration: Sendable, Hashable {
    /// Its name: tools appear as `mcp.<name>.<tool>`.
    public var name: String
    /// How to reach it.
    public var transport: MCPTransportConfiguration
    /// Whether its tool annotations (readOnlyHint, destructiveHint, openWorldHint) decide risk.
    /// An untrusted server's tools are all high risk unless an override lowers one.
    public var trusted: Bool
    /// Only these tools, when set (names as the server gives them).
    public var allow: Set<String>?
    /// Never these tools.
    public var deny: Set<String>
    /// The longest a call may take.
    public var timeout: TimeInterval
    /// The longest connecting and initialising may take.
    public var connectTimeout: TimeInterval
    /// The largest result kept; a larger one is an error for the person.
    public var maxResultBytes: Int
    /// Per-tool risk and category.
    public var overrides: [String: ToolOverride]
    /// What the server is, in the words people use for it ("Confluence wiki: spaces, pages");
    /// the tool retriever reads it with each of the server's tools.
    public var description: String

    /// Creates a configuration.
    public init(
        name: String, transport: MCPTransportConfiguration, trusted: Bool = false, allow: Set<String>? = nil, deny: Set<String> = [],
        timeout: TimeInterval = 30, connectTimeout: TimeInterval = 10, maxResultBytes: Int = 1_000_000, overrides: [String: ToolOverride] = [:],
        description: String = ""
    ) {
        self.description = description
        self.name = name
        self.transport = transport
        self.trusted = trusted
        self.allow = allow
        self.deny = deny
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResultBytes = maxResultBytes
        self.overrides = overrides
    }

    /// The secret values of this server's configuration (environment and headers), for
    /// scrubbing the server's own output before it is logged.
    public var secretValues: [String] {
        switch transport {
        case .stdio(_, _, let environment, _): environment.values.map(\.revealed).filter { $0.count >= 4 }
        case .http(_, let headers): headers.values.map(\.revealed).filter { $0.count >= 4 }
        }
    }
}

/// A request template: method, URL and body with `{argument}` placeholders.
public struct HTTPRequestTemplate: Sendable, Hashable {
    /// GET, POST, PUT, PATCH or DELETE.
    public var method: String
    /// The URL, with `{name}` placeholders in its path and query (never in its host).
    public var url: String
    /// The body as JSON text with placeholders, or nil (the arguments as a JSON object for
    /// methods with a body).
    public var body: String?

    /// Creates a template.
    public init(method: String, url: String, body: String?) {
        self.method = method
        self.url = url
        self.body = body
    }
}

/// One declared HTTP tool.
public struct HTTPToolConfiguration: Sendable, Hashable {
    /// Its dotted name, such as `crm.lookup`.
    public var name: String
    /// One sentence on what it does, for `help`, the intent engine and the models.
    public var description: String
    /// JSON Schema of its arguments.
    public var parameters: JSONValue
    /// The request.
    public var request: HTTPRequestTemplate
    /// Headers sent with it (and with its undo); values are secrets.
    public var headers: [String: Secret]
    /// Its risk.
    public var risk: Risk
    /// Its category for permissions and rate limits.
    public var category: String
    /// Whether it only reads.
    public var readOnly: Bool
    /// The compensating request that undoes a call, if there is one.
    public var undo: HTTPRequestTemplate?
    /// Argument names whose values are secrets.
    public var secretArguments: Set<String>
    /// The longest a request may take.
    public var timeout: TimeInterval
    /// The largest response kept; the rest is cut.
    public var maxResponseBytes: Int

    /// Creates a configuration.
    public init(
        name: String, description: String, parameters: JSONValue, request: HTTPRequestTemplate, headers: [String: Secret] = [:],
        risk: Risk, category: String, readOnly: Bool, undo: HTTPRequestTemplate? = nil, secretArguments: Set<String> = [],
        timeout: TimeInterval = 30, maxResponseBytes: Int = 1_000_000
    ) {
        self.name = name
        self.description = description
        self.parameters = parameters
        self.request = request
        self.headers = headers
        self.risk = risk
        self.category = category
        self.readOnly = readOnly
        self.undo = undo
        self.secretArguments = secretArguments
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }
}

/// Tools from other systems.
///
/// Keys (list items also as `SWITCHBOARD_MCP_SERVERS_<N>_<FIELD>` and `SWITCHBOARD_HTTP_TOOLS_<N>_<FIELD>`):
/// - `mcp.servers`: a list; each item has `name` (letters, digits, `_` and `-`), and either
///   `command` with `args` (a list), `env` (a mapping; values are secrets, each can come from a
///   file as `env.NAME_file`) and `cwd`, or `url` with `headers` (a mapping of secrets,
///   `headers.NAME_file` for a file) and `bearer_token` (secret, or `bearer_token_file`);
///   `transport` (`stdio` or `http`, by default from which of `command` and `url` is set);
///   `trusted` (default false); `allow` and `deny` (lists of the server's tool names);
///   `timeout_seconds` (1–3600, default 30); `connect_timeout_seconds` (1–600, default 10);
///   `max_result_bytes` (1024–67108864, default 1000000); `tools.<tool>.risk` (low, medium,
///   high) and `tools.<tool>.category`; `description` (what the server is in people's words,
///   for finding its tools: "Confluence wiki", "Jira: bugs, stories").
/// - `http_tools`: a list; each item has `name` (dotted, such as `crm.lookup`), `description`,
///   `parameters` (JSON Schema as JSON text), `method` (GET, POST, PUT, PATCH, DELETE), `url`
///   (`{argument}` placeholders in path and query), `body` (JSON text with placeholders;
///   default: the arguments), `headers` (secrets), `bearer_token` (secret), `risk` (default low
///   for GET, high otherwise), `category` (default the name's first part), `read_only` (default
///   true for GET), `secret_arguments` (a list), `timeout_seconds` (default 30),
///   `max_response_bytes` (default 1000000), and `undo.method`, `undo.url`, `undo.body` for a
///   compensating request (placeholders: the arguments, and `{response.FIELD}` from the answer).
public struct RemoteToolsConfiguration: Sendable, Hashable {
    /// The MCP servers.
    public var servers: [MCPServerConfiguration] = []
    /// The HTTP tools.
    public var httpTools: [HTTPToolConfiguration] = []

    /// Nothing configured.
    public init() {}

    /// Whether any remote tool is configured.
    public var isEmpty: Bool { servers.isEmpty && httpTools.isEmpty }

    /// The plain fields of an MCP server's item (and `env.*`, `headers.*`, `tools.*.*`).
    public static let serverFields: Set<String> = [
        "name", "transport", "command", "args", "cwd", "url", "bearer_token", "trusted", "allow", "deny", "timeout_seconds",
        "connect_timeout_seconds", "max_result_bytes", "description",
    ]
    /// The plain fields of an HTTP tool's item (and `headers.*`).
    public static let httpFields: Set<String> = [
        "name", "description", "parameters", "method", "url", "body", "bearer_token", "risk", "category", "read_only",
        "secret_arguments", "timeout_seconds", "max_response_bytes", "undo.method", "undo.url", "undo.body",
    ]

    /// Whether `key` belongs to these settings (`mcp.servers.0.url`, `http_tools.1.headers.X-Key`).
    public static func isKnown(_ key: String) -> Bool {
        guard let (field, _) = item(of: key) else { return false }
        if key.hasPrefix("mcp.") {
            if serverFields.contains(field) { return true }
            if field.hasPrefix("env.") || field.hasPrefix("headers.") { return field.split(separator: ".").count >= 2 }
            if field.hasPrefix("tools.") {
                let parts = field.split(separator: ".", omittingEmptySubsequences: false)
                return parts.count >= 3 && (parts.last == "risk" || parts.last == "category") && !parts[1].isEmpty
            }
            return false
        }
        return httpFields.contains(field) || (field.hasPrefix("headers.") && field.count > "headers.".count)
    }

    /// Whether `key` holds a secret: environment values, headers and bearer tokens.
    public static func isSecret(_ key: String) -> Bool {
        guard let (field, _) = item(of: key) else { return false }
        return field == "bearer_token" || field.hasPrefix("env.") || field.hasPrefix("headers.")
    }

    /// The field of a list item's key, and the item's prefix.
    static func item(of key: String) -> (field: String, prefix: String)? {
        for list in ["mcp.servers.", "http_tools."] where key.hasPrefix(list) {
            let rest = key.dropFirst(list.count)
            guard let dot = rest.firstIndex(of: "."), UInt(rest[..<dot]) != nil else { return nil }
            let field = String(rest[rest.index(after: dot)...])
            return field.isEmpty ? nil : (field, list + rest[..<dot])
        }
        return nil
    }

    /// The dotted key for a `SWITCHBOARD_MCP_SERVERS_<N>_<FIELD>` or `SWITCHBOARD_HTTP_TOOLS_<N>_<FIELD>`
    /// variable (plain fields only; `_FILE` reads a secret field from a file).
    public static func key(forEnvironment name: String) -> String? {
        for (envPrefix, prefix, fields) in [("SWITCHBOARD_MCP_SERVERS_", "mcp.servers", serverFields), ("SWITCHBOARD_HTTP_TOOLS_", "http_tools", httpFields)] {
            guard name.hasPrefix(envPrefix) else { continue }
            let body = name.dropFirst(envPrefix.count)
            guard let underscore = body.firstIndex(of: "_"), let index = UInt(body[..<underscore]) else { return nil }
            var field = body[body.index(after: underscore)...].lowercased()
            var suffix = ""
            if field == "bearer_token_file" {
                field = "bearer_token"
                suffix = "_file"
            }
            guard fields.contains(field), !field.contains(".") else { return nil }
            return "\(prefix).\(index).\(field)\(suffix)"
        }
        return nil
    }

    static var namePattern: Regex<Substring> { /^[A-Za-z0-9_-]{1,40}$/ }
    static var toolNamePattern: Regex<(Substring, Substring?)> { /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/ }

    /// Reads the keys, recording problems in `config`.
    ///
    /// - Parameter builtin: the built-in tools' names, which an HTTP tool may not take.
    public init(config: inout ConfigValues, builtin: Set<String>) {
        var names = Set<String>()
        for index in config.children(of: "mcp.servers").compactMap(Int.init).sorted() {
            if let server = Self.server(at: "mcp.servers.\(index)", config: &config) {
                if !names.insert(server.name).inserted {
                    config.report("mcp.servers.\(index).name", "another MCP server is called \"\(server.name)\"")
                } else {
                    servers.append(server)
                }
            }
        }
        var toolNames = Set<String>()
        for index in config.children(of: "http_tools").compactMap(Int.init).sorted() {
            let prefix = "http_tools.\(index)"
            guard let tool = Self.httpTool(at: prefix, config: &config) else { continue }
            if builtin.contains(tool.name) || tool.name.hasPrefix("mcp.") {
                config.report("\(prefix).name", "\"\(tool.name)\" is taken by a built-in tool or the mcp. names; choose another")
            } else if !toolNames.insert(tool.name).inserted {
                config.report("\(prefix).name", "another HTTP tool is called \"\(tool.name)\"")
            } else {
                httpTools.append(tool)
            }
        }
    }

    private static func risk(_ key: String, config: inout ConfigValues) -> Risk? {
        guard config.has(key) else { return nil }
        switch config.choice(key, default: "high", from: ["low", "medium", "high"]) {
        case "low": return .low
        case "medium": return .medium
        default: return .high
        }
    }

    private static func server(at prefix: String, config: inout ConfigValues) -> MCPServerConfiguration? {
        let name = config.string("\(prefix).name")?.trimmingWhitespace() ?? ""
        guard name.wholeMatch(of: namePattern) != nil else {
            config.report("\(prefix).name", name.isEmpty
                ? "every MCP server needs a name (letters, digits, _ and -)"
                : "\"\(name)\" may use only letters, digits, _ and - (at most 40)")
            return nil
        }
        let command = config.string("\(prefix).command")?.trimmingWhitespace()
        let url = config.string("\(prefix).url")?.trimmingWhitespace()
        let kind = config.choice("\(prefix).transport", default: command != nil ? "stdio" : "http", from: ["stdio", "http"])
        let transport: MCPTransportConfiguration
        if kind == "stdio" {
            guard let command, !command.isEmpty else {
                config.report("\(prefix).command", "a stdio server needs the command that starts it")
                return nil
            }
            var environment: [String: Secret] = [:]
            for (rest, key) in config.entries(under: "\(prefix).env") {
                if let value = config.secret(key) { environment[rest] = value }
            }
            transport = .stdio(
                command: command, arguments: config.list("\(prefix).args", default: []), environment: environment,
                directory: config.string("\(prefix).cwd")
            )
        } else {
            guard let url, let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https", parsed.host != nil else {
                config.report("\(prefix).url", url == nil ? "an http server needs its URL" : "expected an http or https URL, got \"\(url!)\"")
                return nil
            }
            var headers: [String: Secret] = [:]
            for (rest, key) in config.entries(under: "\(prefix).headers") {
                if let value = config.secret(key) { headers[rest] = value }
            }
            if let token = config.secret("\(prefix).bearer_token") { headers["Authorization"] = Secret("Bearer " + token.revealed) }
            transport = .http(url: parsed, headers: headers)
        }
        var overrides: [String: ToolOverride] = [:]
        for (rest, key) in config.entries(under: "\(prefix).tools") {
            guard let dot = rest.lastIndex(of: ".") else { continue }
            let tool = String(rest[..<dot])
            var override = overrides[tool] ?? ToolOverride()
            if rest[rest.index(after: dot)...] == "risk" {
                override.risk = risk(key, config: &config)
            } else {
                override.category = config.string(key)?.trimmingWhitespace()
            }
            overrides[tool] = override
        }
        let allow = config.has("\(prefix).allow") ? Set(config.list("\(prefix).allow", default: [])) : nil
        return MCPServerConfiguration(
            name: name, transport: transport, trusted: config.bool("\(prefix).trusted", default: false), allow: allow,
            deny: Set(config.list("\(prefix).deny", default: [])),
            timeout: TimeInterval(config.int("\(prefix).timeout_seconds", default: 30, range: 1...3600)),
            connectTimeout: TimeInterval(config.int("\(prefix).connect_timeout_seconds", default: 10, range: 1...600)),
            maxResultBytes: config.int("\(prefix).max_result_bytes", default: 1_000_000, range: 1024...64 << 20),
            overrides: overrides, description: config.string("\(prefix).description")?.trimmingWhitespace() ?? ""
        )
    }

    private static func template(_ prefix: String, config: inout ConfigValues, required: Bool) -> HTTPRequestTemplate? {
        let url = config.string("\(prefix).url")?.trimmingWhitespace()
        let methodKey = "\(prefix).method"
        guard let url else {
            if required { config.report("\(prefix).url", "needs the URL to call") }
            return nil
        }
        let method = config.choice(methodKey, default: "get", from: ["get", "post", "put", "patch", "delete"]).uppercased()
        if let problem = HTTPTemplate.checkURL(url) { config.report("\(prefix).url", problem) }
        let body = config.string("\(prefix).body")
        if let body, let problem = HTTPTemplate.checkBody(body) { config.report("\(prefix).body", problem) }
        return HTTPRequestTemplate(method: method, url: url, body: body)
    }

    private static func httpTool(at prefix: String, config: inout ConfigValues) -> HTTPToolConfiguration? {
        let name = config.string("\(prefix).name")?.trimmingWhitespace() ?? ""
        guard name.wholeMatch(of: toolNamePattern) != nil, name.count <= 64 else {
            config.report("\(prefix).name", name.isEmpty
                ? "every HTTP tool needs a name such as crm.lookup"
                : "\"\(name)\" must be lower-case words joined by dots, such as crm.lookup")
            return nil
        }
        let description = config.string("\(prefix).description")?.trimmingWhitespace() ?? ""
        if description.isEmpty { config.report("\(prefix).description", "say in one sentence what the tool does") }
        var parameters: JSONValue = .object(["type": "object", "properties": .object([:])])
        if let text = config.string("\(prefix).parameters") {
            if let parsed = try? JSONValue.parse(text), parsed.objectValue != nil {
                parameters = parsed
                let unknown = SchemaValidator.unsupportedKeywords(in: parsed)
                if !unknown.isEmpty {
                    config.report("\(prefix).parameters", "uses JSON Schema keywords the argument check cannot enforce: \(unknown.sorted().joined(separator: ", "))")
                }
            } else {
                config.report("\(prefix).parameters", "expected a JSON Schema object as JSON text")
            }
        }
        guard let request = template(prefix, config: &config, required: true) else { return nil }
        let readOnly = config.bool("\(prefix).read_only", default: request.method == "GET")
        let undo = template("\(prefix).undo", config: &config, required: false)
        if undo != nil && readOnly { config.report("\(prefix).undo.url", "a read-only tool has nothing to undo") }
        var headers: [String: Secret] = [:]
        for (rest, key) in config.entries(under: "\(prefix).headers") {
            if let value = config.secret(key) { headers[rest] = value }
        }
        if let token = config.secret("\(prefix).bearer_token") { headers["Authorization"] = Secret("Bearer " + token.revealed) }
        let category = config.string("\(prefix).category")?.trimmingWhitespace()
            ?? String(name.split(separator: ".").first ?? "http")
        return HTTPToolConfiguration(
            name: name, description: description, parameters: parameters, request: request, headers: headers,
            risk: risk("\(prefix).risk", config: &config) ?? (readOnly ? .low : .high), category: category, readOnly: readOnly,
            undo: undo, secretArguments: Set(config.list("\(prefix).secret_arguments", default: [])),
            timeout: TimeInterval(config.int("\(prefix).timeout_seconds", default: 30, range: 1...3600)),
            maxResponseBytes: config.int("\(prefix).max_response_bytes", default: 1_000_000, range: 1024...64 << 20)
        )
    }
}
