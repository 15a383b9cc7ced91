public import Foundation
public import Logging
import ServiceLifecycle
import UnixSignals
import SwitchboardChannels
import SwitchboardEmail
import SwitchboardEngine
import SwitchboardLLM
public import SwitchboardHTTP
import SwitchboardMatrix
public import SwitchboardModel
import SwitchboardPostgres
import SwitchboardRemoteTools
import SwitchboardSQLite
public import SwitchboardStorage
import SwitchboardTools
import SwitchboardTerminal
#if canImport(Glibc)
import Glibc
#endif

/// The composition root: opens the store and wires engine, tools, channels and dispatcher.
public struct Gateway: Sendable {
    /// The configuration.
    public let configuration: AppConfiguration
    /// The store.
    public let store: any Store
    /// How this instance shares work with others on the database (PostgreSQL only).
    public let sharing: WorkSharing?
    /// The same store, by engine, for what only an engine can do (its schema, closing it).
    let engine: StorageEngine
    private let lock: DataDirectoryLock?
    let logger: Logger
    private let crashPoints: CrashPoints?
    /// The MCP servers' and HTTP tools' tools, when any are configured; connected while the
    /// pipeline runs.
    let remoteTools: RemoteToolCatalog?
    /// Whether this process runs the pipeline (and holds the lock, with SQLite).
    private let exclusive: Bool

    /// Opens the data directory and the database, migrating it.
    ///
    /// - Parameter exclusive: take the data directory's lock (for commands that run the
    ///   pipeline); read-only commands do not. With PostgreSQL there is no lock: several
    ///   instances share the database and coordinate through it.
    /// - Throws: `StoreError`, `GatewayError`.
    public init(
        configuration: AppConfiguration,
        exclusive: Bool,
        logger: Logger,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws {
        self.configuration = configuration
        self.logger = logger
        crashPoints = CrashPoints(environment: environment)
        remoteTools = configuration.remoteTools.isEmpty ? nil : RemoteToolCatalog(configuration.remoteTools, logger: logger)
        if let url = configuration.postgres {
            self.exclusive = exclusive
            let postgres = try await PostgresStore(url: url, options: configuration.postgresOptions, logger: logger)
            store = postgres
            engine = .postgres(postgres)
            lock = nil
            sharing = WorkSharing(instance: WorkSharing.instanceName(), lease: configuration.leaseSeconds)
            return
        }
        let directory = (configuration.databasePath as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory.isEmpty ? "." : directory, withIntermediateDirectories: true)
        } catch {
            throw GatewayError("Cannot create the data directory \(directory): \((error as NSError).localizedDescription)")
        }
        lock = exclusive ? try DataDirectoryLock(path: configuration.databasePath + ".lock") : nil
        self.exclusive = exclusive
        let sqlite = try SQLiteStore(path: configuration.databasePath, options: configuration.sqlite)
        store = sqlite
        engine = .sqlite(sqlite)
        sharing = nil
    }

    /// The secrets key: the configured one; else, with SQLite, the one in the key file beside
    /// the database (made by the first command that runs the pipeline). A command that runs
    /// nothing and finds no key gets one of its own, as it seals nothing that outlives it.
    ///
    /// Asked for by what seals or opens (the pipeline, the Matrix commands), not by commands
    /// that copy sealed values as they are (`export`, `import`).
    func sealer() throws -> SecretSealer {
        try Self.sealer(configuration, exclusive: exclusive)
    }

    static func sealer(_ configuration: AppConfiguration, exclusive: Bool) throws -> SecretSealer {
        if let key = configuration.secretsKey { return SecretSealer(secret: key) }
        let path = configuration.secretsKeyPath
        if configuration.postgres != nil {
            guard !exclusive else {
                throw GatewayError(
                    "secrets.key is required with PostgreSQL: every instance must open the secrets the others sealed in the database. Make one with `openssl rand -base64 32`, give every instance the same (secrets.key_file, or SWITCHBOARD_SECRETS_KEY_FILE)."
                )
            }
            return .ephemeral()
        }
        guard exclusive || FileManager.default.fileExists(atPath: path) else { return .ephemeral() }
        do {
            return try SecretSealer.keyFile(path)
        } catch let error as SealingError {
            throw GatewayError(error.description)
        }
    }

    /// Closes the database: its connections, with PostgreSQL.
    public func close() async {
        if case .postgres(let postgres) = engine { await postgres.close() }
    }

    /// The pipeline for a set of channels.
    func pipeline(sealer: SecretSealer, channels: (InboxWriter) -> [any ChannelAdapter]) -> Pipeline {
        var crash: (@Sendable (String) -> Void)?
        if let points = crashPoints {
            crash = { name in points.reach(name) }
        }
        return Pipeline(
            store: store, engine: configuration.engine, llm: configuration.llm, retry: configuration.retry, sealer: sealer,
            logger: logger, crashPoint: crash, sharing: sharing, remoteTools: remoteTools,
            dav: configuration.davEnabled ? DAVAccounts(store: store, sealer: sealer) : nil, channels: channels
        )
    }

    /// Runs a terminal conversation until its input ends and everything is answered.
    public func chat(person: PersonID, conversation: String?, interactive: Bool) async throws {
        let store = self.store
        let conversation = conversation ?? configuration.terminalConversation
        let logger = self.logger
        let parts = pipeline(sealer: try sealer(), channels: { inbox in
            [TerminalAdapter(
                person: person, conversation: conversation, inbox: inbox, store: store, clock: SystemWallClock(),
                inputFD: 0, interactive: interactive, write: Self.writeStdout, logger: logger
            )]
        })
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: parts.engine),
            .init(service: parts.dispatcher),
            .init(service: parts.reminders),
            .init(service: parts.learner),
        ]
        if let remoteTools { services.insert(.init(service: remoteTools), at: 0) }
        // The terminal ends the group when its input is done.
        services += parts.adapters.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) }
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Past this, whatever still runs is cancelled: a stuck far end never blocks an exit.
        configuration.maximumGracefulShutdownDuration = self.configuration.gracePeriod
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }

    /// Runs a terminal conversation for a person named on the command line.
    public func chat(personNamed name: String, conversation: String?, interactive: Bool) async throws {
        try await chat(person: PersonID(name), conversation: conversation, interactive: interactive)
    }

    /// Runs the configured channels and the HTTP API; with none configured, a terminal conversation.
    public func serve() async throws {
        guard configuration.matrix != nil || configuration.email != nil || configuration.runsHTTP else {
            logger.info("no channels configured; talking in the terminal", metadata: ["database": "\(store.locationDescription)"])
            let person = PersonID(ProcessInfo.processInfo.environment["USER"] ?? "operator")
            try await chat(person: person, conversation: nil, interactive: isatty(0) == 1)
            return
        }
        let sealer = try sealer()
        if case .file(let path) = sealer.origin {
            logger.warning(
                "secrets.key is not set: secrets kept in the database are sealed with the key in \(path). Back that file up with the database (nothing sealed opens without it), or set secrets.key."
            )
        }
        let store = self.store
        let logger = self.logger
        let matrix = configuration.matrix
        let email = configuration.email
        let crash = crashPoints.map { points in { @Sendable (name: String) in points.reach(name) } }
        let sharing = self.sharing
        // Before anything creates a metric or a span: everything from here on is counted and traced.
        let registry = HTTPServer.bootstrapMetrics()
        let tracer = try configuration.tracing.bootstrap(logger: logger)
        let api = configuration.runsHTTP ? APIChannel(
            store: store, callbackSecret: configuration.http.callbackSecret, allowPrivateCallbacks: configuration.http.callbackAllowPrivate, logger: logger
        ) : nil
        let parts = pipeline(sealer: sealer, channels: { inbox in
            var adapters: [any ChannelAdapter] = []
            if let api { adapters.append(api) }
            if let matrix { adapters.append(MatrixAdapter(configuration: matrix, store: store, inbox: inbox, sealer: sealer, logger: logger, sharing: sharing)) }
            if let email { adapters.append(EmailAdapter(configuration: email, store: store, inbox: inbox, logger: logger, crashPoint: crash, sharing: sharing)) }
            return adapters
        })
        // Shutdown runs in reverse: HTTP and the channels stop first, then delivery, then the engine.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] =
            [.init(service: parts.engine), .init(service: parts.dispatcher), .init(service: parts.reminders)] + parts.adapters.map { .init(service: $0) }
        // First in, last out: the exporter flushes after everything else has stopped.
        // The tool servers stop after the engine that calls them.
        if let remoteTools { services.insert(.init(service: remoteTools), at: 0) }
        services.append(.init(service: RetentionService(store: store, policy: configuration.retention, logger: logger)))
        services.append(.init(service: parts.learner))
        if let tracer { services.insert(.init(service: tracer), at: 0) }
        let remoteTools = self.remoteTools
        if let api {
            let http = HTTPServer(
                configuration: configuration.http, store: store, inbox: parts.inbox, api: api, channels: parts.adapters,
                operations: OperatorDesk(engine: parts.engine, registry: parts.gate.registry, store: store),
                registry: registry,
                toolServers: {
                    remoteTools?.statuses.map {
                        ToolServerCheck(name: $0.server, state: $0.state.rawValue, tools: $0.toolCount, failures: $0.consecutiveFailures, lastError: $0.lastError)
                    } ?? []
                },
                models: { parts.models?.circuits.map { ($0.model, $0.state.rawValue) } ?? [] },
                logger: logger
            )
            services.append(.init(service: http.service()))
            // Keys made before keys were bound to senders speak for anyone; say which.
            let unbound = try await store.read { try $0.apiKeys() }.filter {
                $0.revokedAt == nil && $0.senders == .any && $0.scopes.contains(APIScope.send.rawValue)
            }
            if !unbound.isEmpty {
                logger.warning("API keys that may speak as any sender (and answer any sender's confirmations); replace them with keys made with --sender or --sender-prefix unless they relay everyone", metadata: [
                    "keys": "\(unbound.map { "\($0.id) (\($0.name))" }.joined(separator: ", "))",
                ])
            }
        }
        logger.info("serving", metadata: [
            "database": "\(store.locationDescription)", "channels": "\(parts.adapters.map(\.channel.rawValue).joined(separator: ","))",
            "http": "\(api == nil ? "off" : "\(configuration.http.host):\(configuration.http.port)")",
            "instance": "\(sharing?.instance ?? "alone")",
        ])
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.gracePeriod
        try await ServiceGroup(configuration: group).run()
    }

    /// Makes an API key; the returned secret is shown once and stored only as a hash.
    public func createAPIKey(name: String, scopes: Set<APIScope>, senders: APISenders = .any) async throws -> (record: APIKeyRecord, key: Secret) {
        let made = APIKeys.make(name: name, scopes: scopes, senders: senders, at: Date())
        try await store.write { try $0.insertAPIKey(made.record) }
        return made
    }

    /// Every API key, revoked ones included.
    public func apiKeys() async throws -> [APIKeyRecord] {
        try await store.read { try $0.apiKeys() }
    }

    /// Revokes an API key by its id (or the whole key). Returns false if there was no such
    /// key or it was revoked already.
    public func revokeAPIKey(_ idOrKey: String) async throws -> Bool {
        let id = APIKeys.id(of: idOrKey)
        return try await store.write { try $0.revokeAPIKey(id: id, at: Date()) }
    }

    /// Signs the stored Matrix session out. Returns false if there was none.
    public func matrixLogout() async throws -> Bool {
        guard let matrix = configuration.matrix else {
            throw GatewayError("matrix.homeserver is not configured, so there is no Matrix session to sign out.")
        }
        return try await MatrixAdapter.logout(configuration: matrix, store: store, sealer: try sealer())
    }

    /// Makes the Matrix account's cross-signing keys (`switchboard matrix setup-crypto`).
    ///
    /// - Returns: the recovery key and the master public key; nil when the account has
    ///   cross-signing keys and `replacing` is false.
    public func matrixSetUpCrypto(replacing: Bool) async throws -> (recoveryKey: String, masterKey: String)? {
        guard let matrix = configuration.matrix else {
            throw GatewayError("matrix.homeserver is not configured, so there is no Matrix account to set up.")
        }
        let adapter = MatrixAdapter(configuration: matrix, store: store, inbox: InboxWriter(store: store, signal: WorkSignal()), sealer: try sealer(), logger: logger)
        return try await adapter.setUpCrossSigning(replacing: replacing).map { ($0.recoveryKey, $0.masterKey) }
    }

    static let writeStdout: @Sendable (String) -> Void = { text in
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// A gateway-level failure with an operator message.
public struct GatewayError: Error, CustomStringConvertible, Sendable {
    /// What went wrong and what to do.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// An exclusive lock on the data directory, held while the process runs the pipeline: one
/// process per embedded database delivers its replies.
final class DataDirectoryLock: Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw GatewayError("Cannot create the lock file \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw GatewayError(
                "Another switchboard process is using the database \(String(path.dropLast(".lock".count))). Stop it, or give this one another database (--data-dir or database.url)."
            )
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// The storage engine a gateway runs on.
enum StorageEngine: Sendable {
    case sqlite(SQLiteStore)
    case postgres(PostgresStore)

    /// The applied and known schema migrations.
    func schemaVersion() async throws -> (stored: [String], known: [String]) {
        switch self {
        case .sqlite(let store): try await store.schemaVersion()
        case .postgres(let store): try await store.schemaVersion()
        }
    }
}
