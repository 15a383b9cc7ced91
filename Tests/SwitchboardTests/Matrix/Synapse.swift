// Real Synapse homeservers for the Matrix tests, run by scripts/test-servers/synapse.sh, and
// scripted people who talk to the bot through the client-server API.
//
// The people use their own small HTTP client (AsyncHTTPClient), not the adapter's code, so a
// bug in the adapter's requests cannot hide itself in the test's.

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardModel
import Testing

/// Runs a command and returns its standard output; throws with its output when it fails.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    // The binary refuses SWITCHBOARD_* variables it does not know (the test run's own
    // SWITCHBOARD_BINARY among them): it gets only what the test gives it.
    if executable == Binary.path { env = env.filter { !$0.key.hasPrefix("SWITCHBOARD_") } }
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let directory = try TemporaryDirectory()
    let outPath = directory.path + "/out"
    let errPath = directory.path + "/err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    process.waitUntilExit()
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    guard process.terminationStatus == 0 else {
        throw HarnessError(description: "\(executable) \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)):\n\(err)\(out)")
    }
    return out
}

/// A TCP socket on a port of 127.0.0.1 the kernel handed out, listening unless told not to (a
/// bound socket that never listens refuses connections, and keeps the port from anyone else);
/// closed when released.
final class ListeningSocket {
    let port: Int
    private let fd: Int32

    init(listening: Bool = true) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, !listening || listen(fd, 1) == 0 else {
            close(fd)
            throw HarnessError(description: "bind() or listen() failed")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// A free TCP port on 127.0.0.1, as the kernel hands one out, never one this process handed
/// out before: the kernel may give the same port to two calls in a row once the first socket
/// is closed (seen: Dovecot's IMAP and LMTP listeners given one port, "duplicate listener").
func freePort() throws -> Int {
    for _ in 0..<100 {
        let port = try ListeningSocket().port
        if handedOutPorts.withLock({ $0.insert(port).inserted }) { return port }
    }
    throw HarnessError(description: "no free port that was not handed out before")
}

private let handedOutPorts = Locked<Set<Int>>([])

/// One Synapse homeserver in a temporary directory.
final class Synapse: Sendable {
    static let script = packageRoot + "/scripts/test-servers/synapse.sh"
    let directory: TemporaryDirectory
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    /// Creates and starts a fresh server. Fails with instructions when Synapse is not installed.
    init() throws {
        directory = try TemporaryDirectory()
        port = try freePort()
        do {
            try runCommand("/bin/bash", [Self.script, "init", directory.path, String(port)])
        } catch {
            throw HarnessError(description: """
                Could not set up a Synapse homeserver for the Matrix tests. The README's test command \
                (scripts/test.sh) installs it; by hand: scripts/test-servers/synapse.sh install.
                \(error)
                """)
        }
        try start()
    }

    func start() throws {
        try runCommand("/bin/bash", [Self.script, "start", directory.path])
    }

    func stop() throws {
        try runCommand("/bin/bash", [Self.script, "stop", directory.path])
    }

    deinit {
        _ = try? runCommand("/bin/bash", [Self.script, "stop", directory.path])
    }

    /// Registers a user (unique names per test) and returns a client logged in as them.
    func register(_ name: String) throws -> MatrixPerson {
        let output = try runCommand("/bin/bash", [Self.script, "register", directory.path, name, TestSecrets.register("password-\(name)")])
        let json = try JSONValue.parse(output.trimmingCharacters(in: .whitespacesAndNewlines))
        guard let userID = json["user_id"]?.stringValue, let token = json["access_token"]?.stringValue else {
            throw HarnessError(description: "registration of \(name) returned \(output)")
        }
        return MatrixPerson(homeserver: url, userID: userID, token: token, password: "password-\(name)")
    }

    /// A registered name that no other test uses.
    static func uniqueName(_ base: String) -> String {
        "\(base)\(UInt32.random(in: 100_000...999_999))"
    }

    /// The one server most tests share (each test registers its own users and bot).
    static let shared: Result<Synapse, HarnessError> = {
        do { return .success(try Synapse()) } catch let error as HarnessError { return .failure(error) } catch {
            return .failure(HarnessError(description: "\(error)"))
        }
    }()
}

/// A person on a homeserver, scripted by a test.
struct MatrixPerson: Sendable {
    let homeserver: String
    let userID: String
    let token: String
    let password: String

    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    @discardableResult
    func call(_ method: HTTPMethod, _ path: String, _ body: JSONValue? = nil, query: String = "") async throws -> JSONValue {
        var request = HTTPClientRequest(url: homeserver + path + (query.isEmpty ? "" : "?" + query))
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.canonicalText))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 16 * 1024 * 1024))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw HarnessError(description: "\(userID): \(method) \(path) → \(response.status.code) \(text)")
        }
        return try JSONValue.parse(text.isEmpty ? "{}" : text)
    }

    /// Creates a room and invites people. `direct` makes it a direct chat.
    func createRoom(inviting: [String], direct: Bool = false, encrypted: Bool = false) async throws -> String {
        var body: [String: JSONValue] = ["invite": .array(inviting.map { .string($0) }), "preset": "private_chat"]
        if direct { body["is_direct"] = true }
        if encrypted {
            body["initial_state"] = [["type": "m.room.encryption", "state_key": "", "content": ["algorithm": "m.megolm.v1.aes-sha2"]]]
        }
        let response = try await call(.POST, "/_matrix/client/v3/createRoom", .object(body))
        guard let room = response["room_id"]?.stringValue else { throw HarnessError(description: "no room id: \(response)") }
        return room
    }

    func join(_ room: String) async throws {
        try await call(.POST, "/_matrix/client/v3/join/\(Self.segment(room))", .object([:]))
    }

    func leave(_ room: String) async throws {
        try await call(.POST, "/_matrix/client/v3/rooms/\(Self.segment(room))/leave", .object([:]))
    }

    func kick(_ user: String, from room: String) async throws {
        try await call(.POST, "/_matrix/client/v3/rooms/\(Self.segment(room))/kick", ["user_id": .string(user), "reason": "testing"])
    }

    func redact(_ event: String, in room: String) async throws {
        try await call(.PUT, "/_matrix/client/v3/rooms/\(Self.segment(room))/redact/\(Self.segment(event))/\(UUID().uuidString)", .object([:]))
    }

    func invite(_ user: String, to room: String) async throws {
        try await call(.POST, "/_matrix/client/v3/rooms/\(Self.segment(room))/invite", ["user_id": .string(user)])
    }

    /// Sends an event and returns its id.
    @discardableResult
    func send(_ room: String, type: String = "m.room.message", _ content: JSONValue) async throws -> String {
        let txn = UUID().uuidString
        let response = try await call(.PUT, "/_matrix/client/v3/rooms/\(Self.segment(room))/send/\(type)/\(txn)", content)
        guard let id = response["event_id"]?.stringValue else { throw HarnessError(description: "no event id: \(response)") }
        return id
    }

    /// Sends a text message, optionally as a reply.
    @discardableResult
    func say(_ room: String, _ text: String, replyTo: String? = nil) async throws -> String {
        var content: [String: JSONValue] = ["msgtype": "m.text", "body": .string(text)]
        if let replyTo { content["m.relates_to"] = ["m.in_reply_to": ["event_id": .string(replyTo)]] }
        return try await send(room, .object(content))
    }

    /// Reacts to an event.
    @discardableResult
    func react(_ room: String, to event: String, _ key: String) async throws -> String {
        try await send(room, type: "m.reaction", ["m.relates_to": ["rel_type": "m.annotation", "event_id": .string(event), "key": .string(key)]])
    }

    /// The room's message events, oldest first (up to the last 1000).
    func timeline(_ room: String) async throws -> [JSONValue] {
        let response = try await call(.GET, "/_matrix/client/v3/rooms/\(Self.segment(room))/messages", query: "dir=b&limit=1000")
        return (response["chunk"]?.arrayValue ?? []).reversed()
    }

    /// The bot's messages in a room, oldest first.
    func messages(from sender: String, in room: String) async throws -> [JSONValue] {
        try await timeline(room).filter { $0["sender"]?.stringValue == sender && $0["type"]?.stringValue == "m.room.message" }
    }

    /// Waits until `sender` has posted at least `count` messages in the room; returns them all.
    func waitForMessages(from sender: String, in room: String, count: Int, timeout: Duration = .seconds(30)) async throws -> [JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = try await messages(from: sender, in: room)
            if found.count >= count { return found }
            if ContinuousClock.now > deadline {
                let bodies = found.map { $0["content"]?["body"]?.stringValue ?? "?" }
                throw HarnessError(description: "waited \(timeout) for \(count) messages from \(sender); got \(found.count): \(bodies)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Waits until `user`'s membership in the room is `membership`.
    func waitForMembership(_ user: String, in room: String, _ membership: String, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let path = "/_matrix/client/v3/rooms/\(Self.segment(room))/state/m.room.member/\(Self.segment(user))"
            if let state = try? await call(.GET, path), state["membership"]?.stringValue == membership { return }
            if ContinuousClock.now > deadline {
                throw HarnessError(description: "\(user) did not reach membership \(membership) in \(room) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

extension JSONValue {
    /// The body of a message event.
    var body: String { self["content"]?["body"]?.stringValue ?? "" }
    /// The event a message replies to.
    var inReplyTo: String? { self["content"]?["m.relates_to"]?["m.in_reply_to"]?["event_id"]?.stringValue }
}
