public import Foundation

/// One item of a tool's data: a task, a reminder, a calendar event, a contact, a logged
/// interaction. The tools keep what they need beyond the common columns in `fields`.
///
/// One table for all of them keeps the storage interface small (two engines implement it) while
/// the columns that queries need stay real columns: `at` for "reminders due now" and "events this
/// week", `status` for "open tasks", `title` for search.
public struct ToolRecord: Hashable, Sendable {
    /// The id shown to the person ("task 3"), unique across kinds and never reused.
    public var id: Int64
    /// The kind, such as `task` or `reminder`.
    public var kind: String
    /// Whose it is.
    public var owner: PersonID
    /// The searchable text: a task's title, a contact's name.
    public var title: String
    /// The kind's state: `open`/`done` for a task, `pending`/`fired`/`cancelled` for a reminder.
    public var status: String
    /// The time that matters for the kind: a task's due time, a reminder's time, an event's start.
    public var at: Date?
    /// An event's end.
    public var endAt: Date?
    /// Everything else, as a JSON object.
    public var fields: JSONValue
    /// When it was created.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date

    /// Creates a record.
    public init(
        id: Int64, kind: String, owner: PersonID, title: String, status: String, at: Date?, endAt: Date?,
        fields: JSONValue, createdAt: Date, updatedAt: Date
    ) {
        self.id = id
        self.kind = kind
        self.owner = owner
        self.title = title
        self.status = status
        self.at = at
        self.endAt = endAt
        self.fields = fields
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A record not stored yet: it gets its id from the store.
public struct ToolRecordDraft: Hashable, Sendable {
    /// The kind.
    public var kind: String
    /// Whose it is.
    public var owner: PersonID
    /// The searchable text.
    public var title: String
    /// The state.
    public var status: String
    /// The time that matters.
    public var at: Date?
    /// An end time.
    public var endAt: Date?
    /// Everything else.
    public var fields: JSONValue

    /// Creates a draft.
    public init(kind: String, owner: PersonID, title: String, status: String, at: Date? = nil, endAt: Date? = nil, fields: JSONValue = [:]) {
        self.kind = kind
        self.owner = owner
        self.title = title
        self.status = status
        self.at = at
        self.endAt = endAt
        self.fields = fields
    }
}
