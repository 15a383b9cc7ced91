// A real PostgreSQL server for the storage tests, run by scripts/test-servers/postgres.sh in a
// temporary directory on a free 127.0.0.1 port, with password logins. Each test gets a
// database of its own.

import Foundation
import Logging
import SwitchboardPostgres
import SwitchboardStorage
import Testing

final class PostgresServer: Sendable {
    static let script = packageRoot + "/scripts/test-servers/postgres.sh"

    let directory: TemporaryDirectory
    let port: Int
    let password: String

    init() throws {
        directory = try TemporaryDirectory()
        port = try freePort()
        password = TestSecrets.register("pw-\(UUID().uuidString.prefix(8))")
        do {
            try runCommand("/bin/bash", [Self.script, "init", directory.path, String(port), password])
            try runCommand("/bin/bash", [Self.script, "start", directory.path])
        } catch {
            throw HarnessError(description: """
                Could not start PostgreSQL for the storage tests. The README's test command \
                (scripts/test.sh) installs it; by hand: scripts/test-servers/postgres.sh install.
                \(error)
                """)
        }
    }

    deinit {
        _ = try? runCommand("/bin/bash", [Self.script, "stop", directory.path])
    }

    /// A new, empty database, and its URL.
    func createDatabase() throws -> PostgresURL {
        let name = "t_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))"
        try runCommand("/bin/bash", [Self.script, "createdb", directory.path, name])
        return try url(database: name)
    }

    func url(database: String, password: String? = nil, port: Int? = nil) throws -> PostgresURL {
        try PostgresURL("postgres://switchboard:\(password ?? self.password)@127.0.0.1:\(port ?? self.port)/\(database)?sslmode=disable")
    }

    /// How long tests wait for a pooled connection: the whole suite runs in parallel on two
    /// cores, and harnesses that wait for processes hold the cooperative threads for a while.
    static let connectTimeout: Duration = .seconds(90)

    /// A store on a new, empty database.
    func freshStore(poolSize: Int = 4) async throws -> PostgresStore {
        try await PostgresStore(
            url: try createDatabase(), options: .init(poolSize: poolSize, connectTimeout: Self.connectTimeout), logger: Logger(label: "test.postgres")
        )
    }

    /// The one server the tests share. scripts/test.sh stops it after the run; after a run by
    /// hand, `scripts/test-servers/postgres.sh stop DIR` (DIR is in the test's TMPDIR).
    static let shared: Result<PostgresServer, HarnessError> = {
        do { return .success(try PostgresServer()) } catch let error as HarnessError { return .failure(error) } catch {
            return .failure(HarnessError(description: "\(error)"))
        }
    }()
}
