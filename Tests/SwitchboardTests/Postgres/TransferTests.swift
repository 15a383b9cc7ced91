// `switchboard export` and `switchboard import` through the binary: SQLite to PostgreSQL and
// back, with the audit chain still verifying, ids continuing, and bad files refused whole.

import Foundation
import SwitchboardPostgres
import Testing

@Suite("Export and import between engines")
struct TransferTests {
    func chat(_ lines: [String], environment: [String: String], dataDir: String? = nil) throws -> String {
        let directory = try TemporaryDirectory()
        let input = directory.path + "/input"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        var arguments = ["chat", "--as", "sam"]
        if let dataDir { arguments += ["--data-dir", dataDir] }
        // Through a shell for the redirection; the binary refuses the test run's own SWITCHBOARD_BINARY.
        let command = "unset SWITCHBOARD_BINARY; exec " + ([Binary.path] + arguments).map { "'\($0)'" }.joined(separator: " ") + " < '\(input)'"
        return try runCommand("/bin/sh", ["-c", command], environment: environment)
    }

    @Test("SQLite → PostgreSQL → SQLite keeps every row, the audit chain verifies, and new ids continue after the old")
    func roundTrip() throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let urlText = "postgres://switchboard:\(server.password)@127.0.0.1:\(server.port)/\(url.database)?sslmode=disable"
        let source = try TemporaryDirectory()
        let back = try TemporaryDirectory()
        let files = try TemporaryDirectory()
        _ = try chat(["add a note: buy milk", "add a note: call the plumber", "delete note 1", "yes", "undo", "remind me to water the plants tomorrow at 9"], environment: [:], dataDir: source.path)
        _ = try runCommand(Binary.path, ["keys", "create", "--data-dir", source.path, "--scope", "send", "--name", "moved", "--sender", "mover"])

        let first = try runCommand(Binary.path, ["export", "--data-dir", source.path, "-o", files.path + "/one.jsonl"])
        #expect(first.contains("exported"), "\(first)")
        let attributes = try FileManager.default.attributesOfItem(atPath: files.path + "/one.jsonl")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "the export holds message text: private to its owner")

        // A generous connection wait: the suite runs in parallel on two cores.
        let postgres = [
            "SWITCHBOARD_DATABASE_URL": urlText, "SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECONDS": "90",
            "SWITCHBOARD_SECRETS_KEY": TestSecrets.register("test-key-\(UUID().uuidString)"),
        ]
        let imported = try runCommand(Binary.path, ["import", files.path + "/one.jsonl"], environment: postgres)
        #expect(imported.contains("hash chain verified"), "\(imported)")
        // Into a database that already holds data: refused, nothing changed.
        #expect(throws: (any Error).self) { try runCommand(Binary.path, ["import", files.path + "/one.jsonl"], environment: postgres) }
        let onPostgres = try chat(["add a note: written on postgres", "list my notes"], environment: postgres)
        #expect(onPostgres.contains("1: buy milk") && onPostgres.contains("2: call the plumber") && onPostgres.contains("3: written on postgres"), "\(onPostgres)")
        #expect(try runCommand(Binary.path, ["keys", "list"], environment: postgres).contains("moved"))

        _ = try runCommand(Binary.path, ["export", "-o", files.path + "/two.jsonl"], environment: postgres)
        let again = try runCommand(Binary.path, ["import", "--data-dir", back.path, files.path + "/two.jsonl"])
        #expect(again.contains("hash chain verified"), "\(again)")
        let onSQLite = try chat(["list my notes"], environment: [:], dataDir: back.path)
        #expect(onSQLite.contains("3: written on postgres"), "\(onSQLite)")
        let verify = try runCommand(Binary.path, ["audit", "verify", "--data-dir", back.path])
        #expect(verify.contains("intact"), "\(verify)")
    }

    @Test("A truncated or foreign export file is refused and nothing is imported")
    func badFiles() throws {
        let source = try TemporaryDirectory()
        let target = try TemporaryDirectory()
        let files = try TemporaryDirectory()
        _ = try chat(["add a note: one", "add a note: two"], environment: [:], dataDir: source.path)
        _ = try runCommand(Binary.path, ["export", "--data-dir", source.path, "-o", files.path + "/full.jsonl"])
        let lines = try String(contentsOfFile: files.path + "/full.jsonl", encoding: .utf8).split(separator: "\n")
        try (lines.dropLast().joined(separator: "\n") + "\n").write(toFile: files.path + "/cut.jsonl", atomically: true, encoding: .utf8)
        try "{\"hello\": 1}\n".write(toFile: files.path + "/foreign.jsonl", atomically: true, encoding: .utf8)
        for (file, complaint) in [("cut.jsonl", "incomplete"), ("foreign.jsonl", "not a Switchboard export"), ("missing.jsonl", "Cannot read")] {
            let error = #expect(throws: HarnessError.self) {
                try runCommand(Binary.path, ["import", "--data-dir", target.path, files.path + "/" + file])
            }
            #expect(error?.description.contains(complaint) == true, "\(file): \(String(describing: error))")
        }
        let empty = try chat(["list my notes"], environment: [:], dataDir: target.path)
        #expect(!empty.contains("one") && !empty.contains("two"), "nothing was imported: \(empty)")
    }
}
