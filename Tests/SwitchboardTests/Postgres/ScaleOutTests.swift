// Several `switchboard serve` processes on one PostgreSQL database: work shared by leases,
// one of them killed with SIGKILL in the middle, and the mailbox reader taken over.

import Foundation
import Logging
import NIOHTTP1
import SwitchboardEmail
import SwitchboardModel
import SwitchboardPostgres
import SwitchboardStorage
import Testing

@Suite("Scale-out on PostgreSQL", .serialized)
struct ScaleOutTests {
    static let conversations = 50
    static let perConversation = 20

    @Test("With PostgreSQL, serve refuses to start without secrets.key, and says how to make one")
    func secretsKeyRequired() async throws {
        let pg = try PostgresServer.shared.get()
        let database = try pg.createDatabase()
        let url = "postgres://switchboard:\(pg.password)@127.0.0.1:\(pg.port)/\(database.database)?sslmode=disable"
        let data = try TemporaryDirectory()
        let result = try Binary.run(
            ["serve", "--data-dir", data.path],
            environment: ["SWITCHBOARD_DATABASE_URL": url, "SWITCHBOARD_HTTP_ENABLED": "true", "SWITCHBOARD_HTTP_PORT": String(try freePort())]
        )
        #expect(result.status != 0)
        #expect(result.stderr.contains("secrets.key is required with PostgreSQL") && result.stderr.contains("openssl rand -base64 32"), "\(result.stderr)")
        #expect(!result.stderr.contains(pg.password), "the database password is not in the message")
    }

    @Test("Three instances answer 1,000 messages in 50 conversations exactly once and in order, one killed with SIGKILL mid-way; its mailbox reader is taken over")
    func threeInstances() async throws {
        let pg = try PostgresServer.shared.get()
        let database = try pg.createDatabase()
        let url = "postgres://switchboard:\(pg.password)@127.0.0.1:\(pg.port)/\(database.database)?sslmode=disable"
        let servers = try MailServers()
        let environment = servers.botEnvironment.merging([
            "SWITCHBOARD_DATABASE_URL": url,
            // Every instance opens what the others sealed (the Matrix session, say).
            "SWITCHBOARD_SECRETS_KEY": TestSecrets.register("test-key-\(UUID().uuidString)"),
            "SWITCHBOARD_HTTP_ENABLED": "true",
            "SWITCHBOARD_DATABASE_LEASE_SECONDS": "3",
            "SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECONDS": "90",
            "SWITCHBOARD_LOG_LEVEL": "info",
            // Each conversation adds 20 notes in quick succession.
            "SWITCHBOARD_RATE_LIMITS_NOTES_PER_MINUTE": "100000",
            "SWITCHBOARD_RATE_LIMITS_NOTES_BURST": "100000",
        ]) { $1 }
        let key = try runCommand(Binary.path, ["keys", "create", "--name", "load", "--scope", "send", "--scope", "read", "--any-sender"], environment: ["SWITCHBOARD_DATABASE_URL": url, "SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECONDS": "90"])
            .split(separator: "\n").last.map(String.init) ?? ""
        let directories = try (0..<3).map { _ in try TemporaryDirectory() }
        let bots = try directories.map { try RunningBot(dataDir: $0.path, environment: environment) }
        for bot in bots { try await Self.waitUntilUp(bot) }
        let store = try await PostgresStore(
            url: database, options: .init(poolSize: 2, connectTimeout: PostgresServer.connectTimeout), logger: Logger(label: "test.scale-out")
        )
        defer { Task { await store.close() } }

        // The instance reading the mailbox: its lease names its process.
        let readerLease = try await Self.waitForLease(store, prefix: "poller:email:", timeout: 30)
        let victim = try #require(bots.first { readerLease.holder.contains("-\($0.process.processIdentifier)-") }, "lease holder \(readerLease.holder)")
        let survivors = bots.filter { $0 !== victim }

        // First half to all three, while they work through it the mailbox reader is killed,
        // then the second half to the two left.
        try await Self.send(rounds: 0..<(Self.perConversation / 2), to: bots, key: key)
        let atKill = try await store.read { try $0.depth(channel: nil) }
        kill(victim.process.processIdentifier, SIGKILL)
        victim.process.waitUntilExit()
        let killedAt = Date()
        try await Self.send(rounds: (Self.perConversation / 2)..<Self.perConversation, to: survivors, key: key)

        // A surviving instance takes the mailbox over and answers mail.
        let takeover = try await Self.waitForLease(store, prefix: "poller:email:", timeout: 30) { lease in
            survivors.contains { lease.holder.contains("-\($0.process.processIdentifier)-") }
        }
        let takeoverSeconds = Date().timeIntervalSince(killedAt)
        try servers.send(mail(subject: "After the crash", body: "what can you do?").text, from: "alice@example.test")

        // Every message answered.
        let total = Self.conversations * Self.perConversation
        let deadline = Date().addingTimeInterval(180)
        var depth = try await store.read { try $0.depth(channel: nil) }
        while depth.pendingInbound > 0 || depth.pendingOutbound > 0, Date() < deadline {
            try await Task.sleep(for: .milliseconds(250))
            depth = try await store.read { try $0.depth(channel: nil) }
        }
        #expect(depth.pendingInbound == 0 && depth.pendingOutbound == 0, "all answered and delivered: \(depth)")

        // Exactly once and in order: each conversation's person has its 20 notes, each once,
        // in the order sent; each message has one reply.
        for conversation in 0..<Self.conversations {
            let notes = try await store.read { try $0.notes.list(owner: PersonID("api:p\(conversation)")) }
            let expected = (0..<Self.perConversation).map { "c\(conversation) m\($0)" }
            #expect(notes.map(\.text) == expected, "conversation \(conversation): \(notes.map(\.text))")
        }
        let replies = try await store.read { reader in
            try (0..<Self.conversations).flatMap { conversation in
                try (0..<Self.perConversation).map { round in
                    try reader.outboundReplies(channel: "api", inReplyTo: "c\(conversation)-m\(round)").count
                }
            }
        }
        #expect(replies.count == total && replies.allSatisfy { $0 == 1 }, "one reply per message: \(Dictionary(grouping: replies, by: { $0 }).mapValues(\.count))")

        // The mail that arrived after the crash was read by the new reader and answered.
        let answers = try await servers.waitForMessages(of: "alice", count: 1, timeout: .seconds(60))
        #expect(answers.contains { $0.parsed.subject.contains("After the crash") }, "alice got an answer by email")

        // The audit chain is one unbroken chain across the instances.
        let records = try await store.read { try $0.auditRecords(AuditQuery()) }
        let head = try await store.read { try $0.auditHead() }
        #expect(AuditChain.verify(records, head: head) == .intact(records: records.count))
        print("scale-out: \(total) messages answered; mailbox reader taken over by \(takeover.holder) \(String(format: "%.1f", takeoverSeconds)) s after SIGKILL; \(atKill.pendingInbound) messages were waiting when it was killed")
        // SIGTERM drains and exits cleanly, the mailbox reader and the one standing by alike.
        for bot in survivors {
            try bot.stop()
            #expect(bot.process.terminationStatus == 0, "a clean exit after SIGTERM:\n\(bot.log.suffix(2000))")
        }
    }

    static func waitUntilUp(_ bot: RunningBot) async throws {
        try await APIServer.waitUntilUp(bot)
        guard bot.process.isRunning else { throw HarnessError(description: "serve exited:\n\(bot.log)") }
    }

    /// Posts round after round: each conversation's messages in order (one at a time), the
    /// conversations side by side, each post to the next instance in turn.
    static func send(rounds: Range<Int>, to bots: [RunningBot], key: String) async throws {
        let ports = bots.map(\.httpPort)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for conversation in 0..<conversations {
                group.addTask {
                    for round in rounds {
                        let port = ports[(conversation + round) % ports.count]
                        let body: JSONValue = [
                            "sender": .string("p\(conversation)"), "conversation": .string("conv\(conversation)"),
                            "text": .string("add a note: c\(conversation) m\(round)"), "idempotency_key": .string("c\(conversation)-m\(round)"),
                        ]
                        let response = try await APIClient.send(.POST, "http://127.0.0.1:\(port)/v1/messages", key: key, body: Data(body.canonicalText.utf8))
                        guard [200, 202].contains(response.status) else {
                            throw HarnessError(description: "posting c\(conversation)-m\(round) to :\(port) answered \(response.status): \(response.text)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func waitForLease(_ store: PostgresStore, prefix: String, timeout: TimeInterval, where accept: @escaping @Sendable (Lease) -> Bool = { _ in true }) async throws -> Lease {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let leases = try await store.leases(prefix: prefix)
            if let lease = leases.first(where: { $0.expiresAt > Date() && !$0.holder.isEmpty && accept($0) }) { return lease }
            if Date() >= deadline { break }  // looked once more after the deadline (see `eventually`)
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError(description: "no lease \(prefix)… as expected within \(timeout) s")
    }

    static func waitUntil(timeout: TimeInterval, _ check: @Sendable () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await check() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await check()
    }
}
