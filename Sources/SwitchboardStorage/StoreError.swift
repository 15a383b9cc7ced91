public import SwitchboardModel

/// The one error type of the storage layer and its engines.
///
/// `description` is safe to log: it never contains SQL arguments, message bodies or secrets.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as a stable code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The database could not be opened or created (permissions, missing directory).
        public static let cannotOpen = Code("cannot_open")
        /// The file is not a database, or the database is damaged.
        public static let corrupt = Code("corrupt")
        /// Another process holds the database locked for longer than the busy timeout.
        public static let locked = Code("locked")
        /// The database was written by a newer Switchboard; this binary refuses to touch it.
        public static let schemaTooNew = Code("schema_too_new")
        /// A constraint refused a write (a second execution of a tool call, say).
        public static let constraint = Code("constraint")
        /// The disk is full or failing.
        public static let io = Code("io")
        /// A stored value could not be decoded.
        public static let decoding = Code("decoding")
        /// Any other database failure.
        public static let other = Code("other")

        public var description: String { name }
    }

    /// The code.
    public var code: Code
    /// An operator message that says what to do.
    public var message: String
    /// The underlying error, if any. Its description must be safe too.
    public var underlying: (any Error & Sendable)?
    /// Where the error was made.
    public var location: SourceLocation

    /// Creates a store error.
    public init(
        _ code: Code,
        _ message: String,
        underlying: (any Error & Sendable)? = nil,
        location: SourceLocation = SourceLocation()
    ) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.location = location
    }

    /// Whether retrying the same operation later can succeed.
    public var isTransient: Bool { code == .locked || code == .io }

    public var description: String {
        var text = "StoreError(\(code)): \(message)"
        if let underlying { text += " (cause: \(underlying))" }
        return text
    }
}
