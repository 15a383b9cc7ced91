// What the API promises beyond single requests: signed callbacks that are retried, metrics
// that move with a conversation, and a SIGTERM under load that loses nothing.

import AsyncHTTPClient
import Crypto
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import SwitchboardModel
import Testing

@Suite("HTTP API: callbacks, metrics, shutdown", .serialized)
struct HTTPDeliveryTests {
    @Test("A reply is POSTed to the callback URL, signed with HMAC-SHA256, and retried until accepted")
    func signedCallbackWithRetry() async throws {
        let hook = try await HTTPRecorder(statuses: [503])
        defer { hook.stop() }
        let secret = TestSecrets.register("callback-secret-\(UUID().uuidString)")
        let server = try await APIServer(extra: [
            "SWITCHBOARD_HTTP_CALLBACK_SECRET": secret, "SWITCHBOARD_OUTBOX_RETRY_BASE_MS": "50",
            // The receiver is on 127.0.0.1, which callbacks may not name by default.
            "SWITCHBOARD_HTTP_CALLBACK_ALLOW_PRIVATE": "true",
        ])
        defer { try? server.stop() }
        let key = try server.key("send")
        let posted = try await server.post(
            "/v1/messages", key: key,
            json: message("add a note: milk", key: "cb-1", extra: ["callback_url": .string("http://127.0.0.1:\(hook.port)/hook")])
        )
        #expect([200, 202].contains(posted.status), "\(posted.text)")

        let received = try await hook.wait { $0.count >= 2 }
        try #require(received.count == 2, "expected a refused and a retried callback, got \(received.count)\n\(server.bot.log)")
        #expect(received.allSatisfy { $0.path == "/hook" })
        #expect(received[0].body == received[1].body, "the retry sends the same reply")
        let reply = try JSONValue.parse(received[1].body)
        #expect(reply["text"] == "Added note 1: milk")
        #expect(reply["in_reply_to"] == "cb-1")
        #expect(received[1].headers["switchboard-delivery"] == reply["id"]?.stringValue)

        // The receiver checks the signature with the shared secret.
        let signature = try #require(received[1].headers["switchboard-signature"])
        let fields = Dictionary(uniqueKeysWithValues: signature.split(separator: ",").map { part -> (String, String) in
            let pair = part.split(separator: "=", maxSplits: 1)
            return (String(pair[0]), String(pair.count > 1 ? pair[1] : ""))
        })
        let timestamp = try #require(fields["t"])
        let expected = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(received[1].body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        #expect(fields["v1"] == expected.map { String(format: "%02x", $0) }.joined())
        #expect(abs(Double(timestamp)! - Date().timeIntervalSince1970) < 60)
        #expect(!server.bot.log.contains(secret), "the callback secret never reaches the log")
    }

    @Test("With tracing.otlp_endpoint set, one trace runs from the HTTP request through the engine and the tool to delivery")
    func tracesExported() async throws {
        let collector = try await HTTPRecorder()
        defer { collector.stop() }
        let server = try await APIServer(extra: [
            "SWITCHBOARD_TRACING_OTLP_ENDPOINT": "http://127.0.0.1:\(collector.port)", "SWITCHBOARD_TRACING_PROTOCOL": "http/json",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        ])
        defer { try? server.stop() }
        let key = try server.key("send")
        let response = try await server.post("/v1/messages?wait=10", key: key, json: message("add a note: traced", key: "traced-1"))
        #expect(response.status == 200)

        func spans(_ records: [HTTPRecorder.Record]) -> [JSONValue] {
            var spans: [JSONValue] = []
            for record in records where record.path == "/v1/traces" {
                guard let export = try? JSONValue.parse(record.body) else { continue }
                for resource in export["resourceSpans"]?.arrayValue ?? [] {
                    for scope in resource["scopeSpans"]?.arrayValue ?? [] { spans += scope["spans"]?.arrayValue ?? [] }
                }
            }
            return spans
        }
        // The request's own span ends after its response, so it may come in a later export than
        // the spans it contains: wait for it too.
        let names: Set<String> = ["engine.message", "tool notes.add", "deliver api"]
        func complete(_ spans: [JSONValue]) -> Bool {
            guard names.isSubset(of: Set(spans.compactMap { $0["name"]?.stringValue })),
                let engine = spans.first(where: { $0["name"] == "engine.message" })
            else { return false }
            return spans.contains { $0["spanId"] == engine["parentSpanId"] }
        }
        let all = spans(try await collector.wait { complete(spans($0)) })
        func span(_ name: String) throws -> JSONValue {
            try #require(all.first { $0["name"]?.stringValue == name }, "no span \(name) among \(all.compactMap { $0["name"]?.stringValue })")
        }
        let engine = try span("engine.message")
        let tool = try span("tool notes.add")
        let delivery = try span("deliver api")
        let request = try #require(all.first { $0["spanId"] == engine["parentSpanId"] }, "the engine's span has the request's span as parent")
        #expect(request["name"]?.stringValue?.contains("/v1/messages") == true, "\(request)")
        for child in [engine, tool, delivery] {
            #expect(child["traceId"] == request["traceId"], "one trace: \(child["name"] ?? "?")")
        }
        #expect(tool["parentSpanId"] == engine["spanId"])
        #expect(delivery["parentSpanId"] == engine["spanId"])
        #expect(engine["attributes"]?.arrayValue?.contains { $0["key"] == "switchboard.correlation_id" } == true)
    }

    @Test("/metrics parses as Prometheus text and its counters move with a scripted conversation")
    func metricsMove() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        let key = try server.key("send")
        let before = try PrometheusText.parse(try await server.get("/metrics", key: nil).text)
        #expect(before["switchboard_messages_received_total{channel=\"api\"}"] == nil)

        for text in ["add a note: one", "add a note: two", "delete all my notes", "yes"] {
            let response = try await server.post("/v1/messages?wait=10", key: key, json: message(text))
            #expect(response.status == 200, "\(text): \(response.text)")
        }
        // Deliveries are counted after their commit; give the last one a moment.
        var after: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(10)
        while true {
            after = try PrometheusText.parse(try await server.get("/metrics", key: nil).text)
            if after["switchboard_messages_sent_total{channel=\"api\"}"] == 4 || Date() >= deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(after["switchboard_messages_received_total{channel=\"api\"}"] == 4)
        #expect(after["switchboard_messages_sent_total{channel=\"api\"}"] == 4)
        #expect(after["switchboard_tool_calls_total{tool=\"notes.add\",risk=\"medium\",outcome=\"executed\"}"] == 2)
        #expect(after["switchboard_tool_calls_total{tool=\"notes.delete\",risk=\"high\",outcome=\"awaiting_confirmation\"}"] == 1)
        #expect(after["switchboard_tool_calls_total{tool=\"notes.delete\",risk=\"high\",outcome=\"executed\"}"] == 1)
        #expect(after["switchboard_confirmations_total{outcome=\"requested\"}"] == 1)
        #expect(after["switchboard_confirmations_total{outcome=\"confirmed\"}"] == 1)
        #expect(after["switchboard_message_processing_seconds_count{channel=\"api\"}"] == 4)
        #expect(after["switchboard_inbox_pending"] == 0)
        #expect(after["switchboard_channel_up{channel=\"api\"}"] == 1)
    }

    @Test("An idle serve stops on SIGTERM at once, not at the end of its grace period: no service waits out a timer")
    func idleStopIsPrompt() async throws {
        let server = try await APIServer(extra: ["SWITCHBOARD_SHUTDOWN_GRACE_PERIOD_SECONDS": "30"])
        let started = ContinuousClock.now
        // RunningBot.stop fails if the process has not ended within the timeout.
        try server.bot.stop(timeout: 8)
        let took = ContinuousClock.now - started
        #expect(took < .seconds(8), "took \(took)")
        #expect(server.bot.process.terminationStatus == 0, "\(server.bot.log)")
    }

    @Test("SIGTERM during load: exit 0 within the grace period, and every accepted message is answered exactly once")
    func sigtermUnderLoad() async throws {
        let data = try TemporaryDirectory()
        // Rate limits out of the way: each client sends as one person, faster than the default
        // burst allows, and a "too fast" answer would make no note.
        let unlimited = ["SWITCHBOARD_RATE_LIMITS_DEFAULT_PER_MINUTE": "1000000", "SWITCHBOARD_RATE_LIMITS_DEFAULT_BURST": "1000000"]
        let server = try await APIServer(data: data, extra: unlimited)
        let key = try server.key("send", "read")
        let base = server.base

        // 16 clients send until the server stops answering; SIGTERM goes out mid-way.
        let accepted = try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<16 {
                group.addTask {
                    var mine: [String] = []
                    for index in 0..<200 {
                        let id = "load-\(client)-\(index)"
                        let body = message("add a note: \(id)", sender: "p\(client)", conversation: "conv-\(client % 8)", key: id)
                        // A short timeout: once the server is gone, the client's pool keeps retrying
                        // the connection until the request's deadline.
                        guard let response = try? await APIClient.send(.POST, base + "/v1/messages", key: key, body: Data(body.canonicalText.utf8), timeout: .seconds(3)) else {
                            return mine
                        }
                        if [200, 202].contains(response.status) { mine.append(id) } else { return mine }
                    }
                    return mine
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(700))
                kill(server.bot.process.processIdentifier, SIGTERM)
                return []
            }
            var all: [String] = []
            for try await ids in group { all += ids }
            return all
        }
        let stopped = Date().addingTimeInterval(15)
        while server.bot.process.isRunning && Date() < stopped { try await Task.sleep(for: .milliseconds(20)) }
        try #require(!server.bot.process.isRunning, "serve did not stop after SIGTERM:\n\(server.bot.log)")
        #expect(server.bot.process.terminationStatus == 0, "\(server.bot.log.suffix(2000))")
        #expect(accepted.count > 0 && accepted.count < 3200, "the load was cut by the shutdown (\(accepted.count) accepted)")

        // Started again, it answers everything it accepted, once.
        let again = try await APIServer(data: data, extra: unlimited)
        defer { try? again.stop() }
        let deadline = Date().addingTimeInterval(30)
        var pending = -1
        while true {
            pending = try await again.database().read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox WHERE status = 'pending'") ?? -1 }
            if pending == 0 || Date() >= deadline { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(pending == 0)
        let counts = try await again.database().read { db -> [String: Int] in
            let rows = try Row.fetchAll(db, sql: """
                SELECT inbox.external_id AS id, COUNT(outbox.id) AS replies FROM inbox
                LEFT JOIN outbox ON outbox.channel = 'api' AND outbox.in_reply_to = inbox.external_id
                WHERE inbox.channel = 'api' GROUP BY inbox.external_id
                """)
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["id"] as String, $0["replies"] as Int) })
        }
        for id in accepted {
            #expect(counts[id] == 1, "\(id) has \(counts[id] ?? 0) replies")
        }
        let (notes, executed) = try await again.database().read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM notes") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit WHERE tool = 'notes.add' AND status = 'executed'") ?? 0)
        }
        #expect(notes == counts.count, "one note per stored message, none twice")
        #expect(executed == notes, "each note from one executed call")
    }
}

/// The Prometheus text exposition format, strictly enough to catch a malformed line.
enum PrometheusText {
    /// Every sample as `name{labels}` → value; throws on a line that is not a comment or a sample.
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard let space = line.lastIndex(of: " ") else { throw HarnessError(description: "not a sample: \(line)") }
            let series = String(line[..<space])
            let valueText = line[line.index(after: space)...]
            let value: Double? = valueText == "+Inf" ? .infinity : valueText == "-Inf" ? -.infinity : valueText == "NaN" ? .nan : Double(valueText)
            guard let value else { throw HarnessError(description: "bad value in: \(line)") }
            let name = series.prefix { $0 != "{" }
            guard let first = name.first, first.isLetter || first == "_" || first == ":",
                name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" })
            else { throw HarnessError(description: "bad metric name in: \(line)") }
            if series.count > name.count {
                guard series.hasSuffix("}") else { throw HarnessError(description: "unterminated labels in: \(line)") }
            }
            samples[series] = value
        }
        return samples
    }
}
