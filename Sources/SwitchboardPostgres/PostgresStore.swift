import Foundation
public import Logging
public import SwitchboardModel
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
public import SwitchboardStorage

/// The shared storage engine: PostgreSQL through postgres-nio, for one or several gateway
/// instances on one database.
///
/// Transaction bodies are synchronous (see `Store`), so each runs on a thread of the store's own
/// pool, with a connection leased from postgres-nio's pool for its length, and waits there for
/// each statement. Write transactions run at READ COMMITTED; where instances could race, the
/// engine takes row locks (`FOR UPDATE SKIP LOCKED` for leases and due reminders) or an advisory
/// lock (the audit chain's head). Reads run in a REPEATABLE READ, READ ONLY transaction: one
/// consistent snapshot, as on SQLite.
public final class PostgresStore: Store {
    /// Options for connecting.
    public struct Options: Sendable {
        /// The most connections this instance opens (and threads it runs transactions on).
        public var poolSize: Int
        /// How long to wait for a connection before failing with a transient error.
        public var connectTimeout: Duration

        public init(poolSize: Int = 10, connectTimeout: Duration = .seconds(10)) {
            self.poolSize = poolSize
            self.connectTimeout = connectTimeout
        }
    }

    public let url: PostgresURL
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let threads: NIOThreadPool
    private let logger: Logger
    private let options: Options

    public var locationDescription: String { url.description }

    /// Connects, checks the schema, and (with `migrate`) brings it up to date.
    ///
    /// - Throws: `StoreError`: `.cannotOpen` for a wrong password, user or database name or a
    ///   refused TLS; `.io` for a host that cannot be reached; `.schemaTooNew` for a database
    ///   written by a newer Switchboard; `.other` for an older schema when `migrate` is false.
    public init(url: PostgresURL, options: Options = Options(), migrate: Bool = true, logger: Logger) async throws {
        self.url = url
        self.options = options
        self.logger = logger
        let tls = try Self.tlsConfiguration(url)
        // A first connection of its own: its failure is the real one (a refused login, a
        // missing database), where the pool would only keep retrying in the background.
        do {
            let connection = try await Self.connectOnce(url: url, tls: tls, timeout: options.connectTimeout, logger: logger)
            defer { Task { try? await connection.close() } }
            let session = Session(connection: connection, logger: logger)
            let threads = NIOThreadPool(numberOfThreads: 1)
            threads.start()
            defer { threads.shutdownGracefully { _ in } }
            try await threads.runIfActive {
                if migrate {
                    _ = try PostgresMigrations.migrate(session, now: Date())
                } else {
                    try PostgresMigrations.checkCurrent(session)
                }
            }
        } catch {
            throw PostgresErrors.translate(error, location: url.description)
        }

        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: tls.map { url.tls == .prefer ? .prefer($0) : .require($0) } ?? .disable
        )
        configuration.options.maximumConnections = options.poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = options.connectTimeout
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let client = self.client
        // The pool's background work (connecting, keep-alives) runs until `close`.
        runner = Task { await client.run() }
        threads = NIOThreadPool(numberOfThreads: options.poolSize)
        threads.start()
    }

    deinit {
        runner.cancel()
    }

    /// Closes the pool's connections and stops its threads.
    public func close() async {
        runner.cancel()
        try? await threads.shutdownGracefully()
    }

    /// The schema migrations applied to the database, and the ones this binary knows.
    public func schemaVersion() async throws -> (stored: [String], known: [String]) {
        let applied = try await session { session in try PostgresMigrations.appliedIdentifiers(session) }
        return (PostgresMigrations.identifiers.filter(applied.contains) + applied.subtracting(PostgresMigrations.identifiers).sorted(), PostgresMigrations.identifiers)
    }

    public func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T {
        try await session { session in
            try session.begin()
            do {
                let transaction = PostgresTransaction(session: session, writing: true)
                let result = try body(transaction)
                try transaction.finish()
                try session.run("COMMIT")
                return result
            } catch {
                _ = try? session.run("ROLLBACK")
                throw error
            }
        }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any StoreReader) throws -> T) async throws -> T {
        try await session { session in
            try session.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                let result = try body(PostgresTransaction(session: session, writing: false))
                try session.run("COMMIT")
                return result
            } catch {
                _ = try? session.run("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs raw SQL outside any transaction body: for maintenance and tests, never with user data.
    public func execute(sql: String) async throws {
        try await session { session in try session.runScript(sql) }
    }

    /// Leases a connection (waiting at most the connect timeout) and runs `body` on a store thread.
    private func session<T: Sendable>(_ body: @escaping @Sendable (Session) throws -> T) async throws -> T {
        let threads = self.threads
        let logger = self.logger
        // A connection the server closed (a restart, an idle timeout) may still be in the pool:
        // when it is found closed before anything was sent, another one is taken.
        var attempts = 0
        while true {
            attempts += 1
            do {
                return try await withConnection { connection in
                    try await threads.runIfActive {
                        try body(Session(connection: connection, logger: logger))
                    }
                }
            } catch is ClosedConnection where attempts < 4 {
                try await Task.sleep(for: .milliseconds(50 * attempts))
                continue
            } catch let error where PostgresErrors.isDatabaseError(error) || error is ClosedConnection {
                throw PostgresErrors.translate(error, location: url.description)
            }
        }
    }

    /// The outcome of one side of `withConnection`'s race.
    private enum ConnectionRace<T: Sendable>: Sendable {
        case done(T)
        case timedOut
        case started
    }

    /// Runs `body` with a pooled connection. Only the wait for a connection is limited (to the
    /// connect timeout); once the body has one, it runs to its commit or rollback, however long.
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = self.client
        let timeout = options.connectTimeout
        let location = url.description
        let started = NIOLockedValueBox(false)
        return try await withThrowingTaskGroup(of: ConnectionRace<T>.self) { group in
            group.addTask {
                .done(try await client.withConnection { connection in
                    started.withLockedValue { $0 = true }
                    return try await body(connection)
                })
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return started.withLockedValue { $0 } ? .started : .timedOut
            }
            while let next = try await group.next() {
                switch next {
                case .done(let value):
                    group.cancelAll()
                    return value
                case .timedOut:
                    group.cancelAll()
                    throw StoreError(.io, "No connection to \(location) within \(timeout): is the database up and reachable?")
                case .started:
                    continue
                }
            }
            throw StoreError(.io, "No connection to \(location).")
        }
    }

    private static func connectOnce(url: PostgresURL, tls: TLSConfiguration?, timeout: Duration, logger: Logger) async throws -> PostgresConnection {
        let context = try tls.map { try NIOSSLContext(configuration: $0) }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database,
            tls: context.map { url.tls == .prefer ? .prefer($0) : .require($0) } ?? .disable
        )
        configuration.options.connectTimeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        return try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
    }

    private static func tlsConfiguration(_ url: PostgresURL) throws -> TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch url.tls {
        case .disable: return nil
        case .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        if let path = url.rootCertificatePath {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw StoreError(.cannotOpen, "The sslrootcert file \(path) in the database URL cannot be read.")
            }
            tls.trustRoots = .file(path)
        }
        return tls
    }
}

extension PostgresStore {
    /// Ends the server processes of other sessions on this database that sit in an open
    /// transaction: for tests of a connection cut mid-transaction. Returns how many.
    public func terminateIdleTransactions() async throws -> Int {
        try await session { session in
            Int(try session.run("""
                SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'
                """).first?.int("n") ?? 0)
        }
    }
}

extension PostgresStore {
    /// The leases whose names start with `prefix`, by name: who holds which work, for
    /// operators and tests.
    public func leases(prefix: String) async throws -> [Lease] {
        try await session { session in
            try session.run(
                "SELECT holder, expires_at FROM leases WHERE starts_with(name, $1) ORDER BY name COLLATE \"C\"", [.text(prefix)]
            ).rows.map { Lease(holder: try $0.string("holder"), expiresAt: try $0.date("expires_at")) }
        }
    }
}

extension PostgresStore: TransferableStore {
    public func exportRows(table: String, order: String) async throws -> [JSONValue] {
        try await session { session in
            try session.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            defer { _ = try? session.run("COMMIT") }
            return try session.run("SELECT row_to_json(t)::TEXT AS row FROM (SELECT * FROM \(table) ORDER BY \(order)) AS t").rows.map { row in
                guard case .object(var object) = try JSONValue.parse(try row.string("row")) else {
                    throw StoreError(.decoding, "A row of \(table) did not read back as an object.")
                }
                for column in object.keys where DataTransfer.engineOnlyColumns.contains("\(table).\(column)") { object[column] = nil }
                return .object(object)
            }
        }
    }

    public func importRows(_ tables: [(table: String, rows: [JSONValue])]) async throws {
        try await session { session in
            try session.run("BEGIN")
            do {
                for (table, _) in DataTransfer.tables {
                    if try session.run("SELECT EXISTS (SELECT 1 FROM \(table)) AS present").first?.bool("present") == true {
                        throw StoreError(.constraint, "The database already holds data (table \(table)); import only into a new, empty database.")
                    }
                }
                for (table, rows) in tables {
                    let columns = Set(try session.run(
                        "SELECT column_name::TEXT AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
                        [.text(table)]
                    ).rows.map { try $0.string("name") })
                    // Rows go in as JSON, 500 at a time; PostgreSQL converts each value to its
                    // column's type (SQLite's 0 and 1 become booleans).
                    for chunk in stride(from: 0, to: rows.count, by: 500) {
                        let part = Array(rows[chunk..<min(rows.count, chunk + 500)])
                        let names = Set(part.flatMap { row -> [String] in
                            if case .object(let object) = row { return Array(object.keys) }
                            return []
                        }).intersection(columns).sorted()
                        guard !names.isEmpty else { continue }
                        let list = names.joined(separator: ", ")
                        try session.run(
                            "INSERT INTO \(table) (\(list)) SELECT \(list) FROM json_populate_recordset(NULL::\(table), $1::JSON)",
                            [.text(JSONValue.array(part).canonicalText)]
                        )
                    }
                }
                for table in DataTransfer.identityTables {
                    try session.run("SELECT setval(pg_get_serial_sequence('\(table)', 'id'), GREATEST((SELECT MAX(id) FROM \(table)), 1), (SELECT MAX(id) FROM \(table)) IS NOT NULL)")
                }
                try session.run("COMMIT")
            } catch {
                _ = try? session.run("ROLLBACK")
                throw error
            }
        }
    }
}
