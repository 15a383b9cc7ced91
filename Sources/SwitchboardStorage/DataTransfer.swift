public import SwitchboardModel

/// What `switchboard export` copies and `switchboard import` puts back: every table that holds
/// data, in an order that keeps each table's rows in the order they were written.
///
/// Not copied: the schema's bookkeeping (each engine migrates its own) and leases (who is
/// working on what right now means nothing in another database).
public enum DataTransfer {
    /// The tables and the order their rows are read in.
    public static let tables: [(name: String, order: String)] = [
        ("inbox", "id"),
        ("outbox", "id"),
        ("cursors", "name"),
        ("confirmations", "created_at, call_id"),
        ("audit", "seq"),
        ("audit_head", "id"),
        ("undo_log", "created_at, call_id"),
        ("rate_buckets", "person, category"),
        ("notes", "id"),
        ("api_keys", "created_at, id"),
        ("preferences", "person, key"),
        ("records", "id"),
        ("identities", "identity"),
    ]

    /// Columns that only one engine has (PostgreSQL's undo_log.seq, an ordering the rows' order
    /// gives back): left out when copying.
    public static let engineOnlyColumns: Set<String> = ["undo_log.seq"]

    /// The tables with an identity that must continue after the imported rows.
    public static let identityTables: [String] = ["inbox", "outbox", "notes", "records"]
}

/// A storage engine that can copy all its data out and into an empty database of its kind.
public protocol TransferableStore: Store {
    /// Every row of a table, as JSON objects by column name, in `order`.
    func exportRows(table: String, order: String) async throws -> [JSONValue]

    /// Puts rows into the tables, all in one transaction, into a database that holds no data yet.
    ///
    /// - Throws: `StoreError` (`.constraint` if the database already holds data).
    func importRows(_ tables: [(table: String, rows: [JSONValue])]) async throws
}
