// Server-sent events (the WHATWG event-stream format), as language-model providers and MCP
// servers over streamable HTTP send them.

/// One server-sent event.
public struct ServerSentEvent: Hashable, Sendable {
    /// The `event:` field, if any.
    public var event: String?
    /// The `data:` lines, joined with newlines.
    public var data: String

    /// Creates an event.
    public init(event: String?, data: String) {
        self.event = event
        self.data = data
    }
}

/// Splits a byte stream into server-sent events (the WHATWG event-stream format): `event:`
/// and `data:` fields, a blank line ends an event, lines starting with `:` are comments.
public struct ServerSentEventParser: Sendable {
    /// Creates a parser with nothing buffered.
    public init() {}

    /// Bytes received but not yet ended by a newline.
    public var buffered: Int { pending.count }

    private var pending: [UInt8] = []
    private var event: String?
    private var data: [String] = []

    /// Feeds bytes, returning the events they complete.
    public mutating func feed(_ bytes: [UInt8]) -> [ServerSentEvent] {
        pending += bytes
        var events: [ServerSentEvent] = []
        var start = 0
        var index = 0
        while index < pending.count {
            if pending[index] == UInt8(ascii: "\n") {
                var end = index
                if end > start && pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if let event = line(String(decoding: pending[start..<end], as: UTF8.self)) { events.append(event) }
                start = index + 1
            }
            index += 1
        }
        pending.removeFirst(start)
        return events
    }

    /// Ends the stream, returning an event left without its blank line.
    public mutating func finish() -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        if !pending.isEmpty, let event = line(String(decoding: pending, as: UTF8.self)) { events.append(event) }
        pending = []
        if let event = line("") { events.append(event) }
        return events
    }

    private mutating func line(_ line: String) -> ServerSentEvent? {
        if line.isEmpty {
            defer { event = nil; data = [] }
            guard !data.isEmpty else { return nil }
            return ServerSentEvent(event: event, data: data.joined(separator: "\n"))
        }
        if line.hasPrefix(":") { return nil }
        let field: Substring
        var value: Substring
        if let colon = line.firstIndex(of: ":") {
            field = line[..<colon]
            value = line[line.index(after: colon)...]
            if value.hasPrefix(" ") { value = value.dropFirst() }
        } else {
            field = Substring(line)
            value = ""
        }
        switch field {
        case "event": event = String(value)
        case "data": data.append(String(value))
        default: break
        }
        return nil
    }
}
