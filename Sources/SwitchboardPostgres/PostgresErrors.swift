import Foundation
import NIOCore
import NIOSSL
import PostgresNIO
import SwitchboardStorage

/// PostgreSQL's failures as the storage layer's errors, with operator messages.
enum PostgresErrors {
    /// Whether the error comes from the database or the connection to it (rather than from a
    /// transaction body, whose own errors pass through unchanged).
    static func isDatabaseError(_ error: any Error) -> Bool {
        error is PSQLError || error is PostgresError || error is IOError || error is ChannelError || error is NIOSSLError
    }

    /// Translates an error from postgres-nio (or anything below it) into a `StoreError`.
    ///
    /// The description keeps the SQLSTATE and the server's message, never the statement's
    /// arguments or the server's `detail` field (which quotes the conflicting values).
    static func translate(_ error: any Error, location: String = "the PostgreSQL database") -> StoreError {
        if let error = error as? StoreError { return error }
        if error is ClosedConnection {
            return StoreError(.io, "Lost the connection to \(location); the transaction was not committed.")
        }
        // The older interface (simple queries, used for the schema) reports this type.
        if let error = error as? PostgresError {
            switch error {
            case .server(let server):
                return fromSQLState(server.fields[.sqlState] ?? "", safe: SafePostgresError(error), location: location)
            case .connectionClosed:
                return StoreError(.io, "Lost the connection to \(location); the transaction was not committed.", underlying: SafePostgresError(error))
            case .protocol:
                return StoreError(.other, "Database error with \(location).", underlying: SafePostgresError(error))
            }
        }
        guard let error = error as? PSQLError else {
            if error is CancellationError { return StoreError(.other, "The database operation was cancelled.") }
            return StoreError(.io, "Cannot reach \(location): \(SafePostgresError(error)).", underlying: SafePostgresError(error))
        }
        let safe = SafePostgresError(error)
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            return fromSQLState(state, safe: safe, location: location)
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
            return StoreError(.io, "Lost the connection to \(location); the transaction was not committed.", underlying: safe)
        case .sslUnsupported:
            return StoreError(.cannotOpen, "\(location) does not offer TLS, and the database URL requires it (sslmode).", underlying: safe)
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            return StoreError(.cannotOpen, "Cannot log in to \(location): check the user and password in database.url.", underlying: safe)
        default:
            return StoreError(.other, "Database error with \(location).", underlying: safe)
        }
    }

    static func fromSQLState(_ state: String, safe: SafePostgresError, location: String) -> StoreError {
        switch state {
        case "28P01", "28000":
            return StoreError(.cannotOpen, "\(location) refused the login: check the user and password in database.url.", underlying: safe)
        case "3D000":
            return StoreError(.cannotOpen, "\(location) has no such database: check the database name in database.url, or create it (createdb).", underlying: safe)
        case "42501":
            return StoreError(.cannotOpen, "The database user lacks a privilege Switchboard needs on \(location).", underlying: safe)
        case "40001", "40P01", "55P03":
            // A serialization failure, a deadlock or a lock timeout: retrying the transaction can succeed.
            return StoreError(.locked, "A transaction on \(location) was rolled back by a conflict with another instance; it can be retried.", underlying: safe)
        case "53100", "53200", "53300":
            return StoreError(.io, "\(location) is out of disk, memory or connections.", underlying: safe)
        case "57P01", "57P02", "57P03":
            return StoreError(.io, "\(location) is shutting down or starting up.", underlying: safe)
        case "P0001":
            // Raised by the schema's own triggers (the append-only audit trail).
            return StoreError(.constraint, "A write was refused by a database constraint.", underlying: safe)
        default:
            if state.hasPrefix("23") {
                return StoreError(.constraint, "A write was refused by a database constraint.", underlying: safe)
            }
            if state.hasPrefix("08") {
                return StoreError(.io, "Lost the connection to \(location); the transaction was not committed.", underlying: safe)
            }
            return StoreError(.other, "Database error with \(location).", underlying: safe)
        }
    }
}

/// An underlying error reduced to what is safe to log: the SQLSTATE and the server's message,
/// or the kind of client-side failure.
struct SafePostgresError: Error, CustomStringConvertible, Sendable {
    let description: String

    init(_ error: any Error) {
        if case .server(let server) = error as? PostgresError {
            description = "PostgreSQL error \(server.fields[.sqlState] ?? "?"): \(server.fields[.message] ?? "no message")"
        } else if let error = error as? PostgresError {
            description = "\(error)"
        } else if let error = error as? PSQLError {
            if let info = error.serverInfo {
                description = "PostgreSQL error \(info[.sqlState] ?? "?"): \(info[.message] ?? "no message")"
            } else if let underlying = error.underlying {
                description = "\(error.code): \(Self.describe(underlying))"
            } else {
                description = "\(error.code)"
            }
        } else {
            description = Self.describe(error)
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return "\(error)" }
        if let error = error as? ChannelError { return "\(error)" }
        return String(describing: type(of: error))
    }
}
