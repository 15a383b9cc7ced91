import Foundation
import Logging
import SwitchboardApp
import SwitchboardModel
import Testing

@Suite("Logging")
struct LoggingTests {
    final class Lines: Sendable {
        let lines = Locked<[String]>([])
        @Sendable func write(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    @Test("JSON logs are one object per line with level, message, source and metadata")
    func jsonLines() throws {
        let lines = Lines()
        var logger = Logger(label: "switchboard") { label in
            var handler = JSONLogHandler(label: label, write: lines.write)
            handler.logLevel = .debug
            return handler
        }
        logger[metadataKey: "channel"] = "matrix"
        logger.info("joined a room \"quoted\"\nsecond line", metadata: ["room.id": "!abc", "tries": .stringConvertible(3), "nested": ["a": ["1", "2"]]])
        logger.trace("below the level")
        let all = lines.all
        #expect(all.count == 1)
        let line = try #require(all.first)
        #expect(line.hasSuffix("\n") && line.dropLast().contains("\n") == false, "one line, newline escaped inside")
        let object = try JSONValue.parse(String(line.dropLast()))
        #expect(object["level"] == "info")
        #expect(object["label"] == "switchboard")
        #expect(object["message"] == "joined a room \"quoted\"\nsecond line")
        #expect(object["source"] == "SwitchboardTests")
        #expect(object["metadata"] == ["channel": "matrix", "room.id": "!abc", "tries": "3", "nested": ["a": ["1", "2"]]])
        let ts = try #require(object["ts"]?.stringValue)
        #expect(ts.count >= 20 && ts.contains("T") && ts.hasSuffix("Z"), "ISO 8601 in UTC: \(ts)")
    }
}
