import Foundation
import SwitchboardStorage
import GRDB

/// The schema, as numbered migrations. A shipped migration is never edited: add a new one.
enum SQLiteMigrations {
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001_pipeline") { db in
            try db.execute(sql: v1)
        }
        migrator.registerMigration("002_channel_details") { db in
            try db.execute(sql: v2)
        }
        migrator.registerMigration("003_http_api") { db in
            try db.execute(sql: v3)
        }
        migrator.registerMigration("004_tool_records") { db in
            try db.execute(sql: v4)
        }
        migrator.registerMigration("005_leases") { db in
            try db.execute(sql: v5)
        }
        migrator.registerMigration("006_audit_lookups") { db in
            try db.execute(sql: v6)
        }
        migrator.registerMigration("007_device_trust") { db in
            try db.execute(sql: v7)
        }
        migrator.registerMigration("008_plan_continuations") { db in
            try db.execute(sql: v8)
        }
        migrator.registerMigration("009_api_key_senders") { db in
            try db.execute(sql: v9)
        }
        migrator.registerMigration("010_relayed_messages") { db in
            try allowRelayedKind(db)
        }
        migrator.registerMigration("011_cursor_ages") { db in
            try db.execute(sql: v11)
        }
        migrator.registerMigration("012_sealed_arguments") { db in
            try db.execute(sql: v12)
        }
        return migrator
    }()

    static func migrate(_ pool: DatabasePool) throws {
        try pool.read { db in
            if try migrator.hasBeenSuperseded(db) {
                throw tooNew(try migrator.appliedIdentifiers(db))
            }
        }
        // Two processes opening the same new file at once (`serve` and `keys create`, say) may
        // both find a migration to do: each runs in a transaction of its own, but which ones
        // are left is read before them. The one that comes second fails (the table or column is
        // already there) and rolls back; it reads again and goes on from where the other is.
        var attempt = 0
        while true {
            let before = try pool.read { try migrator.appliedIdentifiers($0) }
            do {
                try migrator.migrate(pool)
                return
            } catch {
                attempt += 1
                let after = try pool.read { try migrator.appliedIdentifiers($0) }
                if after.isSuperset(of: migrator.migrations) { return }
                // Another process got further meanwhile (or held the lock): what failed was
                // most likely doing its work again. Anything else is a real failure.
                let raced = after != before || (error as? DatabaseError).map(isBusy) == true
                guard raced, attempt < 20 else { throw error }
                Thread.sleep(forTimeInterval: 0.02 * Double(attempt))
            }
        }
    }

    /// Whether the database was busy with another connection's write.
    private static func isBusy(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }

    static func checkCurrent(_ db: Database) throws {
        if try migrator.hasBeenSuperseded(db) {
            throw tooNew(try migrator.appliedIdentifiers(db))
        }
        if try !migrator.hasCompletedMigrations(db) {
            throw StoreError(.other, "The database schema is older than this binary. Run `switchboard migrate`.")
        }
    }

    private static func tooNew(_ applied: Set<String>) -> StoreError {
        let known = Set(migrator.migrations)
        let unknown = applied.subtracting(known).sorted()
        return StoreError(
            .schemaTooNew,
            "The database was written by a newer Switchboard (unknown migrations: \(unknown.joined(separator: ", "))). Upgrade this binary; it will not touch the database."
        )
    }

    // Times are INTEGER microseconds since 1970 (see AuditChain.microseconds).
    static let v1 = """
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            external_id TEXT NOT NULL,
            conversation TEXT NOT NULL,
            conversation_key TEXT NOT NULL,
            sender TEXT NOT NULL,
            sender_name TEXT,
            text TEXT NOT NULL,
            reply_to TEXT,
            thread TEXT,
            authenticated INTEGER NOT NULL,
            untrusted INTEGER NOT NULL,
            received_at INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
            done_at INTEGER,
            UNIQUE (channel, external_id)
        );
        -- Pending rows are few; one small partial index serves both "in order" and "heads".
        CREATE INDEX inbox_pending ON inbox (id) WHERE status = 'pending';

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            delivery_key TEXT NOT NULL UNIQUE,
            channel TEXT NOT NULL,
            conversation TEXT NOT NULL,
            recipient TEXT,
            text TEXT NOT NULL,
            in_reply_to TEXT,
            thread TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('reply', 'confirmation_request', 'notice')),
            correlation_id TEXT,
            created_at INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            last_error TEXT,
            delivered_at INTEGER
        );
        CREATE INDEX outbox_pending ON outbox (channel, conversation, id) WHERE status = 'pending';

        CREATE TABLE cursors (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE confirmations (
            call_id TEXT PRIMARY KEY,
            requester TEXT NOT NULL,
            channel TEXT NOT NULL,
            conversation TEXT NOT NULL,
            conversation_key TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments TEXT NOT NULL,
            preview TEXT NOT NULL,
            risk TEXT NOT NULL,
            tainted INTEGER NOT NULL,
            correlation_id TEXT,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            number INTEGER NOT NULL CHECK (number >= 1),
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'declined', 'expired')),
            decided_at INTEGER
        );
        CREATE UNIQUE INDEX confirmations_number ON confirmations (conversation_key, requester, number) WHERE status = 'pending';
        CREATE INDEX confirmations_pending ON confirmations (conversation_key, created_at) WHERE status = 'pending';
        CREATE INDEX confirmations_expiry ON confirmations (expires_at) WHERE status = 'pending';

        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            call_id TEXT NOT NULL,
            person TEXT NOT NULL,
            channel TEXT NOT NULL,
            conversation TEXT NOT NULL,
            tool TEXT NOT NULL,
            risk TEXT NOT NULL,
            status TEXT NOT NULL,
            arguments TEXT NOT NULL,
            summary TEXT NOT NULL,
            correlation_id TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            -- A call passes through each state at most once: a second execution is refused.
            UNIQUE (call_id, status)
        );
        CREATE INDEX audit_person ON audit (person, seq);
        CREATE INDEX audit_at ON audit (at);
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL,
            hash TEXT NOT NULL
        );

        CREATE TABLE undo_log (
            call_id TEXT PRIMARY KEY,
            person TEXT NOT NULL,
            channel TEXT NOT NULL,
            conversation TEXT NOT NULL,
            tool TEXT NOT NULL,
            payload TEXT,
            description TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            undone_at INTEGER
        );
        CREATE INDEX undo_person ON undo_log (person, created_at) WHERE undone_at IS NULL;

        CREATE TABLE rate_buckets (
            person TEXT NOT NULL,
            category TEXT NOT NULL,
            tokens REAL NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (person, category)
        );

        CREATE TABLE notes (
            -- AUTOINCREMENT: an id is never reused, so undoing a delete restores the same ids.
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX notes_owner ON notes (owner, id);
        """

    // What channels with rooms and reactions need: whether a message was addressed to the
    // assistant, a yes/no given by a gesture, content that was not text, and the channel's own
    // id of each delivered message (so a reaction or reply can point back at it).
    static let v2 = """
        ALTER TABLE inbox ADD COLUMN addressed INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE inbox ADD COLUMN gesture TEXT CHECK (gesture IN ('approve', 'decline'));
        ALTER TABLE inbox ADD COLUMN unreadable TEXT;
        ALTER TABLE outbox ADD COLUMN external_id TEXT;
        CREATE INDEX outbox_external ON outbox (channel, external_id) WHERE external_id IS NOT NULL;
        """

    // The HTTP API: keys (only a hash of the secret part is kept), people's preferences, and the
    // indexes that show a conversation and find the replies to one message. Each index costs
    // every message a little (about 3% of `switchboard bench` each); filtering the audit trail
    // by correlation id, an occasional operator query, scans instead of paying twice per message.
    static let v3 = """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );

        CREATE TABLE preferences (
            person TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (person, key)
        );

        -- W3C trace context of the stage that wrote the row (NULL with tracing off).
        ALTER TABLE inbox ADD COLUMN trace_context TEXT;
        ALTER TABLE outbox ADD COLUMN trace_context TEXT;

        CREATE INDEX inbox_conversation ON inbox (conversation_key, received_at);
        CREATE INDEX outbox_conversation ON outbox (channel, conversation, created_at);
        CREATE INDEX outbox_in_reply_to ON outbox (channel, in_reply_to) WHERE in_reply_to IS NOT NULL;
        """

    // The data of tasks, reminders, calendar events, contacts and logged interactions: one row
    // each. `at` is what the due-reminder scan and the calendar's ranges query; `search_text` is
    // the title and every text field, lowercased by the writer for search.
    static let v4 = """
        CREATE TABLE records (
            -- AUTOINCREMENT: an id is never reused, so undoing a delete restores the same ids.
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            owner TEXT NOT NULL,
            title TEXT NOT NULL,
            status TEXT NOT NULL,
            at INTEGER,
            end_at INTEGER,
            fields TEXT NOT NULL,
            search_text TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX records_owner ON records (owner, kind, at);
        CREATE INDEX records_due ON records (kind, status, at) WHERE at IS NOT NULL;

        -- A subject line for channels that have one: an email the email.send tool writes.
        ALTER TABLE outbox ADD COLUMN subject TEXT;

        -- One person across channels: a channel identity (email:sam@example.org) linked, after
        -- proof by a code, to the person who asked (@sam:example.org).
        CREATE TABLE identities (
            identity TEXT PRIMARY KEY,
            person TEXT NOT NULL,
            linked_at INTEGER NOT NULL
        );
        CREATE INDEX identities_person ON identities (person, linked_at);
        """

    // Work shared by several instances (a PostgreSQL deployment): who holds a conversation's
    // work, its delivery or a channel's poller, and until when. One SQLite instance holds them
    // all, but the table keeps both engines' behaviour and the data moved between them alike.
    static let v5 = """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        );
        """

    // Finding a message's tool calls by correlation id (a planner's calls, found again when the
    // message is processed after a crash) and a conversation's recent calls (the tools a
    // language model is shown) without reading the whole trail.
    static let v6 = """
        CREATE INDEX audit_correlation ON audit (correlation_id) WHERE correlation_id IS NOT NULL;
        CREATE INDEX audit_conversation ON audit (channel, conversation, at);
        """

    /// Matrix end-to-end encryption: whether the sending device is verified, and whether the
    /// message may confirm.
    static let v7 = """
        ALTER TABLE inbox ADD COLUMN device_verified INTEGER;
        ALTER TABLE inbox ADD COLUMN may_confirm INTEGER NOT NULL DEFAULT 1;
        """

    // A confirmed call whose plan goes on: the engine's own inbox row that hands the result
    // back to the planner, in order with the conversation's messages (never set by a channel).
    static let v8 = """
        ALTER TABLE inbox ADD COLUMN continues_call TEXT;
        """

    // Whom a key may speak as: a sender, a sender prefix, or (both NULL) anyone, which is what
    // every key made before this could do.
    static let v9 = """
        ALTER TABLE api_keys ADD COLUMN sender TEXT;
        ALTER TABLE api_keys ADD COLUMN sender_prefix TEXT;
        """

    /// Outbound messages of kind `relayed` (mail a person dictated, theirs rather than the
    /// gateway's own). SQLite cannot change a CHECK in place: the outbox is copied into a table
    /// made from its own definition with the wider CHECK, and its indexes made again.
    static func allowRelayedKind(_ db: Database) throws {
        let old = "CHECK (kind IN ('reply', 'confirmation_request', 'notice'))"
        guard let table = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"),
            table.contains(old), table.hasPrefix("CREATE TABLE outbox (")
        else {
            throw StoreError(.other, "The outbox table is not as migration 001 made it; cannot widen its kinds.")
        }
        let indexes = try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL")
        let next = "CREATE TABLE outbox_next (" + table.dropFirst("CREATE TABLE outbox (".count)
        try db.execute(sql: next.replacingOccurrences(of: old, with: "CHECK (kind IN ('reply', 'confirmation_request', 'notice', 'relayed'))"))
        try db.execute(sql: "INSERT INTO outbox_next SELECT * FROM outbox")
        try db.execute(sql: "DROP TABLE outbox")
        try db.execute(sql: "ALTER TABLE outbox_next RENAME TO outbox")
        for index in indexes { try db.execute(sql: index) }
    }

    // When each cursor was last written, so per-request and per-thread channel state can be
    // pruned by age; rows from before count from the migration.
    static let v11 = """
        ALTER TABLE cursors ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
        UPDATE cursors SET updated_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER);
        CREATE INDEX confirmations_decided ON confirmations (decided_at) WHERE status != 'pending';
        """

    // A waiting call's secret arguments, sealed with the secrets key; `arguments` holds them
    // redacted from now on.
    static let v12 = """
        ALTER TABLE confirmations ADD COLUMN sealed_arguments TEXT;
        """
}
