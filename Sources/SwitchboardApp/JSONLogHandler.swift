// One JSON object per line, for log collectors (`log.format: json`).
//
// Fields: `ts` (ISO 8601, milliseconds, UTC), `level`, `label`, `message`, `source`, and every
// metadata key at the top level under `metadata`. Values are the log's own: secrets never
// reach a log line in the first place (they are `Secret` values, which print `<redacted>`).

import Foundation
public import Logging
import SwitchboardModel

/// A log handler that writes JSON lines.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler writing to standard error.
    public static func standardError(label: String) -> JSONLogHandler {
        JSONLogHandler(label: label, write: StandardErrorLines.shared.write)
    }

    /// A handler writing each line with `write` (which must be safe to call concurrently).
    public init(label: String, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var object: [String: JSONValue] = [
            "ts": .string(Self.timestamp(Date())),
            "level": .string(event.level.rawValue),
            "label": .string(label),
            "message": .string("\(event.message)"),
            "source": .string(event.source),
        ]
        if !merged.isEmpty {
            object["metadata"] = .object(merged.mapValues(Self.json))
        }
        write(JSONValue.object(object).canonicalText + "\n")
    }

    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text): .string(text)
        case .stringConvertible(let convertible): .string(convertible.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let members): .object(members.mapValues(json))
        }
    }

    private static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// Whole lines to standard error, one writer at a time, so concurrent lines never interleave.
final class StandardErrorLines: Sendable {
    static let shared = StandardErrorLines()
    private let lock = Locked(())

    @Sendable func write(_ line: String) {
        lock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }
}
