// The storage conformance suite: what every engine must do, written once.
//
// Each check takes a fresh, empty store and throws `ConformanceFailure` on the first broken
// expectation. The test target runs every check against each engine (SQLite and PostgreSQL).

public import Foundation
public import SwitchboardModel
public import SwitchboardStorage

/// A broken expectation, with where it was.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public var description: String
}

/// The checks.
public enum StoreConformance {
    /// Every check by name.
    public static let checks: [(name: String, run: @Sendable (any Store) async throws -> Void)] = [
        ("the same inbound event is stored once", duplicateInbound),
        ("pending heads give one message per conversation, oldest first", pendingHeads),
        ("pending inbound gives every pending message in arrival order", pendingInOrder),
        ("marking an inbound message done happens once", inboundDoneOnce),
        ("outbox gives due messages in order, never past one waiting for a retry", outboxOrder),
        ("a delivery key is unique", outboxUniqueKey),
        ("a failed delivery waits for its retry time and can give up", outboxRetry),
        ("a confirmation resolves once", confirmationOnce),
        ("audit records chain and verify", auditChain),
        ("a tool call passes through each audit state once", auditStateOnce),
        ("a failed transaction leaves nothing behind", rollback),
        ("a savepoint rolls back only its own changes", savepointRollback),
        ("undo entries come back newest first until used", undoEntries),
        ("rate buckets persist", rateBuckets),
        ("cursors persist", cursors),
        ("old cursors of the given families and old decided confirmations are pruned, nothing else", pruning),
        ("a channel's recent senders read back newest first, from a time on", inboundSightings),
        ("an inbound message keeps its addressing, gesture and unreadable content", inboundDetails),
        ("a delivered message is found by the channel's id for it", outboundByExternalID),
        ("notes belong to their owner and keep their ids on restore", notesOwnership),
        ("a conversation reads back with answers and delivery states", conversationRecords),
        ("confirmations read back with their outcome", confirmationRecords),
        ("audit records filter by tool, status, conversation, time and correlation", auditFilters),
        ("an API key is stored by hash and revoked once", apiKeys),
        ("preferences are per person and forgotten together", preferences),
        ("depth reports the age of the oldest waiting work", depthAges),
        ("tool records are per owner and kind, searchable, due in time order, restored with their ids", records),
        ("a channel identity links to one person, and unlinks", identities),
        ("a lease has one holder until it lapses or is given up", leases),
        ("claimed inbound work is one holder's, per conversation, in order", claims),
    ]

    public static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let key = ConversationKey(channel: "test", conversation: ConversationID("room"))

    static func expect(_ condition: Bool, _ message: String, line: Int = #line) throws {
        if !condition { throw ConformanceFailure(description: "StoreConformance.swift:\(line): \(message)") }
    }

    public static func message(_ id: String, conversation: String = "room", text: String = "hello", at: Date = t0) -> InboundMessage {
        InboundMessage(
            externalID: id,
            conversation: ConversationKey(channel: "test", conversation: ConversationID(conversation)),
            sender: Sender(id: "alice"),
            text: text,
            trust: TrustFacts(senderAuthenticated: true),
            receivedAt: at
        )
    }

    static func draft(_ key: String, conversation: String = "room") -> OutboundDraft {
        OutboundDraft(
            deliveryKey: key, conversation: ConversationKey(channel: "test", conversation: ConversationID(conversation)),
            recipient: "alice", text: "reply \(key)", inReplyTo: nil, thread: nil, kind: .reply, correlationID: nil
        )
    }

    static func duplicateInbound(_ store: any Store) async throws {
        let first = try await store.write { try $0.insertInbound(message("e1")) }
        let second = try await store.write { try $0.insertInbound(message("e1", text: "changed")) }
        guard case .inserted(let id) = first else { throw ConformanceFailure(description: "first insert was \(first)") }
        try expect(second == .duplicate(id), "second insert should be a duplicate of \(id), was \(second)")
        let heads = try await store.read { try $0.pendingInboundHeads(limit: 10) }
        try expect(heads.count == 1 && heads[0].message.text == "hello", "the original message is kept unchanged")
    }

    static func pendingHeads(_ store: any Store) async throws {
        try await store.write { tx in
            for (id, conversation) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("c1", "c"), ("b2", "b")] {
                _ = try tx.insertInbound(message(id, conversation: conversation))
            }
        }
        var heads = try await store.read { try $0.pendingInboundHeads(limit: 10) }
        try expect(heads.map(\.message.externalID) == ["a1", "b1", "c1"], "heads were \(heads.map(\.message.externalID))")
        let limited = try await store.read { try $0.pendingInboundHeads(limit: 2) }
        try expect(limited.map(\.message.externalID) == ["a1", "b1"], "limit keeps the oldest")
        let first = heads[0].id
        _ = try await store.write { try $0.markInboundDone(first, at: t0) }
        heads = try await store.read { try $0.pendingInboundHeads(limit: 10) }
        try expect(heads.map(\.message.externalID) == ["b1", "a2", "c1"], "after a1 is done, a2 is a head (in id order): \(heads.map(\.message.externalID))")
    }

    static func pendingInOrder(_ store: any Store) async throws {
        try await store.write { tx in
            for (id, conversation) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
                _ = try tx.insertInbound(message(id, conversation: conversation))
            }
        }
        let all = try await store.read { try $0.pendingInbound(limit: 10) }
        try expect(all.map(\.message.externalID) == ["a1", "b1", "a2"], "arrival order: \(all.map(\.message.externalID))")
        let first = all[0].id
        _ = try await store.write { try $0.markInboundDone(first, at: t0) }
        let rest = try await store.read { try $0.pendingInbound(limit: 1) }
        try expect(rest.map(\.message.externalID) == ["b1"], "done messages leave, limit applies")
    }

    static func inboundSightings(_ store: any Store) async throws {
        try await store.write { tx in
            for (index, id) in ["old", "a", "b"].enumerated() {
                var made = message(id, at: t0.addingTimeInterval(Double(index) * 100))
                if id == "b" { made.sender = Sender(id: "bob") }
                _ = try tx.insertInbound(made)
            }
            var elsewhere = message("x", at: t0.addingTimeInterval(150))
            elsewhere.conversation = ConversationKey(channel: "other", conversation: ConversationID("room"))
            _ = try tx.insertInbound(elsewhere)
        }
        let seen = try await store.read { try $0.inboundSightings(channel: "test", since: t0.addingTimeInterval(50), limit: 10) }
        try expect(seen == [
            InboundSighting(sender: "bob", externalID: "b", receivedAt: t0.addingTimeInterval(200)),
            InboundSighting(sender: "alice", externalID: "a", receivedAt: t0.addingTimeInterval(100)),
        ], "newest first, this channel, from the time on: \(seen)")
        let one = try await store.read { try $0.inboundSightings(channel: "test", since: t0, limit: 1) }
        try expect(one.map(\.externalID) == ["b"], "the limit keeps the newest")
    }

    static func inboundDoneOnce(_ store: any Store) async throws {
        let id = try await store.write { try $0.insertInbound(message("e1")).id }
        let first = try await store.write { try $0.markInboundDone(id, at: t0) }
        let second = try await store.write { try $0.markInboundDone(id, at: t0) }
        try expect(first && !second, "done once: \(first), \(second)")
        let pending = try await store.read { try $0.isInboundPending(id) }
        try expect(!pending, "no longer pending")
        let depth = try await store.read { try $0.depth(channel: nil) }
        try expect(depth.pendingInbound == 0, "depth counts no pending inbound")
    }

    static func outboxOrder(_ store: any Store) async throws {
        let ids = try await store.write { tx in
            try ["k1", "k2", "k3"].map { try tx.enqueueOutbound(draft($0, conversation: $0 == "k3" ? "other" : "room"), at: t0) }
        }
        var due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0, limit: 10) }
        try expect(due.map(\.deliveryKey) == ["k1", "k2", "k3"], "all due, in order: \(due.map(\.deliveryKey))")
        // k1 fails and waits for a retry: k2, in the same conversation, must wait behind it.
        try await store.write { try $0.markDeliveryFailed(ids[0], error: "down", nextAttempt: t0.addingTimeInterval(60)) }
        due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0, limit: 10) }
        try expect(due.map(\.deliveryKey) == ["k3"], "k2 waits behind k1: \(due.map(\.deliveryKey))")
        due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0.addingTimeInterval(60), limit: 10) }
        try expect(due.map(\.deliveryKey) == ["k1", "k2", "k3"], "after the retry time, in order: \(due.map(\.deliveryKey))")
        try await store.write { try $0.markDelivered(ids[0], at: t0, externalID: nil) }
        due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0, limit: 10) }
        try expect(due.map(\.deliveryKey) == ["k2", "k3"], "k2 follows k1: \(due.map(\.deliveryKey))")
        let other = try await store.read { try $0.dueOutbound(channels: ["elsewhere"], now: t0, limit: 10) }
        try expect(other.isEmpty, "other channels see nothing")
        // Every kind is stored and read back as itself.
        let kinds: [OutboundKind] = [.reply, .confirmationRequest, .notice, .relayed]
        try await store.write { tx in
            for kind in kinds {
                var made = draft("kind-\(kind.rawValue)", conversation: "kinds")
                made.kind = kind
                _ = try tx.enqueueOutbound(made, at: t0)
            }
        }
        let stored = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0.addingTimeInterval(60), limit: 20) }
            .filter { $0.conversation.conversation.rawValue == "kinds" }
        try expect(stored.map(\.kind) == kinds, "kinds read back: \(stored.map(\.kind))")
    }

    static func inboundDetails(_ store: any Store) async throws {
        var aside = message("g1")
        aside.addressed = false
        aside.gesture = .approve
        aside.replyTo = "$confirm"
        var media = message("g2")
        media.unreadable = .media("an image")
        var encrypted = message("g3")
        encrypted.unreadable = .encrypted
        let given = [aside, media, encrypted]
        _ = try await store.write { tx in try given.map { try tx.insertInbound($0) } }
        let stored = try await store.read { try $0.pendingInbound(limit: 10) }.map(\.message)
        try expect(stored == given, "stored as given: \(stored)")
    }

    static func outboundByExternalID(_ store: any Store) async throws {
        let ids = try await store.write { tx in try ["k1", "k2"].map { try tx.enqueueOutbound(draft($0), at: t0) } }
        try await store.write { tx in
            try tx.markDelivered(ids[0], at: t0, externalID: "$event1")
            try tx.markDelivered(ids[1], at: t0, externalID: nil)
        }
        let found = try await store.read { try $0.outbound(channel: "test", externalID: "$event1") }
        try expect(found?.deliveryKey == "k1", "found k1 by its event id: \(String(describing: found))")
        let elsewhere = try await store.read { try $0.outbound(channel: "other", externalID: "$event1") }
        try expect(elsewhere == nil, "another channel's id is another message")
    }

    static func outboxUniqueKey(_ store: any Store) async throws {
        _ = try await store.write { try $0.enqueueOutbound(draft("same"), at: t0) }
        do {
            _ = try await store.write { try $0.enqueueOutbound(draft("same"), at: t0) }
            throw ConformanceFailure(description: "a second message with the same delivery key was accepted")
        } catch let error as StoreError {
            try expect(error.code == .constraint, "expected a constraint error, got \(error.code)")
        }
    }

    static func outboxRetry(_ store: any Store) async throws {
        let id = try await store.write { try $0.enqueueOutbound(draft("k1"), at: t0) }
        try await store.write { try $0.markDeliveryFailed(id, error: "unreachable", nextAttempt: t0.addingTimeInterval(30)) }
        var due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0.addingTimeInterval(10), limit: 10) }
        try expect(due.isEmpty, "not due before its retry time")
        let next = try await store.read { try $0.nextOutboundAttempt(channels: ["test"]) }
        try expect(next.map { abs($0.timeIntervalSince(t0) - 30) < 0.001 } == true, "next attempt at +30s, was \(String(describing: next))")
        due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0.addingTimeInterval(31), limit: 10) }
        try expect(due.count == 1 && due[0].attempts == 1, "due again with one failed attempt")
        try await store.write { try $0.markDeliveryFailed(id, error: "rejected", nextAttempt: nil) }
        due = try await store.read { try $0.dueOutbound(channels: ["test"], now: t0.addingTimeInterval(1e6), limit: 10) }
        try expect(due.isEmpty, "given up")
        let depth = try await store.read { try $0.depth(channel: "test") }
        try expect(depth.pendingOutbound == 0, "a given-up message is not pending")
    }

    static func confirmation(_ id: String, expires: Date, number: Int = 1, sealed: String? = nil) -> PendingConfirmation {
        PendingConfirmation(
            callID: ToolCallID(id), requester: "alice", conversation: key, tool: "notes.delete",
            arguments: ["ids": [1, 2]], preview: "This will delete 2 notes", risk: .high, tainted: false,
            createdAt: t0, expiresAt: expires, correlationID: CorrelationID("in-1"), number: number, sealedArguments: sealed
        )
    }

    static func confirmationOnce(_ store: any Store) async throws {
        try await store.write { tx in
            try tx.savePendingConfirmation(confirmation("c1", expires: t0.addingTimeInterval(600), number: 1, sealed: "v1:c2VhbGVk"))
            try tx.savePendingConfirmation(confirmation("c2", expires: t0.addingTimeInterval(60), number: 2))
        }
        do {
            try await store.write { try $0.savePendingConfirmation(confirmation("c3", expires: t0, number: 2)) }
            throw ConformanceFailure(description: "two pending confirmations of one requester shared a number")
        } catch let error as StoreError {
            try expect(error.code == .constraint, "expected a constraint error, got \(error.code)")
        }
        let pending = try await store.read { try $0.pendingConfirmations(in: key) }
        try expect(pending.map(\.callID.rawValue) == ["c1", "c2"], "both pending in order")
        try expect(pending[0].arguments == ["ids": [1, 2]], "arguments round-trip")
        try expect(pending.map(\.sealedArguments) == ["v1:c2VhbGVk", nil], "sealed arguments round-trip")
        try expect(pending.map(\.number) == [1, 2], "numbers round-trip")
        let highest = try await store.read { try $0.highestConfirmationNumber(in: key, requester: "alice", since: t0) }
        try expect(highest == 2, "highest number since t0")
        let none = try await store.read { try $0.highestConfirmationNumber(in: key, requester: "bob", since: t0) }
        try expect(none == nil, "per requester")
        let expired = try await store.read { try $0.expiredConfirmations(now: t0.addingTimeInterval(61), limit: 10) }
        try expect(expired.map(\.callID.rawValue) == ["c2"], "only c2 expired")
        let first = try await store.write { try $0.resolveConfirmation(ToolCallID("c1"), outcome: .confirmed, at: t0) }
        let again = try await store.write { try $0.resolveConfirmation(ToolCallID("c1"), outcome: .declined, at: t0) }
        try expect(first && !again, "resolved once")
        let left = try await store.read { try $0.pendingConfirmations(in: key) }
        try expect(left.map(\.callID.rawValue) == ["c2"], "c1 no longer pending")
    }

    public static func entry(_ call: String, _ status: AuditStatus, summary: String = "ok") -> AuditEntry {
        AuditEntry(
            at: t0, callID: ToolCallID(call), person: "alice", conversation: key, tool: "notes.add", risk: .medium,
            status: status, arguments: ["text": "milk"], summary: summary, correlationID: CorrelationID("in-1")
        )
    }

    static func auditChain(_ store: any Store) async throws {
        let returned = try await store.write { tx in
            [try tx.appendAudit(entry("c1", .proposed)), try tx.appendAudit(entry("c1", .executed))]
        }
        let stored = try await store.read { try $0.auditRecords(AuditQuery()) }
        try expect(stored.map(\.sequence) == [1, 2], "sequences from 1")
        try expect(stored.map(\.entry) == [entry("c1", .proposed), entry("c1", .executed)], "entries read back exactly, in order")
        try expect(stored[0].previousHash == AuditChain.genesis && stored[1].previousHash == stored[0].hash, "chained")
        let records = returned.compactMap { $0 }
        try expect(records.isEmpty || records == stored, "records returned at append are the stored ones")
        let head = try await store.read { try $0.auditHead() }
        try expect(AuditChain.verify(stored, head: head) == .intact(records: 2), "verifies")
        let alice = try await store.read { try $0.auditRecords(AuditQuery(person: "alice", afterSequence: 1, limit: 5)) }
        try expect(alice.map(\.sequence) == [2], "paging by sequence")
        let nobody = try await store.read { try $0.auditRecords(AuditQuery(person: "bob")) }
        try expect(nobody.isEmpty, "filter by person")
    }

    static func auditStateOnce(_ store: any Store) async throws {
        _ = try await store.write { try $0.appendAudit(entry("c1", .executed)) }
        do {
            _ = try await store.write { try $0.appendAudit(entry("c1", .executed)) }
            throw ConformanceFailure(description: "a second 'executed' record for the same call was accepted")
        } catch let error as StoreError {
            try expect(error.code == .constraint, "expected a constraint error, got \(error.code)")
        }
        let head = try await store.read { try $0.auditHead() }
        try expect(head?.sequence == 1, "the refused record left no trace in the head")
        // Refused at once, inside the transaction, even when the first is not committed yet.
        try await store.write { tx in
            try tx.appendAudit(entry("c2", .proposed))
            do {
                try tx.savepoint { try tx.appendAudit(entry("c2", .proposed)) }
                throw ConformanceFailure(description: "a second 'proposed' record in one transaction was accepted")
            } catch let error as StoreError {
                try expect(error.code == .constraint, "expected a constraint error, got \(error.code)")
            }
            try tx.appendAudit(entry("c2", .executed))
        }
        let records = try await store.read { try $0.auditRecords(AuditQuery()) }
        let newHead = try await store.read { try $0.auditHead() }
        try expect(records.map(\.entry.callID.rawValue) == ["c1", "c2", "c2"] && AuditChain.verify(records, head: newHead) == .intact(records: 3), "the transaction went on after the refusal")
    }

    struct Abort: Error {}

    static func rollback(_ store: any Store) async throws {
        do {
            try await store.write { tx in
                _ = try tx.insertInbound(message("e1"))
                _ = try tx.appendAudit(entry("c1", .proposed))
                _ = try tx.notes.add(owner: "alice", text: "milk", at: t0)
                throw Abort()
            }
        } catch is Abort {}
        let depth = try await store.read { try $0.depth(channel: nil) }
        let audit = try await store.read { try $0.auditRecords(AuditQuery()) }
        let notes = try await store.read { try $0.notes.list(owner: "alice") }
        try expect(depth.pendingInbound == 0 && audit.isEmpty && notes.isEmpty, "nothing committed")
    }

    static func savepointRollback(_ store: any Store) async throws {
        try await store.write { tx in
            _ = try tx.notes.add(owner: "alice", text: "kept", at: t0)
            do {
                try tx.savepoint {
                    _ = try tx.notes.add(owner: "alice", text: "dropped", at: t0)
                    throw Abort()
                }
            } catch is Abort {}
        }
        let notes = try await store.read { try $0.notes.list(owner: "alice") }
        try expect(notes.map(\.text) == ["kept"], "only the savepoint's change rolled back: \(notes.map(\.text))")
    }

    static func undoEntries(_ store: any Store) async throws {
        try await store.write { tx in
            try tx.recordUndo(UndoEntry(callID: ToolCallID("c1"), person: "alice", conversation: key, tool: "notes.add", payload: ["id": 1], description: "first", createdAt: t0))
            try tx.recordUndo(UndoEntry(callID: ToolCallID("c2"), person: "alice", conversation: key, tool: "notes.add", payload: nil, description: "second", createdAt: t0.addingTimeInterval(1)))
        }
        var last = try await store.read { try $0.lastUndoEntry(for: "alice") }
        try expect(last?.callID.rawValue == "c2" && last?.payload == nil, "newest first; irreversible has no payload")
        try await store.write { try $0.markUndone(ToolCallID("c2"), at: t0) }
        last = try await store.read { try $0.lastUndoEntry(for: "alice") }
        try expect(last?.callID.rawValue == "c1" && last?.payload == ["id": 1], "then the older one")
        let bob = try await store.read { try $0.lastUndoEntry(for: "bob") }
        try expect(bob == nil, "per person")
    }

    static func rateBuckets(_ store: any Store) async throws {
        try await store.write { try $0.setRateBucket(person: "alice", category: "notes", state: RateBucketState(tokens: 2.5, updatedAt: t0)) }
        let state = try await store.read { try $0.rateBucket(person: "alice", category: "notes") }
        try expect(state == RateBucketState(tokens: 2.5, updatedAt: t0), "bucket round-trips: \(String(describing: state))")
        let other = try await store.read { try $0.rateBucket(person: "alice", category: "tasks") }
        try expect(other == nil, "per category")
    }

    static func cursors(_ store: any Store) async throws {
        try await store.write { try $0.setCursor("matrix.next_batch", value: "s1") }
        try await store.write { try $0.setCursor("matrix.next_batch", value: "s2") }
        let value = try await store.read { try $0.cursor("matrix.next_batch") }
        try expect(value == "s2", "latest cursor kept")
        try await store.write { try $0.deleteCursor("matrix.next_batch") }
        let deleted = try await store.read { try $0.cursor("matrix.next_batch") }
        try expect(deleted == nil, "a deleted cursor is gone")
    }

    static func pruning(_ store: any Store) async throws {
        // Cursors are stamped with the time they are written (the wall clock): all of these are
        // "before" a time a minute from now, none before one a minute ago.
        try await store.write { tx in
            for name in ["api.reply_callback.k1", "api.reply_callback.k2", "email.thread.t1", "email.cursor", "api_reply_callbackX", "api.reply_callback", "email.thread/", "email.threae"] {
                try tx.setCursor(name, value: "v")
            }
        }
        let soon = Date().addingTimeInterval(60)
        let none = try await store.write { try $0.pruneCursors(prefixes: ["api.reply_callback.", "email.thread."], before: Date().addingTimeInterval(-60), limit: 10) }
        try expect(none == 0, "nothing recent is pruned: \(none)")
        let one = try await store.write { try $0.pruneCursors(prefixes: ["api.reply_callback.", "email.thread."], before: soon, limit: 1) }
        try expect(one == 1, "the limit holds: \(one)")
        let rest = try await store.write { try $0.pruneCursors(prefixes: ["api.reply_callback.", "email.thread."], before: soon, limit: 10) }
        try expect(rest == 2, "the rest of those families: \(rest)")
        let neighbours = ["email.cursor", "api_reply_callbackX", "api.reply_callback", "email.thread/", "email.threae"]
        let kept = try await store.read { tx in try neighbours.map { try tx.cursor($0) } }
        try expect(kept == neighbours.map { _ in "v" }, "other cursors stay, also names next to a family's (a prefix is literal): \(kept)")

        try await store.write { tx in
            try tx.savePendingConfirmation(confirmation("p1", expires: t0.addingTimeInterval(600), number: 1))
            try tx.savePendingConfirmation(confirmation("p2", expires: t0.addingTimeInterval(600), number: 2))
            try tx.savePendingConfirmation(confirmation("p3", expires: t0.addingTimeInterval(600), number: 3))
            _ = try tx.resolveConfirmation(ToolCallID("p1"), outcome: .declined, at: t0.addingTimeInterval(5))
            _ = try tx.resolveConfirmation(ToolCallID("p2"), outcome: .expired, at: t0.addingTimeInterval(500))
        }
        let decided = try await store.write { try $0.pruneConfirmations(decidedBefore: t0.addingTimeInterval(100), limit: 10) }
        try expect(decided == 1, "only the one decided before: \(decided)")
        let left = try await store.read { tx in try ["p1", "p2", "p3"].map { try tx.confirmationRecord(ToolCallID($0)) != nil } }
        try expect(left == [false, true, true], "a pending one is never pruned: \(left)")
    }

    static func notesOwnership(_ store: any Store) async throws {
        let (a, b) = try await store.write { tx in
            (try tx.notes.add(owner: "alice", text: "Buy MILK", at: t0), try tx.notes.add(owner: "bob", text: "milk too", at: t0))
        }
        let found = try await store.read { try $0.notes.search(owner: "alice", query: "milk") }
        try expect(found == [a], "search is per owner and case-insensitive")
        let stolen = try await store.write { try $0.notes.delete(owner: "alice", ids: [b.id]) }
        try expect(stolen == 0, "cannot delete another person's note")
        _ = try await store.write { try $0.notes.delete(owner: "alice", ids: [a.id]) }
        let c = try await store.write { try $0.notes.add(owner: "alice", text: "new", at: t0) }
        try expect(c.id != a.id, "ids are never reused")
        try await store.write { try $0.notes.restore([a]) }
        let back = try await store.read { try $0.notes.notes(owner: "alice", ids: [a.id]) }
        try expect(back == [a], "restored with its id and time")
    }

    static func conversationRecords(_ store: any Store) async throws {
        try await store.write { tx in
            for (index, id) in ["a", "b", "c"].enumerated() {
                _ = try tx.insertInbound(message(id, at: t0.addingTimeInterval(Double(index))))
            }
            _ = try tx.insertInbound(message("other", conversation: "elsewhere"))
            var reply = draft("reply-a")
            reply.inReplyTo = "a"
            let id = try tx.enqueueOutbound(reply, at: t0.addingTimeInterval(0.5))
            try tx.markDelivered(id, at: t0.addingTimeInterval(0.6), externalID: "$out")
            var second = draft("reply-b")
            second.inReplyTo = "b"
            _ = try tx.enqueueOutbound(second, at: t0.addingTimeInterval(1.5))
            let a = try tx.inboxID(channel: "test", externalID: "a")!
            _ = try tx.markInboundDone(a, at: t0.addingTimeInterval(0.5))
        }
        let all = try await store.read { try $0.inboundRecords(in: key, before: nil, limit: 10) }
        try expect(all.map(\.stored.message.externalID) == ["a", "b", "c"], "one conversation, oldest first")
        try expect(all[0].doneAt == t0.addingTimeInterval(0.5) && all[1].doneAt == nil, "answered or waiting")
        let newest = try await store.read { try $0.inboundRecords(in: key, before: nil, limit: 2) }
        try expect(newest.map(\.stored.message.externalID) == ["b", "c"], "the newest two, oldest first")
        let earlier = try await store.read { try $0.inboundRecords(in: key, before: t0.addingTimeInterval(1), limit: 10) }
        try expect(earlier.map(\.stored.message.externalID) == ["a"], "paging back by time")
        let out = try await store.read { try $0.outboundRecords(in: key, before: nil, limit: 10) }
        try expect(out.map(\.message.deliveryKey) == ["reply-a", "reply-b"], "outbound, oldest first")
        try expect(out.map(\.state) == [.delivered, .pending], "delivery states")
        let replies = try await store.read { try $0.outboundReplies(channel: "test", inReplyTo: "b") }
        try expect(replies.map(\.message.deliveryKey) == ["reply-b"], "replies to one message")
        let record = try await store.read { try $0.inboundRecord(channel: "test", externalID: "c") }
        try expect(record?.stored.message.text == "hello" && record?.doneAt == nil, "one inbound record")
        let missing = try await store.read { try $0.inboundRecord(channel: "test", externalID: "nope") }
        try expect(missing == nil, "no such message")
    }

    static func confirmationRecords(_ store: any Store) async throws {
        try await store.write { tx in
            try tx.savePendingConfirmation(confirmation("c1", expires: t0.addingTimeInterval(600), number: 1))
            try tx.savePendingConfirmation(confirmation("c2", expires: t0.addingTimeInterval(600), number: 2))
            _ = try tx.resolveConfirmation(ToolCallID("c1"), outcome: .declined, at: t0.addingTimeInterval(5))
        }
        let pending = try await store.read { try $0.pendingConfirmations(limit: 10) }
        try expect(pending.map(\.callID.rawValue) == ["c2"], "only pending ones, across conversations")
        let c1 = try await store.read { try $0.confirmationRecord(ToolCallID("c1")) }
        try expect(c1?.outcome == .declined && c1?.decidedAt == t0.addingTimeInterval(5), "decided, with when")
        let c2 = try await store.read { try $0.confirmationRecord(ToolCallID("c2")) }
        try expect(c2 != nil && c2?.outcome == nil && c2?.confirmation.preview == "This will delete 2 notes", "pending")
        let none = try await store.read { try $0.confirmationRecord(ToolCallID("c9")) }
        try expect(none == nil, "no such confirmation")
    }

    static func auditFilters(_ store: any Store) async throws {
        try await store.write { tx in
            _ = try tx.appendAudit(entry("c1", .proposed))
            var other = entry("c2", .executed)
            other.tool = "notes.delete"
            other.at = t0.addingTimeInterval(10)
            other.correlationID = CorrelationID("in-2")
            other.conversation = ConversationKey(channel: "test", conversation: ConversationID("elsewhere"))
            _ = try tx.appendAudit(other)
        }
        func sequences(_ query: AuditQuery) async throws -> [Int64] {
            try await store.read { try $0.auditRecords(query) }.map(\.sequence)
        }
        try expect(try await sequences(AuditQuery(tool: "notes.delete")) == [2], "by tool")
        try expect(try await sequences(AuditQuery(status: .proposed)) == [1], "by status")
        try expect(try await sequences(AuditQuery(conversation: key)) == [1], "by conversation")
        try expect(try await sequences(AuditQuery(until: t0.addingTimeInterval(5))) == [1], "before a time")
        try expect(try await sequences(AuditQuery(since: t0.addingTimeInterval(5))) == [2], "from a time")
        try expect(try await sequences(AuditQuery(correlationID: CorrelationID("in-2"))) == [2], "by correlation id")
    }

    static func apiKeys(_ store: any Store) async throws {
        let key = APIKeyRecord(id: "k1", name: "ci", secretHash: String(repeating: "a", count: 64), scopes: ["send", "read"], createdAt: t0)
        try await store.write { try $0.insertAPIKey(key) }
        do {
            try await store.write { try $0.insertAPIKey(key) }
            throw ConformanceFailure(description: "a second key with the same id was accepted")
        } catch let error as StoreError {
            try expect(error.code == .constraint, "expected a constraint error, got \(error.code)")
        }
        let stored = try await store.read { try $0.apiKey(id: "k1") }
        try expect(stored == key, "read back exactly")
        let first = try await store.write { try $0.revokeAPIKey(id: "k1", at: t0.addingTimeInterval(1)) }
        let again = try await store.write { try $0.revokeAPIKey(id: "k1", at: t0.addingTimeInterval(2)) }
        let unknown = try await store.write { try $0.revokeAPIKey(id: "nope", at: t0) }
        try expect(first && !again && !unknown, "revoked once")
        // Bound keys keep their binding: a fixed sender, a prefix; unbound ones speak for anyone.
        let bound = APIKeyRecord(id: "k2", name: "bot", secretHash: String(repeating: "b", count: 64), scopes: ["send"], createdAt: t0.addingTimeInterval(3), senders: .exactly("support-bot"))
        let prefixed = APIKeyRecord(id: "k3", name: "tickets", secretHash: String(repeating: "c", count: 64), scopes: ["send"], createdAt: t0.addingTimeInterval(4), senders: .prefix("ticket-"))
        try await store.write { tx in
            try tx.insertAPIKey(bound)
            try tx.insertAPIKey(prefixed)
        }
        let all = try await store.read { try $0.apiKeys() }
        try expect(all.count == 3 && all[0].revokedAt == t0.addingTimeInterval(1), "listed with the revocation time")
        try expect(all.map(\.senders) == [.any, .exactly("support-bot"), .prefix("ticket-")], "bindings read back: \(all.map(\.senders))")
    }

    static func preferences(_ store: any Store) async throws {
        try await store.write { tx in
            try tx.setPreference("alice", key: "timezone", value: "Europe/Berlin", at: t0)
            try tx.setPreference("alice", key: "name", value: "Al", at: t0)
            try tx.setPreference("alice", key: "name", value: "Alice", at: t0.addingTimeInterval(1))
            try tx.setPreference("bob", key: "brief", value: true, at: t0)
        }
        let alice = try await store.read { try $0.preferences(of: "alice") }
        try expect(alice.map(\.key) == ["name", "timezone"], "by key")
        try expect(alice[0].value == "Alice" && alice[0].updatedAt == t0.addingTimeInterval(1), "the latest value wins")
        let forgotten = try await store.write { try $0.forgetPreferences(of: "alice") }
        try expect(forgotten == 2, "both forgotten")
        let left = try await store.read { (try $0.preferences(of: "alice"), try $0.preferences(of: "bob")) }
        try expect(left.0.isEmpty && left.1.first?.value == true, "only alice's")
    }

    static func depthAges(_ store: any Store) async throws {
        let empty = try await store.read { try $0.depth(channel: nil) }
        try expect(empty.oldestInbound == nil && empty.oldestOutbound == nil, "nothing waits")
        try await store.write { tx in
            _ = try tx.insertInbound(message("a", at: t0))
            _ = try tx.insertInbound(message("b", at: t0.addingTimeInterval(3)))
            _ = try tx.enqueueOutbound(draft("k"), at: t0.addingTimeInterval(7))
        }
        let depth = try await store.read { try $0.depth(channel: nil) }
        try expect(depth.oldestInbound == t0 && depth.oldestOutbound == t0.addingTimeInterval(7), "oldest of each")
    }

    static func records(_ store: any Store) async throws {
        let (task, reminder, other) = try await store.write { tx in
            (
                try tx.records.add(ToolRecordDraft(kind: "task", owner: "alice", title: "Renew Passport", status: "open", fields: ["note": "at the Town Hall"]), at: t0),
                try tx.records.add(ToolRecordDraft(kind: "reminder", owner: "alice", title: "stretch", status: "pending", at: t0.addingTimeInterval(60)), at: t0),
                try tx.records.add(ToolRecordDraft(kind: "reminder", owner: "bob", title: "water", status: "pending", at: t0.addingTimeInterval(30)), at: t0)
            )
        }
        try expect(task.id < reminder.id && reminder.id < other.id, "ids count up across kinds")
        let found = try await store.read { tx in
            (try tx.records.search(owner: "alice", kind: "task", query: "PASSPORT"), try tx.records.search(owner: "alice", kind: "task", query: "town hall"),
             try tx.records.search(owner: "bob", kind: "task", query: "passport"), try tx.records.records(owner: "bob", kind: "task", ids: [task.id]))
        }
        try expect(found.0.map(\.id) == [task.id] && found.1.map(\.id) == [task.id], "search title and fields, any case")
        try expect(found.2.isEmpty && found.3.isEmpty, "never another owner's")
        let due = try await store.read { tx in
            (try tx.records.due(kind: "reminder", status: "pending", now: t0.addingTimeInterval(45), limit: 10), try tx.records.nextDue(kind: "reminder", status: "pending"))
        }
        try expect(due.0.map(\.id) == [other.id] && due.1 == t0.addingTimeInterval(30), "due in time order, any owner")
        var changed = task
        changed.status = "done"
        changed.updatedAt = t0.addingTimeInterval(5)
        let done = changed
        let updated = try await store.write { tx in (try tx.records.update(done), try tx.records.update(ToolRecord(id: 9999, kind: "task", owner: "alice", title: "", status: "", at: nil, endAt: nil, fields: [:], createdAt: t0, updatedAt: t0))) }
        try expect(updated.0 && !updated.1, "update finds only a stored record")
        let listed = try await store.read { tx in
            (try tx.records.list(owner: "alice", kind: "task", statuses: ["open"], from: nil, to: nil), try tx.records.list(owner: "alice", kind: "task", statuses: ["done"], from: nil, to: nil),
             try tx.records.list(owner: "alice", kind: "reminder", statuses: nil, from: t0, to: t0.addingTimeInterval(61)))
        }
        try expect(listed.0.isEmpty && listed.1.first == done && listed.2.map(\.id) == [reminder.id], "list by status and time range")
        let deleted = try await store.write { try $0.records.delete(owner: "alice", kind: "task", ids: [task.id, other.id]) }
        try expect(deleted == 1, "delete only the owner's, of the kind")
        try await store.write { try $0.records.restore([done]) }
        let back = try await store.read { try $0.records.records(owner: "alice", kind: "task", ids: [done.id]) }
        try expect(back == [done], "restored with its id, fields and times")
    }

    static func identities(_ store: any Store) async throws {
        try await store.write { tx in
            try tx.linkIdentity("email:sam@example.org", to: "@sam:example.org", at: t0)
            try tx.linkIdentity("email:s@example.net", to: "@sam:example.org", at: t0.addingTimeInterval(1))
            try tx.linkIdentity("email:x@example.org", to: "@bob:example.org", at: t0)
            try tx.linkIdentity("email:x@example.org", to: "@sam:example.org", at: t0.addingTimeInterval(2))
        }
        let read = try await store.read { tx in
            (try tx.linkedPerson(for: "email:sam@example.org"), try tx.linkedPerson(for: "email:nobody@example.org"), try tx.linkedIdentities(of: "@sam:example.org"), try tx.linkedIdentities(of: "@bob:example.org"))
        }
        try expect(read.0 == "@sam:example.org" && read.1 == nil, "linked and unlinked identities")
        try expect(read.2 == ["email:sam@example.org", "email:s@example.net", "email:x@example.org"] && read.3.isEmpty, "a relink moves the identity")
        let unlinked = try await store.write { tx in (try tx.unlinkIdentity("email:s@example.net"), try tx.unlinkIdentity("email:s@example.net")) }
        try expect(unlinked.0 && !unlinked.1, "unlinked once")
    }

    static func claims(_ store: any Store) async throws {
        try await store.write { tx in
            for (id, conversation) in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("c1", "c"), ("b2", "b")] {
                _ = try tx.insertInbound(message(id, conversation: conversation))
            }
        }
        let until = t0.addingTimeInterval(30)
        let first = try await store.write { try $0.claimInbound(holder: "i1", conversations: 2, limit: 10, headsOnly: false, until: until, now: t0) }
        try expect(first.map(\.message.externalID) == ["a1", "b1", "a2", "b2"], "the two oldest conversations, all their messages in order: \(first.map(\.message.externalID))")
        let second = try await store.write { try $0.claimInbound(holder: "i2", conversations: 5, limit: 10, headsOnly: true, until: until, now: t0) }
        try expect(second.map(\.message.externalID) == ["c1"], "another holder gets only the free conversation: \(second.map(\.message.externalID))")
        let mine = try await store.write { try $0.claimInbound(holder: "i1", conversations: 5, limit: 10, headsOnly: true, until: until, now: t0) }
        try expect(mine.map(\.message.externalID) == ["a1", "b1"], "the holder claims its own again, heads only: \(mine.map(\.message.externalID))")
        let lapsed = try await store.write { try $0.claimInbound(holder: "i2", conversations: 5, limit: 1, headsOnly: false, until: until.addingTimeInterval(30), now: until) }
        try expect(lapsed.map(\.message.externalID) == ["a1"], "lapsed leases are taken over; the limit holds: \(lapsed.map(\.message.externalID))")
        let held = try await store.read { try $0.lease("inbox:" + ConversationKey(channel: "test", conversation: ConversationID("a")).storageKey) }
        try expect(held?.holder == "i2", "the lease names the new holder: \(String(describing: held))")
    }

    static func leases(_ store: any Store) async throws {
        let (a, b) = ("instance-a", "instance-b")
        let taken = try await store.write { try $0.acquireLeases(["inbox:x", "inbox:y"], holder: a, until: t0.addingTimeInterval(30), now: t0) }
        try expect(taken == ["inbox:x", "inbox:y"], "free leases are taken, in order: \(taken)")
        let contested = try await store.write { try $0.acquireLeases(["inbox:z", "inbox:x"], holder: b, until: t0.addingTimeInterval(40), now: t0.addingTimeInterval(10)) }
        try expect(contested == ["inbox:z"], "a lease held by another is skipped: \(contested)")
        let renewed = try await store.write { try $0.acquireLeases(["inbox:x"], holder: a, until: t0.addingTimeInterval(60), now: t0.addingTimeInterval(20)) }
        try expect(renewed == ["inbox:x"], "the holder renews its lease")
        let early = try await store.write { try $0.acquireLeases(["inbox:x"], holder: b, until: t0.addingTimeInterval(90), now: t0.addingTimeInterval(59)) }
        try expect(early.isEmpty, "not taken over before it lapses")
        let takeover = try await store.write { try $0.acquireLeases(["inbox:x"], holder: b, until: t0.addingTimeInterval(90), now: t0.addingTimeInterval(60)) }
        try expect(takeover == ["inbox:x"], "taken over once it lapsed")
        let holds = try await store.write { tx in (try tx.holdsLease("inbox:x", holder: a), try tx.holdsLease("inbox:x", holder: b)) }
        try expect(holds == (false, true), "the old holder knows it lost the lease: \(holds)")
        let stored = try await store.read { try $0.lease("inbox:x") }
        try expect(stored == Lease(holder: b, expiresAt: t0.addingTimeInterval(90)), "stored: \(String(describing: stored))")
        try await store.write { try $0.releaseLeases(["inbox:y"], holder: b) }
        let notReleased = try await store.write { try $0.acquireLeases(["inbox:y"], holder: b, until: t0.addingTimeInterval(40), now: t0.addingTimeInterval(25)) }
        try expect(notReleased.isEmpty, "only the holder gives a lease up")
        try await store.write { try $0.releaseLeases(["inbox:y"], holder: a) }
        let released = try await store.write { try $0.acquireLeases(["inbox:y"], holder: b, until: t0.addingTimeInterval(40), now: t0.addingTimeInterval(25)) }
        try expect(released == ["inbox:y"], "a given-up lease is free at once")
        let none = try await store.read { try $0.lease("never-taken") }
        try expect(none == nil, "a lease nobody took is not there")
    }
}
