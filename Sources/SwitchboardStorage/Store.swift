public import Foundation
public import SwitchboardModel

/// A storage engine: SQLite for one machine, PostgreSQL for several instances.
///
/// Every state change goes through `write`, whose body runs in one transaction: either all of
/// it commits or none of it does. That is how the pipeline's invariants hold across crashes:
/// "inbound done + reply in outbox + tool effect + audit record" is one commit.
///
/// Transaction bodies are synchronous on purpose: nothing slow (network, a language model)
/// may run while a write transaction is open. Plan first, then write.
public protocol Store: Sendable {
    /// Runs `body` in one write transaction and commits it; rolls back if it throws.
    ///
    /// - Throws: `StoreError` (`.locked` and `.io` are transient), or what `body` throws.
    func write<T: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) throws -> T) async throws -> T

    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (any StoreReader) throws -> T) async throws -> T

    /// A human-readable description of where the data lives, safe to log (no password).
    var locationDescription: String { get }
}

/// Reads, available in read and write transactions.
public protocol StoreReader {
    /// The oldest pending inbound message of each conversation, oldest first, at most `limit`.
    ///
    /// Returning only the head of each conversation is what keeps order per conversation: a
    /// message is planned only after its predecessor is done.
    func pendingInboundHeads(limit: Int) throws -> [StoredInbound]

    /// Pending inbound messages, oldest first, at most `limit`, several per conversation.
    ///
    /// For planners that do not plan from a conversation's earlier replies: the engine applies
    /// them in this order in one transaction, so each sees its predecessor's effects.
    func pendingInbound(limit: Int) throws -> [StoredInbound]

    /// Whether an inbound message is still waiting to be answered.
    func isInboundPending(_ id: InboxID) throws -> Bool

    /// The inbox id of the message with this channel and external id, if stored.
    func inboxID(channel: ChannelID, externalID: String) throws -> InboxID?

    /// Outbound messages for these channels that are due for a delivery attempt, oldest first,
    /// never one whose conversation has an earlier message waiting for a later retry: replies
    /// are delivered in order even when one of them is failing.
    func dueOutbound(channels: [ChannelID], now: Date, limit: Int) throws -> [OutboundMessage]

    /// The outbound message a channel delivered under this external id (the Matrix event id
    /// or email Message-ID it reported), if any.
    func outbound(channel: ChannelID, externalID: String) throws -> OutboundMessage?

    /// The earliest time a not-yet-due outbound message for these channels becomes due.
    func nextOutboundAttempt(channels: [ChannelID]) throws -> Date?

    /// A channel's stored cursor (Matrix `next_batch`, IMAP UID), if any.
    func cursor(_ name: String) throws -> String?

    /// Pending confirmations in a conversation, oldest first.
    func pendingConfirmations(in conversation: ConversationKey) throws -> [PendingConfirmation]

    /// The highest number given to any of a requester's confirmations in a conversation (pending
    /// or not) created at or after `since`.
    func highestConfirmationNumber(in conversation: ConversationKey, requester: PersonID, since: Date) throws -> Int?

    /// Pending confirmations whose expiry is at or before `now`.
    func expiredConfirmations(now: Date, limit: Int) throws -> [PendingConfirmation]

    /// Audit records in sequence order.
    func auditRecords(_ query: AuditQuery) throws -> [AuditRecord]

    /// The last record's sequence and hash, as stored beside the trail.
    func auditHead() throws -> (sequence: Int64, hash: String)?

    /// How much work is waiting, for one channel or all.
    func depth(channel: ChannelID?) throws -> PipelineDepth

    /// The person's most recent undo entry that was not undone yet, if any.
    func lastUndoEntry(for person: PersonID) throws -> UndoEntry?

    /// A token bucket's state.
    func rateBucket(person: PersonID, category: String) throws -> RateBucketState?

    /// The notes data.
    var notes: any NoteStore { get }

    /// The other tools' data.
    var records: any RecordStore { get }

    // MARK: For the HTTP API

    /// The inbound message with this channel and external id, with whether it was answered.
    func inboundRecord(channel: ChannelID, externalID: String) throws -> InboundRecord?

    /// Who sent the channel's messages received at or after `since`, newest first, at most
    /// `limit` (a channel's per-sender limits, read again at start and at a takeover).
    func inboundSightings(channel: ChannelID, since: Date, limit: Int) throws -> [InboundSighting]

    /// A conversation's inbound messages, the newest `limit` received before `before` (all
    /// when nil), oldest first.
    func inboundRecords(in conversation: ConversationKey, before: Date?, limit: Int) throws -> [InboundRecord]

    /// A conversation's outbound messages, the newest `limit` written before `before`, oldest first.
    func outboundRecords(in conversation: ConversationKey, before: Date?, limit: Int) throws -> [OutboundRecord]

    /// The outbound messages that answer the inbound message with this external id, oldest first.
    func outboundReplies(channel: ChannelID, inReplyTo externalID: String) throws -> [OutboundRecord]

    /// Pending confirmations in every conversation, oldest first, at most `limit`.
    func pendingConfirmations(limit: Int) throws -> [PendingConfirmation]

    /// One confirmation, pending or decided.
    func confirmationRecord(_ callID: ToolCallID) throws -> ConfirmationRecord?

    /// An API key by its id.
    func apiKey(id: String) throws -> APIKeyRecord?

    /// Every API key, revoked ones included, oldest first.
    func apiKeys() throws -> [APIKeyRecord]

    /// A person's preferences, by key.
    func preferences(of person: PersonID) throws -> [Preference]

    /// The person a channel identity is linked to ("email:sam@example.org" → "@sam:example.org"),
    /// if it is linked.
    func linkedPerson(for identity: PersonID) throws -> PersonID?

    /// The channel identities linked to a person, in the order they were linked.
    func linkedIdentities(of person: PersonID) throws -> [PersonID]

    // MARK: Work shared by several instances

    /// Who holds a lease and until when, if anyone ever took it.
    func lease(_ name: String) throws -> Lease?
}

/// A named piece of work held by one instance until a time: a conversation's inbound work, its
/// outbound delivery, a channel's poller.
public struct Lease: Sendable, Equatable {
    /// The instance holding it.
    public var holder: String
    /// When it lapses unless renewed.
    public var expiresAt: Date

    public init(holder: String, expiresAt: Date) {
        self.holder = holder
        self.expiresAt = expiresAt
    }
}

/// Writes; only inside `Store.write`.
public protocol StoreTransaction: StoreReader {
    /// Stores an inbound message unless the same (channel, external id) is already stored.
    func insertInbound(_ message: InboundMessage) throws -> InboxInsertResult

    /// Stores a channel's cursor. Call it in the same transaction as the messages it covers.
    func setCursor(_ name: String, value: String) throws

    /// Deletes cursors whose name starts with one of `prefixes` and that were last written
    /// before `before`, at most `limit`. Returns how many went.
    func pruneCursors(prefixes: [String], before: Date, limit: Int) throws -> Int

    /// Deletes decided (confirmed, declined, expired) confirmations decided before
    /// `decidedBefore`, at most `limit`; the audit trail keeps their record. Returns how many.
    func pruneConfirmations(decidedBefore: Date, limit: Int) throws -> Int

    /// Removes a channel's cursor (a logged-out session).
    func deleteCursor(_ name: String) throws

    /// Marks an inbound message answered. Returns false if it was not pending.
    func markInboundDone(_ id: InboxID, at: Date) throws -> Bool

    /// Adds a message to the outbox. The delivery key must be unique.
    func enqueueOutbound(_ draft: OutboundDraft, at: Date) throws -> OutboxID

    /// Records a successful delivery, with the channel's id of the delivered message.
    func markDelivered(_ id: OutboxID, at: Date, externalID: String?) throws

    /// Records a failed delivery: retry at `nextAttempt`, or give up when it is nil.
    func markDeliveryFailed(_ id: OutboxID, error: String, nextAttempt: Date?) throws

    /// Appends to the audit trail and returns the chained record.
    ///
    /// A second record with the same call id and status is refused with `.constraint` at once.
    /// Returns the chained record, or nil on an engine that forms the chain when the
    /// transaction commits (PostgreSQL: instances then hold the chain's head only for the
    /// commit, not for the whole transaction). Either way the chain is in commit order.
    @discardableResult
    func appendAudit(_ entry: AuditEntry) throws -> AuditRecord?

    /// Stores a pending confirmation.
    func savePendingConfirmation(_ confirmation: PendingConfirmation) throws

    /// Ends a pending confirmation. Returns false if it was not pending (already used).
    func resolveConfirmation(_ callID: ToolCallID, outcome: ConfirmationOutcome, at: Date) throws -> Bool

    /// Records how to revert a call.
    func recordUndo(_ entry: UndoEntry) throws

    /// Marks an undo entry used.
    func markUndone(_ callID: ToolCallID, at: Date) throws

    /// Stores a token bucket's state.
    func setRateBucket(person: PersonID, category: String, state: RateBucketState) throws

    /// Stores a new API key. Its id must be new.
    func insertAPIKey(_ key: APIKeyRecord) throws

    /// Revokes an API key. Returns false if there is no such key or it was revoked already.
    func revokeAPIKey(id: String, at: Date) throws -> Bool

    /// Sets one of a person's preferences.
    func setPreference(_ person: PersonID, key: String, value: JSONValue, at: Date) throws

    /// Forgets every preference of a person. Returns how many there were.
    func forgetPreferences(of person: PersonID) throws -> Int

    /// Forgets one preference of a person. Returns whether it was set.
    func deletePreference(_ person: PersonID, key: String) throws -> Bool

    /// Links a channel identity to a person, replacing any earlier link of that identity.
    func linkIdentity(_ identity: PersonID, to person: PersonID, at: Date) throws

    /// Removes a link. Returns whether there was one.
    func unlinkIdentity(_ identity: PersonID) throws -> Bool

    /// Takes or renews the named leases for `holder` until `until`. A lease another holder has
    /// and that has not expired at `now` is skipped, and so is one that another transaction is
    /// taking at this moment (never waited for). Returns the names taken, in the given order.
    func acquireLeases(_ names: [String], holder: String, until: Date, now: Date) throws -> [String]

    /// Claims inbound work for `holder`: takes the lease `inbox:<conversation key>` of up to
    /// `conversations` conversations with pending messages whose lease is free, lapsed or its
    /// own (oldest waiting conversation first), and returns their pending messages in arrival
    /// order: each one's oldest only (`headsOnly`), or all, at most `limit` in all.
    ///
    /// One conversation is then worked on by one instance at a time, in order.
    func claimInbound(holder: String, conversations: Int, limit: Int, headsOnly: Bool, until: Date, now: Date) throws -> [StoredInbound]

    /// Gives up the named leases if `holder` has them.
    func releaseLeases(_ names: [String], holder: String) throws

    /// Whether `holder` still has the lease (expired or not, nobody took it over), and keeps
    /// anyone else from taking it until this transaction ends.
    func holdsLease(_ name: String, holder: String) throws -> Bool

    /// Runs `body` in a savepoint: if it throws, only its own changes roll back.
    func savepoint<T>(_ body: () throws -> T) throws -> T
}

/// The notes data: what the `notes.*` tools read and write.
public protocol NoteStore {
    /// Adds a note and returns it.
    func add(owner: PersonID, text: String, at: Date) throws -> Note
    /// The person's notes, oldest first.
    func list(owner: PersonID) throws -> [Note]
    /// The person's notes containing `query`, ignoring the case of ASCII letters.
    func search(owner: PersonID, query: String) throws -> [Note]
    /// The person's notes with these ids (others' notes are never returned).
    func notes(owner: PersonID, ids: [Int64]) throws -> [Note]
    /// Deletes the person's notes with these ids; returns how many were deleted.
    func delete(owner: PersonID, ids: [Int64]) throws -> Int
    /// Puts deleted notes back with their original ids and times.
    func restore(_ notes: [Note]) throws
}

/// The data of the tools beyond notes (tasks, reminders, calendar events, contacts, logged
/// interactions), one `ToolRecord` each. Every method but `due` and `nextDue` sees one owner's
/// records only.
public protocol RecordStore {
    /// Stores a new record and returns it with its id.
    func add(_ draft: ToolRecordDraft, at: Date) throws -> ToolRecord
    /// Replaces a stored record's title, status, times and fields (matched by id and owner).
    /// Returns false if there is no such record.
    @discardableResult
    func update(_ record: ToolRecord) throws -> Bool
    /// The owner's records of a kind with these ids, by id.
    func records(owner: PersonID, kind: String, ids: [Int64]) throws -> [ToolRecord]
    /// The owner's records of a kind, optionally only with one of `statuses` and with `at` in
    /// `[from, to)`, ordered by `at` (records without one last), then id.
    func list(owner: PersonID, kind: String, statuses: [String]?, from: Date?, to: Date?) throws -> [ToolRecord]
    /// The owner's records of a kind whose title or fields contain `query`, ignoring the case of
    /// ASCII letters, by id.
    func search(owner: PersonID, kind: String, query: String) throws -> [ToolRecord]
    /// Deletes the owner's records of a kind with these ids; returns how many were deleted.
    func delete(owner: PersonID, kind: String, ids: [Int64]) throws -> Int
    /// Puts deleted records back with their ids and times.
    func restore(_ records: [ToolRecord]) throws
    /// Every owner's records of a kind and status with `at` at or before `now`, oldest first.
    func due(kind: String, status: String, now: Date, limit: Int) throws -> [ToolRecord]
    /// The earliest `at` of any owner's records of a kind and status.
    func nextDue(kind: String, status: String) throws -> Date?
}

/// What a record's search matches: its title and every text in its fields, case-folded. Every
/// engine stores this text beside the record, so search behaves the same on each.
public enum RecordSearch {
    /// The searchable text of a record.
    public static func text(title: String, fields: JSONValue) -> String {
        var parts = [title]
        collect(fields, into: &parts)
        return fold(parts.joined(separator: "\n"))
    }

    /// Case-folds ASCII letters only, as the engines' `lower()` does, so a query and the stored
    /// text fold alike.
    public static func fold(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            ("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar
        }))
    }

    private static func collect(_ value: JSONValue, into parts: inout [String]) {
        switch value {
        case .string(let text): parts.append(text)
        case .array(let items): for item in items { collect(item, into: &parts) }
        case .object(let members): for key in members.keys.sorted() { collect(members[key]!, into: &parts) }
        default: break
        }
    }
}
