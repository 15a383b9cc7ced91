// The learner on PostgreSQL with two instances: it learns once for the deployment (the lease
// `learner`), and another instance takes over when the holder is gone.

import Foundation
import Logging
import SwitchboardEngine
import SwitchboardModel
import SwitchboardPostgres
import SwitchboardStorage
import SwitchboardTesting
import Testing

@Suite("Learning on PostgreSQL", .serialized)
struct LearningPostgresTests {
    static func meeting(_ n: Int, at: Date) -> AuditEntry {
        AuditEntry(
            at: at, callID: ToolCallID("m\(n)"), person: "@alice:example.org",
            conversation: ConversationKey(channel: "matrix", conversation: ConversationID("!room:example.org")), tool: "calendar.create", risk: .medium,
            status: .executed, arguments: ["title": "sync", "duration_minutes": 45], summary: "added event \(n)", correlationID: CorrelationID("in-\(n)")
        )
    }

    @Test("Two instances learn once for the deployment, and the second takes over when the first is gone")
    func onceForDeployment() async throws {
        let store = try await PostgresServer.shared.get().freshStore()
        do {
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            try await store.write { tx in
                for n in 0..<6 { try tx.appendAudit(Self.meeting(n, at: start.addingTimeInterval(Double(n) * 3600))) }
            }
            let clock = ManualClock(start.addingTimeInterval(86400))
            var logger = Logger(label: "learner")
            logger.logLevel = .critical
            let first = Learner(store: store, policy: LearningPolicy(), sharing: WorkSharing(instance: "a", lease: 60), clock: clock, logger: logger, batch: 2)
            let second = Learner(store: store, policy: LearningPolicy(), sharing: WorkSharing(instance: "b", lease: 60), clock: clock, logger: logger, batch: 2)
            // Both at once, a few times over: every record is read once in all.
            let read = try await withThrowingTaskGroup(of: Int.self) { group in
                for learner in [first, second, first, second] { group.addTask { try await learner.catchUp() } }
                return try await group.reduce(0, +)
            }
            #expect(read == 6, "records read in all: \(read)")
            let lease = try await store.read { try $0.lease("learner") }
            let evidence = try await store.read { try $0.preferences(of: "@alice:example.org") }.first { $0.key == LearnedKey.prefix + LearnedKey.meetingMinutes }
            #expect(LearnedEvidence(json: evidence?.value ?? .null).observations == 6)
            #expect(LearnedEvidence(json: evidence?.value ?? .null).decision(LearningPolicy())?.value == "45")

            // The holder stops; once its lease lapses the other learns what came after.
            let holder = try #require(lease?.holder)
            let other = holder == "a" ? second : first
            try await store.write { tx in try tx.appendAudit(Self.meeting(6, at: start.addingTimeInterval(7 * 3600))) }
            #expect(try await other.catchUp() == 0, "the lease is still held")
            clock.advance(by: 61)
            #expect(try await other.catchUp() == 1)
            let after = try await store.read { try $0.preferences(of: "@alice:example.org") }.first { $0.key == LearnedKey.prefix + LearnedKey.meetingMinutes }
            #expect(LearnedEvidence(json: after?.value ?? .null).observations == 7)
            #expect(try await store.read { try $0.lease("learner") }?.holder != holder)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
}
