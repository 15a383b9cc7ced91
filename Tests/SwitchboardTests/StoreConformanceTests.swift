import GRDB
import Logging
import SwitchboardModel
import SwitchboardPostgres
@testable import SwitchboardApp
@testable import SwitchboardSQLite
import SwitchboardStorage
import SwitchboardTesting
import Testing

/// The storage engines the conformance suite runs against.
enum StorageEngine: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

@Suite("Storage conformance")
struct StoreConformanceTests {
    @Test("Each engine passes the storage conformance check", arguments: StorageEngine.allCases, StoreConformance.checks.map(\.name))
    func conformance(engine: StorageEngine, name: String) async throws {
        let check = try #require(StoreConformance.checks.first { $0.name == name })
        switch engine {
        case .sqlite:
            let directory = try TemporaryDirectory()
            let store = try SQLiteStore(path: directory.path + "/conformance.sqlite")
            try await check.run(store)
        case .postgres:
            let store = try await PostgresServer.shared.get().freshStore()
            do {
                try await check.run(store)
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        }
    }
}

@Suite("Storage: SQLite")
struct SQLiteStoreTests {
    @Test("The audit table refuses updates and deletes")
    func appendOnly() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(path: directory.path + "/audit.sqlite")
        _ = try await store.write { try $0.appendAudit(StoreConformance.entry("c1", .proposed)) }
        await #expect(throws: StoreError.self) {
            try await store.execute(sql: "UPDATE audit SET summary = 'edited'")
        }
        await #expect(throws: StoreError.self) {
            try await store.execute(sql: "DELETE FROM audit")
        }
    }

    @Test("A database from a newer Switchboard is refused, clearly")
    func newerSchema() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/newer.sqlite"
        let store = try SQLiteStore(path: path)
        try await store.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('999_from_the_future')")
        try store.close()
        let error = #expect(throws: StoreError.self) { try SQLiteStore(path: path) }
        #expect(error?.code == .schemaTooNew)
        #expect(error?.message.contains("999_from_the_future") == true)
    }

    @Test("Widening the outbox's kinds (migration 010) keeps every row, id and index of a database made before it")
    func outboxKindsMigration() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/older.sqlite"
        // A database as the binary before migration 010 left it, with an outbox row in it.
        let queue = try DatabaseQueue(path: path)
        try SQLiteMigrations.migrator.migrate(queue, upTo: "009_api_key_senders")
        try await queue.write { db in
            try db.execute(sql: """
                INSERT INTO outbox (id, delivery_key, channel, conversation, text, kind, created_at, next_attempt_at, subject)
                VALUES (41, 'reply-7', 'email', 'sam@example.org', 'kept', 'notice', 1, 1, 'Hello')
                """)
        }
        let indexesBefore = try await queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name") }
        try queue.close()

        let store = try SQLiteStore(path: path)
        let due = try await store.read { try $0.dueOutbound(channels: ["email"], now: Date(timeIntervalSince1970: 10), limit: 10) }
        #expect(due.map(\.id.rawValue) == [41] && due.first?.subject == "Hello" && due.first?.text == "kept")
        let next = try await store.write { tx in
            try tx.enqueueOutbound(OutboundDraft(
                deliveryKey: "send-m1-0", conversation: ConversationKey(channel: "email", conversation: ConversationID("carol@example.org")), recipient: nil,
                text: "dictated", inReplyTo: nil, thread: nil, kind: .relayed, correlationID: nil, subject: "Report"
            ), at: Date(timeIntervalSince1970: 2))
        }
        #expect(next.rawValue == 42, "ids go on after the copied rows")
        try store.close()
        let indexesAfter = try await DatabaseQueue(path: path).read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' ORDER BY name") }
        #expect(indexesAfter == indexesBefore, "\(indexesAfter)")
    }

    @Test("Processes opening one new database at the same moment all start: the second to reach a migration goes on from the first's")
    func concurrentMigrations() throws {
        // Found by the fault matrix: `serve` and `keys create` started together on a new
        // data directory, and one of them stopped with "duplicate column name".
        for _ in 0..<3 {
            let directory = try TemporaryDirectory()
            let results = Locked<[RunResult]>([])
            DispatchQueue.concurrentPerform(iterations: 6) { index in
                let result = Result { try Binary.run(["keys", "create", "--data-dir", directory.path, "--name", "k\(index)", "--scope", "read"]) }
                results.withLock { $0.append((try? result.get()) ?? RunResult(status: -1, signalled: false, stdout: "", stderr: "\(result)")) }
            }
            for result in results.withLock({ $0 }) {
                #expect(result.status == 0, "\(result.stderr)")
            }
            let keys = try DatabaseQueue(path: directory.path + "/switchboard.sqlite").read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM api_keys") }
            #expect(keys == 6)
        }
    }

    @Test("A file that is not a database is refused, clearly")
    func corrupt() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/corrupt.sqlite"
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StoreError.self) { try SQLiteStore(path: path) }
        #expect(error?.code == .corrupt)
    }
}

import Foundation

@Suite("Retention")
struct RetentionTests {
    @Test("A pruning round removes per-request and per-thread state past its age in batches, and keeps the channels' positions")
    func round() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(path: directory.path + "/retention.sqlite")
        try await store.write { tx in
            for index in 0..<2500 { try tx.setCursor("api.reply_callback.k\(index)", value: "https://hooks.example/\(index)") }
            try tx.setCursor("email.thread.t1", value: "{}")
            try tx.setCursor("email.cursor", value: "{}")
            try tx.setCursor("matrix.next_batch", value: "s9")
        }
        var logger = Logger(label: "retention")
        logger.logLevel = .critical
        let service = RetentionService(store: store, policy: Retention(channelState: 86400, confirmations: 86400), logger: logger)
        let early = try await service.prune(now: Date())
        #expect(early.cursors == 0, "nothing is a day old yet")
        let later = try await service.prune(now: Date().addingTimeInterval(2 * 86400))
        #expect(later.cursors == 2501, "every callback and thread row, over several batches: \(later)")
        let kept = try await store.read { tx in try ["email.cursor", "matrix.next_batch"].map { try tx.cursor($0) } }
        #expect(kept == ["{}", "s9"])
    }
}
