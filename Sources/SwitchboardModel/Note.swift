public import Foundation

/// A person's note, the data of the `notes.*` tools.
public struct Note: Hashable, Sendable, Codable {
    /// The note's id, shown to the person ("delete note 3").
    public var id: Int64
    /// Whose note it is.
    public var owner: PersonID
    /// The text.
    public var text: String
    /// When it was written.
    public var createdAt: Date

    /// Creates a note.
    public init(id: Int64, owner: PersonID, text: String, createdAt: Date) {
        self.id = id
        self.owner = owner
        self.text = text
        self.createdAt = createdAt
    }
}
