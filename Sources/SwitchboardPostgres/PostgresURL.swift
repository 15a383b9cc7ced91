import Foundation

/// Where a PostgreSQL database is and how to reach it, from a URL of the form
/// `postgres://user:password@host:port/database?sslmode=…`.
///
/// `sslmode` follows libpq: `disable`, `prefer` (the default: TLS when the server offers it),
/// `require` (TLS, certificate not checked), `verify-ca` and `verify-full` (TLS with the
/// certificate checked against the system's roots, or `sslrootcert`; `verify-full` also checks
/// the host name).
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    /// How TLS is used.
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// A PEM file of the certificate authorities to trust, instead of the system's.
    public var rootCertificatePath: String?

    /// Whether the text is a PostgreSQL URL (rather than a file path or an SQLite URL).
    public static func isPostgres(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// Parses a URL.
    ///
    /// - Throws: `PostgresURLError` saying which part is wrong. The message never repeats the password.
    public init(_ text: String) throws {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw PostgresURLError("the database URL is not of the form postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresURLError("the database URL has no host (postgres://user:password@HOST:5432/database)")
        }
        // URLComponents keeps IPv6 literals in brackets.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let port = components.port {
            guard (1...65535).contains(port) else { throw PostgresURLError("the database URL's port \(port) is out of range") }
            self.port = port
        } else {
            port = 5432
        }
        guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw PostgresURLError("the database URL has no user name (postgres://USER:password@host:5432/database)")
        }
        self.user = user
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let path = components.percentEncodedPath.dropFirst()
        guard !path.isEmpty, !path.contains("/"), let database = String(path).removingPercentEncoding else {
            throw PostgresURLError("the database URL has no database name (postgres://user:password@host:5432/DATABASE)")
        }
        self.database = database
        tls = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) else {
                    throw PostgresURLError("the database URL's sslmode must be one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            case "sslrootcert":
                rootCertificatePath = item.value
            default:
                throw PostgresURLError("the database URL has an unknown parameter '\(item.name)' (known: sslmode, sslrootcert)")
            }
        }
    }

    /// The URL without the password, safe to log.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        var text = "postgres://\(user)@\(shownHost):\(port)/\(database)"
        if tls != .prefer { text += "?sslmode=\(tls.rawValue)" }
        return text
    }
}

/// A database URL that cannot be used, with what is wrong with it.
public struct PostgresURLError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
