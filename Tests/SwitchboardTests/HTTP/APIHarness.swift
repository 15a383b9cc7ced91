// A running `switchboard serve` with its HTTP API, keys made with `switchboard keys create`,
// and a small client that returns status, headers and JSON as they came.

import AsyncHTTPClient
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import SwitchboardModel
import Testing

/// One API server with its own data directory.
final class APIServer: @unchecked Sendable {  // the process is only touched from the test's task
    let data: TemporaryDirectory
    let bot: RunningBot
    let environment: [String: String]
    var base: String { "http://127.0.0.1:\(bot.httpPort)" }

    /// Starts `serve` with the API on and waits until it answers.
    init(data: TemporaryDirectory? = nil, extra: [String: String] = [:]) async throws {
        self.data = try data ?? TemporaryDirectory()
        environment = ["SWITCHBOARD_HTTP_ENABLED": "true"].merging(extra) { $1 }
        bot = try RunningBot(dataDir: self.data.path, environment: environment)
        try await waitUntilUp()
    }

    func waitUntilUp() async throws {
        // Answering at all is up (with http.public_health off, that answer is 401).
        let up = await eventually(20) {
            if let response = try? await APIClient.send(.GET, base + "/healthz"), [200, 401].contains(response.status) { return true }
            return !bot.process.isRunning
        }
        guard bot.process.isRunning else { throw HarnessError(description: "serve exited:\n\(bot.log)") }
        guard up else { throw HarnessError(description: "serve's HTTP API did not come up:\n\(bot.log)") }
    }

    /// Makes a key with `switchboard keys create` and returns it (the last line of the output).
    /// A send key speaks for any sender unless `binding` says whom (`["--sender", "bot"]`).
    func key(_ scopes: String..., name: String = "test", binding: [String]? = nil) throws -> String {
        try Self.makeKey(dataDir: data.path, scopes: scopes, name: name, binding: binding)
    }

    static func makeKey(dataDir: String, scopes: [String], name: String = "test", binding: [String]? = nil) throws -> String {
        let senders = binding ?? (scopes.contains("send") ? ["--any-sender"] : [])
        let output = try runCommand(Binary.path, ["keys", "create", "--data-dir", dataDir, "--name", name] + scopes.flatMap { ["--scope", $0] } + senders)
        return String(output.split(separator: "\n").last ?? "")
    }

    func get(_ path: String, key: String?) async throws -> APIResponse {
        try await APIClient.send(.GET, base + path, key: key)
    }

    func post(_ path: String, key: String?, json: JSONValue? = nil) async throws -> APIResponse {
        try await APIClient.send(.POST, base + path, key: key, body: json.map { Data($0.canonicalText.utf8) })
    }

    /// The bot's database, read from the outside.
    func database() throws -> DatabaseQueue {
        try DatabaseQueue(path: data.path + "/switchboard.sqlite")
    }

    func stop() throws { try bot.stop() }
}

/// What came back.
struct APIResponse: Sendable {
    var status: UInt
    var headers: HTTPHeaders
    var text: String

    var json: JSONValue {
        get throws { try JSONValue.parse(text) }
    }

    /// The error code of a `{"error": {"code", "message"}}` body, checking its shape.
    var errorCode: String? {
        guard let value = try? json, case .object(let top) = value, top.count == 1,
            case .object(let error)? = top["error"], error["message"]?.stringValue?.isEmpty == false
        else { return nil }
        return error["code"]?.stringValue
    }
}

enum APIClient {
    static func send(
        _ method: HTTPMethod, _ url: String, key: String? = nil, body: Data? = nil,
        contentType: String? = "application/json", headers extra: [(String, String)] = [], timeout: TimeAmount = .seconds(60)
    ) async throws -> APIResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        if let body {
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
            request.body = .bytes(ByteBuffer(bytes: Array(body)))
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return APIResponse(status: response.status.code, headers: response.headers, text: String(buffer: buffer))
    }
}

/// A message body for `POST /v1/messages`.
func message(_ text: String, sender: String = "bob", conversation: String = "c1", key: String? = nil, extra: [String: JSONValue] = [:]) -> JSONValue {
    var object: [String: JSONValue] = ["sender": .string(sender), "conversation": .string(conversation), "text": .string(text)]
    if let key { object["idempotency_key"] = .string(key) }
    for (name, value) in extra { object[name] = value }
    return .object(object)
}

extension JSONValue {
    /// An array element, if this is an array long enough.
    subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }
}

/// scripts/test-servers/http-recorder.py in its own process: records POSTs (callbacks, OTLP
/// exports) and answers with scripted statuses, unaffected by how busy the test process is.
final class HTTPRecorder: @unchecked Sendable {  // the process is only touched from the test's task
    struct Record: Sendable {
        var path: String
        var headers: [String: String]
        var body: String
    }

    static let script = packageRoot + "/scripts/test-servers/http-recorder.py"
    let port: Int
    private let file: String
    private let process = Process()
    private let directory: TemporaryDirectory

    /// Starts it; the first requests get `statuses`, the rest 200.
    init(statuses: [Int] = []) async throws {
        directory = try TemporaryDirectory()
        file = directory.path + "/requests.jsonl"
        port = try freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, String(port), file] + statuses.map(String.init)
        let errors = directory.path + "/stderr.txt"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        // Generous: on two busy cores (the intent engine training beside it) Python can be slow to start.
        let process = process, port = port
        let listening = await eventually(30) { (try? SlowClient(port: port)) != nil || !process.isRunning }
        if listening && process.isRunning { return }
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        let state = process.isRunning ? "still not listening after 30 s" : "exited with status \(process.terminationStatus)"
        throw HarnessError(description: "http-recorder.py did not start on port \(port) (\(state); is python3 installed?)\n\(stderr)")
    }

    /// Every request so far.
    var records: [Record] {
        get throws {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
            return try text.split(separator: "\n").map { line in
                let value = try JSONValue.parse(String(line))
                return Record(
                    path: value["path"]?.stringValue ?? "",
                    headers: value["headers"]?.objectValue?.compactMapValues(\.stringValue) ?? [:],
                    body: value["body"]?.stringValue ?? ""
                )
            }
        }
    }

    /// Waits until `done` holds for the records, or `timeout` passes; returns the records.
    func wait(timeout: TimeInterval = 30, until done: ([Record]) -> Bool) async throws -> [Record] {
        let deadline = Date().addingTimeInterval(timeout)
        var seen = try records
        while !done(seen) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            seen = try records
        }
        return seen
    }

    /// Stops it. SIGKILL: a child spawned from a dispatch worker thread inherits its blocked
    /// signals, so SIGTERM would stay pending for ever.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
