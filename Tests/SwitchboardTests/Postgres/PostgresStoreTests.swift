// The PostgreSQL engine's own behaviour beyond the conformance suite: bad URLs and servers,
// schema versions, a connection cut in the middle of a transaction, and what several instances
// rely on (leases skipped, not waited for, while another transaction takes them).

import Foundation
import Logging
import SwitchboardModel
import SwitchboardPostgres
import SwitchboardStorage
import SwitchboardTesting
import Testing

@Suite("Storage: PostgreSQL")
struct PostgresStoreTests {
    let logger = Logger(label: "test.postgres")

    func open(_ url: PostgresURL, migrate: Bool = true, connectTimeout: Duration = PostgresServer.connectTimeout) async throws -> PostgresStore {
        try await PostgresStore(url: url, options: .init(poolSize: 4, connectTimeout: connectTimeout), migrate: migrate, logger: logger)
    }

    @Test("A wrong password is refused at start, clearly, and the password is not repeated")
    func wrongPassword() async throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let wrong = try server.url(database: url.database, password: "not-the-password")
        let error = await #expect(throws: StoreError.self) { try await open(wrong) }
        #expect(error?.code == .cannotOpen)
        #expect(error?.description.contains("password") == true, "says what to check: \(String(describing: error))")
        #expect(error?.description.contains("not-the-password") == false)
    }

    @Test("A database that does not exist is refused at start, clearly")
    func wrongDatabase() async throws {
        let server = try PostgresServer.shared.get()
        let error = await #expect(throws: StoreError.self) { try await open(try server.url(database: "no_such_database")) }
        #expect(error?.code == .cannotOpen)
        #expect(error?.message.contains("no such database") == true, "\(String(describing: error))")
    }

    @Test("A host or port where no database listens is a clear, transient error")
    func wrongHost() async throws {
        let server = try PostgresServer.shared.get()
        let error = await #expect(throws: StoreError.self) {
            try await open(try server.url(database: "postgres", port: try freePort()), connectTimeout: .seconds(5))
        }
        #expect(error?.code == .io)
        #expect(error?.message.contains("127.0.0.1") == true, "names where it tried: \(String(describing: error))")
        let unknownHost = try PostgresURL("postgres://switchboard:pw@no-such-host.invalid:5432/db")
        let dns = await #expect(throws: StoreError.self) { try await open(unknownHost, connectTimeout: .seconds(5)) }
        #expect(dns?.code == .io)
    }

    @Test("Bad database URLs say which part is wrong, without the password", arguments: [
        ("postgres://:secret@host/db", "user"),
        ("postgres://user:secret@/db", "host"),
        ("postgres://user:secret@host:5432", "database name"),
        ("postgres://user:secret@host:99999/db", "port"),
        ("postgres://user:secret@host/db?sslmode=sometimes", "sslmode"),
        ("postgres://user:secret@host/db?pool=3", "unknown parameter"),
    ])
    func badURLs(text: String, complaint: String) {
        let error = #expect(throws: PostgresURLError.self) { try PostgresURL(text) }
        #expect(error?.description.contains(complaint) == true, "\(String(describing: error))")
        #expect(error?.description.contains("secret") == false)
    }

    @Test("A URL's parts, percent-escapes and TLS mode are read as libpq reads them")
    func goodURL() throws {
        let url = try PostgresURL("postgresql://bot%40team:p%3Ass@db.example.org:6543/switch%20board?sslmode=verify-full")
        #expect(url.user == "bot@team" && url.password == "p:ss" && url.host == "db.example.org" && url.port == 6543)
        #expect(url.database == "switch board" && url.tls == .verifyFull)
        #expect(url.description == "postgres://bot@team@db.example.org:6543/switch board?sslmode=verify-full")
        #expect(try PostgresURL("postgres://u@h/d").tls == .prefer)
    }

    @Test("A database on an older schema is refused without migrating, then brought up to date")
    func olderSchema() async throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let store = try await open(url)
        try await store.execute(sql: "DELETE FROM schema_migrations WHERE identifier = '005_leases';\nDROP TABLE leases;")
        await store.close()
        let error = await #expect(throws: StoreError.self) { try await open(url, migrate: false) }
        #expect(error?.message.contains("switchboard migrate") == true, "\(String(describing: error))")
        let migrated = try await open(url)
        let version = try await migrated.schemaVersion()
        #expect(version.stored == version.known)
        _ = try await migrated.write { try $0.acquireLeases(["x"], holder: "a", until: Date(), now: Date()) }
        await migrated.close()
    }

    @Test("A database from a newer Switchboard is refused, clearly, and left untouched")
    func newerSchema() async throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let store = try await open(url)
        try await store.execute(sql: "INSERT INTO schema_migrations (identifier, applied_at) VALUES ('999_from_the_future', 0)")
        await store.close()
        let error = await #expect(throws: StoreError.self) { try await open(url) }
        #expect(error?.code == .schemaTooNew)
        #expect(error?.message.contains("999_from_the_future") == true)
    }

    @Test("The audit table refuses updates, deletes and truncation")
    func appendOnly() async throws {
        let store = try await PostgresServer.shared.get().freshStore()
        _ = try await store.write { try $0.appendAudit(StoreConformance.entry("c1", .proposed)) }
        for sql in ["UPDATE audit SET summary = 'edited'", "DELETE FROM audit", "TRUNCATE audit"] {
            let error = await #expect(throws: StoreError.self, "\(sql)") { try await store.execute(sql: sql) }
            #expect(error?.code == .constraint)
        }
        let records = try await store.read { try $0.auditRecords(AuditQuery()) }
        #expect(records.count == 1 && records[0].entry.summary == StoreConformance.entry("c1", .proposed).summary)
        await store.close()
    }

    @Test("A connection cut in the middle of a transaction leaves nothing half-written, and the next write reconnects")
    func connectionCut() async throws {
        let server = try PostgresServer.shared.get()
        let url = try server.createDatabase()
        let store = try await open(url)
        let admin = try await open(url)
        let gate = Gate()
        async let cut: Void = {
            // Wait for the transaction to be open and idle, then end its server process.
            for _ in 0..<200 {
                let count = try await admin.terminateIdleTransactions()
                if count > 0 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            gate.open()
        }()
        let error = await #expect(throws: StoreError.self) {
            try await store.write { tx in
                _ = try tx.insertInbound(StoreConformance.message("e1"))
                _ = try tx.appendAudit(StoreConformance.entry("c1", .proposed))
                gate.wait()
                _ = try tx.insertInbound(StoreConformance.message("e2"))
            }
        }
        try await cut
        #expect(error?.isTransient == true, "a lost connection can be retried: \(String(describing: error))")
        let depth = try await store.read { try $0.depth(channel: nil) }
        let audit = try await store.read { try $0.auditRecords(AuditQuery()) }
        #expect(depth.pendingInbound == 0 && audit.isEmpty, "nothing of the cut transaction was written")
        let id = try await store.write { try $0.insertInbound(StoreConformance.message("e3")) }
        guard case .inserted = id else { Issue.record("the write after the cut was \(id)"); return }
        await store.close()
        await admin.close()
    }

    @Test("A lease another transaction is taking is skipped at once, not waited for")
    func skipLocked() async throws {
        let store = try await PostgresServer.shared.get().freshStore()
        let now = Date()
        // Lease rows exist after their first use; only the very first taking of a name can wait
        // (briefly) for another transaction creating the same row.
        try await store.write { tx in
            _ = try tx.acquireLeases(["inbox:x", "inbox:y", "inbox:z"], holder: "setup", until: now, now: now)
            try tx.releaseLeases(["inbox:x", "inbox:y", "inbox:z"], holder: "setup")
        }
        let holding = Gate()
        let release = Gate()
        async let first: [String] = store.write { tx in
            let taken = try tx.acquireLeases(["inbox:x", "inbox:y"], holder: "a", until: now.addingTimeInterval(30), now: now)
            holding.open()
            release.wait()
            return taken
        }
        try await holding.waitAsync()
        // The first transaction stays open until the second has its answer. Had the second
        // waited for the first's locks, only this safety release would end both.
        let safety = release.openLater(after: .seconds(120))
        let second = try await store.write { try $0.acquireLeases(["inbox:x", "inbox:z"], holder: "b", until: now.addingTimeInterval(30), now: now) }
        let waited = safety.fired
        release.open()
        #expect(try await first == ["inbox:x", "inbox:y"])
        #expect(second == ["inbox:z"], "the lease being taken was skipped: \(second)")
        #expect(!waited, "the second transaction waited for the first instead of skipping its lease")
        await store.close()
    }
}

extension PostgresStoreTests {
    @Test("A due reminder another instance is firing is skipped, not fired twice")
    func remindersFireOnce() async throws {
        let store = try await PostgresServer.shared.get().freshStore()
        let now = Date()
        try await store.write { tx in
            for title in ["stretch", "drink water"] {
                _ = try tx.records.add(ToolRecordDraft(kind: "reminder", owner: "alice", title: title, status: "pending", at: now.addingTimeInterval(-1)), at: now)
            }
        }
        let holding = Gate()
        let release = Gate()
        // The first instance fires both (and marks them) in a transaction still open…
        async let first: [String] = store.write { tx in
            let due = try tx.records.due(kind: "reminder", status: "pending", now: now, limit: 10)
            for var record in due {
                record.status = "fired"
                try tx.records.update(record)
            }
            holding.open()
            release.wait()
            return due.map(\.title)
        }
        try await holding.waitAsync()
        // …while the second looks: it sees nothing to fire, without waiting for the first
        // (which stays open until the second has its answer, or a safety release).
        let safety = release.openLater(after: .seconds(120))
        let second = try await store.write { try $0.records.due(kind: "reminder", status: "pending", now: now, limit: 10).map(\.title) }
        let waited = safety.fired
        release.open()
        #expect(try await first.sorted() == ["drink water", "stretch"])
        #expect(second.isEmpty, "the second instance skipped the reminders being fired: \(second)")
        #expect(!waited, "the second transaction waited for the first instead of skipping the reminders")
        let after = try await store.write { try $0.records.due(kind: "reminder", status: "pending", now: now, limit: 10) }
        #expect(after.isEmpty, "fired once, and marked")
        await store.close()
    }
}

/// Whether a safety release had to open a gate.
final class SafetyRelease: @unchecked Sendable {
    private let lock = NSLock()
    private var didFire = false
    func mark() { lock.withLock { didFire = true } }
    var fired: Bool { lock.withLock { didFire } }
}

/// A one-shot gate that a transaction body (on a store thread) can block on.
final class Gate: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var isOpen = false

    func open() {
        let first = lock.withLock {
            defer { isOpen = true }
            return !isOpen
        }
        if first { semaphore.signal() }
    }

    /// Blocks the calling thread (never a Swift concurrency thread) until opened.
    func wait() {
        semaphore.wait()
        semaphore.signal()
    }

    var opened: Bool {
        lock.withLock { isOpen }
    }

    /// Opens the gate after `delay` unless it is open by then; `fired` tells whether it was
    /// this that opened it.
    func openLater(after delay: Duration) -> SafetyRelease {
        let release = SafetyRelease()
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(delay.components.seconds * 1000))) {
            if !self.opened {
                release.mark()
                self.open()
            }
        }
        return release
    }

    func waitAsync() async throws {
        while !opened {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
