import Foundation
public import SwitchboardModel
public import SwitchboardStorage
import GRDB

/// The embedded storage engine: the system's libsqlite3 in WAL mode, through GRDB.
///
/// One file, one writer at a time, readers in parallel. `synchronous=NORMAL` (the default)
/// survives a process crash at any point and loses at most the last commits on power loss;
/// `synchronous=FULL` survives power loss too, and relies on group commit (many messages per
/// transaction) for throughput.
public final class SQLiteStore: Store {
    /// How hard SQLite flushes to disk on commit.
    public enum Synchronous: String, Sendable, CaseIterable {
        /// Durable against process crashes; the WAL is synced at checkpoints.
        case normal
        /// Durable against power loss; every commit syncs the WAL.
        case full
    }

    /// Options for opening the database.
    public struct Options: Sendable {
        /// The synchronous mode.
        public var synchronous: Synchronous
        /// How long to wait for another process's lock before failing with `.locked`.
        public var busyTimeout: Duration

        /// Creates options.
        public init(synchronous: Synchronous = .normal, busyTimeout: Duration = .seconds(5)) {
            self.synchronous = synchronous
            self.busyTimeout = busyTimeout
        }
    }

    private let pool: DatabasePool
    /// The database file's path.
    public let path: String

    public var locationDescription: String { "sqlite:\(path)" }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// - Throws: `StoreError` with `.cannotOpen` (no such directory, no permission),
    ///   `.corrupt` (not a database, damaged), `.locked` (another process holds it),
    ///   `.schemaTooNew` (written by a newer Switchboard).
    public init(path: String, options: Options = Options(), migrate: Bool = true) throws {
        self.path = path
        var configuration = Configuration()
        let timeout = options.busyTimeout.components
        configuration.busyMode = .timeout(Double(timeout.seconds) + Double(timeout.attoseconds) / 1e18)
        configuration.label = "switchboard"
        let synchronous = options.synchronous
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue.uppercased())")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // A larger page cache and memory-mapped reads: the hot tables stay in memory.
            try db.execute(sql: "PRAGMA cache_size = -32768")
            try db.execute(sql: "PRAGMA mmap_size = 268435456")
        }
        do {
            pool = try Self.openPool(path: path, configuration: configuration)
            if migrate {
                try SQLiteMigrations.migrate(pool)
            } else {
                try pool.read { db in try SQLiteMigrations.checkCurrent(db) }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw SQLiteStore.translate(error, path: path)
        }
    }

    /// Opens the pool. Turning a new file to WAL needs it alone for a moment and does not wait
    /// for the busy timeout: when another process opens the same new file at that moment,
    /// try again for a little while.
    private static func openPool(path: String, configuration: Configuration) throws -> DatabasePool {
        var attempt = 0
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED) && attempt < 50 {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.02 * Double(min(attempt, 10)))
            }
        }
    }

    /// The schema version stored in the database, and the newest this binary knows.
    public func schemaVersion() async throws -> (stored: [String], known: [String]) {
        try await read { reader in
            try (reader as! SQLiteTransaction).appliedMigrations()
        }
    }

    public func write<T: Sendable>(
        _ body: @escaping @Sendable (any StoreTransaction) throws -> T
    ) async throws -> T {
        let path = self.path
        do {
            return try await pool.write { db in
                let transaction = SQLiteTransaction(db: db, path: path)
                let result = try body(transaction)
                try transaction.finish()
                return result
            }
        } catch let error as DatabaseError {
            throw SQLiteStore.translate(error, path: path)
        }
    }

    public func read<T: Sendable>(
        _ body: @escaping @Sendable (any StoreReader) throws -> T
    ) async throws -> T {
        let path = self.path
        do {
            return try await pool.read { db in
                try body(SQLiteTransaction(db: db, path: path))
            }
        } catch let error as DatabaseError {
            throw SQLiteStore.translate(error, path: path)
        }
    }

    /// Closes the database, checkpointing the WAL.
    public func close() throws {
        try pool.close()
    }

    static func translate(_ error: any Error, path: String) -> StoreError {
        guard let error = error as? DatabaseError else {
            if let error = error as? StoreError { return error }
            return StoreError(.other, "Unexpected error with the database at \(path).", underlying: SafeError(error))
        }
        let safe = SafeError(error)
        switch error.resultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return StoreError(
                .corrupt,
                "The database file \(path) is not a valid SQLite database or is damaged. Stop Switchboard, move the file (and its -wal and -shm files) aside, and restore a backup or start fresh.",
                underlying: safe
            )
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreError(
                .locked,
                "The database file \(path) is locked by another process. Is another switchboard (or a sqlite3 shell) using it? Stop it or choose another data directory.",
                underlying: safe
            )
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
            return StoreError(
                .cannotOpen,
                "Cannot open the database file \(path) for writing. Check that the directory exists and is writable by this user.",
                underlying: safe
            )
        case .SQLITE_FULL, .SQLITE_IOERR:
            return StoreError(.io, "Disk error with the database file \(path): is the disk full or failing?", underlying: safe)
        case .SQLITE_CONSTRAINT:
            return StoreError(.constraint, "A write was refused by a database constraint.", underlying: safe)
        default:
            return StoreError(.other, "Database error with \(path).", underlying: safe)
        }
    }
}

/// An underlying error reduced to its safe description: SQLite's result code and message,
/// never the SQL arguments (which may hold message text).
struct SafeError: Error, CustomStringConvertible, Sendable {
    let description: String

    init(_ error: any Error) {
        if let error = error as? DatabaseError {
            description = "SQLite error \(error.extendedResultCode.rawValue): \(error.message ?? "no message")"
        } else {
            description = String(describing: type(of: error))
        }
    }
}

extension SQLiteStore {
    /// Runs raw SQL in a write transaction: for maintenance and tests, never with user data.
    public func execute(sql: String) async throws {
        do {
            try await pool.write { db in try db.execute(sql: sql) }
        } catch {
            throw SQLiteStore.translate(error, path: path)
        }
    }
}

extension SQLiteStore: TransferableStore {
    public func exportRows(table: String, order: String) async throws -> [JSONValue] {
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY \(order)").map { row in
                    var object: [String: JSONValue] = [:]
                    for (column, value) in row where !DataTransfer.engineOnlyColumns.contains("\(table).\(column)") {
                        switch value.storage {
                        case .null: object[column] = .null
                        case .int64(let int): object[column] = .int(int)
                        case .double(let double): object[column] = .double(double)
                        case .string(let string): object[column] = .string(string)
                        case .blob: throw StoreError(.decoding, "Column \(table).\(column) holds binary data, which the export does not carry.")
                        }
                    }
                    return .object(object)
                }
            }
        } catch {
            throw SQLiteStore.translate(error, path: path)
        }
    }

    public func importRows(_ tables: [(table: String, rows: [JSONValue])]) async throws {
        do {
            try await pool.write { db in
                for (table, _) in DataTransfer.tables {
                    if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table))") == true {
                        throw StoreError(.constraint, "The database already holds data (table \(table)); import only into a new, empty database.")
                    }
                }
                for (table, rows) in tables {
                    let columns = Set(try db.columns(in: table).map(\.name))
                    for row in rows {
                        guard case .object(let object) = row else { throw StoreError(.decoding, "A row of \(table) is not an object.") }
                        let names = object.keys.filter { columns.contains($0) }.sorted()
                        let values: [(any DatabaseValueConvertible)?] = names.map { name in
                            switch object[name]! {
                            case .null: nil
                            case .bool(let bool): bool
                            case .int(let int): int
                            case .double(let double): double
                            case .string(let string): string
                            case .array, .object: object[name]!.canonicalText
                            }
                        }
                        let placeholders = Array(repeating: "?", count: names.count).joined(separator: ", ")
                        try db.execute(
                            sql: "INSERT INTO \(table) (\(names.joined(separator: ", "))) VALUES (\(placeholders))",
                            arguments: StatementArguments(values)
                        )
                    }
                }
            }
        } catch {
            throw SQLiteStore.translate(error, path: path)
        }
    }
}
