import Foundation
import Logging
import NIOCore
import PostgresNIO
import SwitchboardStorage

/// A value bound to a statement's `$n` placeholder.
enum Bind: Sendable {
    case text(String?)
    case int(Int64?)
    case bool(Bool?)
    case double(Double?)
    case texts([String]?)
    case ints([Int64])
}

/// One connection used synchronously, on a thread-pool thread, for the length of one
/// transaction body.
///
/// The storage interface runs transaction bodies synchronously (nothing slow may run while a
/// transaction is open), so each statement waits for its answer here. This never runs on an
/// event loop or on Swift's cooperative pool: `PostgresStore` hops to its own thread pool first.
struct Session: Sendable {
    let connection: PostgresConnection
    let logger: Logger

    /// Runs one statement and returns its rows and the number of rows it changed.
    @discardableResult
    func run(_ sql: String, _ values: [Bind] = []) throws -> Result {
        var bindings = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .text(let text): bindings.append(text)
            case .int(let int): bindings.append(int)
            case .bool(let bool): bindings.append(bool)
            case .double(let double): bindings.append(double)
            case .texts(let texts): bindings.append(texts)
            case .ints(let ints): bindings.append(ints)
            }
        }
        do {
            let result = try connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).wait()
            return Result(rows: result.rows.map { Row($0.makeRandomAccess()) }, changed: result.metadata.rows ?? 0)
        } catch {
            throw PostgresErrors.translate(error)
        }
    }

    /// Runs several statements without parameters (the schema's DDL), one at a time: each
    /// ends with a semicolon at the end of a line. (A semicolon inside a line, as in a
    /// function's body, does not end a statement.)
    func runScript(_ sql: String) throws {
        var statement = ""
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            statement += line + "\n"
            if line.trimmingCharacters(in: .whitespaces).hasSuffix(";") {
                try run(statement)
                statement = ""
            }
        }
        if !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            try run(statement)
        }
    }

    struct Result {
        var rows: [Row]
        var changed: Int
        var first: Row? { rows.first }
    }
}

/// A result row, read by column name.
struct Row {
    private let row: PostgresRandomAccessRow

    init(_ row: PostgresRandomAccessRow) { self.row = row }

    func string(_ column: String) throws -> String { try decode(String.self, column) }
    func optionalString(_ column: String) throws -> String? { try decode(String?.self, column) }
    func int(_ column: String) throws -> Int64 { try decode(Int64.self, column) }
    func optionalInt(_ column: String) throws -> Int64? { try decode(Int64?.self, column) }
    func bool(_ column: String) throws -> Bool { try decode(Bool.self, column) }
    func double(_ column: String) throws -> Double { try decode(Double.self, column) }
    func date(_ column: String) throws -> Date { AuditChain.date(microseconds: try int(column)) }
    func optionalDate(_ column: String) throws -> Date? { try optionalInt(column).map(AuditChain.date(microseconds:)) }

    func int(at index: Int) throws -> Int64? {
        do {
            return try row[index].decode(Int64?.self)
        } catch {
            throw StoreError(.decoding, "A stored value in column \(index) could not be read as a number.")
        }
    }

    private func decode<T: PostgresDecodable>(_ type: T.Type, _ column: String) throws -> T {
        do {
            return try row[column].decode(T.self)
        } catch {
            throw StoreError(.decoding, "The stored value in column \(column) could not be read as \(T.self).")
        }
    }
}
