// Loading configuration: defaults < file < environment < command line, validated at once.
//
// The file is YAML; nested maps become dotted keys (`rate_limits: {notes: {per_minute: 5}}` is
// `rate_limits.notes.per_minute`). Every key can also come from `SWITCHBOARD_<KEY>`, upper case
// with dots as underscores. A secret can be read from a file: `database.url_file` (or
// `SWITCHBOARD_DATABASE_URL_FILE`) sets `database.url`. Unknown keys here and bad values found
// by the modules end up in one list (`ConfigValues.problems`), each with its environment
// variable, and the program does not start.

import Foundation
import SwitchboardLLM
import SwitchboardRemoteTools
public import SwitchboardModel
import Yams

/// The configuration could not be loaded.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// Every problem found.
    public var problems: [ConfigProblem]
    /// A file-level problem (unreadable file, bad YAML), if any.
    public var fileProblem: String?

    public var description: String {
        var lines = ["Configuration has \(problems.count + (fileProblem == nil ? 0 : 1)) problem(s):"]
        if let fileProblem { lines.append("  - \(fileProblem)") }
        lines += problems.map { "  - \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// Known keys and how to read them.
public enum ConfigSchema {
    /// Keys with a fixed name.
    public static let staticKeys: Set<String> = [
        "data_dir",
        "database.url", "database.synchronous", "database.busy_timeout_ms", "database.pool_size", "database.connect_timeout_seconds",
        "database.lease_seconds",
        "log.level", "log.format",
        "engine.batch_size", "engine.poll_interval_ms", "engine.max_message_bytes",
        "confirmations.expiry_seconds", "confirmations.yes_words", "confirmations.no_words",
        "confirmations.operator_may_approve", "confirmations.operator_may_decline",
        "people.owners", "people.users", "people.guests", "people.default_role",
        "outbox.alert_after_attempts", "outbox.retry_base_ms", "outbox.retry_cap_seconds",
        "terminal.conversation", "retention.channel_state_days", "retention.confirmations_days", "retention.interval_minutes",
        "matrix.homeserver", "matrix.user_id", "matrix.password", "matrix.access_token", "matrix.allowed_users",
        "matrix.device_name", "matrix.command_prefix", "matrix.sync_timeout_ms",
        "matrix.encryption", "matrix.crypto_key", "matrix.undecryptable_wait_s", "matrix.unverified_device_confirmations",
        "email.imap_url", "email.imap_starttls", "email.smtp_url", "email.smtp_starttls", "email.username", "email.password", "email.address",
        "email.display_name", "email.allowed_senders", "email.poll_interval", "email.idle", "email.mailbox",
        "email.processed_mailbox", "email.quarantine_mailbox", "email.trusted_authserv_id", "email.max_per_sender_per_hour",
        "email.max_message_bytes", "email.smtp_circuit_failures", "email.smtp_circuit_cooldown_seconds",
        "http.enabled", "http.host", "http.port", "http.max_body_bytes", "http.request_timeout_seconds",
        "http.idle_timeout_seconds", "http.max_wait_seconds", "http.public_health", "http.public_metrics",
        "http.callback_secret", "http.callback_allow_private",
        "shutdown.grace_period_seconds", "secrets.key", "dav.enabled",
        "tracing.otlp_endpoint", "tracing.protocol", "tracing.service_name", "tracing.sample_ratio",
        "escalation.matrix_room", "escalation.email",
        "learning.enabled", "learning.min_evidence", "learning.confidence", "learning.burst_window_seconds", "learning.announce_uses",
        "learning.interval_seconds", "learning.standing_approvals.offer_after", "learning.standing_approvals.window_days",
        "learning.standing_approvals.lifetime_days", "learning.standing_approvals.never",
    ]

    /// Keys whose value is a secret. Each can also be read from a file: `KEY_file`, or
    /// `SWITCHBOARD_KEY_FILE` in the environment.
    public static let secretKeys: Set<String> = [
        "database.url", "matrix.password", "matrix.access_token", "matrix.crypto_key", "email.password", "http.callback_secret",
        "secrets.key",
    ]

    /// Whether a key's value is a secret: one of `secretKeys`, or a model's `api_key`.
    public static func isSecret(_ key: String) -> Bool {
        secretKeys.contains(key) || (LLMConfiguration.isModelKey(key) && key.hasSuffix(".api_key")) || RemoteToolsConfiguration.isSecret(key)
    }

    /// Prefixes whose next component is a tool name or category.
    static let dynamicPrefixes = ["permissions", "risk"]

    /// Whether a dotted key is known.
    public static func isKnown(_ key: String) -> Bool {
        if staticKeys.contains(key) || LLMConfiguration.keys.contains(key) || LLMConfiguration.isModelKey(key) { return true }
        if RemoteToolsConfiguration.isKnown(key) { return true }
        for prefix in dynamicPrefixes where key.hasPrefix(prefix + ".") && key.count > prefix.count + 1 { return true }
        if key.hasPrefix("rate_limits.") {
            let parts = key.split(separator: ".")
            // Categories may be dotted (`rate_limits.mcp.wiki.per_minute`).
            return parts.count >= 3 && (parts.last == "per_minute" || parts.last == "burst")
        }
        return false
    }

    /// The dotted key for a `SWITCHBOARD_…` environment variable, if it names one.
    public static func key(forEnvironment name: String) -> String? {
        guard name.hasPrefix("SWITCHBOARD_") else { return nil }
        let rest = String(name.dropFirst("SWITCHBOARD_".count))
        for key in staticKeys.union(LLMConfiguration.keys) where ConfigValues.environmentName(for: key) == name { return key }
        // A model's field: SWITCHBOARD_LLM_MODELS_<N>_<FIELD>, and _API_KEY_FILE for its key.
        if rest.hasPrefix("LLM_MODELS_") {
            let body = rest.dropFirst("LLM_MODELS_".count)
            if let underscore = body.firstIndex(of: "_"), let index = UInt(body[..<underscore]) {
                var field = body[body.index(after: underscore)...].lowercased()
                var suffix = ""
                if field == "api_key_file" {
                    field = "api_key"
                    suffix = "_file"
                }
                let key = "llm.models.\(index).\(field)"
                if LLMConfiguration.isModelKey(key) { return key + suffix }
            }
        }
        if let key = RemoteToolsConfiguration.key(forEnvironment: name) { return key }
        for key in secretKeys where ConfigValues.environmentName(for: key) + "_FILE" == name {
            return key + "_file"
        }
        for prefix in dynamicPrefixes {
            let envPrefix = prefix.uppercased() + "_"
            if rest.hasPrefix(envPrefix), rest.count > envPrefix.count {
                return prefix + "." + rest.dropFirst(envPrefix.count).lowercased()
            }
        }
        if rest.hasPrefix("RATE_LIMITS_") {
            let body = rest.dropFirst("RATE_LIMITS_".count)
            for suffix in ["_PER_MINUTE", "_BURST"] where body.hasSuffix(suffix) && body.count > suffix.count {
                let category = body.dropLast(suffix.count).lowercased()
                return "rate_limits.\(category).\(suffix.dropFirst().lowercased())"
            }
        }
        return nil
    }
}

/// Reads configuration from its sources.
public struct ConfigurationLoader {
    /// The YAML file, if any.
    public var file: String?
    /// The environment.
    public var environment: [String: String]
    /// Command-line overrides as dotted keys.
    public var overrides: [String: String]

    /// Creates a loader.
    public init(file: String?, environment: [String: String], overrides: [String: String] = [:]) {
        self.file = file
        self.environment = environment
        self.overrides = overrides
    }

    /// Merges the sources. Unknown keys and unreadable secret files are recorded in the
    /// result's `problems`; a file that cannot be read or parsed is returned as `fileProblem`.
    public func load() -> (values: ConfigValues, fileProblem: String?) {
        var values = ConfigValues()
        var fileProblem: String?

        func add(_ key: String, _ value: ConfigValue, _ source: ConfigSource) {
            var key = key
            var value = value
            var source = source
            if key.hasSuffix("_file"), ConfigSchema.isSecret(String(key.dropLast("_file".count))) {
                let target = String(key.dropLast("_file".count))
                guard case .scalar(let path) = value else {
                    values.report(key, "expected a file path", source: source)
                    return
                }
                do {
                    let contents = try String(contentsOfFile: path, encoding: .utf8)
                    key = target
                    value = .scalar(contents.trimmingWhitespace())
                    source = .secretFile(path)
                } catch {
                    values.report(key, "cannot read secret file \(path)", source: source)
                    return
                }
            }
            // `llm.models: []` says "no models", which is the default.
            if key == "llm.models", case .list(let items) = value, items.isEmpty { return }
            guard ConfigSchema.isKnown(key) else {
                values.report(key, "unknown key", source: source)
                return
            }
            values.set(key, value, source: source, secret: ConfigSchema.isSecret(key))
        }

        if let file {
            do {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                let node = try Yams.compose(yaml: text)
                if let node {
                    guard case .mapping = node else { throw YamlShapeError(message: "the top level must be a mapping of keys") }
                    try Self.flatten(node, prefix: "", into: { add($0, $1, .file(file)) })
                }
            } catch let error as YamlShapeError {
                fileProblem = "\(file): \(error.message)"
            } catch let error as YamlError {
                fileProblem = "\(file) is not valid YAML: \(error)"
            } catch {
                fileProblem = "cannot read configuration file \(file): \((error as NSError).localizedDescription)"
            }
        }
        for (name, text) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("SWITCHBOARD_") {
            if name.hasPrefix("SWITCHBOARD_TEST_") || name == "SWITCHBOARD_CONFIG" { continue }
            guard let key = ConfigSchema.key(forEnvironment: name) else {
                values.report(name, "unknown environment variable", source: .environment(name))
                continue
            }
            add(key, .scalar(text), .environment(name))
        }
        for (key, text) in overrides.sorted(by: { $0.key < $1.key }) {
            add(key, .scalar(text), .commandLine)
        }
        return (values, fileProblem)
    }

    struct YamlShapeError: Error {
        var message: String
    }

    private static func flatten(_ node: Node, prefix: String, into add: (String, ConfigValue) -> Void) throws {
        switch node {
        case .mapping(let mapping):
            for (keyNode, valueNode) in mapping {
                guard let name = keyNode.string else { throw YamlShapeError(message: "keys must be text (at \(prefix))") }
                let key = prefix.isEmpty ? name : prefix + "." + name
                try flatten(valueNode, prefix: key, into: add)
            }
        case .sequence(let sequence) where sequence.contains(where: { if case .mapping = $0 { true } else { false } }):
            // A list of mappings (`llm.models`): each item's keys under its index,
            // `llm.models.0.name`, as the environment spells them too.
            for (index, item) in sequence.enumerated() {
                guard case .mapping = item else { throw YamlShapeError(message: "\(prefix) must be a list of mappings") }
                try flatten(item, prefix: "\(prefix).\(index)", into: add)
            }
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard case .scalar(let scalar) = item else {
                    throw YamlShapeError(message: "\(prefix) must be a list of plain values")
                }
                items.append(scalar.string)
            }
            add(prefix, .list(items))
        case .scalar(let scalar):
            // An empty value (`key:` or `key: ~`) means "use the default".
            if node.null != nil { return }
            add(prefix, .scalar(scalar.string))
        case .alias:
            throw YamlShapeError(message: "aliases are not supported (at \(prefix))")
        }
    }
}
