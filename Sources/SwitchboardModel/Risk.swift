/// How much harm a tool call can do.
///
/// - low: reads.
/// - medium: reversible writes.
/// - high: destructive, irreversible, or reaching outside; runs only after confirmation.
public enum Risk: Int, Hashable, Sendable, Codable, Comparable, CaseIterable, CustomStringConvertible {
    case low = 0
    case medium = 1
    case high = 2

    public static func < (lhs: Risk, rhs: Risk) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The word used in configuration and the audit trail.
    public var description: String {
        switch self {
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        }
    }

    /// Parses `low`, `medium` or `high`.
    public init?(word: String) {
        switch word.lowercased() {
        case "low": self = .low
        case "medium": self = .medium
        case "high": self = .high
        default: return nil
        }
    }
}

/// A person's role, from configuration. Roles are ordered: an owner can do what a user can.
public enum Role: Int, Hashable, Sendable, Codable, Comparable, CaseIterable, CustomStringConvertible {
    case guest = 0
    case user = 1
    case owner = 2

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The word used in configuration.
    public var description: String {
        switch self {
        case .guest: "guest"
        case .user: "user"
        case .owner: "owner"
        }
    }

    /// Parses `guest`, `user` or `owner`.
    public init?(word: String) {
        switch word.lowercased() {
        case "guest": self = .guest
        case "user": self = .user
        case "owner": self = .owner
        default: return nil
        }
    }
}
