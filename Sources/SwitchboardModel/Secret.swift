/// A secret value (password, token, API key) that never prints itself.
///
/// `description`, `debugDescription` and string interpolation all show `<redacted>`; the
/// value is reachable only through `revealed`, which makes every use easy to find.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let value: String

    /// Wraps a secret value.
    public init(_ value: String) { self.value = value }

    /// The secret itself. Use it only where it leaves for its destination.
    public var revealed: String { value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(reflecting: "<redacted>") }
}
