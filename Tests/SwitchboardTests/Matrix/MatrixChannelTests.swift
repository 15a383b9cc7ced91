// The Matrix channel against a real Synapse: the built `switchboard serve` binary as the bot,
// scripted people as its users. scripts/test.sh installs Synapse; each test registers its own
// bot and people on a shared server (or starts its own when it restarts the server).

import Foundation
import AsyncHTTPClient
import GRDB
import NIOCore
import NIOHTTP1
import SwitchboardModel
import SwitchboardStorage
import Testing

/// `switchboard serve` running as a Matrix bot.
final class RunningBot: @unchecked Sendable {  // the process is only touched from the test's task
    let process: Process
    let logPath: String
    let dataDir: String
    /// Where its HTTP API listens.
    let httpPort: Int

    init(dataDir: String, environment: [String: String]) throws {
        try Binary.requireBuilt()
        self.dataDir = dataDir
        logPath = dataDir + "/serve-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["serve", "--data-dir", dataDir]
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
        env["SWITCHBOARD_LOG_LEVEL"] = "debug"
        env["SWITCHBOARD_HTTP_PORT"] = String(try freePort())
        for (key, value) in environment { env[key] = value }
        httpPort = Int(env["SWITCHBOARD_HTTP_PORT"] ?? "") ?? 0
        process.environment = env
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a signal and waits for the process to end.
    func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 15) throws {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError(description: "switchboard serve did not stop within \(timeout) s after signal \(signal)")
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// One test's cast: a bot account, its data directory, and people.
struct MatrixCast {
    let synapse: Synapse
    let data: TemporaryDirectory
    let bot: MatrixPerson
    let alice: MatrixPerson
    let bob: MatrixPerson

    init(synapse: Synapse? = nil) throws {
        self.synapse = try synapse ?? Synapse.shared.get()
        data = try TemporaryDirectory()
        bot = try self.synapse.register(Synapse.uniqueName("bot"))
        alice = try self.synapse.register(Synapse.uniqueName("alice"))
        bob = try self.synapse.register(Synapse.uniqueName("bob"))
    }

    var environment: [String: String] {
        [
            "SWITCHBOARD_MATRIX_HOMESERVER": synapse.url,
            "SWITCHBOARD_MATRIX_USER_ID": bot.userID,
            "SWITCHBOARD_MATRIX_PASSWORD": bot.password,
            "SWITCHBOARD_MATRIX_ALLOWED_USERS": "\(alice.userID),\(bob.userID)",
            "SWITCHBOARD_MATRIX_SYNC_TIMEOUT_MS": "5000",
        ]
    }

    func startBot(extra: [String: String] = [:]) throws -> RunningBot {
        try RunningBot(dataDir: data.path, environment: environment.merging(extra) { $1 })
    }

    /// A group room with alice, bob and the bot, everyone joined.
    func groupRoom() async throws -> String {
        let room = try await alice.createRoom(inviting: [bob.userID, bot.userID])
        try await bob.join(room)
        try await alice.waitForMembership(bot.userID, in: room, "join")
        return room
    }

    /// A direct chat between alice and the bot.
    func directRoom(timeout: Duration = .seconds(30)) async throws -> String {
        let room = try await alice.createRoom(inviting: [bot.userID], direct: true)
        try await alice.waitForMembership(bot.userID, in: room, "join", timeout: timeout)
        return room
    }

    /// A direct chat where the bot has answered "add a note: one".
    func directRoomAnsweredOnce() async throws -> String {
        let room = try await directRoom()
        try await alice.say(room, "add a note: one")
        _ = try await alice.waitForMessages(from: bot.userID, in: room, count: 1)
        return room
    }

    /// The bot's database, read or changed from the outside.
    func database() throws -> DatabaseQueue {
        try DatabaseQueue(path: data.path + "/switchboard.sqlite")
    }

    /// The session the bot keeps in its database, sealed with the key in its data directory
    /// (no `secrets.key` is configured here).
    func storedSession() async throws -> JSONValue {
        let session = try await database().read { db in try String.fetchOne(db, sql: "SELECT value FROM cursors WHERE name = 'matrix.session'") }
        let stored = try #require(session)
        #expect(SecretSealer.isSealed(stored) && !stored.contains("access_token"), "the session is sealed in the database")
        return try JSONValue.parse(try SecretSealer.keyFile(data.path + "/secrets.key").open(stored, name: "matrix.session"))
    }

    /// The access token the bot keeps in its database.
    func storedAccessToken() async throws -> String {
        try #require(try await storedSession()["access_token"]?.stringValue)
    }

    /// The audit trail, read from the bot's database.
    func auditStatuses(tool: String) throws -> [String] {
        try database().read { db in
            try String.fetchAll(db, sql: "SELECT status FROM audit WHERE tool = ? ORDER BY seq", arguments: [tool])
        }
    }
}

@Suite("Matrix channel against a real Synapse", .serialized)
struct MatrixChannelTests {
    @Test("A direct chat: a request is answered as a threaded notice, with Markdown as HTML")
    func directChat() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await cast.directRoom()
        let request = try await cast.alice.say(room, "add a note: buy **milk**")
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        let reply = replies[0]
        #expect(reply.body == "Added note 1: buy **milk**")
        #expect(reply["content"]?["msgtype"]?.stringValue == "m.notice")
        #expect(reply.inReplyTo == request)
        #expect(reply["content"]?["formatted_body"]?.stringValue == "Added note 1: buy <strong>milk</strong>")

        // The bot marks the request read once it has answered.
        let filter: JSONValue = ["room": ["rooms": [.string(room)], "timeline": ["limit": 20], "ephemeral": ["types": ["m.receipt"]]]]
        let deadline = ContinuousClock.now + .seconds(45)  // generous: the suite shares two cores with several homeservers
        var readers: [String: JSONValue] = [:]
        // Incremental syncs: Synapse caches identical sync requests for a while, so polling the
        // same initial sync would not show a receipt that arrives later.
        var since: String?
        while readers[cast.bot.userID] == nil, ContinuousClock.now < deadline {
            var query = "timeout=1000&filter=\(MatrixPerson.segment(filter.canonicalText))"
            if let since { query += "&since=\(MatrixPerson.segment(since))" }
            let sync = try await cast.alice.call(.GET, "/_matrix/client/v3/sync", query: query)
            since = sync["next_batch"]?.stringValue
            for receipt in sync["rooms"]?["join"]?[room]?["ephemeral"]?["events"]?.arrayValue ?? [] {
                readers.merge(receipt["content"]?[request]?["m.read"]?.objectValue ?? [:]) { $1 }
            }
        }
        #expect(readers[cast.bot.userID] != nil, "a read receipt from the bot on the request")

        // Neither the password nor the access token reaches the log.
        let token = try await cast.storedAccessToken()
        #expect(!bot.log.contains(cast.bot.password))
        #expect(!bot.log.contains(token))
        #expect(bot.log.contains(room), "log lines name the room")
    }

    @Test("A group room: the bot answers only when addressed, and a risky action waits for the requester's yes or 👍")
    func groupRoomConfirmations() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await cast.groupRoom()
        let botName = String(cast.bot.userID.dropFirst().prefix(while: { $0 != ":" }))

        try await cast.alice.say(room, "add a note: this is for bob, not the bot")
        try await cast.alice.say(room, "\(botName): add a note: milk")
        try await cast.alice.say(room, "!sb add a note: eggs")
        var replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 2)
        #expect(replies.map(\.body) == ["Added note 1: milk", "Added note 2: eggs"], "the unaddressed message got no answer")

        try await cast.alice.say(room, "!sb delete all my notes")
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 3)
        let ask = replies[2]
        #expect(ask.body.contains("This will delete 2 notes"))
        let askID = try #require(ask["event_id"]?.stringValue)

        // Bob cannot answer alice's request, by word or by reaction; both are audited.
        try await cast.bob.say(room, "yes")
        try await cast.bob.react(room, to: askID, "👍")
        // Alice's own 👍 runs it.
        try await Task.sleep(for: .seconds(1))
        try await cast.alice.react(room, to: askID, "👍")
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 4)
        #expect(replies[3].body.hasPrefix("Deleted 2 notes."), "got \(replies.map(\.body))")
        #expect(replies.count == 4, "bob's yes and 👍 got no reply")
        #expect(try cast.auditStatuses(tool: "notes.delete") == ["proposed", "awaiting_confirmation", "answer_ignored", "answer_ignored", "confirmed", "executed"])

        // A 👎 declines; a bare "yes" from the requester counts without addressing.
        try await cast.alice.say(room, "!sb add a note: a")
        try await cast.alice.say(room, "!sb add a note: b")
        try await cast.alice.say(room, "!sb delete all my notes")
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 7)
        try await cast.alice.react(room, to: try #require(replies[6]["event_id"]?.stringValue), "👎")
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 8)
        #expect(replies[7].body == "Cancelled. Nothing was changed.")
        try await cast.alice.say(room, "!sb delete all my notes")
        _ = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 9)
        try await cast.alice.say(room, "yes")
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 10)
        #expect(replies[9].body.hasPrefix("Deleted 2 notes."), "got \(replies.map(\.body))")
    }

    @Test("History from before the bot joined is not answered; messages sent while it was stopped are answered once")
    func historyAndDowntime() async throws {
        let cast = try MatrixCast()
        let room = try await cast.alice.createRoom(inviting: [], direct: false)
        try await cast.alice.say(room, "add a note: said before the bot was here")
        try await cast.alice.invite(cast.bot.userID, to: room)
        var bot = try cast.startBot()
        try await cast.alice.waitForMembership(cast.bot.userID, in: room, "join")
        try await cast.alice.say(room, "add a note: first")
        var replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        #expect(replies.map(\.body) == ["Added note 1: first"])

        try bot.stop()
        // A session an earlier version stored in the clear is used, and sealed from then on.
        try await cast.database().write { db in
            let sealed = try #require(try String.fetchOne(db, sql: "SELECT value FROM cursors WHERE name = 'matrix.session'"))
            let clear = try SecretSealer.keyFile(cast.data.path + "/secrets.key").open(sealed, name: "matrix.session")
            try db.execute(sql: "UPDATE cursors SET value = ? WHERE name = 'matrix.session'", arguments: [clear])
        }
        for text in ["add a note: second", "add a note: third", "list my notes"] {
            try await cast.alice.say(room, text)
        }
        bot = try cast.startBot()
        defer { try? bot.stop() }
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 4)
        #expect(replies.map(\.body) == [
            "Added note 1: first", "Added note 2: second", "Added note 3: third", "You have 3 notes:\n1: first\n2: second\n3: third",
        ])
        try await Task.sleep(for: .seconds(2))
        #expect(try await cast.alice.messages(from: cast.bot.userID, in: room).count == 4, "nothing answered twice")
        #expect(bot.log.contains("resumed the stored session"), "the restart reused its device")
        _ = try await cast.storedAccessToken()
    }

    @Test("kill -9 mid-conversation, then restart: every message is answered exactly once")
    func killNine() async throws {
        let cast = try MatrixCast()
        var bot = try cast.startBot()
        let room = try await cast.directRoom()
        let count = 20
        var requests: [String] = []
        for index in 1...count {
            requests.append(try await cast.alice.say(room, "add a note: n\(index)"))
        }
        _ = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        try bot.stop(signal: SIGKILL)
        bot = try cast.startBot()
        defer { try? bot.stop() }
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: count)
        try await Task.sleep(for: .seconds(2))
        let all = try await cast.alice.messages(from: cast.bot.userID, in: room)
        #expect(all.count == count, "exactly one reply per message: \(all.map(\.body))")
        #expect(Set(replies.compactMap(\.inReplyTo)) == Set(requests), "each request has its reply")
        #expect(all.map(\.body) == (1...count).map { "Added note \($0): n\($0)" })
    }

    @Test("An invite from someone not allowed is rejected, and their messages in a shared room are not answered")
    func disallowedInvite() async throws {
        let cast = try MatrixCast()
        let mallory = try cast.synapse.register(Synapse.uniqueName("mallory"))
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await mallory.createRoom(inviting: [cast.bot.userID], direct: true)
        try await mallory.waitForMembership(cast.bot.userID, in: room, "leave")
        #expect(bot.log.contains("rejecting an invite from a user who is not allowed"))

        let shared = try await cast.alice.createRoom(inviting: [cast.bot.userID, mallory.userID])
        try await mallory.join(shared)
        try await cast.alice.waitForMembership(cast.bot.userID, in: shared, "join")
        try await mallory.say(shared, "!sb add a note: sneaky")
        try await cast.alice.say(shared, "!sb list my notes")
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: shared, count: 1)
        try await Task.sleep(for: .seconds(1))
        #expect(try await cast.alice.messages(from: cast.bot.userID, in: shared).map(\.body) == ["You have no notes."])
        #expect(replies[0].inReplyTo != nil)
    }

    @Test("Bad input: media, malformed events, an oversized message; the sync loop keeps going")
    func badInput() async throws {
        let cast = try MatrixCast()
        // A Matrix event is at most 64 KiB, so "huge" here is over a lowered limit.
        let bot = try cast.startBot(extra: ["SWITCHBOARD_ENGINE_MAX_MESSAGE_BYTES": "20000"])
        defer { try? bot.stop() }
        let room = try await cast.directRoom()
        try await cast.alice.send(room, ["msgtype": "m.image", "body": "cat.png", "url": "mxc://localhost/abc"])
        // Synapse refuses a missing or non-string body, but lets these odd shapes through.
        try await cast.alice.send(room, type: "m.reaction", ["m.relates_to": ["rel_type": "m.annotation"]])
        try await cast.alice.send(room, type: "m.reaction", ["unexpected": true])
        try await cast.alice.send(room, ["msgtype": "m.text", "body": "odd relation", "m.relates_to": "not an object"])
        try await cast.alice.send(room, type: "com.example.unknown", ["anything": [1, 2, 3]])
        try await cast.alice.send(room, ["msgtype": "m.text", "body": .string(String(repeating: "x", count: 50_000))])
        try await cast.alice.say(room, "add a note: still here")
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 4)
        #expect(replies[0].body.hasPrefix("I can only read text for now, so I couldn't read an image."))
        #expect(replies[1].body.contains("Sorry, I didn't understand that"), "a message with an odd relation is still read: \(replies[1].body)")
        #expect(replies[2].body.contains("I read messages up to 20000 bytes"))
        #expect(replies[3].body == "Added note 1: still here")
        #expect(bot.process.isRunning)
    }

    @Test("With encryption off (no crypto key), an encrypted room gets one notice that the bot cannot read it")
    func encryptedRoom() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await cast.alice.createRoom(inviting: [cast.bot.userID], direct: true, encrypted: true)
        try await cast.alice.waitForMembership(cast.bot.userID, in: room, "join")
        let ciphertext: JSONValue = [
            "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg", "sender_key": "abc",
            "session_id": "xyz", "device_id": "DEVICE",
        ]
        try await cast.alice.send(room, type: "m.room.encrypted", ciphertext)
        try await cast.alice.send(room, type: "m.room.encrypted", ciphertext)
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        #expect(replies[0].body.contains("end-to-end encrypted"))
        try await Task.sleep(for: .seconds(2))
        #expect(try await cast.alice.messages(from: cast.bot.userID, in: room).count == 1, "said once")
    }

    @Test("A gap longer than one sync's timeline is filled from /messages: every message answered once")
    func limitedTimelineBackfill() async throws {
        let cast = try MatrixCast()
        let fast = ["SWITCHBOARD_RATE_LIMITS_DEFAULT_PER_MINUTE": "100000", "SWITCHBOARD_RATE_LIMITS_DEFAULT_BURST": "100000"]
        var bot = try cast.startBot(extra: fast)
        let room = try await cast.directRoom()
        try await cast.alice.say(room, "add a note: n0")
        _ = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        try bot.stop()
        // More than the sync filter's timeline limit (100) while the bot is away.
        let count = 130
        for index in 1...count {
            try await cast.alice.say(room, "add a note: n\(index)")
        }
        bot = try cast.startBot(extra: fast)
        defer { try? bot.stop() }
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: count + 1, timeout: .seconds(90))
        let expected = (0...count).map { "Added note \($0 + 1): n\($0)" }
        #expect(replies.count == expected.count)
        let wrong = zip(replies.map(\.body), expected).filter { $0 != $1 }
        #expect(wrong.isEmpty, "answered out of order or wrongly: \(wrong.prefix(3))")
        #expect(bot.log.contains("filled a gap in a room's timeline"))
    }

    @Test("A sync token the server rejects: a fresh sync, and nothing answered twice")
    func rejectedSyncToken() async throws {
        let cast = try MatrixCast()
        var bot = try cast.startBot()
        let room = try await cast.directRoomAnsweredOnce()
        try bot.stop()
        try await cast.database().write { db in
            try db.execute(sql: "UPDATE cursors SET value = 'not-a-token' WHERE name = 'matrix.next_batch'")
        }
        try await cast.alice.say(room, "add a note: two")
        bot = try cast.startBot()
        defer { try? bot.stop() }
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 2)
        #expect(replies.map(\.body) == ["Added note 1: one", "Added note 2: two"])
        try await Task.sleep(for: .seconds(2))
        #expect(try await cast.alice.messages(from: cast.bot.userID, in: room).count == 2, "\"one\" was not answered again")
        #expect(bot.log.contains("rejected the sync token"))
    }

    @Test("Threads, edits and withdrawn requests")
    func threadsEditsRedactions() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await cast.directRoom()
        let root = try await cast.alice.say(room, "add a note: root")
        _ = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        // A request in a thread is answered in the thread.
        try await cast.alice.send(room, [
            "msgtype": "m.text", "body": "list my notes",
            "m.relates_to": ["rel_type": "m.thread", "event_id": .string(root), "is_falling_back": true, "m.in_reply_to": ["event_id": .string(root)]],
        ])
        var replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 2)
        #expect(replies[1]["content"]?["m.relates_to"]?["rel_type"] == "m.thread")
        #expect(replies[1]["content"]?["m.relates_to"]?["event_id"]?.stringValue == root)
        // An edit is not a new request.
        try await cast.alice.send(room, [
            "msgtype": "m.text", "body": "* add a note: edited",
            "m.new_content": ["msgtype": "m.text", "body": "add a note: edited"],
            "m.relates_to": ["rel_type": "m.replace", "event_id": .string(root)],
        ])
        // Withdrawing a request that waits for a yes cancels it.
        try await cast.alice.say(room, "add a note: second")
        let request = try await cast.alice.say(room, "delete all my notes")
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 4)
        #expect(replies[3].body.contains("This will delete 2 notes"))
        try await cast.alice.redact(request, in: room)
        replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 5)
        #expect(replies[4].body == "Cancelled. Nothing was changed.")
        #expect(replies.allSatisfy { !$0.body.contains("edited") }, "the edit was not taken as a request")
        #expect(try cast.auditStatuses(tool: "notes.delete") == ["proposed", "awaiting_confirmation", "declined"])
    }

    @Test("The bot leaves a room everyone else has left")
    func leavesEmptyRoom() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await cast.groupRoom()
        try await cast.alice.leave(room)
        try await cast.bob.leave(room)
        // Asked as the bot's own account: is it still in the room?
        let deadline = ContinuousClock.now + .seconds(30)
        while try await cast.bot.call(.GET, "/_matrix/client/v3/joined_rooms")["joined_rooms"]?.arrayValue?.contains(.string(room)) != false {
            if ContinuousClock.now > deadline { Issue.record("the bot did not leave the empty room"); return }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(bot.log.contains("leaving a room everyone else has left"))
    }

    @Test("Kicked from a room: a log line, and the bot keeps answering elsewhere")
    func kicked() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let group = try await cast.groupRoom()
        let direct = try await cast.directRoom()
        try await cast.alice.kick(cast.bot.userID, from: group)
        try await cast.alice.say(direct, "add a note: after the kick")
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: direct, count: 1)
        #expect(replies[0].body == "Added note 1: after the kick")
        #expect(bot.log.contains("removed from a room"))
        #expect(bot.process.isRunning)
    }

    @Test("Logout signs the device out; an access token from configuration works too")
    func logoutAndAccessToken() async throws {
        let cast = try MatrixCast()
        var bot = try cast.startBot()
        let room = try await cast.directRoomAnsweredOnce()
        try bot.stop()
        let token = try await cast.storedAccessToken()

        let logout = try Binary.run(["matrix", "logout", "--data-dir", cast.data.path], environment: cast.environment)
        #expect(logout.status == 0 && logout.stdout.contains("Signed out of Matrix"), "\(logout.stderr)")
        let signedOut = MatrixPerson(homeserver: cast.synapse.url, userID: cast.bot.userID, token: token, password: cast.bot.password)
        await #expect(throws: HarnessError.self, "the old token no longer works") {
            try await signedOut.call(.GET, "/_matrix/client/v3/account/whoami")
        }
        let again = try Binary.run(["matrix", "logout", "--data-dir", cast.data.path], environment: cast.environment)
        #expect(again.stdout.contains("There was no stored Matrix session."))

        // A token made elsewhere (here: the one registration returned) instead of a password.
        var environment = cast.environment
        environment.removeValue(forKey: "SWITCHBOARD_MATRIX_PASSWORD")
        environment["SWITCHBOARD_MATRIX_ACCESS_TOKEN"] = cast.bot.token
        bot = try RunningBot(dataDir: cast.data.path, environment: environment)
        defer { try? bot.stop() }
        try await cast.alice.say(room, "add a note: two")
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 2)
        #expect(replies[1].body == "Added note 2: two")
        #expect(bot.log.contains("using the configured access token"))
        #expect(!bot.log.contains(cast.bot.token))
    }

    @Test("Health, readiness and metrics over HTTP while the bot runs; errors are JSON")
    func healthReadinessMetrics() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let base = "http://127.0.0.1:\(bot.httpPort)"
        func get(_ path: String) async throws -> (status: Int, body: String) {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + path), timeout: .seconds(10))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 4 << 20)))
        }
        // The server needs a moment to bind.
        var health: (status: Int, body: String)?
        let deadline = ContinuousClock.now + .seconds(20)
        while health == nil, ContinuousClock.now < deadline {
            health = try? await get("/healthz")
            if health == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(health?.status == 200 && health?.body.contains("\"ok\"") == true)

        var ready = try await get("/readyz")
        while ready.status != 200, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            ready = try await get("/readyz")
        }
        let readiness = try JSONValue.parse(ready.body)
        #expect(ready.status == 200 && readiness["status"] == "ready", "\(ready.body)")
        #expect(readiness["checks"]?["channels"]?["matrix"]?["status"] == "connected")
        #expect(readiness["checks"]?["database"]?["status"] == "ok")

        let room = try await cast.directRoom()
        try await cast.alice.say(room, "add a note: counted")
        _ = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        try await Task.sleep(for: .milliseconds(300))
        let metrics = try await get("/metrics")
        #expect(metrics.status == 200)
        let lines = metrics.body.split(separator: "\n").map(String.init)
        func value(_ name: String) -> Double? {
            lines.first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect((value("switchboard_matrix_events_received_total") ?? 0) >= 1, "\(metrics.body)")
        #expect(value("switchboard_matrix_replies_sent_total") == 1)
        #expect(value("switchboard_inbox_pending") == 0)
        #expect(value("switchboard_messages_received_total{channel=\"matrix\"}") == 1, "\(metrics.body)")
        #expect(value("switchboard_messages_sent_total{channel=\"matrix\"}") == 1)
        #expect(value("switchboard_message_processing_seconds_count{channel=\"matrix\"}") == 1)
        #expect(lines.contains { $0.hasPrefix("# TYPE switchboard_matrix_sync_lag_seconds gauge") })

        let missing = try await get("/nope")
        #expect(missing.status == 404)
        #expect(try JSONValue.parse(missing.body)["error"]?["code"] == "not_found", "\(missing.body)")
    }

    @Test("The homeserver stops and comes back: the bot recovers without a restart")
    func homeserverRestart() async throws {
        let synapse = try Synapse()
        let cast = try MatrixCast(synapse: synapse)
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let room = try await cast.directRoom()
        try await cast.alice.say(room, "add a note: before")
        _ = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 1)
        try synapse.stop()
        try await Task.sleep(for: .seconds(3))
        try synapse.start()
        try await cast.alice.say(room, "add a note: after")
        let replies = try await cast.alice.waitForMessages(from: cast.bot.userID, in: room, count: 2, timeout: .seconds(60))
        #expect(replies.map(\.body) == ["Added note 1: before", "Added note 2: after"])
        #expect(bot.process.isRunning)
        #expect(bot.log.contains("sync failed; retrying"))
    }
}
