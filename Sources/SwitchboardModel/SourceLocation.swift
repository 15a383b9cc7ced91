/// Where an error was created, for operators reading logs.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    /// The file id (`Module/File.swift`).
    public var fileID: String
    /// The line.
    public var line: Int

    /// Captures the caller's location.
    public init(fileID: String = #fileID, line: Int = #line) {
        self.fileID = fileID
        self.line = line
    }

    public var description: String { "\(fileID):\(line)" }
}
