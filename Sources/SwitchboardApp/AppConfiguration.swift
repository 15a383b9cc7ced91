public import Foundation
public import Logging
public import SwitchboardChannels
public import SwitchboardEmail
public import SwitchboardEngine
public import SwitchboardHTTP
public import SwitchboardLLM
public import SwitchboardMatrix
public import SwitchboardModel
public import SwitchboardPostgres
public import SwitchboardRemoteTools
public import SwitchboardSQLite
import SwitchboardStorage
import SwitchboardTools

/// Everything the gateway needs to start, read and validated.
///
/// Keys read here (the engine reads its own; see `EngineConfiguration`):
/// - `data_dir`: where the embedded database lives (default `$XDG_DATA_HOME/switchboard`,
///   else `~/.local/share/switchboard`).
/// - `database.url` (secret; or `database.url_file`): a path or `sqlite://PATH` for SQLite
///   (overrides `data_dir`), or `postgres://user:password@host:port/database?sslmode=…` for
///   PostgreSQL, which several instances can share.
/// - `database.synchronous`: `normal` (default) or `full` (SQLite).
/// - `database.busy_timeout_ms` (0–600000, default 5000; SQLite).
/// - `database.pool_size` (1–200, default 10; PostgreSQL): connections per instance.
/// - `database.connect_timeout_seconds` (1–300, default 10; PostgreSQL).
/// - `database.lease_seconds` (3–600, default 15; PostgreSQL): how long an instance's hold on a
///   conversation, a delivery or a channel's poller lasts unless renewed, which is also how long
///   the others wait before taking over the work of an instance that died.
/// - `log.level`: trace, debug, info, notice, warning, error, critical.
/// - `log.format`: `text` (default, for terminals) or `json` (one object per line, for log collectors).
/// - `outbox.retry_base_ms` (10–600000, default 500), `outbox.retry_cap_seconds` (1–86400,
///   default 300): delivery backoff; transient failures are retried for as long as it takes.
/// - `outbox.alert_after_attempts` (1–10000, default 10): from then on each failure logs an error.
/// - `retention.channel_state_days` (1–3650, default 90): per-request and per-thread channel state
///   (an API request's callback URL, an email thread's state) not written for this long is
///   pruned; a reply to a thread that old starts a new one.
/// - `retention.confirmations_days` (1–3650, default 90): decided and expired confirmations are
///   pruned this long after their decision (the audit trail keeps their record).
/// - `secrets.key` (secret, or `secrets.key_file`; at least 32 characters): seals the secrets
///   kept in the database (a Matrix access token, a waiting call's secret arguments). Unset, a
///   random key is made in `secrets.key` beside the SQLite database (mode 0600) and a warning
///   logged at start; with PostgreSQL it is required, as every instance must open what the
///   others sealed.
/// - `retention.interval_minutes` (1–1440, default 60): how often `serve` prunes.
/// - `terminal.conversation` (default `local`): the terminal conversation's name.
/// - `matrix.*`: the Matrix channel; see `MatrixConfiguration`.
/// - `email.*`: the email channel; see `EmailConfiguration`.
/// - `http.*`: the HTTP API; see `HTTPConfiguration`.
/// - `tracing.*`: OTLP traces; see `TracingConfiguration`.
/// - `llm.*`: language models; see `LLMConfiguration`. Without `llm.models` the intent engine plans alone.
/// - `shutdown.grace_period_seconds` (1–3600, default 10): how long SIGTERM waits for work in
///   flight before cancelling what is left.
public struct AppConfiguration: Sendable {
    /// The data directory.
    public var dataDirectory: String
    /// The SQLite file (also where the data directory's lock lives with PostgreSQL).
    public var databasePath: String
    /// SQLite options.
    public var sqlite: SQLiteStore.Options
    /// The PostgreSQL database, when `database.url` names one.
    public var postgres: PostgresURL?
    /// PostgreSQL options.
    public var postgresOptions = PostgresStore.Options()
    /// How long leases last with PostgreSQL.
    public var leaseSeconds: TimeInterval = 15
    /// Language models.
    public var llm = LLMConfiguration()
    /// Tools from other systems: MCP servers and declared HTTP tools.
    public var remoteTools = RemoteToolsConfiguration()
    /// Log level, if configured.
    public var logLevel: Logger.Level?
    /// How log lines look.
    public var logFormat: LogFormat

    /// How log lines look.
    public enum LogFormat: String, Sendable {
        /// Readable, for terminals.
        case text
        /// One JSON object per line, for log collectors.
        case json
    }
    /// The engine's settings.
    public var engine: EngineConfiguration
    /// Outbox retries.
    public var retry: RetryPolicy
    /// The terminal conversation.
    public var terminalConversation: String
    /// The Matrix channel, when `matrix.homeserver` is set.
    public var matrix: MatrixConfiguration?
    /// The email channel, when `email.imap_url` is set.
    public var email: EmailConfiguration?
    /// The HTTP API.
    public var http: HTTPConfiguration
    /// How long a graceful shutdown may take.
    public var gracePeriod: Duration = .seconds(10)
    /// What is pruned, and when.
    public var retention = Retention()
    /// Whether the calendar tools work on each person's own CalDAV server, where they linked
    /// one (`switchboard dav connect`).
    public var davEnabled = false
    /// Where traces go.
    public var tracing = TracingConfiguration()
    /// The key that seals secrets kept in the database, when configured.
    public var secretsKey: Secret?

    /// Where the secrets key is kept when none is configured (SQLite only).
    public var secretsKeyPath: String {
        let directory = (databasePath as NSString).deletingLastPathComponent
        return (directory.isEmpty ? "." : directory) + "/secrets.key"
    }

    /// Whether `serve` runs the HTTP API: when asked to, or beside a network channel.
    public var runsHTTP: Bool { http.enabled ?? (matrix != nil || email != nil) }

    /// A leading `~/` means the home directory, as in a shell.
    static func expandingHome(_ path: String, home: String) -> String {
        path == "~" ? home : path.hasPrefix("~/") ? home + path.dropFirst(1) : path
    }

    /// The tool names and categories configuration may refer to: the built-in ones, the HTTP
    /// tools', and each MCP server's `mcp.<server>` (its tools are known only once it runs).
    static func toolNames(remote: RemoteToolsConfiguration = RemoteToolsConfiguration()) -> Set<String> {
        let descriptors = BuiltinTools.all.map(\.descriptor)
        var names = Set(descriptors.map(\.name)).union(descriptors.map(\.category)).union(["default"])
        for tool in remote.httpTools { names.formUnion([tool.name, tool.category]) }
        for server in remote.servers {
            names.insert("mcp.\(server.name)")
            names.formUnion(server.overrides.values.compactMap(\.category))
        }
        return names
    }

    /// Reads the configuration.
    ///
    /// - Throws: `ConfigurationError` listing every problem.
    public init(
        file: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        overrides: [String: String] = [:]
    ) throws {
        let loaded = ConfigurationLoader(file: file, environment: environment, overrides: overrides).load()
        var config = loaded.values
        let home = environment["HOME"] ?? NSHomeDirectory()
        let defaultDataDir = environment["XDG_DATA_HOME"].map { $0 + "/switchboard" } ?? home + "/.local/share/switchboard"
        dataDirectory = Self.expandingHome(config.string("data_dir", default: defaultDataDir), home: home)
        if let url = config.secret("database.url")?.revealed.trimmingWhitespace(), !url.isEmpty {
            if PostgresURL.isPostgres(url) {
                do {
                    postgres = try PostgresURL(url)
                } catch {
                    config.report("database.url", "\(error)")
                }
                databasePath = dataDirectory + "/switchboard.sqlite"
            } else if url.hasPrefix("sqlite://") {
                databasePath = Self.expandingHome(String(url.dropFirst("sqlite://".count)), home: home)
            } else if url.hasPrefix("sqlite:") {
                databasePath = Self.expandingHome(String(url.dropFirst("sqlite:".count)), home: home)
            } else if url.contains("://") {
                config.report("database.url", "unsupported scheme; use a file path, sqlite://PATH or postgres://user:password@host:port/database")
                databasePath = dataDirectory + "/switchboard.sqlite"
            } else {
                databasePath = Self.expandingHome(url, home: home)
            }
        } else {
            databasePath = dataDirectory + "/switchboard.sqlite"
        }
        let synchronous = config.choice("database.synchronous", default: "normal", from: ["normal", "full"])
        let busy = config.int("database.busy_timeout_ms", default: 5000, range: 0...600_000)
        sqlite = SQLiteStore.Options(synchronous: SQLiteStore.Synchronous(rawValue: synchronous) ?? .normal, busyTimeout: .milliseconds(busy))
        postgresOptions = PostgresStore.Options(
            poolSize: config.int("database.pool_size", default: 10, range: 1...200),
            connectTimeout: .seconds(config.int("database.connect_timeout_seconds", default: 10, range: 1...300))
        )
        leaseSeconds = TimeInterval(config.int("database.lease_seconds", default: 15, range: 3...600))
        if config.has("log.level") {
            let word = config.choice("log.level", default: "info", from: ["trace", "debug", "info", "notice", "warning", "error", "critical"])
            logLevel = Logger.Level(rawValue: word)
        } else {
            logLevel = nil
        }
        logFormat = LogFormat(rawValue: config.choice("log.format", default: "text", from: ["text", "json"])) ?? .text
        remoteTools = RemoteToolsConfiguration(config: &config, builtin: Set(BuiltinTools.all.map(\.descriptor.name)))
        engine = EngineConfiguration(config: &config, toolNames: Self.toolNames(remote: remoteTools))
        retry = RetryPolicy(
            base: Double(config.int("outbox.retry_base_ms", default: 500, range: 10...600_000)) / 1000,
            cap: Double(config.int("outbox.retry_cap_seconds", default: 300, range: 1...86400)),
            alertAfter: config.int("outbox.alert_after_attempts", default: 10, range: 1...10000)
        )
        terminalConversation = config.string("terminal.conversation", default: "local")
        matrix = MatrixConfiguration.read(&config)
        email = EmailConfiguration.read(&config)
        http = HTTPConfiguration(config: &config)
        http.maxTextBytes = engine.maxMessageBytes
        gracePeriod = .seconds(config.int("shutdown.grace_period_seconds", default: 10, range: 1...3600))
        retention = Retention(
            channelState: Double(config.int("retention.channel_state_days", default: 90, range: 1...3650)) * 86400,
            confirmations: Double(config.int("retention.confirmations_days", default: 90, range: 1...3650)) * 86400,
            interval: .seconds(config.int("retention.interval_minutes", default: 60, range: 1...1440) * 60)
        )
        tracing = TracingConfiguration(config: &config)
        davEnabled = config.bool("dav.enabled", default: false)
        if let key = config.secret("secrets.key") {
            if key.revealed.trimmingWhitespace().count < SecretSealer.minimumSecretLength {
                config.report("secrets.key", "must be at least \(SecretSealer.minimumSecretLength) characters (make one with: openssl rand -base64 32)")
            }
            secretsKey = Secret(key.revealed.trimmingWhitespace())
        }
        llm = LLMConfiguration(config: &config)
        if !config.problems.isEmpty || loaded.fileProblem != nil {
            throw ConfigurationError(problems: config.problems, fileProblem: loaded.fileProblem)
        }
    }
}
