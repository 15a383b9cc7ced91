import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PostgresNIO
import SwitchboardModel
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
        // postgres-nio drops a query written to a connection that has already closed (its
        // promise is never completed): look first, and never wait without a limit.
        guard !connection.isClosed else {
            throw StoreError(.io, "Lost the connection to the PostgreSQL database; the transaction was not committed.")
        }
        do {
            let result = try Self.wait(for: connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger), connection: connection)
            return Result(rows: result.rows.map { Row($0.makeRandomAccess()) }, changed: result.metadata.rows ?? 0)
        } catch {
            throw PostgresErrors.translate(error)
        }
    }

    /// How long one statement may take before the connection is given up as lost.
    static let statementLimit: TimeInterval = 120

    /// Waits for a statement's answer on this (non-event-loop) thread, at most `statementLimit`.
    private static func wait<T: Sendable>(for future: EventLoopFuture<T>, connection: PostgresConnection) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<Swift.Result<T, any Error>?>(nil)
        future.whenComplete { result in
            outcome.withLockedValue { $0 = result }
            done.signal()
        }
        if done.wait(timeout: .now() + statementLimit) == .timedOut {
            // Whatever the reason, this connection is not usable any more: the pool replaces it.
            connection.close().whenComplete { _ in }
            throw StoreError(.io, "The PostgreSQL database did not answer a statement within \(Int(statementLimit)) s; the transaction was not committed.")
        }
        return try outcome.withLockedValue { $0! }.get()
    }

    /// Starts a transaction. A connection found closed here has sent nothing yet: the caller
    /// may take another and start again (`ClosedConnection`).
    func begin(_ sql: String = "BEGIN") throws {
        guard !connection.isClosed else { throw ClosedConnection() }
        try run(sql)
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

/// The leased connection was found closed before a statement went out: nothing was sent, so
/// the store takes another connection and starts the transaction again.
struct ClosedConnection: Error {}

/// A result row, read by column name.
struct Row {
    private let row: PostgresRandomAccessRow

    init(_ row: PostgresRandomAccessRow) { self.row = row }

    func string(_ column: String) throws -> String { try decode(String.self, column) }
    func optionalString(_ column: String) throws -> String? { try decode(String?.self, column) }
    func int(_ column: String) throws -> Int64 { try decode(Int64.self, column) }
    func optionalInt(_ column: String) throws -> Int64? { try decode(Int64?.self, column) }
    func bool(_ column: String) throws -> Bool { try decode(Bool.self, column) }
    func optionalBool(_ column: String) throws -> Bool? { try decode(Bool?.self, column) }
    func double(_ column: String) throws -> Double { try decode(Double.self, column) }
    func date(_ column: String) throws -> Date { AuditChain.date(microseconds: try int(column)) }
    /// The conversation named by the row's `channel` and `conversation` columns.
    func conversationKey() throws -> ConversationKey {
        ConversationKey(channel: ChannelID(try string("channel")), conversation: ConversationID(try string("conversation")))
    }
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
