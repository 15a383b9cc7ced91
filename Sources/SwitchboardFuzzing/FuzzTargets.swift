// Every parser of outside input, as a fuzz target: bytes in, the parser run, and the
// invariants it must keep checked. A target returns normally for any input it refuses
// cleanly; a broken invariant is a `FuzzFailure` trap, so libFuzzer (and the corpus replay in
// the tests) report it with the input that caused it. Nothing here touches the network; the
// configuration target writes its input to one temporary file.

import Foundation
import MCP
import SwitchboardApp
import SwitchboardEmail
import SwitchboardEngine
import SwitchboardHTTP
import SwitchboardIntent
import SwitchboardMatrix
public import SwitchboardModel
import SwitchboardRemoteTools

/// The fuzz targets by name.
public enum FuzzTargets {
    /// Every target, in the order `scripts/fuzz.sh` runs them.
    public static let names = ["json", "mime", "imap", "matrix", "intent", "config", "api", "mcp"]

    /// Runs one input through a target.
    ///
    /// - Returns: false for an unknown target name.
    @discardableResult
    public static func run(_ name: String, _ data: [UInt8]) -> Bool {
        switch name {
        case "json": json(data)
        case "mime": mime(data)
        case "imap": imap(data)
        case "matrix": matrix(data)
        case "intent": intent(data)
        case "config": config(data)
        case "api": api(data)
        case "mcp": mcp(data)
        default: return false
        }
        return true
    }

    /// Where a broken invariant is reported; unset (under libFuzzer), it traps, and libFuzzer
    /// saves the input as a crash. The corpus replay in the tests sets it to record instead.
    @TaskLocal public static var reporter: (@Sendable (String) -> Void)?

    static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
        guard !condition() else { return }
        let text = message()
        if let reporter {
            reporter(text)
        } else {
            FileHandle.standardError.write(Data("fuzz invariant broken: \(text)\n".utf8))
            fatalError("fuzz invariant broken: \(text)")
        }
    }

    static func text(_ data: [UInt8]) -> String? {
        String(validating: data, as: UTF8.self)
    }

    // MARK: JSON

    /// Any JSON the gateway reads (API bodies, Matrix events, model and tool answers, stored
    /// arguments): what parses has a canonical text that parses back to the same value, which
    /// the audit chain's hashes rely on.
    static func json(_ data: [UInt8]) {
        guard let text = text(data), let value = try? JSONValue.parse(text) else { return }
        let canonical = value.canonicalText
        guard let again = try? JSONValue.parse(canonical) else {
            check(false, "canonical text does not parse: \(canonical.prefix(200))")
            return
        }
        check(again.canonicalText == canonical, "canonical text is not stable")
    }

    // MARK: Email

    static let mimeLimits = MIMELimits(maxBytes: 1 << 20, maxDepth: 12, maxParts: 50, maxTextCharacters: 20_000)

    /// A mail as the email channel reads it: parsed, checked for no-reply rules and sender
    /// authentication. The parser throws only for size; the text limits hold.
    static func mime(_ data: [UInt8]) {
        let message: EmailMessage
        do {
            message = try MIMEParser.parse(data, limits: mimeLimits)
        } catch is MIMEParser.TooLarge {
            return
        } catch {
            check(false, "MIMEParser threw \(type(of: error)), not only TooLarge")
            return
        }
        check(message.body.count <= mimeLimits.maxTextCharacters, "body over the text limit")
        check(!message.body.contains("\u{0}"), "a NUL in the body")
        check(!message.subject.contains("\n") && !message.subject.contains("\r"), "the subject is not one line")
        check(message.attachments.count <= mimeLimits.maxParts, "more attachments than parts allowed")
        _ = NoReplyReason.check(message, ownAddress: "bot@example.org")
        _ = SenderAuthentication.isAuthenticated(message, trustedAuthservID: "mx.example.org")
        for field in message.headers.fields where field.name.lowercased() == "authentication-results" {
            _ = SenderAuthentication.parse(field.value)
        }
    }

    /// A server's IMAP answer: split into lines with their literals, then read as each command's
    /// answer. A literal is never longer than the bytes that carried it.
    static func imap(_ data: [UInt8]) {
        guard let lines = try? IMAPResponse.lines(data) else { return }
        for line in lines {
            check(line.literals.reduce(0) { $0 + $1.count } <= data.count, "literals longer than the input")
        }
        _ = IMAPResponse.selected(lines)
        _ = IMAPResponse.capabilities(lines)
        _ = IMAPResponse.search(lines)
        _ = IMAPResponse.fetched(lines)
    }

    // MARK: Matrix

    static let identity = MatrixIdentity(userID: "@switchboard:example.org", displayName: "Switchboard", commandPrefix: "!sb")

    /// A sync response (or one event): every timeline event read as the bot reads it, and a
    /// reply's Markdown made HTML.
    static func matrix(_ data: [UInt8]) {
        guard let text = text(data), let value = try? JSONValue.parse(text) else { return }
        var events: [JSONValue] = []
        if let rooms = value["rooms"]?.objectValue {
            for section in ["join", "leave", "invite"] {
                for (_, room) in rooms[section]?.objectValue ?? [:] {
                    events += room["timeline"]?["events"]?.arrayValue ?? []
                    events += room["invite_state"]?["events"]?.arrayValue ?? []
                }
            }
        } else {
            events = value.arrayValue ?? [value]
        }
        for json in events.prefix(200) {
            guard let event = MatrixEvent(json) else { continue }
            if case .text(let body, _, _, _) = MatrixEvents.meaning(of: event, me: identity) {
                let stripped = MatrixEvents.stripReplyFallback(body)
                check(stripped.count <= body.count, "stripping the reply fallback made the body longer")
                let html = MatrixFormatting.html(fromMarkdown: stripped)
                check(!html.lowercased().contains("<script"), "a script element in the HTML of a reply")
            }
        }
    }

    // MARK: Intent

    static let now = Date(timeIntervalSince1970: 1_796_000_000)
    static let planner = IntentPlanner(
        engine: { BuiltinTools.intentEngine }, tools: BuiltinTools.all.map(\.descriptor), clock: FixedClock(time: now), zoneOf: { _ in nil }
    )

    struct FixedClock: WallClock {
        let time: Date
        func now() -> Date { time }
    }

    /// A person's words as the intent engine reads them: the exact commands, the classifier, the
    /// arguments it pulls out, and the dates and durations in them.
    static func intent(_ data: [UInt8]) {
        guard let text = text(data), text.utf8.count <= 4096 else { return }
        _ = CommandPlanner.plan(text: text)
        let zone = TimeZone(identifier: "Europe/Berlin") ?? .gmt
        let result = BuiltinTools.intentEngine.analyse(text, zone: zone, now: now)
        _ = planner.plan(for: result)
        _ = DateParser(zone: zone, now: now).scan(text)
    }

    // MARK: Configuration

    static let configPath = NSTemporaryDirectory() + "switchboard-fuzz-config-\(getpid()).yaml"

    /// A configuration file: read, or refused with a list of problems; never a crash.
    static func config(_ data: [UInt8]) {
        guard FileManager.default.createFile(atPath: configPath, contents: Data(data)) else { return }
        do {
            _ = try AppConfiguration(file: configPath, environment: ["HOME": NSTemporaryDirectory()])
        } catch let error as ConfigurationError {
            check(!error.description.isEmpty, "a configuration error without words")
        } catch {
            check(false, "AppConfiguration threw \(type(of: error)), not a ConfigurationError")
        }
    }

    // MARK: HTTP API

    /// A `POST /v1/messages` body: accepted within its limits, or refused with an API error.
    static func api(_ data: [UInt8]) {
        guard let text = text(data), let body = try? JSONValue.parse(text) else { return }
        guard let submission = try? MessageSubmission(body, maxTextBytes: 16_384, allowPrivateCallbacks: false) else { return }
        check(submission.text.utf8.count <= 16_384, "a text over the limit was accepted")
        check(!submission.sender.isEmpty && submission.sender.count <= 200, "a sender outside 1 to 200 characters was accepted")
        check(submission.person.rawValue.hasPrefix("api:"), "an API sender outside the api: namespace")
    }

    // MARK: MCP

    /// What an MCP server sends: a Server-Sent Events stream (streamable HTTP) or JSON lines
    /// (stdio), each message read as a tool list or a call's result. An event stream reads the
    /// same in any chunking; an untrusted server's tools are all high risk.
    static func mcp(_ data: [UInt8]) {
        var whole = ServerSentEventParser()
        var events = whole.feed(data)
        events += whole.finish()
        if !data.isEmpty {
            let cut = Int(data[0]) % data.count
            var chunked = ServerSentEventParser()
            var again = chunked.feed(Array(data[..<cut]))
            again += chunked.feed(Array(data[cut...]))
            again += chunked.finish()
            check(again == events, "the event stream reads differently when cut at \(cut)")
        }
        var messages = events.map { Data($0.data.utf8) }
        messages += data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).prefix(50).map { Data($0) }
        let decoder = JSONDecoder()
        for message in messages {
            if let result = try? decoder.decode(CallTool.Result.self, from: message) {
                _ = MCPTool.text(of: result)
            }
            if let listed = try? decoder.decode(ListTools.Result.self, from: message) {
                for tool in listed.tools {
                    _ = JSONValue(tool.inputSchema)
                    check(MCPTool.risk(tool.annotations, trusted: false, override: nil) == .high, "an untrusted server's tool is not high risk")
                }
            }
        }
    }
}
