// The HTTP API end to end: a real `switchboard serve`, keys made by `switchboard keys create`,
// and requests over loopback.

import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import SwitchboardModel
import Testing

@Suite("HTTP API", .serialized)
struct HTTPAPITests {
    @Test("POST /v1/messages with ?wait answers with the reply; the same key never runs twice")
    func sendAndWait() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        let key = try server.key("send", "read")

        let first = try await server.post("/v1/messages?wait=10", key: key, json: message("add a note: milk", key: "k-1"))
        #expect(first.status == 200, "\(first.text)")
        let body = try first.json
        #expect(body["message"]?["id"] == "k-1")
        #expect(body["message"]?["person"] == "api:bob")
        #expect(body["message"]?["status"] == "answered")
        #expect(body["replies"]?.arrayValue?.map { $0["text"] } == ["Added note 1: milk"])
        #expect(first.headers.first(name: "Location") == "/v1/messages/k-1")

        // The same request again: the same answer, marked as a replay, and nothing runs again.
        let again = try await server.post("/v1/messages?wait=10", key: key, json: message("add a note: milk", key: "k-1"))
        #expect(again.status == 200)
        #expect(again.headers.first(name: "Idempotent-Replayed") == "true")
        #expect(try again.json["replies"]?.arrayValue?.map { [$0["id"], $0["text"]] } == body["replies"]?.arrayValue?.map { [$0["id"], $0["text"]] })
        let executed = try await server.database().read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit WHERE tool = 'notes.add' AND status = 'executed'")
        }
        #expect(executed == 1)

        // Different content under a used key is refused.
        let conflict = try await server.post("/v1/messages", key: key, json: message("add a note: eggs", key: "k-1"))
        #expect(conflict.status == 409)
        #expect(conflict.errorCode == "idempotency_conflict")
    }

    @Test("Without ?wait a message is accepted at once and its reply fetched later")
    func acceptThenFetch() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        let key = try server.key("send")

        let accepted = try await server.post("/v1/messages", key: key, json: message("list my notes", key: "later-1"))
        #expect([200, 202].contains(accepted.status), "\(accepted.text)")
        let location = try #require(accepted.headers.first(name: "Location"))
        let fetched = try await server.get(location + "?wait=10", key: key)
        #expect(fetched.status == 200, "\(fetched.text)")
        #expect(try fetched.json["replies"]?[0]?["text"] == "You have no notes.")
        #expect(try fetched.json["replies"]?[0]?["in_reply_to"] == "later-1")

        // No idempotency key: one is made up, and each post is its own message.
        let a = try await server.post("/v1/messages?wait=10", key: key, json: message("list my notes"))
        let b = try await server.post("/v1/messages?wait=10", key: key, json: message("list my notes"))
        #expect(try a.json["message"]?["id"] != b.json["message"]?["id"])

        let missing = try await server.get("/v1/messages/nope", key: key)
        #expect(missing.status == 404 && missing.errorCode == "not_found")
    }

    @Test("Keys: missing, malformed, wrong, revoked and under-scoped keys get 401 or 403")
    func authentication() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        let reader = try server.key("read", name: "reader")
        let sender = try server.key("send", name: "sender")
        let admin = try server.key("admin", name: "boss")

        let none = try await server.post("/v1/messages", key: nil, json: message("hi"))
        #expect(none.status == 401 && none.errorCode == "unauthenticated")
        #expect(none.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)

        let malformed = try await APIClient.send(.GET, server.base + "/v1/tools", headers: [("Authorization", "Basic Zm9vOmJhcg==")])
        #expect(malformed.status == 401 && malformed.errorCode == "unauthenticated")

        let wrongSecret = String(reader.dropLast(4)) + "0000"
        let wrong = try await server.get("/v1/tools", key: wrongSecret)
        #expect(wrong.status == 401 && wrong.errorCode == "invalid_key")
        let garbage = try await server.get("/v1/tools", key: "sbk_nonsense")
        #expect(garbage.status == 401 && garbage.errorCode == "invalid_key")

        let readerPosts = try await server.post("/v1/messages", key: reader, json: message("hi"))
        #expect(readerPosts.status == 403 && readerPosts.errorCode == "insufficient_scope")
        let senderReads = try await server.get("/v1/audit", key: sender)
        #expect(senderReads.status == 403 && senderReads.errorCode == "insufficient_scope")
        let readerDecides = try await server.post("/v1/confirmations/m1-0/decline", key: reader)
        #expect(readerDecides.status == 403)
        let adminReads = try await server.get("/v1/tools", key: admin)
        #expect(adminReads.status == 200)

        // Revoked with the CLI (another process): refused once the server's one-second memory
        // of good keys has passed.
        #expect(try await server.get("/v1/tools", key: reader).status == 200)
        let id = try #require(reader.split(separator: "_").dropFirst().first)
        try runCommand(Binary.path, ["keys", "revoke", "--data-dir", server.data.path, String(id)])
        try await Task.sleep(for: .milliseconds(1100))
        let revoked = try await server.get("/v1/tools", key: reader)
        #expect(revoked.status == 401 && revoked.errorCode == "invalid_key")
        let listed = try runCommand(Binary.path, ["keys", "list", "--data-dir", server.data.path, "--json"])
        #expect(listed.contains("\"revoked_at\""))
        #expect(!listed.contains(String(reader.suffix(64))), "the key itself is never shown again")
    }

    @Test("A send key speaks only as its sender or sender prefix, answers only their confirmations, and reads only their messages")
    func keysBoundToSenders() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        // A send key must say whom it speaks for.
        let unbound = try Binary.run(["keys", "create", "--data-dir", server.data.path, "--scope", "send", "--name", "loose"])
        #expect(unbound.status != 0 && unbound.stderr.contains("--sender"), "\(unbound.stdout) \(unbound.stderr)")
        let alice = try server.key("send", name: "alice-app", binding: ["--sender", "alice"])
        let mallory = try server.key("send", name: "mallory-app", binding: ["--sender", "mallory"])
        let helpdesk = try server.key("send", name: "helpdesk", binding: ["--sender-prefix", "ticket-"])
        let reader = try server.key("read", name: "reader")

        for note in ["payroll", "rota"] {
            _ = try await server.post("/v1/messages?wait=10", key: alice, json: message("add a note: \(note)", sender: "alice"))
        }
        let asked = try await server.post("/v1/messages?wait=10", key: alice, json: message("delete all my notes", sender: "alice", key: "alice-del"))
        #expect(try asked.json["replies"]?[0]?["kind"] == "confirmation_request", "\(asked.text)")

        // Mallory's key can neither speak as alice nor say yes for her, nor read her messages.
        let spoof = try await server.post("/v1/messages?wait=10", key: mallory, json: message("yes", sender: "alice", key: "spoof-1"))
        #expect(spoof.status == 403 && spoof.errorCode == "sender_not_allowed", "\(spoof.text)")
        #expect(spoof.text.contains("mallory"), "the error says whom the key may speak as: \(spoof.text)")
        let stored = try await server.database().read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox WHERE external_id = 'spoof-1'")
        }
        #expect(stored == 0, "a refused message is not stored")
        let ownYes = try await server.post("/v1/messages?wait=10", key: mallory, json: message("yes", sender: "mallory"))
        #expect(ownYes.status == 200, "\(ownYes.text)")
        #expect(try await server.get("/v1/confirmations", key: reader).json["confirmations"]?.arrayValue?.count == 1, "alice's request still waits for her")
        let peek = try await server.get("/v1/messages/alice-del", key: mallory)
        #expect(peek.status == 404 && peek.errorCode == "not_found", "\(peek.text)")
        #expect(try await server.get("/v1/messages/alice-del", key: alice).status == 200)
        #expect(try await server.get("/v1/messages/alice-del", key: reader).status == 200, "a read key reads every conversation")

        // A prefix key speaks for every sender that starts with it, and no one else.
        let ticket = try await server.post("/v1/messages?wait=10", key: helpdesk, json: message("list my notes", sender: "ticket-7", conversation: "t7"))
        let person = try ticket.json["message"]?["person"]
        #expect(ticket.status == 200 && person == "api:ticket-7", "\(ticket.text)")
        let outside = try await server.post("/v1/messages?wait=10", key: helpdesk, json: message("list my notes", sender: "alice", conversation: "t7"))
        #expect(outside.status == 403 && outside.errorCode == "sender_not_allowed")

        // Alice's own yes still works.
        let yes = try await server.post("/v1/messages?wait=10", key: alice, json: message("yes", sender: "alice"))
        #expect(try yes.json["replies"]?[0]?["text"]?.stringValue?.contains("Deleted") == true, "\(yes.text)")

        let listed = try runCommand(Binary.path, ["keys", "list", "--data-dir", server.data.path, "--json"])
        #expect(listed.contains(#""sender":"alice""#) && listed.contains(#""sender_prefix":"ticket-""#), "\(listed)")
    }

    @Test("Bad input gets the documented error and the server keeps serving")
    func badInput() async throws {
        let server = try await APIServer(extra: [
            "SWITCHBOARD_HTTP_REQUEST_TIMEOUT_SECONDS": "2", "SWITCHBOARD_HTTP_MAX_WAIT_SECONDS": "1",
            "SWITCHBOARD_HTTP_CALLBACK_SECRET": "secret",
        ])
        defer { try? server.stop() }
        let key = try server.key("admin")
        let url = server.base + "/v1/messages"

        func post(_ text: String, contentType: String? = "application/json") async throws -> APIResponse {
            try await APIClient.send(.POST, url, key: key, body: Data(text.utf8), contentType: contentType)
        }
        #expect(try await post("{\"sender\": ").errorCode == "bad_request")
        #expect(try await post("").errorCode == "bad_request")
        #expect(try await post("[1, 2]").errorCode == "invalid")
        #expect(try await post(#"{"sender": 5, "conversation": "c", "text": "hi"}"#).errorCode == "invalid")
        #expect(try await post(#"{"conversation": "c", "text": "hi"}"#).errorCode == "invalid")
        #expect(try await post(#"{"sender": "b", "conversation": "c", "text": ""}"#).errorCode == "invalid")
        #expect(try await post(#"{"sender": "b", "conversation": "c", "text": "a\u0000b"}"#).errorCode == "invalid")
        #expect(try await post(#"{"sender": "b", "conversation": "c", "text": "hi", "colour": "red"}"#).errorCode == "invalid")
        #expect(try await post(#"{"sender": "b", "conversation": "c", "text": "hi", "callback_url": "ftp://x"}"#).errorCode == "invalid")
        for address in ["http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x", "http://169.254.169.254/latest", "http://10.1.2.3/"] {
            let refused = try await post(#"{"sender": "b", "conversation": "c", "text": "hi", "callback_url": "\#(address)"}"#)
            #expect(refused.errorCode == "invalid", "\(address) is internal")
        }
        #expect(try await post("{}", contentType: "text/plain").status == 415)

        // 10 MB: refused as too large, and the server is still there.
        let huge = "{\"sender\":\"b\",\"conversation\":\"c\",\"text\":\"" + String(repeating: "a", count: 10 << 20) + "\"}"
        let tooLarge = try await post(huge)
        #expect(tooLarge.status == 413 && tooLarge.errorCode == "too_large")

        // Query parameters.
        #expect(try await APIClient.send(.POST, url + "?wait=abc", key: key, body: Data("{}".utf8)).errorCode == "bad_request")
        #expect(try await APIClient.send(.POST, url + "?wait=5", key: key, body: Data("{}".utf8)).errorCode == "bad_request", "over max_wait")
        #expect(try await server.get("/v1/audit?limit=0", key: key).errorCode == "bad_request")
        #expect(try await server.get("/v1/audit?status=exploded", key: key).errorCode == "bad_request")
        #expect(try await server.get("/v1/audit?since=yesterday", key: key).errorCode == "bad_request")
        #expect(try await server.get("/v1/audit?format=xml", key: key).errorCode == "bad_request")
        #expect(try await server.get("/v1/audit?limit=1&limit=2", key: key).errorCode == "bad_request")

        // Unknown routes and methods.
        let unknown = try await server.get("/v2/everything", key: key)
        #expect(unknown.status == 404 && unknown.errorCode == "not_found")
        let method = try await APIClient.send(.DELETE, url, key: key)
        #expect([404, 405].contains(method.status) && method.errorCode != nil, "\(method.status) \(method.text)")

        // A slow client that never finishes its body gets 408 after the request timeout.
        let slow = try SlowClient(port: server.bot.httpPort)
        try slow.send("POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sender\":")
        let answer = try await slow.readAll(timeout: 10)
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(answer.contains("\"timeout\""))

        // After all that, an ordinary request still works.
        let fine = try await server.post("/v1/messages?wait=1", key: key, json: message("list my notes"))
        #expect([200, 202].contains(fine.status))
        #expect(server.bot.process.isRunning)
    }

    @Test("Confirmations: listed, declined or approved by an operator only where policy allows, audited as such")
    func operatorConfirmations() async throws {
        let server = try await APIServer()
        let key = try server.key("send", "read")
        let admin = try server.key("admin", name: "ops")
        for note in ["one", "two"] {
            _ = try await server.post("/v1/messages?wait=10", key: key, json: message("add a note: \(note)"))
        }
        let asked = try await server.post("/v1/messages?wait=10", key: key, json: message("delete all my notes", key: "del-1"))
        #expect(try asked.json["replies"]?[0]?["kind"] == "confirmation_request")

        let list = try await server.get("/v1/confirmations", key: key)
        let pending = try #require(try list.json["confirmations"]?.arrayValue)
        #expect(pending.count == 1)
        let id = try #require(pending[0]["id"]?.stringValue)
        #expect(pending[0]["requester"] == "api:bob" && pending[0]["tool"] == "notes.delete" && pending[0]["risk"] == "high")

        // Approving is off by default.
        let approve = try await server.post("/v1/confirmations/\(id)/approve", key: admin)
        #expect(approve.status == 403 && approve.errorCode == "policy_forbids")
        // Declining is allowed; the requester is told in their conversation.
        let decline = try await server.post("/v1/confirmations/\(id)/decline", key: admin)
        #expect(decline.status == 200, "\(decline.text)")
        #expect(try decline.json["outcome"] == "declined")
        #expect(try decline.json["confirmation"]?["status"] == "declined")
        let twice = try await server.post("/v1/confirmations/\(id)/decline", key: admin)
        #expect(twice.status == 409 && twice.errorCode == "already_decided")
        #expect(try await server.post("/v1/confirmations/nope/decline", key: admin).status == 404)

        let conversation = try await server.get("/v1/conversations/c1?limit=50", key: key)
        let texts = try #require(try conversation.json["messages"]?.arrayValue).compactMap { $0["text"]?.stringValue }
        #expect(texts.contains { $0.hasPrefix("An operator declined your request") }, "\(texts)")
        let declined = try await server.database().read { db in
            try Row.fetchOne(db, sql: "SELECT person, summary FROM audit WHERE call_id = ? AND status = 'declined'", arguments: [id])
        }
        let adminID = String(admin.split(separator: "_")[1])
        #expect(declined?["person"] == "operator:\(adminID)")
        #expect((declined?["summary"] as String?)?.contains("declined by operator ops for api:bob") == true)
        try server.stop()

        // With operator_may_approve on, an approval runs the call through the gate.
        let second = try await APIServer(data: server.data, extra: ["SWITCHBOARD_CONFIRMATIONS_OPERATOR_MAY_APPROVE": "true"])
        defer { try? second.stop() }
        _ = try await second.post("/v1/messages?wait=10", key: key, json: message("delete all my notes", key: "del-2"))
        let again = try #require(try await second.get("/v1/confirmations", key: key).json["confirmations"]?[0]?["id"]?.stringValue)
        let approved = try await second.post("/v1/confirmations/\(again)/approve", key: admin)
        #expect(approved.status == 200, "\(approved.text)")
        #expect(try approved.json["outcome"] == "confirmed")
        #expect(try approved.json["reply"]?.stringValue?.contains("Deleted 2 notes") == true)
        let statuses = try await second.database().read { db in
            try String.fetchAll(db, sql: "SELECT status FROM audit WHERE call_id = ? ORDER BY seq", arguments: [again])
        }
        #expect(statuses == ["proposed", "awaiting_confirmation", "confirmed", "executed"])
    }

    @Test("Audit: filters, paging by sequence, and a JSON lines export of the whole selection")
    func audit() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        let key = try server.key("send", "read")
        for index in 1...3 {
            _ = try await server.post("/v1/messages?wait=10", key: key, json: message("add a note: n\(index)", sender: index == 3 ? "carol" : "bob"))
        }
        let all = try await server.get("/v1/audit", key: key)
        #expect(try all.json["records"]?.arrayValue?.count == 6)
        let carol = try await server.get("/v1/audit?person=api:carol&status=executed", key: key)
        #expect(try carol.json["records"]?.arrayValue?.map { $0["summary"] } == ["added note 3"])

        var sequences: [Int64] = []
        var path = "/v1/audit?tool=notes.add&limit=4"
        while true {
            let page = try await server.get(path, key: key).json
            sequences += page["records"]?.arrayValue?.compactMap { $0["sequence"]?.intValue } ?? []
            guard let next = page["next_after"]?.intValue else { break }
            path = "/v1/audit?tool=notes.add&limit=4&after=\(next)"
        }
        #expect(sequences == [1, 2, 3, 4, 5, 6])

        let export = try await server.get("/v1/audit?format=jsonl", key: key)
        #expect(export.status == 200)
        #expect(export.headers.first(name: "Content-Type") == "application/x-ndjson")
        let lines = export.text.split(separator: "\n")
        #expect(lines.count == 6)
        let parsed = try lines.map { try JSONValue.parse(String($0)) }
        #expect(parsed.map { $0["sequence"]?.intValue } == [1, 2, 3, 4, 5, 6])
        // Each line carries the chain: its previous hash is the line before's hash.
        for (before, after) in zip(parsed, parsed.dropFirst()) {
            #expect(after["previous_hash"] == before["hash"])
        }
    }

    @Test("Tools with schemas and risk; preferences shown and forgotten, on the record")
    func toolsAndPreferences() async throws {
        let server = try await APIServer()
        defer { try? server.stop() }
        let reader = try server.key("read")
        let admin = try server.key("admin", name: "privacy")

        let tools = try #require(try await server.get("/v1/tools", key: reader).json["tools"]?.arrayValue)
        let add = try #require(tools.first { $0["name"] == "notes.add" })
        #expect(add["risk"] == "medium" && add["effect"] == "reversible" && add["category"] == "notes")
        #expect(add["parameters"]?["type"] == "object")

        try await server.database().write { db in
            try db.execute(sql: "INSERT INTO preferences (person, key, value, updated_at) VALUES ('api:bob', 'timezone', '\"Europe/Berlin\"', 0), ('api:bob', 'brief', 'true', 0), ('api:eve', 'name', '\"Eve\"', 0)")
        }
        let shown = try await server.get("/v1/people/api:bob/preferences", key: reader)
        #expect(try shown.json["preferences"]?["timezone"]?["value"] == "Europe/Berlin")
        #expect(try shown.json["preferences"]?["brief"]?["value"] == true)

        #expect(try await APIClient.send(.DELETE, server.base + "/v1/people/api:bob/preferences", key: reader).status == 403)
        let forgotten = try await APIClient.send(.DELETE, server.base + "/v1/people/api:bob/preferences", key: admin)
        #expect(try forgotten.json["forgotten"] == 2)
        #expect(try await server.get("/v1/people/api:bob/preferences", key: reader).json["preferences"] == .object([:]))
        #expect(try await server.get("/v1/people/api:eve/preferences", key: reader).json["preferences"]?["name"]?["value"] == "Eve")
        let audit = try await server.get("/v1/audit?tool=preferences.forget", key: reader).json
        #expect(audit["records"]?[0]?["arguments"]?["person"] == "api:bob")
        #expect(audit["records"]?[0]?["summary"]?.stringValue?.contains("forgot 2 preferences of api:bob for operator privacy") == true)
    }

    @Test("One correlation id follows a message from the API through the engine and the tool to delivery, in JSON logs")
    func correlationInLogs() async throws {
        let server = try await APIServer(extra: ["SWITCHBOARD_LOG_FORMAT": "json", "SWITCHBOARD_LOG_LEVEL": "debug"])
        defer { try? server.stop() }
        let key = try server.key("send")
        let response = try await server.post("/v1/messages?wait=10", key: key, json: message("add a note: traced", key: "trace-1"))
        let correlation = try #require(response.headers.first(name: "Correlation-ID"))
        #expect(try response.json["message"]?["correlation_id"]?.stringValue == correlation)
        var messages: Set<String> = []
        let deadline = Date().addingTimeInterval(10)
        repeat {
            messages = []
            for line in server.bot.log.split(separator: "\n") {
                guard let entry = try? JSONValue.parse(String(line)), entry["metadata"]?["correlation.id"]?.stringValue == correlation else { continue }
                if let text = entry["message"]?.stringValue { messages.insert(text) }
            }
            if messages.contains("delivered") || Date() >= deadline { break }
            try await Task.sleep(for: .milliseconds(50))
        } while true
        #expect(messages.isSuperset(of: ["message accepted", "answered", "tool call", "delivered"]), "\(messages)")
        #expect(!server.bot.log.contains(key), "the API key never reaches the log")
    }

    @Test("Health and metrics are open by default and protected when configured")
    func monitoringAccess() async throws {
        let server = try await APIServer(extra: ["SWITCHBOARD_HTTP_PUBLIC_HEALTH": "false", "SWITCHBOARD_HTTP_PUBLIC_METRICS": "false"])
        defer { try? server.stop() }
        let key = try server.key("read")
        for path in ["/healthz", "/readyz", "/metrics"] {
            #expect(try await server.get(path, key: nil).status == 401, "\(path)")
            #expect(try await server.get(path, key: key).status == 200, "\(path)")
        }
        #expect(try await server.get("/openapi.json", key: nil).status == 200)
    }
}

/// A raw TCP client that sends part of a request and reads what comes back.
final class SlowClient {
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw HarnessError(description: "connect failed") }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw HarnessError(description: "write failed") }
    }

    /// Everything the server sends until it closes or `timeout` passes. Waits with Task.sleep,
    /// not in poll(2), so it never holds one of the few threads the test process has.
    func readAll(timeout: TimeInterval) async throws -> String {
        var out = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 0) > 0 else {
                try await Task.sleep(for: .milliseconds(50))
                if !out.isEmpty, String(decoding: out, as: UTF8.self).contains("\r\n\r\n{") { break }
                continue
            }
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            out += buffer[0..<count]
        }
        return String(decoding: out, as: UTF8.self)
    }

    deinit { close(fd) }
}
