import SwitchboardModel
import SwitchboardPostgres
import SwitchboardSQLite
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
