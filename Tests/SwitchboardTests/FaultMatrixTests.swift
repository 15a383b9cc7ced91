// The fault matrix: `serve` with one dependency (Synapse, Dovecot's IMAP, the SMTP server,
// PostgreSQL, a model server) behind a `FaultProxy`, taken through every fault in turn without
// a restart. For each fault a request is sent from the outside while it lasts; after the fault
// is lifted that request is answered, exactly once, in order with the others, and /readyz and
// /metrics showed what happened while it lasted (a failure count, a state, an open circuit)
// and are healthy again afterwards. Each test prints its rows of the table in docs/testing.md.

import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import SwitchboardPostgres
import SwitchboardModel
import Testing

@Suite("Fault matrix: each dependency dropped, reset, stalled and slowed under traffic", .serialized)
struct FaultMatrixTests {
    @Test("Synapse: Matrix messages sent while the homeserver connection fails are answered once each, in order")
    func synapse() async throws {
        let matrix = try MatrixCast()
        let proxy = try FaultProxy(upstreamPort: matrix.synapse.port)
        let key = try APIServer.makeKey(dataDir: matrix.data.path, scopes: ["read"])
        let bot = try matrix.startBot(extra: ["SWITCHBOARD_MATRIX_HOMESERVER": "http://127.0.0.1:\(proxy.port)", "SWITCHBOARD_HTTP_ENABLED": "true"])
        defer { try? bot.stop() }
        let room = try await matrix.directRoom()
        try await APIServer.waitUntilUp(bot)

        let drill = FaultDrill(dependency: "Synapse (Matrix)", proxy: proxy, bot: bot, key: key) { index in
            try await matrix.alice.say(room, "add a note: m\(index)")
        } answered: { index in
            try await matrix.alice.messages(from: matrix.bot.userID, in: room).count >= index + 1
        }
        try await drill.run()

        try await Task.sleep(for: .seconds(2))
        let replies = try await matrix.alice.messages(from: matrix.bot.userID, in: room)
        let bodies = replies.map { ($0["content"]?["body"]?.stringValue ?? "").replacingOccurrences(of: #"^Added note \d+: "#, with: "", options: .regularExpression) }
        #expect(bodies == FaultDrill.texts("m"), "every message answered once, in order: \(bodies)")
        #expect(try FaultDrill.notes(matrix.database(), prefix: "m") == FaultDrill.texts("m"))
    }

    @Test("Dovecot (IMAP): mail that arrives while the mailbox connection fails is read and answered once each")
    func imap() async throws {
        let cast = try EmailCast()
        let proxy = try FaultProxy(upstreamPort: cast.servers.imapPort)
        let key = try APIServer.makeKey(dataDir: cast.data.path, scopes: ["read"])
        let bot = try cast.startBot(extra: ["SWITCHBOARD_EMAIL_IMAP_URL": "imap://127.0.0.1:\(proxy.port)", "SWITCHBOARD_HTTP_ENABLED": "true"])
        defer { try? bot.stop() }
        try await APIServer.waitUntilUp(bot)

        let drill = FaultDrill(dependency: "Dovecot (IMAP)", proxy: proxy, bot: bot, key: key) { index in
            try cast.aliceSays("add a note: e\(index)", subject: "Note \(index)")
        } answered: { index in
            cast.servers.messages(of: "alice").count >= index + 1
        }
        try await drill.run()
        try await FaultDrill.expectMailAnsweredOnce(cast)
    }

    @Test("SMTP: replies that cannot be sent while the submission server fails go out once each when it is back")
    func smtp() async throws {
        let cast = try EmailCast()
        let proxy = try FaultProxy(upstreamPort: cast.servers.smtpPort)
        let key = try APIServer.makeKey(dataDir: cast.data.path, scopes: ["read"])
        let bot = try cast.startBot(extra: ["SWITCHBOARD_EMAIL_SMTP_URL": "smtp://127.0.0.1:\(proxy.port)", "SWITCHBOARD_HTTP_ENABLED": "true"])
        defer { try? bot.stop() }
        try await APIServer.waitUntilUp(bot)

        let drill = FaultDrill(dependency: "SMTP server", proxy: proxy, bot: bot, key: key) { index in
            try cast.aliceSays("add a note: e\(index)", subject: "Note \(index)")
        } answered: { index in
            cast.servers.messages(of: "alice").count >= index + 1
        }
        try await drill.run()
        try await FaultDrill.expectMailAnsweredOnce(cast)
    }

    @Test("PostgreSQL: API requests made while the database connection fails are refused with 503 or taken, and answered once each")
    func postgres() async throws {
        let pg = try PostgresServer.shared.get()
        let database = try pg.createDatabase()
        let proxy = try FaultProxy(upstreamPort: pg.port)
        let direct = "postgres://switchboard:\(pg.password)@127.0.0.1:\(pg.port)/\(database.database)?sslmode=disable"
        let proxied = "postgres://switchboard:\(pg.password)@127.0.0.1:\(proxy.port)/\(database.database)?sslmode=disable"
        let data = try TemporaryDirectory()
        let key = try runCommand(Binary.path, ["keys", "create", "--name", "faults", "--scope", "send", "--scope", "read", "--any-sender"], environment: ["SWITCHBOARD_DATABASE_URL": direct])
            .split(separator: "\n").last.map(String.init) ?? ""
        let bot = try RunningBot(dataDir: data.path, environment: [
            "SWITCHBOARD_DATABASE_URL": proxied, "SWITCHBOARD_HTTP_ENABLED": "true",
            "SWITCHBOARD_SECRETS_KEY": TestSecrets.register("fault-key-\(UUID().uuidString)"),
            "SWITCHBOARD_DATABASE_CONNECT_TIMEOUT_SECONDS": "5",
        ])
        defer { try? bot.stop() }
        try await APIServer.waitUntilUp(bot)
        let base = "http://127.0.0.1:\(bot.httpPort)"

        let drill = FaultDrill(dependency: "PostgreSQL", proxy: proxy, bot: bot, key: key) { index in
            // As an integration would: again under the same key until the gateway takes it.
            let body = Data(message("add a note: p\(index)", key: "p-\(index)").canonicalText.utf8)
            let deadline = ContinuousClock.now + .seconds(120)
            while true {
                let response = try? await APIClient.send(.POST, base + "/v1/messages", key: key, body: body, timeout: .seconds(30))
                if let response, [200, 202].contains(response.status) { return }
                if let response { #expect(response.status == 503, "a failing database is a 503: \(response.status) \(response.text)") }
                guard ContinuousClock.now < deadline else { throw HarnessError(description: "p\(index) was never taken") }
                try await Task.sleep(for: .milliseconds(500))
            }
        } answered: { index in
            let response = try await APIClient.send(.GET, base + "/v1/messages/p-\(index)", key: key, timeout: .seconds(10))
            return try response.status == 200 && response.json["replies"]?.arrayValue?.isEmpty == false
        }
        try await drill.run()

        for index in FaultDrill.indices {
            let response = try await APIClient.send(.GET, base + "/v1/messages/p-\(index)", key: key)
            #expect(try response.json["replies"]?.arrayValue?.count == 1, "p\(index) answered once: \(response.text)")
        }
        let notes = try runCommand("/usr/bin/psql", [direct, "-Atc", "SELECT text FROM notes ORDER BY id"]).split(separator: "\n").map(String.init)
        #expect(notes == FaultDrill.texts("p"), "each note once, in order: \(notes)")
    }

    @Test("Model server: requests planned while the model connection fails are answered once each (by the intent engine, saying so), and the model is used again after")
    func model() async throws {
        let server = try await ScriptedModelServer(path: "/v1/chat/completions") { request in
            // A tool call for a new request, a short text once the tool has answered.
            let messages = request["messages"]?.arrayValue ?? []
            if messages.last?["role"]?.stringValue == "tool" { return OpenAIScript.text("Noted.") }
            let text = messages.last?["content"]?.stringValue ?? ""
            let item = text.components(separatedBy: "remember ").last ?? text
            return OpenAIScript.toolCalls([("call_1", "notes_add", JSONValue.object(["text": .string(item)]).canonicalText)])
        }
        defer { Task { await server.stop() } }
        let proxy = try FaultProxy(upstreamPort: server.port)
        let data = try TemporaryDirectory()
        let config = data.path + "/switchboard.yaml"
        try """
            llm:
              models:
                - name: scripted
                  provider: openai
                  base_url: http://127.0.0.1:\(proxy.port)/v1
                  model: test-model
                  tier: 1
                  context_window: 16000
                  timeout_seconds: 10
              intent_confidence: 1.0
              retry_attempts: 2
              retry_base_ms: 200
              breaker_failures: 2
              breaker_cooldown_seconds: 2
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let key = try APIServer.makeKey(dataDir: data.path, scopes: ["send", "read"])
        let bot = try RunningBot(dataDir: data.path, environment: [
            "SWITCHBOARD_CONFIG": config, "SWITCHBOARD_HTTP_ENABLED": "true",
            "SWITCHBOARD_LLM_MODELS_0_API_KEY": TestSecrets.register("sk-fault-\(UUID().uuidString)"),
        ])
        defer { try? bot.stop() }
        try await APIServer.waitUntilUp(bot)
        let base = "http://127.0.0.1:\(bot.httpPort)"

        let drill = FaultDrill(dependency: "Model server", proxy: proxy, bot: bot, key: key) { index in
            let response = try await APIClient.send(.POST, base + "/v1/messages", key: key, body: Data(message("please remember l\(index)", key: "l-\(index)").canonicalText.utf8))
            #expect([200, 202].contains(response.status), "\(response.text)")
        } answered: { index in
            let response = try await APIClient.send(.GET, base + "/v1/messages/l-\(index)", key: key, timeout: .seconds(10))
            return try response.status == 200 && response.json["replies"]?.arrayValue?.isEmpty == false
        }
        try await drill.run()

        for index in FaultDrill.indices {
            let response = try await APIClient.send(.GET, base + "/v1/messages/l-\(index)", key: key)
            let replies = try response.json["replies"]?.arrayValue ?? []
            #expect(replies.count == 1, "l\(index) answered once: \(response.text)")
            // Where the model could not be reached the intent engine answered, and said so.
            if index == 1 { #expect(replies.first.map { "\($0)".contains("My language model is unavailable right now") } == true, "\(replies)") }
        }
        let notes = try await DatabaseQueue(path: data.path + "/switchboard.sqlite").read { db in
            try String.fetchAll(db, sql: "SELECT text FROM notes ORDER BY id")
        }
        #expect(notes.filter { $0.hasPrefix("l") } == FaultDrill.texts("l"), "each note once, in order: \(notes)")
        // After the last fault the model is used again: the last request reached it.
        #expect(server.requests.contains { "\($0)".contains("please remember l\(FaultDrill.indices.last!)") })
    }
}

/// Takes one dependency through every fault with one gateway running throughout.
struct FaultDrill {
    /// Request 0 before any fault, then one per fault, then one after them all.
    static let faults: [Fault] = [.drop, .reset, .stall, .slow]
    static var indices: ClosedRange<Int> { 0...(faults.count + 1) }
    static func texts(_ prefix: String) -> [String] { indices.map { "\(prefix)\($0)" } }

    let dependency: String
    let proxy: FaultProxy
    let bot: RunningBot
    let key: String
    /// Sends request number `index` from the outside (never through the proxy).
    let send: @Sendable (Int) async throws -> Void
    /// Whether request number `index` has its answer.
    let answered: @Sendable (Int) async throws -> Bool

    init(
        dependency: String, proxy: FaultProxy, bot: RunningBot, key: String,
        send: @escaping @Sendable (Int) async throws -> Void, answered: @escaping @Sendable (Int) async throws -> Bool
    ) {
        self.dependency = dependency
        self.proxy = proxy
        self.bot = bot
        self.key = key
        self.send = send
        self.answered = answered
    }

    /// How long each fault lasts.
    static func window(_ fault: Fault) -> Duration { fault == .stall ? .seconds(10) : .seconds(6) }

    func run() async throws {
        var rows: [String] = []
        try await send(0)
        try await waitUntil("request 0 answered before any fault") { try await answered(0) }
        for (offset, fault) in Self.faults.enumerated() {
            let index = offset + 1
            try await waitUntil("healthy before \(fault)") { await observe(since: [:]).healthy }
            let baseline = await observe(since: [:]).metrics
            let injectedBefore = proxy.injected(fault)
            proxy.set(fault)
            let started = ContinuousClock.now
            var signals = Set<String>()
            // The request goes in while the fault lasts; a send that itself waits on the
            // dependency (a 503 retried) may finish only after it is lifted.
            let sending = Task { try await send(index) }
            while ContinuousClock.now - started < Self.window(fault) {
                signals.formUnion(await observe(since: baseline).signals)
                try await Task.sleep(for: .milliseconds(250))
            }
            // Answered while the fault lasted (the model's fallback does that)?
            let duringFault = (try? await answered(index)) ?? false
            proxy.set(nil)
            let lifted = ContinuousClock.now
            try await sending.value
            var answeredAt: Duration?
            var healthyAt: Duration?
            while answeredAt == nil || healthyAt == nil {
                let seen = await observe(since: baseline)
                signals.formUnion(seen.signals)
                if answeredAt == nil, (try? await answered(index)) == true { answeredAt = ContinuousClock.now - lifted }
                if healthyAt == nil, seen.healthy { healthyAt = ContinuousClock.now - lifted }
                if ContinuousClock.now - lifted > .seconds(150) {
                    throw HarnessError(description: "\(dependency), \(fault): not \(answeredAt == nil ? "answered" : "healthy again") 150 s after the fault ended; seen: \(signals.sorted())\n\(bot.log.suffix(3000))")
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(proxy.injected(fault) > injectedBefore, "\(dependency): the \(fault) fault never acted")
            if fault == .slow {
                #expect(signals.isEmpty, "\(dependency): a slow dependency is not a failed one: \(signals.sorted())")
            } else {
                #expect(!signals.isEmpty, "\(dependency), \(fault): neither /readyz nor /metrics showed the fault")
            }
            let answer = duringFault ? "during the fault" : Self.seconds(answeredAt!)
            let row = "| \(dependency) | \(fault) | \(signals.isEmpty ? "nothing (none expected)" : signals.sorted().joined(separator: "; ")) | \(answer) | \(Self.seconds(healthyAt!)) |"
            rows.append(row)
        }
        try await send(Self.faults.count + 1)
        try await waitUntil("the last request answered") { try await answered(Self.faults.count + 1) }
        print("fault matrix rows:\n" + rows.joined(separator: "\n"))
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    private func waitUntil(_ what: String, timeout: Duration = .seconds(120), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                let seen = await observe(since: [:])
                throw HarnessError(description: "\(dependency): \(what): not within \(timeout); readyz and metrics: \(seen.signals.sorted())\n\(bot.log.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// What /readyz and /metrics say now: whether everything is healthy, the signs of trouble,
    /// and the failure counters (to compare with `since`).
    func observe(since baseline: [String: Double]) async -> (healthy: Bool, signals: Set<String>, metrics: [String: Double]) {
        let base = "http://127.0.0.1:\(bot.httpPort)"
        var signals = Set<String>()
        var healthy = true
        if let ready = try? await APIClient.send(.GET, base + "/readyz", key: key, timeout: .seconds(5)), let json = try? ready.json {
            if ready.status != 200 {
                healthy = false
                signals.insert("/readyz \(ready.status)")
            }
            if let database = json["checks"]?["database"]?["status"]?.stringValue, database != "ok" {
                healthy = false
                signals.insert("/readyz database \(database)")
            }
            for (name, channel) in json["checks"]?["channels"]?.objectValue ?? [:] {
                if let state = channel["status"]?.stringValue, state != "connected" {
                    healthy = false
                    signals.insert("/readyz \(name) \(state)")
                }
                if (channel["failures"]?.intValue ?? 0) > 0 {
                    healthy = false
                    signals.insert("/readyz \(name) failures")
                }
                for (circuit, state) in channel["circuits"]?.objectValue ?? [:] where state.stringValue != "closed" {
                    healthy = false
                    signals.insert("/readyz \(name) \(circuit) circuit \(state.stringValue ?? "?")")
                }
            }
            for (name, model) in json["checks"]?["models"]?.objectValue ?? [:] where model["circuit"]?.stringValue != "closed" {
                // Half open (the cooldown is over, the next call is the trial) is what an open
                // circuit becomes by itself; only an open one skips the model.
                if model["circuit"]?.stringValue == "open" {
                    healthy = false
                    signals.insert("/readyz model \(name) circuit open")
                }
            }
        } else {
            healthy = false
            signals.insert("/readyz no answer")
        }
        var counters: [String: Double] = [:]
        if let text = try? await APIClient.send(.GET, base + "/metrics", key: key, timeout: .seconds(5)).text, let samples = try? PrometheusText.parse(text) {
            for (series, value) in samples {
                let name = String(series.prefix { $0 != "{" })
                let failing = name.hasSuffix("failures_total") || name.hasSuffix("retries_total")
                    || (name == "switchboard_llm_requests_total" && !series.contains(#"outcome="ok""#))
                if failing {
                    counters[series] = value
                    if value > baseline[series, default: 0] { signals.insert("\(series) grew") }
                }
                if name.hasSuffix("circuit_open"), value > 0 {
                    healthy = false
                    signals.insert("\(series) 1")
                }
            }
        }
        return (healthy, signals, counters)
    }

    /// Every mail answered once: as many replies as requests, each to a different one.
    static func expectMailAnsweredOnce(_ cast: EmailCast) async throws {
        try await Task.sleep(for: .seconds(2))
        let replies = cast.servers.messages(of: "alice")
        #expect(replies.count == indices.count, "one reply per mail: \(replies.map(\.parsed.subject))")
        #expect(Set(replies.flatMap(\.parsed.inReplyTo)).count == indices.count, "each mail answered: \(replies.map(\.parsed.subject))")
        #expect(try notes(cast.database(), prefix: "e") == texts("e"))
    }

    /// The notes starting with `prefix`, in the order they were made.
    static func notes(_ database: DatabaseQueue, prefix: String) throws -> [String] {
        try database.read { db in try String.fetchAll(db, sql: "SELECT text FROM notes ORDER BY id") }.filter { $0.hasPrefix(prefix) }
    }
}
