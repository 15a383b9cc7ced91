// The database goes away while `serve` runs: PostgreSQL is stopped and started again, and the
// disk under SQLite fills up and is freed. Meanwhile requests get 503 with Retry-After and
// /readyz says the database is the problem; nothing that was accepted is lost or answered
// twice; and the same process goes on by itself once the database is back.

import Foundation
import GRDB
import NIOHTTP1
import SwitchboardModel
import SwitchboardPostgres
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Database outage while serving", .serialized)
struct DatabaseOutageTests {
    /// Posts until the answer is 200 (the database is back), expecting 503 until then.
    static func postUntilAnswered(_ api: APIServer, key: String, _ body: JSONValue, within seconds: TimeInterval = 60) async throws -> APIResponse {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let response = try await api.post("/v1/messages?wait=5", key: key, json: body)
            if response.status == 200 { return response }
            #expect(response.status == 503, "only 503 while the database is away: \(response.status) \(response.text)")
            guard Date() < deadline, api.bot.process.isRunning else {
                throw HarnessError(description: "no answer within \(seconds) s of the database coming back:\n\(api.bot.log)")
            }
            try await Task.sleep(for: .milliseconds(300))
        }
    }

    /// Every accepted message was answered exactly once.
    static func expectAnsweredOnce(_ api: APIServer, key: String, ids: [String]) async throws {
        for id in ids {
            let fetched = try await api.get("/v1/messages/\(id)?wait=10", key: key)
            #expect(fetched.status == 200, "\(id): \(fetched.text)")
            #expect(try fetched.json["replies"]?.arrayValue?.count == 1, "\(id) answered once: \(fetched.text)")
        }
    }

    @Test("PostgreSQL stops and starts again: 503 with Retry-After meanwhile, /readyz says why, and the same process goes on with nothing lost or doubled")
    func postgresRestart() async throws {
        // A server of its own: the other tests keep theirs running.
        let pg = try PostgresServer()
        let database = try pg.createDatabase()
        let environment = [
            "SWITCHBOARD_DATABASE_URL": "postgres://switchboard:\(pg.password)@127.0.0.1:\(pg.port)/\(database.database)?sslmode=disable",
            "SWITCHBOARD_SECRETS_KEY": TestSecrets.register("test-key-\(UUID().uuidString)"),
            "SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECONDS": "3",
        ]
        let key = try runCommand(Binary.path, ["keys", "create", "--name", "t", "--scope", "send", "--scope", "read", "--any-sender"], environment: environment)
            .split(separator: "\n").last.map(String.init) ?? ""
        let api = try await APIServer(extra: environment)
        defer { try? api.stop() }

        let before = try await api.post("/v1/messages?wait=10", key: key, json: message("add a note: before", key: "before"))
        #expect(before.status == 200, "\(before.text)")
        // Accepted, possibly not yet answered, when the database goes.
        var accepted = ["before"]
        for index in 1...5 {
            let response = try await api.post("/v1/messages", key: key, json: message("add a note: queued \(index)", key: "queued-\(index)"))
            #expect([200, 202].contains(response.status), "\(response.text)")
            accepted.append("queued-\(index)")
        }
        try runCommand("/bin/bash", [PostgresServer.script, "stop", pg.directory.path])

        let during = try await api.post("/v1/messages?wait=5", key: key, json: message("add a note: during", key: "during"))
        #expect(during.status == 503, "\(during.text)")
        #expect(during.errorCode == "database_unavailable", "\(during.text)")
        #expect(during.headers.first(name: "Retry-After") != nil)
        let ready = try await api.get("/readyz", key: nil)
        #expect(ready.status == 503 && (try? ready.json["checks"]?["database"]?["status"]) == "unreachable", "\(ready.text)")

        try runCommand("/bin/bash", [PostgresServer.script, "start", pg.directory.path])
        _ = try await Self.postUntilAnswered(api, key: key, message("add a note: after", key: "after"))
        #expect(api.bot.process.isRunning, "the same process, no restart")
        // "during" was refused, not half-taken: the same idempotency key is a new message now.
        let retried = try await api.post("/v1/messages?wait=10", key: key, json: message("add a note: during", key: "during"))
        #expect(retried.status == 200 && retried.headers.first(name: "Idempotent-Replayed") == nil, "\(retried.text)")
        accepted += ["after", "during"]
        try await Self.expectAnsweredOnce(api, key: key, ids: accepted)
        let list = try await api.post("/v1/messages?wait=10", key: key, json: message("list my notes"))
        let text = try list.json["replies"]?[0]?["text"]?.stringValue ?? ""
        #expect(text.hasPrefix("You have 8 notes:"), "\(text)")
        #expect((try await api.get("/readyz", key: nil)).status == 200, "ready again")
    }

    @Test("The disk under SQLite fills up: 503 while it is full, nothing accepted is lost, and the same process goes on once there is room")
    func sqliteDiskFull() async throws {
        guard getuid() == 0 else {
            throw HarnessError(description: "This test mounts a small tmpfs to fill, which needs root: run the README's test command (scripts/test.sh) as root, or with sudo.")
        }
        let mount = try TemporaryDirectory()
        try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", mount.path])
        defer { _ = try? runCommand("/bin/umount", ["-l", mount.path]) }
        // The database (and its key file) on the small disk; the log beside the data directory.
        let path = mount.path + "/switchboard.sqlite"
        let environment = ["SWITCHBOARD_DATABASE_URL": path]
        let key = try runCommand(Binary.path, ["keys", "create", "--name", "t", "--scope", "send", "--scope", "read", "--any-sender"], environment: environment)
            .split(separator: "\n").last.map(String.init) ?? ""
        let api = try await APIServer(extra: environment)
        defer { try? api.stop() }

        let first = try await api.post("/v1/messages?wait=10", key: key, json: message("add a note: first", key: "first"))
        #expect(first.status == 200, "\(first.text)")
        // Fill what is left of the disk.
        let filler = mount.path + "/filler"
        _ = try? runCommand("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
        // Then leave a little room, so some messages are taken and the disk fills while the
        // engine works on them.
        try runCommand("/usr/bin/truncate", ["-s", "-192K", filler])
        var accepted = ["first"]
        var refused: APIResponse?
        let padding = String(repeating: "x", count: 3000)
        for index in 1...2000 {
            let response = try await api.post("/v1/messages", key: key, json: message("add a note: \(index) \(padding)", key: "m-\(index)"))
            if response.status == 503 {
                refused = response
                break
            }
            #expect([200, 202].contains(response.status), "\(response.text)")
            accepted.append("m-\(index)")
        }
        let full = try #require(refused, "the disk never filled up")
        #expect(accepted.count > 3, "some messages were taken before the disk filled: \(accepted.count)")
        #expect(full.errorCode == "database_unavailable" && full.headers.first(name: "Retry-After") != nil, "\(full.text)")
        #expect(api.bot.process.isRunning, "a full disk does not stop the process")

        try FileManager.default.removeItem(atPath: filler)
        _ = try await Self.postUntilAnswered(api, key: key, message("add a note: after", key: "after"))
        accepted.append("after")
        try await Self.expectAnsweredOnce(api, key: key, ids: accepted)
        let executed = try await DatabaseQueue(path: path).read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit WHERE tool = 'notes.add' AND status = 'executed'")
        }
        #expect(executed == accepted.count, "every accepted note added once")
        #expect(api.bot.process.isRunning)
    }
}
