// Is this message a yes or a no?
//
// Only when the whole message is a keyword: case, surrounding spaces and trailing punctuation
// aside. "yes!" is a yes; "yesterday" and "yes, but not the last one" are not. With several
// confirmations pending, "yes 2" picks the second (numbered as they were listed), and a bare
// "yes" is ambiguous rather than a guess. Keywords come from configuration.

/// The yes and no words.
public struct ConfirmationKeywords: Hashable, Sendable {
    /// Words that confirm.
    public var yes: Set<String>
    /// Words that decline.
    public var no: Set<String>

    /// The defaults: yes, y, confirm, ok, approve / no, n, cancel, deny.
    public static let defaults = ConfirmationKeywords(
        yes: ["yes", "y", "confirm", "ok", "approve"],
        no: ["no", "n", "cancel", "deny"]
    )

    /// Creates keywords; they are matched case-insensitively.
    public init(yes: Set<String>, no: Set<String>) {
        self.yes = Set(yes.map { $0.lowercased() })
        self.no = Set(no.map { $0.lowercased() })
    }
}

/// A message read as an answer to pending confirmations.
public enum ConfirmationReply: Hashable, Sendable {
    /// Confirm; `number` picks one of several (1-based), nil means "the only one".
    case yes(number: Int?)
    /// Decline; `number` as for yes.
    case no(number: Int?)

    /// Reads a message; nil if it is not a confirmation answer at all.
    public static func parse(_ text: String, keywords: ConfirmationKeywords = .defaults) -> ConfirmationReply? {
        var words = text.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init)
        guard !words.isEmpty, words.count <= 2 else { return nil }
        // Trailing punctuation aside: "yes!", "no.", "yes 2."
        words[words.count - 1] = String(words[words.count - 1].reversed().drop(while: { $0.isPunctuation }).reversed())
        var number: Int?
        if words.count == 2 {
            guard let parsed = Int(words[1]), parsed >= 1 else { return nil }
            number = parsed
        }
        let word = words[0]
        if keywords.yes.contains(word) { return .yes(number: number) }
        if keywords.no.contains(word) { return .no(number: number) }
        return nil
    }

    /// Picks the confirmation a reply refers to among `pending`, by the number each was given
    /// when it was asked (`number(of:)`).
    public func select<T>(from pending: [T], number numberOf: (T) -> Int) -> Selection<T> {
        let number: Int?
        switch self {
        case .yes(let n), .no(let n): number = n
        }
        if let number {
            guard let match = pending.first(where: { numberOf($0) == number }) else {
                return .noSuchNumber(number, count: pending.count)
            }
            return .one(match)
        }
        switch pending.count {
        case 0: return .none
        case 1: return .one(pending[0])
        default: return .ambiguous(count: pending.count)
        }
    }

    /// Whether it confirms.
    public var confirms: Bool {
        if case .yes = self { return true }
        return false
    }

    /// The result of picking.
    public enum Selection<T> {
        case one(T)
        case none
        case ambiguous(count: Int)
        case noSuchNumber(Int, count: Int)
    }
}
