import Foundation
import SwitchboardModel
import SwitchboardStorage

/// A read or write transaction on the PostgreSQL engine. Lives only inside `PostgresStore.read`
/// and `PostgresStore.write`, on one of the store's threads.
///
/// Text that is sorted or searched uses the "C" collation, so order and case folding are
/// byte-wise and ASCII-only, as on SQLite, whatever the database's locale.
final class PostgresTransaction: StoreTransaction {
    let session: Session
    /// Whether this is a write transaction (row locks are taken only then).
    let writing: Bool
    private var savepoints = 0

    init(session: Session, writing: Bool) {
        self.session = session
        self.writing = writing
    }

    var notes: any NoteStore { PostgresNoteStore(session: session) }
    var records: any RecordStore { PostgresRecordStore(session: session, writing: writing) }

    private static func micros(_ date: Date) -> Bind { .int(AuditChain.microseconds(date)) }
    private static func micros(_ date: Date?) -> Bind { .int(date.map(AuditChain.microseconds)) }

    // MARK: Inbox

    func insertInbound(_ message: InboundMessage) throws -> InboxInsertResult {
        let inserted = try session.run("""
            INSERT INTO inbox (channel, external_id, conversation, conversation_key, sender, sender_name,
                               text, reply_to, thread, authenticated, untrusted, received_at,
                               addressed, gesture, unreadable, trace_context, device_verified, may_confirm, continues_call)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
            ON CONFLICT (channel, external_id) DO NOTHING
            RETURNING id
            """, [
                .text(message.channel.rawValue), .text(message.externalID), .text(message.conversation.conversation.rawValue),
                .text(message.conversation.storageKey), .text(message.sender.id.rawValue), .text(message.sender.displayName),
                .text(message.text), .text(message.replyTo), .text(message.thread), .bool(message.trust.senderAuthenticated),
                .bool(message.trust.containsUntrustedContent), Self.micros(message.receivedAt),
                .bool(message.addressed), .text(message.gesture?.rawValue), .text(message.unreadable?.storageValue),
                .text(message.traceContext), .bool(message.trust.deviceVerified), .bool(message.trust.mayConfirm),
                .text(message.continuing?.rawValue),
            ])
        if let row = inserted.first {
            return .inserted(InboxID(try row.int("id")))
        }
        guard let existing = try inboxID(channel: message.channel, externalID: message.externalID) else {
            throw StoreError(.other, "An inbound message was neither inserted nor found.")
        }
        return .duplicate(existing)
    }

    func inboxID(channel: ChannelID, externalID: String) throws -> InboxID? {
        try session.run("SELECT id FROM inbox WHERE channel = $1 AND external_id = $2", [.text(channel.rawValue), .text(externalID)])
            .first.map { InboxID(try $0.int("id")) }
    }

    func pendingInboundHeads(limit: Int) throws -> [StoredInbound] {
        try session.run("""
            SELECT * FROM inbox
            WHERE id IN (SELECT MIN(id) FROM inbox WHERE status = 'pending' GROUP BY conversation_key)
            ORDER BY id LIMIT $1
            """, [.int(Int64(limit))]).rows.map(Self.inbound)
    }

    func pendingInbound(limit: Int) throws -> [StoredInbound] {
        try session.run("SELECT * FROM inbox WHERE status = 'pending' ORDER BY id LIMIT $1", [.int(Int64(limit))]).rows.map(Self.inbound)
    }

    func isInboundPending(_ id: InboxID) throws -> Bool {
        try session.run("SELECT status = 'pending' AS pending FROM inbox WHERE id = $1", [.int(id.rawValue)]).first?.bool("pending") ?? false
    }

    func markInboundDone(_ id: InboxID, at: Date) throws -> Bool {
        try session.run(
            "UPDATE inbox SET status = 'done', done_at = $1 WHERE id = $2 AND status = 'pending'",
            [Self.micros(at), .int(id.rawValue)]
        ).changed == 1
    }

    static func inbound(_ row: Row) throws -> StoredInbound {
        let channel = ChannelID(try row.string("channel"))
        return StoredInbound(
            id: InboxID(try row.int("id")),
            message: InboundMessage(
                externalID: try row.string("external_id"),
                conversation: ConversationKey(channel: channel, conversation: ConversationID(try row.string("conversation"))),
                sender: Sender(id: PersonID(try row.string("sender")), displayName: try row.optionalString("sender_name")),
                text: try row.string("text"),
                replyTo: try row.optionalString("reply_to"),
                thread: try row.optionalString("thread"),
                trust: TrustFacts(
                    senderAuthenticated: try row.bool("authenticated"), containsUntrustedContent: try row.bool("untrusted"),
                    deviceVerified: try row.optionalBool("device_verified"), mayConfirm: try row.bool("may_confirm")
                ),
                receivedAt: try row.date("received_at"),
                addressed: try row.bool("addressed"),
                gesture: try row.optionalString("gesture").flatMap(ConfirmationGesture.init(rawValue:)),
                unreadable: UnreadableContent(storageValue: try row.optionalString("unreadable")),
                traceContext: try row.optionalString("trace_context"),
                continuing: try row.optionalString("continues_call").map(ToolCallID.init)
            )
        )
    }

    // MARK: Outbox

    func enqueueOutbound(_ draft: OutboundDraft, at: Date) throws -> OutboxID {
        let row = try session.run("""
            INSERT INTO outbox (delivery_key, channel, conversation, recipient, text, in_reply_to, thread, kind,
                                correlation_id, created_at, next_attempt_at, trace_context, subject)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)
            RETURNING id
            """, [
                .text(draft.deliveryKey), .text(draft.conversation.channel.rawValue), .text(draft.conversation.conversation.rawValue),
                .text(draft.recipient?.rawValue), .text(draft.text), .text(draft.inReplyTo), .text(draft.thread), .text(draft.kind.rawValue),
                .text(draft.correlationID?.rawValue), Self.micros(at), .text(draft.traceContext), .text(draft.subject),
            ]).first
        guard let row else { throw StoreError(.other, "An outbound message was not stored.") }
        return OutboxID(try row.int("id"))
    }

    func dueOutbound(channels: [ChannelID], now: Date, limit: Int) throws -> [OutboundMessage] {
        guard !channels.isEmpty else { return [] }
        return try session.run("""
            SELECT * FROM outbox
            WHERE status = 'pending' AND next_attempt_at <= $1 AND channel = ANY($2)
              AND NOT EXISTS (
                  SELECT 1 FROM outbox AS earlier
                  WHERE earlier.status = 'pending' AND earlier.channel = outbox.channel
                    AND earlier.conversation = outbox.conversation AND earlier.id < outbox.id
                    AND earlier.next_attempt_at > $1)
            ORDER BY id LIMIT $3
            """, [Self.micros(now), .texts(channels.map(\.rawValue)), .int(Int64(limit))]).rows.map(Self.outbound)
    }

    func nextOutboundAttempt(channels: [ChannelID]) throws -> Date? {
        guard !channels.isEmpty else { return nil }
        return try session.run(
            "SELECT MIN(next_attempt_at) AS next FROM outbox WHERE status = 'pending' AND channel = ANY($1)",
            [.texts(channels.map(\.rawValue))]
        ).first?.optionalDate("next")
    }

    func markDelivered(_ id: OutboxID, at: Date, externalID: String?) throws {
        try session.run(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1, external_id = $2 WHERE id = $3",
            [Self.micros(at), .text(externalID), .int(id.rawValue)]
        )
    }

    func outbound(channel: ChannelID, externalID: String) throws -> OutboundMessage? {
        try session.run("SELECT * FROM outbox WHERE channel = $1 AND external_id = $2 LIMIT 1", [.text(channel.rawValue), .text(externalID)])
            .first.map(Self.outbound)
    }

    func markDeliveryFailed(_ id: OutboxID, error: String, nextAttempt: Date?) throws {
        try session.run("""
            UPDATE outbox SET attempts = attempts + 1, last_error = $1,
                status = CASE WHEN $2::BIGINT IS NULL THEN 'failed' ELSE 'pending' END,
                next_attempt_at = COALESCE($2, next_attempt_at)
            WHERE id = $3 AND status = 'pending'
            """, [.text(error), Self.micros(nextAttempt), .int(id.rawValue)])
    }

    static func outbound(_ row: Row) throws -> OutboundMessage {
        OutboundMessage(
            id: OutboxID(try row.int("id")),
            deliveryKey: try row.string("delivery_key"),
            conversation: try row.conversationKey(),
            recipient: try row.optionalString("recipient").map { PersonID($0) },
            text: try row.string("text"),
            inReplyTo: try row.optionalString("in_reply_to"),
            thread: try row.optionalString("thread"),
            kind: OutboundKind(rawValue: try row.string("kind")) ?? .reply,
            correlationID: try row.optionalString("correlation_id").map(CorrelationID.init),
            createdAt: try row.date("created_at"),
            attempts: Int(try row.int("attempts")),
            traceContext: try row.optionalString("trace_context"),
            subject: try row.optionalString("subject")
        )
    }

    // MARK: Cursors

    func cursor(_ name: String) throws -> String? {
        try session.run("SELECT value FROM cursors WHERE name = $1", [.text(name)]).first?.string("value")
    }

    func setCursor(_ name: String, value: String) throws {
        try session.run("""
            INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, $3)
            ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, [.text(name), .text(value), Self.micros(Date())])
    }

    func pruneCursors(prefixes: [String], before: Date, limit: Int) throws -> Int {
        var removed = 0
        for prefix in prefixes where removed < limit {
            removed += try session.run("""
                DELETE FROM cursors WHERE name IN (
                    SELECT name FROM cursors WHERE left(name, length($1)) = $1 AND updated_at < $2 LIMIT $3
                )
                """, [.text(prefix), Self.micros(before), .int(Int64(limit - removed))]).changed
        }
        return removed
    }

    func pruneConfirmations(decidedBefore: Date, limit: Int) throws -> Int {
        try session.run("""
            DELETE FROM confirmations WHERE call_id IN (
                SELECT call_id FROM confirmations WHERE status <> 'pending' AND decided_at < $1 LIMIT $2
            )
            """, [Self.micros(decidedBefore), .int(Int64(limit))]).changed
    }

    func deleteCursor(_ name: String) throws {
        try session.run("DELETE FROM cursors WHERE name = $1", [.text(name)])
    }

    // MARK: Depth

    func depth(channel: ChannelID?) throws -> PipelineDepth {
        let inbound = try session.run(
            "SELECT COUNT(*) AS n, MIN(received_at) AS oldest FROM inbox WHERE status = 'pending' AND ($1::TEXT IS NULL OR channel = $1)",
            [.text(channel?.rawValue)]
        ).first
        let outbound = try session.run(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE status = 'pending' AND ($1::TEXT IS NULL OR channel = $1)",
            [.text(channel?.rawValue)]
        ).first
        return PipelineDepth(
            pendingInbound: Int(try inbound?.int("n") ?? 0),
            pendingOutbound: Int(try outbound?.int("n") ?? 0),
            oldestInbound: try inbound?.optionalDate("oldest"),
            oldestOutbound: try outbound?.optionalDate("oldest")
        )
    }

    // MARK: For the HTTP API

    func inboundRecord(channel: ChannelID, externalID: String) throws -> InboundRecord? {
        try session.run("SELECT * FROM inbox WHERE channel = $1 AND external_id = $2", [.text(channel.rawValue), .text(externalID)])
            .first.map(Self.inboundRecord)
    }

    func inboundSightings(channel: ChannelID, since: Date, limit: Int) throws -> [InboundSighting] {
        try session.run(
            "SELECT sender, external_id, received_at FROM inbox WHERE channel = $1 AND received_at >= $2 ORDER BY id DESC LIMIT $3",
            [.text(channel.rawValue), Self.micros(since), .int(Int64(limit))]
        ).rows.map { row in
            InboundSighting(sender: PersonID(try row.string("sender")), externalID: try row.string("external_id"), receivedAt: try row.date("received_at"))
        }
    }

    func inboundRecords(in conversation: ConversationKey, before: Date?, limit: Int) throws -> [InboundRecord] {
        try session.run("""
            SELECT * FROM (
                SELECT * FROM inbox WHERE conversation_key = $1 AND ($2::BIGINT IS NULL OR received_at < $2)
                ORDER BY received_at DESC, id DESC LIMIT $3
            ) AS recent ORDER BY received_at, id
            """, [.text(conversation.storageKey), Self.micros(before), .int(Int64(limit))]).rows.map(Self.inboundRecord)
    }

    func outboundRecords(in conversation: ConversationKey, before: Date?, limit: Int) throws -> [OutboundRecord] {
        try session.run("""
            SELECT * FROM (
                SELECT * FROM outbox WHERE channel = $1 AND conversation = $2 AND ($3::BIGINT IS NULL OR created_at < $3)
                ORDER BY created_at DESC, id DESC LIMIT $4
            ) AS recent ORDER BY created_at, id
            """, [
                .text(conversation.channel.rawValue), .text(conversation.conversation.rawValue), Self.micros(before), .int(Int64(limit)),
            ]).rows.map(Self.outboundRecord)
    }

    func outboundReplies(channel: ChannelID, inReplyTo externalID: String) throws -> [OutboundRecord] {
        try session.run("SELECT * FROM outbox WHERE channel = $1 AND in_reply_to = $2 ORDER BY id", [.text(channel.rawValue), .text(externalID)])
            .rows.map(Self.outboundRecord)
    }

    static func inboundRecord(_ row: Row) throws -> InboundRecord {
        InboundRecord(stored: try inbound(row), doneAt: try row.optionalDate("done_at"))
    }

    static func outboundRecord(_ row: Row) throws -> OutboundRecord {
        OutboundRecord(
            message: try outbound(row),
            state: DeliveryState(rawValue: try row.string("status")) ?? .pending,
            deliveredAt: try row.optionalDate("delivered_at"),
            lastError: try row.optionalString("last_error")
        )
    }

    func pendingConfirmations(limit: Int) throws -> [PendingConfirmation] {
        try session.run(
            "SELECT * FROM confirmations WHERE status = 'pending' ORDER BY created_at, call_id COLLATE \"C\" LIMIT $1",
            [.int(Int64(limit))]
        ).rows.map(Self.confirmation)
    }

    func confirmationRecord(_ callID: ToolCallID) throws -> ConfirmationRecord? {
        guard let row = try session.run("SELECT * FROM confirmations WHERE call_id = $1", [.text(callID.rawValue)]).first else {
            return nil
        }
        return ConfirmationRecord(
            confirmation: try Self.confirmation(row),
            outcome: ConfirmationOutcome(rawValue: try row.string("status")),
            decidedAt: try row.optionalDate("decided_at")
        )
    }

    func apiKey(id: String) throws -> APIKeyRecord? {
        try session.run("SELECT * FROM api_keys WHERE id = $1", [.text(id)]).first.map(Self.apiKey)
    }

    func apiKeys() throws -> [APIKeyRecord] {
        try session.run("SELECT * FROM api_keys ORDER BY created_at, id COLLATE \"C\"").rows.map(Self.apiKey)
    }

    static func apiKey(_ row: Row) throws -> APIKeyRecord {
        APIKeyRecord(
            id: try row.string("id"),
            name: try row.string("name"),
            secretHash: try row.string("secret_hash"),
            scopes: try row.string("scopes").split(separator: " ").map(String.init),
            createdAt: try row.date("created_at"),
            revokedAt: try row.optionalDate("revoked_at"),
            senders: APISenders(sender: try row.optionalString("sender"), prefix: try row.optionalString("sender_prefix"))
        )
    }

    func insertAPIKey(_ key: APIKeyRecord) throws {
        try session.run("""
            INSERT INTO api_keys (id, name, secret_hash, scopes, created_at, revoked_at, sender, sender_prefix) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """, [
                .text(key.id), .text(key.name), .text(key.secretHash), .text(key.scopes.joined(separator: " ")),
                Self.micros(key.createdAt), Self.micros(key.revokedAt),
                .text(key.senders.columns.sender), .text(key.senders.columns.prefix),
            ])
    }

    func revokeAPIKey(id: String, at: Date) throws -> Bool {
        try session.run("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", [Self.micros(at), .text(id)]).changed == 1
    }

    func preferences(of person: PersonID) throws -> [Preference] {
        try session.run("SELECT key, value, updated_at FROM preferences WHERE person = $1 ORDER BY key COLLATE \"C\"", [.text(person.rawValue)])
            .rows.map { row in
                let text = try row.string("value")
                return Preference(key: try row.string("key"), value: (try? JSONValue.parse(text)) ?? .string(text), updatedAt: try row.date("updated_at"))
            }
    }

    func setPreference(_ person: PersonID, key: String, value: JSONValue, at: Date) throws {
        try session.run("""
            INSERT INTO preferences (person, key, value, updated_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (person, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
            """, [.text(person.rawValue), .text(key), .text(value.canonicalText), Self.micros(at)])
    }

    func forgetPreferences(of person: PersonID) throws -> Int {
        try session.run("DELETE FROM preferences WHERE person = $1", [.text(person.rawValue)]).changed
    }

    func deletePreference(_ person: PersonID, key: String) throws -> Bool {
        try session.run("DELETE FROM preferences WHERE person = $1 AND key = $2", [.text(person.rawValue), .text(key)]).changed > 0
    }

    // MARK: Identities

    func linkedPerson(for identity: PersonID) throws -> PersonID? {
        try session.run("SELECT person FROM identities WHERE identity = $1", [.text(identity.rawValue)]).first
            .map { PersonID(try $0.string("person")) }
    }

    func linkedIdentities(of person: PersonID) throws -> [PersonID] {
        try session.run("SELECT identity FROM identities WHERE person = $1 ORDER BY linked_at, identity COLLATE \"C\"", [.text(person.rawValue)])
            .rows.map { PersonID(try $0.string("identity")) }
    }

    func linkIdentity(_ identity: PersonID, to person: PersonID, at: Date) throws {
        try session.run("""
            INSERT INTO identities (identity, person, linked_at) VALUES ($1, $2, $3)
            ON CONFLICT (identity) DO UPDATE SET person = excluded.person, linked_at = excluded.linked_at
            """, [.text(identity.rawValue), .text(person.rawValue), Self.micros(at)])
    }

    func unlinkIdentity(_ identity: PersonID) throws -> Bool {
        try session.run("DELETE FROM identities WHERE identity = $1", [.text(identity.rawValue)]).changed > 0
    }

    // MARK: Confirmations

    func savePendingConfirmation(_ c: PendingConfirmation) throws {
        try session.run("""
            INSERT INTO confirmations (call_id, requester, channel, conversation, conversation_key, tool, arguments,
                                       preview, risk, tainted, correlation_id, created_at, expires_at, number, sealed_arguments)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            """, [
                .text(c.callID.rawValue), .text(c.requester.rawValue), .text(c.conversation.channel.rawValue),
                .text(c.conversation.conversation.rawValue), .text(c.conversation.storageKey), .text(c.tool), .text(c.arguments.canonicalText),
                .text(c.preview), .text(c.risk.description), .bool(c.tainted), .text(c.correlationID?.rawValue),
                Self.micros(c.createdAt), Self.micros(c.expiresAt), .int(Int64(c.number)), .text(c.sealedArguments),
            ])
    }

    func pendingConfirmations(in conversation: ConversationKey) throws -> [PendingConfirmation] {
        try session.run(
            "SELECT * FROM confirmations WHERE conversation_key = $1 AND status = 'pending' ORDER BY created_at, number",
            [.text(conversation.storageKey)]
        ).rows.map(Self.confirmation)
    }

    func highestConfirmationNumber(in conversation: ConversationKey, requester: PersonID, since: Date) throws -> Int? {
        try session.run(
            "SELECT MAX(number) AS highest FROM confirmations WHERE conversation_key = $1 AND requester = $2 AND created_at >= $3",
            [.text(conversation.storageKey), .text(requester.rawValue), Self.micros(since)]
        ).first?.optionalInt("highest").map(Int.init)
    }

    func expiredConfirmations(now: Date, limit: Int) throws -> [PendingConfirmation] {
        try session.run(
            "SELECT * FROM confirmations WHERE status = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
            [Self.micros(now), .int(Int64(limit))]
        ).rows.map(Self.confirmation)
    }

    func resolveConfirmation(_ callID: ToolCallID, outcome: ConfirmationOutcome, at: Date) throws -> Bool {
        try session.run(
            "UPDATE confirmations SET status = $1, decided_at = $2 WHERE call_id = $3 AND status = 'pending'",
            [.text(outcome.rawValue), Self.micros(at), .text(callID.rawValue)]
        ).changed == 1
    }

    static func confirmation(_ row: Row) throws -> PendingConfirmation {
        PendingConfirmation(
            callID: ToolCallID(try row.string("call_id")),
            requester: PersonID(try row.string("requester")),
            conversation: try row.conversationKey(),
            tool: try row.string("tool"),
            arguments: try JSONValue.parse(try row.string("arguments")),
            preview: try row.string("preview"),
            risk: Risk(word: try row.string("risk")) ?? .high,
            tainted: try row.bool("tainted"),
            createdAt: try row.date("created_at"),
            expiresAt: try row.date("expires_at"),
            correlationID: try row.optionalString("correlation_id").map(CorrelationID.init),
            number: Int(try row.int("number")),
            sealedArguments: try row.optionalString("sealed_arguments")
        )
    }

    // MARK: Audit

    /// The key of the transaction-level advisory lock that orders appends to the one chain
    /// across instances: the second committer waits for the first to commit, then reads its head.
    static let auditLock: Int64 = 0x5357_4254_4155_4454  // "SWBTAUDT"

    /// Entries appended in this transaction, chained and written by `finish` just before the
    /// commit: the chain's head is then locked only for the commit, not for the whole
    /// transaction, so instances answer side by side.
    private var pendingAudit: [AuditEntry] = []
    private var pendingAuditKeys: Set<String> = []

    private static func auditKey(_ entry: AuditEntry) -> String { entry.callID.rawValue + "\u{1}" + entry.status.rawValue }

    func appendAudit(_ entry: AuditEntry) throws -> AuditRecord? {
        // A call passes through each state once: refused here, at once, as the unique index
        // would (it still guards the insert at commit).
        let key = Self.auditKey(entry)
        let stored = try pendingAuditKeys.contains(key) || session.run(
            "SELECT 1 AS present FROM audit WHERE call_id = $1 AND status = $2", [.text(entry.callID.rawValue), .text(entry.status.rawValue)]
        ).first != nil
        if stored {
            throw StoreError(.constraint, "A write was refused by a database constraint: the call already has a '\(entry.status.rawValue)' audit record.")
        }
        pendingAudit.append(entry)
        pendingAuditKeys.insert(key)
        return nil
    }

    private func lastAuditRecord() throws -> (sequence: Int64, hash: String)? {
        guard let row = try session.run("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").first else { return nil }
        return (try row.int("seq"), try row.string("hash"))
    }

    /// Runs just before commit: chains this transaction's audit entries after the head (under
    /// the advisory lock, held until the commit) and stores them and the new head.
    func finish() throws {
        guard !pendingAudit.isEmpty else { return }
        try session.run("SELECT pg_advisory_xact_lock($1)", [.int(Self.auditLock)])
        var head = try lastAuditRecord()
        var rows: [JSONValue] = []
        rows.reserveCapacity(pendingAudit.count)
        for entry in pendingAudit {
            let sequence = (head?.sequence ?? 0) + 1
            let previous = head?.hash ?? AuditChain.genesis
            let argumentsText = entry.arguments.canonicalText
            let hash = AuditChain.hash(previous: previous, sequence: sequence, entry: entry, argumentsText: argumentsText)
            rows.append([
                "seq": .int(sequence), "at": .int(AuditChain.microseconds(entry.at)), "call_id": .string(entry.callID.rawValue),
                "person": .string(entry.person.rawValue), "channel": .string(entry.conversation.channel.rawValue),
                "conversation": .string(entry.conversation.conversation.rawValue), "tool": .string(entry.tool),
                "risk": .string(entry.risk.description), "status": .string(entry.status.rawValue), "arguments": .string(argumentsText),
                "summary": .string(entry.summary), "correlation_id": entry.correlationID.map { .string($0.rawValue) } ?? .null,
                "prev_hash": .string(previous), "hash": .string(hash),
            ])
            head = (sequence, hash)
        }
        // One statement for all of them: the lock is held for as few round trips as possible.
        try session.run("""
            INSERT INTO audit (seq, at, call_id, person, channel, conversation, tool, risk, status, arguments, summary,
                               correlation_id, prev_hash, hash)
            SELECT seq, at, call_id, person, channel, conversation, tool, risk, status, arguments, summary,
                   correlation_id, prev_hash, hash
            FROM json_populate_recordset(NULL::audit, $1::JSON)
            """, [.text(JSONValue.array(rows).canonicalText)])
        if let head {
            try session.run("""
                INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
                ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
                """, [.int(head.sequence), .text(head.hash)])
        }
        pendingAudit = []
        pendingAuditKeys = []
    }

    func auditHead() throws -> (sequence: Int64, hash: String)? {
        guard let row = try session.run("SELECT seq, hash FROM audit_head WHERE id = 1").first else { return nil }
        return (try row.int("seq"), try row.string("hash"))
    }

    func auditRecords(_ query: AuditQuery) throws -> [AuditRecord] {
        var conditions: [String] = []
        var values: [Bind] = []
        func add(_ condition: (Int) -> String, _ binds: [Bind]) {
            conditions.append(condition(values.count + 1))
            values += binds
        }
        if let person = query.person { add({ "person = $\($0)" }, [.text(person.rawValue)]) }
        if let since = query.since { add({ "at >= $\($0)" }, [Self.micros(since)]) }
        if let until = query.until { add({ "at < $\($0)" }, [Self.micros(until)]) }
        if let tool = query.tool { add({ "tool = $\($0)" }, [.text(tool)]) }
        if let status = query.status { add({ "status = $\($0)" }, [.text(status.rawValue)]) }
        if let conversation = query.conversation {
            add({ "channel = $\($0) AND conversation = $\($0 + 1)" }, [.text(conversation.channel.rawValue), .text(conversation.conversation.rawValue)])
        }
        if let correlation = query.correlationID { add({ "correlation_id = $\($0)" }, [.text(correlation.rawValue)]) }
        if let after = query.afterSequence { add({ "seq > $\($0)" }, [.int(after)]) }
        var sql = "SELECT * FROM audit"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY seq"
        if let limit = query.limit {
            sql += " LIMIT $\(values.count + 1)"
            values.append(.int(Int64(limit)))
        }
        return try session.run(sql, values).rows.map(Self.auditRecord)
    }

    static func auditRecord(_ row: Row) throws -> AuditRecord {
        let argumentsText = try row.string("arguments")
        let entry = AuditEntry(
            at: try row.date("at"),
            callID: ToolCallID(try row.string("call_id")),
            person: PersonID(try row.string("person")),
            conversation: try row.conversationKey(),
            tool: try row.string("tool"),
            risk: Risk(word: try row.string("risk")) ?? .high,
            status: AuditStatus(rawValue: try row.string("status")) ?? .failed,
            arguments: (try? JSONValue.parse(argumentsText)) ?? .string(argumentsText),
            summary: try row.string("summary"),
            correlationID: try row.optionalString("correlation_id").map(CorrelationID.init)
        )
        return AuditRecord(sequence: try row.int("seq"), entry: entry, previousHash: try row.string("prev_hash"), hash: try row.string("hash"))
    }

    // MARK: Undo

    func recordUndo(_ entry: UndoEntry) throws {
        try session.run("""
            INSERT INTO undo_log (call_id, person, channel, conversation, tool, payload, description, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """, [
                .text(entry.callID.rawValue), .text(entry.person.rawValue), .text(entry.conversation.channel.rawValue),
                .text(entry.conversation.conversation.rawValue), .text(entry.tool), .text(entry.payload?.canonicalText),
                .text(entry.description), Self.micros(entry.createdAt),
            ])
    }

    func lastUndoEntry(for person: PersonID) throws -> UndoEntry? {
        guard let row = try session.run(
            "SELECT * FROM undo_log WHERE person = $1 AND undone_at IS NULL ORDER BY created_at DESC, seq DESC LIMIT 1"
                + (writing ? " FOR UPDATE" : ""),
            [.text(person.rawValue)]
        ).first else { return nil }
        return UndoEntry(
            callID: ToolCallID(try row.string("call_id")),
            person: PersonID(try row.string("person")),
            conversation: try row.conversationKey(),
            tool: try row.string("tool"),
            payload: try row.optionalString("payload").map(JSONValue.parse),
            description: try row.string("description"),
            createdAt: try row.date("created_at")
        )
    }

    func markUndone(_ callID: ToolCallID, at: Date) throws {
        try session.run("UPDATE undo_log SET undone_at = $1 WHERE call_id = $2 AND undone_at IS NULL", [Self.micros(at), .text(callID.rawValue)])
    }

    // MARK: Rate limits

    func rateBucket(person: PersonID, category: String) throws -> RateBucketState? {
        // Locked in a write: instances answering one person in two conversations at once must
        // not both spend the same tokens.
        guard let row = try session.run(
            "SELECT tokens, updated_at FROM rate_buckets WHERE person = $1 AND category = $2" + (writing ? " FOR UPDATE" : ""),
            [.text(person.rawValue), .text(category)]
        ).first else { return nil }
        return RateBucketState(tokens: try row.double("tokens"), updatedAt: try row.date("updated_at"))
    }

    func setRateBucket(person: PersonID, category: String, state: RateBucketState) throws {
        try session.run("""
            INSERT INTO rate_buckets (person, category, tokens, updated_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (person, category) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at
            """, [.text(person.rawValue), .text(category), .double(state.tokens), Self.micros(state.updatedAt)])
    }

    // MARK: Leases

    func lease(_ name: String) throws -> Lease? {
        guard let row = try session.run("SELECT holder, expires_at FROM leases WHERE name = $1", [.text(name)]).first else { return nil }
        return Lease(holder: try row.string("holder"), expiresAt: try row.date("expires_at"))
    }

    func acquireLeases(_ names: [String], holder: String, until: Date, now: Date) throws -> [String] {
        guard !names.isEmpty else { return [] }
        // Rows first, so there is something to lock. Only missing ones: inserting over a row
        // another transaction has locked would wait for that transaction. A name that another
        // transaction is creating at this moment (its very first use) does wait, briefly.
        try session.run("""
            INSERT INTO leases (name, holder, expires_at)
            SELECT wanted.name, '', 0 FROM unnest($1::TEXT[]) AS wanted (name)
            WHERE NOT EXISTS (SELECT 1 FROM leases WHERE leases.name = wanted.name)
            ON CONFLICT (name) DO NOTHING
            """, [.texts(names)])
        let taken = try session.run("""
            UPDATE leases SET holder = $2, expires_at = $3
            WHERE name IN (
                SELECT name FROM leases
                WHERE name = ANY($1) AND (holder = $2 OR expires_at <= $4)
                FOR UPDATE SKIP LOCKED)
            RETURNING name
            """, [.texts(names), .text(holder), Self.micros(until), Self.micros(now)]).rows.map { try $0.string("name") }
        let set = Set(taken)
        return names.filter { set.contains($0) }
    }

    func claimInbound(holder: String, conversations: Int, limit: Int, headsOnly: Bool, until: Date, now: Date) throws -> [StoredInbound] {
        let candidates = try session.run("""
            SELECT waiting.conversation_key FROM (
                SELECT conversation_key, MIN(id) AS first FROM inbox WHERE status = 'pending' GROUP BY conversation_key
            ) AS waiting
            LEFT JOIN leases ON leases.name = 'inbox:' || waiting.conversation_key
            WHERE leases.name IS NULL OR leases.holder = $1 OR leases.expires_at <= $2
            ORDER BY waiting.first LIMIT $3
            """, [.text(holder), Self.micros(now), .int(Int64(conversations))]).rows.map { try $0.string("conversation_key") }
        let taken = try acquireLeases(candidates.map { "inbox:" + $0 }, holder: holder, until: until, now: now)
        guard !taken.isEmpty else { return [] }
        let keys = taken.map { String($0.dropFirst("inbox:".count)) }
        let sql = headsOnly
            ? "SELECT * FROM inbox WHERE id IN (SELECT MIN(id) FROM inbox WHERE status = 'pending' AND conversation_key = ANY($1) GROUP BY conversation_key) ORDER BY id LIMIT $2"
            : "SELECT * FROM inbox WHERE status = 'pending' AND conversation_key = ANY($1) ORDER BY id LIMIT $2"
        let claimed = try session.run(sql, [.texts(keys), .int(Int64(limit))]).rows.map(Self.inbound)
        // Conversations the limit left out are not kept waiting for this holder.
        let used = Set(claimed.map { "inbox:" + $0.message.conversation.storageKey })
        try releaseLeases(taken.filter { !used.contains($0) }, holder: holder)
        return claimed
    }

    func releaseLeases(_ names: [String], holder: String) throws {
        guard !names.isEmpty else { return }
        try session.run("UPDATE leases SET expires_at = 0 WHERE name = ANY($1) AND holder = $2", [.texts(names), .text(holder)])
    }

    func holdsLease(_ name: String, holder: String) throws -> Bool {
        try session.run(
            "SELECT 1 AS held FROM leases WHERE name = $1 AND holder = $2" + (writing ? " FOR UPDATE" : ""),
            [.text(name), .text(holder)]
        ).first != nil
    }

    // MARK: Savepoints

    func savepoint<T>(_ body: () throws -> T) throws -> T {
        savepoints += 1
        let name = "sp\(savepoints)"
        let auditMark = pendingAudit.count
        try session.run("SAVEPOINT \(name)")
        do {
            let result = try body()
            try session.run("RELEASE SAVEPOINT \(name)")
            return result
        } catch {
            // Audit entries appended inside roll back with it.
            for entry in pendingAudit[auditMark...] { pendingAuditKeys.remove(Self.auditKey(entry)) }
            pendingAudit.removeSubrange(auditMark...)
            try session.run("ROLLBACK TO SAVEPOINT \(name)")
            try session.run("RELEASE SAVEPOINT \(name)")
            throw error
        }
    }
}

/// The notes table.
struct PostgresNoteStore: NoteStore {
    let session: Session

    func add(owner: PersonID, text: String, at: Date) throws -> Note {
        guard let row = try session.run(
            "INSERT INTO notes (owner, text, created_at) VALUES ($1, $2, $3) RETURNING id",
            [.text(owner.rawValue), .text(text), .int(AuditChain.microseconds(at))]
        ).first else { throw StoreError(.other, "A note was not stored.") }
        return Note(id: try row.int("id"), owner: owner, text: text, createdAt: at)
    }

    func list(owner: PersonID) throws -> [Note] {
        try session.run("SELECT * FROM notes WHERE owner = $1 ORDER BY id", [.text(owner.rawValue)]).rows.map(Self.note)
    }

    func search(owner: PersonID, query: String) throws -> [Note] {
        // strpos rather than LIKE: '%' and '_' in a query mean themselves. lower() under the
        // "C" collation folds ASCII letters only, as SQLite's does.
        try session.run(
            "SELECT * FROM notes WHERE owner = $1 AND strpos(lower(text COLLATE \"C\"), $2) > 0 ORDER BY id",
            [.text(owner.rawValue), .text(RecordSearch.fold(query))]
        ).rows.map(Self.note)
    }

    func notes(owner: PersonID, ids: [Int64]) throws -> [Note] {
        guard !ids.isEmpty else { return [] }
        return try session.run("SELECT * FROM notes WHERE owner = $1 AND id = ANY($2) ORDER BY id", [.text(owner.rawValue), .ints(ids)])
            .rows.map(Self.note)
    }

    func delete(owner: PersonID, ids: [Int64]) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try session.run("DELETE FROM notes WHERE owner = $1 AND id = ANY($2)", [.text(owner.rawValue), .ints(ids)]).changed
    }

    func restore(_ notes: [Note]) throws {
        for note in notes {
            try session.run(
                "INSERT INTO notes (id, owner, text, created_at) VALUES ($1, $2, $3, $4)",
                [.int(note.id), .text(note.owner.rawValue), .text(note.text), .int(AuditChain.microseconds(note.createdAt))]
            )
        }
    }

    static func note(_ row: Row) throws -> Note {
        Note(id: try row.int("id"), owner: PersonID(try row.string("owner")), text: try row.string("text"), createdAt: try row.date("created_at"))
    }
}

/// The records table.
struct PostgresRecordStore: RecordStore {
    let session: Session
    let writing: Bool

    private static func micros(_ date: Date?) -> Bind { .int(date.map(AuditChain.microseconds)) }

    func add(_ draft: ToolRecordDraft, at: Date) throws -> ToolRecord {
        guard let row = try session.run("""
            INSERT INTO records (kind, owner, title, status, at, end_at, fields, search_text, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
            RETURNING id
            """, [
                .text(draft.kind), .text(draft.owner.rawValue), .text(draft.title), .text(draft.status), Self.micros(draft.at),
                Self.micros(draft.endAt), .text(draft.fields.canonicalText),
                .text(RecordSearch.text(title: draft.title, fields: draft.fields)), Self.micros(at),
            ]).first else { throw StoreError(.other, "A record was not stored.") }
        return ToolRecord(
            id: try row.int("id"), kind: draft.kind, owner: draft.owner, title: draft.title, status: draft.status,
            at: draft.at, endAt: draft.endAt, fields: draft.fields, createdAt: at, updatedAt: at
        )
    }

    func update(_ record: ToolRecord) throws -> Bool {
        try session.run("""
            UPDATE records SET title = $1, status = $2, at = $3, end_at = $4, fields = $5, search_text = $6, updated_at = $7
            WHERE id = $8 AND owner = $9 AND kind = $10
            """, [
                .text(record.title), .text(record.status), Self.micros(record.at), Self.micros(record.endAt),
                .text(record.fields.canonicalText), .text(RecordSearch.text(title: record.title, fields: record.fields)),
                Self.micros(record.updatedAt), .int(record.id), .text(record.owner.rawValue), .text(record.kind),
            ]).changed > 0
    }

    func records(owner: PersonID, kind: String, ids: [Int64]) throws -> [ToolRecord] {
        guard !ids.isEmpty else { return [] }
        return try session.run(
            "SELECT * FROM records WHERE owner = $1 AND kind = $2 AND id = ANY($3) ORDER BY id",
            [.text(owner.rawValue), .text(kind), .ints(ids)]
        ).rows.map(Self.record)
    }

    func list(owner: PersonID, kind: String, statuses: [String]?, from: Date?, to: Date?) throws -> [ToolRecord] {
        if let statuses, statuses.isEmpty { return [] }
        return try session.run("""
            SELECT * FROM records WHERE owner = $1 AND kind = $2
              AND ($3::TEXT[] IS NULL OR status = ANY($3))
              AND ($4::BIGINT IS NULL OR at >= $4)
              AND ($5::BIGINT IS NULL OR at < $5)
            ORDER BY at IS NULL, at, id
            """, [
                .text(owner.rawValue), .text(kind), .texts(statuses), Self.micros(from), Self.micros(to),
            ]).rows.map(Self.record)
    }

    func search(owner: PersonID, kind: String, query: String) throws -> [ToolRecord] {
        try session.run(
            "SELECT * FROM records WHERE owner = $1 AND kind = $2 AND strpos(search_text, $3) > 0 ORDER BY id",
            [.text(owner.rawValue), .text(kind), .text(RecordSearch.fold(query))]
        ).rows.map(Self.record)
    }

    func delete(owner: PersonID, kind: String, ids: [Int64]) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try session.run(
            "DELETE FROM records WHERE owner = $1 AND kind = $2 AND id = ANY($3)",
            [.text(owner.rawValue), .text(kind), .ints(ids)]
        ).changed
    }

    func restore(_ records: [ToolRecord]) throws {
        for record in records {
            try session.run("""
                INSERT INTO records (id, kind, owner, title, status, at, end_at, fields, search_text, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                """, [
                    .int(record.id), .text(record.kind), .text(record.owner.rawValue), .text(record.title), .text(record.status),
                    Self.micros(record.at), Self.micros(record.endAt), .text(record.fields.canonicalText),
                    .text(RecordSearch.text(title: record.title, fields: record.fields)),
                    Self.micros(record.createdAt), Self.micros(record.updatedAt),
                ])
        }
    }

    func due(kind: String, status: String, now: Date, limit: Int) throws -> [ToolRecord] {
        // In a write transaction the due records are locked, and records another instance is
        // firing right now are skipped: a reminder fires once.
        try session.run(
            "SELECT * FROM records WHERE kind = $1 AND status = $2 AND at IS NOT NULL AND at <= $3 ORDER BY at, id LIMIT $4"
                + (writing ? " FOR UPDATE SKIP LOCKED" : ""),
            [.text(kind), .text(status), .int(AuditChain.microseconds(now)), .int(Int64(limit))]
        ).rows.map(Self.record)
    }

    func nextDue(kind: String, status: String) throws -> Date? {
        try session.run(
            "SELECT MIN(at) AS next FROM records WHERE kind = $1 AND status = $2 AND at IS NOT NULL",
            [.text(kind), .text(status)]
        ).first?.optionalDate("next")
    }

    static func record(_ row: Row) throws -> ToolRecord {
        let fieldsText = try row.string("fields")
        return ToolRecord(
            id: try row.int("id"), kind: try row.string("kind"), owner: PersonID(try row.string("owner")), title: try row.string("title"),
            status: try row.string("status"), at: try row.optionalDate("at"), endAt: try row.optionalDate("end_at"),
            fields: (try? JSONValue.parse(fieldsText)) ?? [:],
            createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at")
        )
    }
}
