// A person with a real end-to-end encrypting Matrix client: matrix-nio with its e2e extra,
// run as scripts/test-servers/encrypting_person.py in the Synapse venv and driven one JSON
// command per line. The bot's cryptography is checked against an independent implementation.

import Foundation
import SwitchboardModel
import Testing

final class EncryptingPerson: @unchecked Sendable {  // one test's task drives it; the pipe reader is locked
    static let script = packageRoot + "/scripts/test-servers/encrypting_person.py"
    static var python: String {
        (ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_VENV"] ?? packageRoot + "/.build-venv") + "/bin/python"
    }

    let userID: String
    private(set) var deviceID = ""
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    /// Answer lines read so far, the unfinished line, and whether the client's output ended.
    private let received = ReceivedLines()
    let logPath: String

    /// Starts the client and logs in as `person` (a second call for the same person is a second device).
    init(_ person: MatrixPerson, directory: TemporaryDirectory) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python),
            (try? runCommand(Self.python, ["-c", "import nio, vodozemac"])) != nil
        else {
            throw HarnessError(description: """
                matrix-nio with its e2e extra is not installed in \(Self.python). The README's test command \
                (scripts/test.sh) installs it; by hand: scripts/test-servers/synapse.sh install.
                """)
        }
        userID = person.userID
        let store = directory.path + "/nio-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        logPath = store + "/person.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = [Self.script]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let received = self.received
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            received.state.withLock { state in
                guard !chunk.isEmpty else {
                    state.closed = true
                    return
                }
                state.partial.append(chunk)
                while let newline = state.partial.firstIndex(of: UInt8(ascii: "\n")) {
                    state.lines.append(String(decoding: state.partial[state.partial.startIndex..<newline], as: UTF8.self))
                    state.partial.removeSubrange(state.partial.startIndex...newline)
                }
            }
            if chunk.isEmpty { handle.readabilityHandler = nil }
        }
        try process.run()
        let login = try await call("login", [
            "homeserver": .string(person.homeserver), "user_id": .string(person.userID),
            "password": .string(person.password), "store": .string(store),
        ])
        deviceID = login["device_id"]?.stringValue ?? ""
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends one command and waits for its answer.
    @discardableResult
    func call(_ command: String, _ arguments: [String: JSONValue] = [:], timeout: Duration = .seconds(90)) async throws -> JSONValue {
        var request = arguments
        request["cmd"] = .string(command)
        input.fileHandleForWriting.write(Data((JSONValue.object(request).canonicalText + "\n").utf8))
        let deadline = ContinuousClock.now + timeout
        var line: String?
        while true {
            let (next, closed) = received.state.withLock { state in
                (state.lines.isEmpty ? nil : state.lines.removeFirst(), state.closed)
            }
            if let next { line = next; break }
            if closed { break }
            guard ContinuousClock.now < deadline else {
                throw HarnessError(description: "the encrypting client did not answer \(command) within \(timeout):\n\(log.suffix(3000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let line, let answer = try? JSONValue.parse(line) else {
            throw HarnessError(description: "the encrypting client ended during \(command):\n\(log.suffix(3000))")
        }
        guard answer["ok"] == .bool(true) else {
            throw HarnessError(description: "\(command) failed: \(answer["error"]?.stringValue ?? line)\n\(log.suffix(3000))")
        }
        return answer
    }

    func createDirectRoom(with user: String) async throws -> String {
        try await call("create_dm", ["invite": .string(user)])["room_id"]?.stringValue ?? ""
    }

    /// An encrypted direct chat with `user`, once they have joined it.
    func directRoomJoined(by user: String) async throws -> String {
        let room = try await createDirectRoom(with: user)
        try await waitForMember(user, in: room)
        return room
    }

    func waitForMember(_ user: String, in room: String, timeout: Int = 30) async throws {
        try await call("wait_member", ["room": .string(room), "user": .string(user), "timeout": .int(Int64(timeout))])
    }

    @discardableResult
    func say(_ room: String, _ text: String) async throws -> String {
        try await call("send", ["room": .string(room), "text": .string(text)])["event_id"]?.stringValue ?? ""
    }

    /// The sender's messages in the room as this client decrypted them (nil: could not decrypt),
    /// once there are `count` of them or the time is up.
    func messages(from sender: String, in room: String, count: Int, timeout: Int = 45) async throws -> [String?] {
        let answer = try await call("messages", [
            "room": .string(room), "sender": .string(sender), "count": .int(Int64(count)), "timeout": .int(Int64(timeout)),
        ])
        return (answer["messages"]?.arrayValue ?? []).map(\.stringValue)
    }

    /// Waits for `count` decryptable messages from the sender; fails with what arrived otherwise.
    func waitForReplies(from sender: String, in room: String, count: Int, timeout: Int = 45) async throws -> [String] {
        let found = try await messages(from: sender, in: room, count: count, timeout: timeout)
        guard found.count >= count else {
            throw HarnessError(description: "expected \(count) messages from \(sender), got \(found.count): \(found)")
        }
        return try found.map { body in
            guard let body else { throw HarnessError(description: "a message from \(sender) could not be decrypted: \(found)") }
            return body
        }
    }

    func quit() async {
        _ = try? await call("quit", timeout: .seconds(10))
        process.waitUntilExit()
    }
}

/// What the client printed: answer lines read so far, the unfinished line, and whether its
/// output ended.
private final class ReceivedLines: Sendable {
    let state = Locked<(lines: [String], partial: Data, closed: Bool)>(([], Data(), false))
}
