// Every named crash point, found in the sources rather than listed by hand, with traffic on
// Matrix (a real Synapse), email (Dovecot and an SMTP server), the HTTP API and an MCP tool
// call at once: `serve` kills itself with SIGKILL there, is started again, and then every
// message on every channel is answered exactly once, and each person's notes are in the order
// they were asked for.

import Foundation
import GRDB
import NIOHTTP1
import SwitchboardEmail
import SwitchboardModel
import Testing

@Suite("Every crash point under traffic on every channel", .serialized)
struct CrashPointMatrixTests {
    /// The names of `crashPoint?("…")` in the sources: a point added to the code is killed at
    /// here without anyone listing it.
    static let discovered: [String] = {
        let sources = packageRoot + "/Sources"
        var names = Set<String>()
        let pattern = try! NSRegularExpression(pattern: #"crashPoint\?\("([a-z_]+)"\)"#)
        for case let file as String in FileManager.default.enumerator(atPath: sources) ?? NSEnumerator() where file.hasSuffix(".swift") {
            guard let text = try? String(contentsOfFile: sources + "/" + file, encoding: .utf8) else { continue }
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                if let range = Range(match.range(at: 1), in: text) { names.insert(String(text[range])) }
            }
        }
        return names.sorted()
    }()

    @Test("The crash points are found in the sources")
    func found() {
        // The points the documentation names; a new one shows up in `discovered` (and in the
        // test below) by itself, and here as a reminder to document it.
        #expect(Self.discovered == [
            "after_deliver_before_record", "after_engine_commit", "after_inbox_commit", "before_engine_commit",
            "email_after_fetch", "remote_call_dispatched", "remote_call_performed",
        ])
    }

    @Test("Killed at the point and restarted: every Matrix, email, API and MCP request answered exactly once, in order", arguments: discovered)
    func killedAt(_ point: String) async throws {
        let matrix = try MatrixCast()
        let mail = try MailServers()
        let wiki = try WikiServer()
        let config = matrix.data.path + "/switchboard.yaml"
        try """
            mcp:
              servers:
                - name: wiki
                  command: \(try WikiServer.python())
                  args: [\(WikiServer.script), stdio, --state, \(wiki.state)]
                  trusted: true
                  connect_timeout_seconds: 60
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let environment = mail.botEnvironment.merging([
            "SWITCHBOARD_CONFIG": config, "SWITCHBOARD_HTTP_ENABLED": "true",
        ]) { $1 }
        let key = try APIServer.makeKey(dataDir: matrix.data.path, scopes: ["send", "read"])

        // The remote-call points are reached once (one MCP call); the others on their second
        // pass, so the kill comes with work before and after it.
        let occurrence = point.hasPrefix("remote_call") || point == "email_after_fetch" ? 1 : 2
        var bot = try matrix.startBot(extra: environment.merging(["SWITCHBOARD_TEST_CRASH_AT": "\(point):\(occurrence)"]) { $1 })
        // The bot starts beside an MCP server, Dovecot and Synapse while other suites load the
        // machine: its first join is given a minute, and a late one says what the bot was doing.
        let room: String
        do {
            room = try await matrix.directRoom(timeout: .seconds(60))
        } catch {
            throw HarnessError(description: "\(error); the bot is \(bot.process.isRunning ? "running" : "gone"):\n\(bot.log.suffix(4000))")
        }
        try await APIServer.waitUntilUp(bot)
        let base = "http://127.0.0.1:\(bot.httpPort)"

        for index in 1...3 {
            try await matrix.alice.say(room, "add a note: m\(index)")
            try mail.send(mailText(index), from: "alice@example.test")
            if bot.process.isRunning {
                let id = "api-\(index)"
                let accepted = try? await APIClient.send(.POST, base + "/v1/messages", key: key, body: Data(message("add a note: a\(index)", key: id).canonicalText.utf8))
                // A request the kill cut off is sent again after the restart, under the same key.
                if let accepted { #expect([200, 202].contains(accepted.status), "\(accepted.text)") }
            }
        }
        if bot.process.isRunning {
            let call = try? await APIClient.send(.POST, base + "/v1/messages", key: key, body: Data(message("run mcp.wiki.search query=onboarding", conversation: "c2", key: "mcp-1").canonicalText.utf8))
            if let call { #expect([200, 202].contains(call.status), "\(call.text)") }
        }
        try await waitForExit(bot, timeout: .seconds(60))
        #expect(bot.process.terminationReason == .uncaughtSignal, "\(point) was not reached:\n\(bot.log.suffix(2000))")

        bot = try matrix.startBot(extra: environment)
        defer { try? bot.stop() }
        try await APIServer.waitUntilUp(bot)
        let restarted = "http://127.0.0.1:\(bot.httpPort)"
        // What the API did not take before the kill is sent again, under the same keys.
        for index in 1...3 {
            let response = try await APIClient.send(.POST, restarted + "/v1/messages", key: key, body: Data(message("add a note: a\(index)", key: "api-\(index)").canonicalText.utf8))
            #expect([200, 202].contains(response.status), "\(response.text)")
        }
        let call = try await APIClient.send(.POST, restarted + "/v1/messages", key: key, body: Data(message("run mcp.wiki.search query=onboarding", conversation: "c2", key: "mcp-1").canonicalText.utf8))
        #expect([200, 202].contains(call.status), "\(call.text)")

        // Every request answered once.
        let replies = try await matrix.alice.waitForMessages(from: matrix.bot.userID, in: room, count: 3, timeout: .seconds(60))
        let mails = try await mail.waitForMessages(of: "alice", count: 3, timeout: .seconds(60))
        for id in ["api-1", "api-2", "api-3", "mcp-1"] {
            let fetched = try await APIClient.send(.GET, restarted + "/v1/messages/\(id)?wait=30", key: key)
            #expect(try fetched.json["replies"]?.arrayValue?.count == 1, "\(point): \(id) answered once: \(fetched.text)")
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try await matrix.alice.messages(from: matrix.bot.userID, in: room).count == 3, "\(point): nothing answered twice in Matrix")
        // By mail, "once" is once per Message-ID, email's idempotency key: SMTP has no way to
        // ask whether a message arrived, so a kill between the server's accept and the record
        // of it sends that one message again under the same Message-ID (clients and Sieve's
        // duplicate test fold such copies). Three requests, three different answers, and any
        // second copy exactly the first.
        let received = mail.messages(of: "alice")
        let byID = Dictionary(grouping: received, by: { $0.header("Message-ID") ?? "" })
        #expect(byID.count == 3 && !byID.keys.contains(""), "\(point): one answer per mail: \(byID.keys.sorted())")
        for (id, copies) in byID where copies.count > 1 {
            #expect(Set(copies.map(\.parsed.text)).count == 1 && Set(copies.map { $0.parsed.inReplyTo }).count == 1, "\(point): \(id) resent with other content")
        }
        if received.count > byID.count { print("crash matrix: \(point): \(received.count - byID.count) mail(s) resent under the same Message-ID") }
        // Note ids are shared by everyone; the texts say which request each reply answers.
        let bodies = replies.map { ($0["content"]?["body"]?.stringValue ?? "").replacingOccurrences(of: #"^Added note \d+: "#, with: "", options: .regularExpression) }
        #expect(bodies == ["m1", "m2", "m3"], "\(point): Matrix replies in order: \(replies.map { $0["content"]?["body"]?.stringValue ?? "" })")
        #expect(Set(mails.flatMap(\.parsed.inReplyTo)).count == 3, "each mail answered")

        // Each person's notes once each, in the order asked.
        let notes = try await DatabaseQueue(path: matrix.data.path + "/switchboard.sqlite").read { db in
            try Row.fetchAll(db, sql: "SELECT owner, text FROM notes ORDER BY id").map { ($0["owner"] as String, $0["text"] as String) }
        }
        func of(_ prefix: String) -> [String] { notes.map(\.1).filter { $0.hasPrefix(prefix) } }
        #expect(of("m") == ["m1", "m2", "m3"], "\(point): \(notes)")
        #expect(of("e") == ["e1", "e2", "e3"], "\(point): \(notes)")
        #expect(of("a") == ["a1", "a2", "a3"], "\(point): \(notes)")
        // The MCP search reached the server at most once.
        #expect(wiki.calls.filter { $0["tool"]?.stringValue == "search" }.count <= 1)
    }

    func mailText(_ index: Int) -> String {
        mail(subject: "Note \(index)", body: "add a note: e\(index)").text
    }
}

extension APIServer {
    /// Waits until a bot's HTTP API answers.
    static func waitUntilUp(_ bot: RunningBot) async throws {
        let up = await eventually(30) {
            if let response = try? await APIClient.send(.GET, "http://127.0.0.1:\(bot.httpPort)/healthz"), [200, 401].contains(response.status) { return true }
            return !bot.process.isRunning
        }
        // A bot that exited (a crash point fired) is for the caller to look at.
        guard up else { throw HarnessError(description: "serve's HTTP API did not come up:\n\(bot.log)") }
    }
}
