// Matrix end-to-end encryption against a real Synapse, with people who use a real encrypting
// client (matrix-nio, whose cryptography is vodozemac: an implementation independent of the
// bot's libolm). The bot is the built `switchboard serve` binary.

import AsyncHTTPClient
import Crypto
import CryptoExtras
import Foundation
import GRDB
import NIOCore
import NIOHTTP1
import SwitchboardModel
import Testing

extension MatrixCast {
    /// The bot's environment with end-to-end encryption on, and a key made for this test.
    func encryptedEnvironment(_ key: String, extra: [String: String] = [:]) -> [String: String] {
        ["SWITCHBOARD_MATRIX_CRYPTO_KEY": key].merging(extra) { $1 }
    }

    func startEncryptingBot(key: String, extra: [String: String] = [:]) throws -> RunningBot {
        try startBot(extra: encryptedEnvironment(key, extra: extra))
    }

    /// The bot's device, as its stored session says.
    func storedDeviceID() async throws -> String {
        try #require(try await storedSession()["device_id"]?.stringValue)
    }

    /// Everything the bot's database holds, WAL included, as bytes.
    func databaseBytes() throws -> Data {
        var bytes = Data()
        for suffix in ["", "-wal", "-shm"] {
            if let part = FileManager.default.contents(atPath: data.path + "/switchboard.sqlite" + suffix) { bytes.append(part) }
        }
        return bytes
    }
}

extension RunningBot {
    /// The bot's Prometheus metrics: series (name with labels) to value.
    func metrics() async throws -> [String: Double] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(httpPort)/metrics"), timeout: .seconds(10))
        let body = String(buffer: try await response.body.collect(upTo: 4 << 20))
        var values: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }
}

/// A fresh random crypto key for one test (never a fixed one in the sources).
func testCryptoKey() -> String {
    TestSecrets.register((0..<48).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".randomElement()! }.map(String.init).joined())
}

@Suite("Matrix end-to-end encryption", .serialized)
struct MatrixEncryptionTests {
    @Test("An encrypted direct chat: the bot decrypts, answers encrypted, and the person's client reads the answer")
    func encryptedDirectChat() async throws {
        let cast = try MatrixCast()
        let key = testCryptoKey()
        let bot = try cast.startEncryptingBot(key: key)
        defer { try? bot.stop() }
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await alice.directRoomJoined(by: cast.bot.userID)

        try await alice.say(room, "add a note: buy **milk**")
        let replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 1)
        #expect(replies == ["Added note 1: buy **milk**"])

        // On the wire the answer is ciphertext: the room holds no clear text from the bot.
        let timeline = try await cast.alice.timeline(room)
        let fromBot = timeline.filter { $0["sender"]?.stringValue == cast.bot.userID && $0["type"]?.stringValue?.hasPrefix("m.room.") == true }
        #expect(fromBot.contains { $0["type"]?.stringValue == "m.room.encrypted" })
        #expect(!fromBot.contains { $0["type"]?.stringValue == "m.room.message" }, "no clear-text message from the bot in an encrypted room")

        // At rest: neither the room key alice's client made, nor the crypto key, nor a pickle
        // libolm could read without the key is in the database.
        let roomKey = try await alice.call("session_key", ["room": .string(room)])
        let sessionKey = try #require(roomKey["session_key"]?.stringValue)
        let bytes = try cast.databaseBytes()
        #expect(bytes.count > 0)
        #expect(bytes.range(of: Data(sessionKey.utf8)) == nil, "the room key is not stored readable")
        #expect(bytes.range(of: Data(sessionKey.prefix(32).utf8)) == nil)
        #expect(bytes.range(of: Data(key.utf8)) == nil, "the crypto key is not stored")
        let records = try cast.database().read { db in
            try Row.fetchAll(db, sql: "SELECT name, value FROM cursors WHERE name LIKE 'matrix.crypto.%'")
        }
        #expect(records.contains { ($0["name"] as String).hasPrefix("matrix.crypto.inbound.") }, "the room key is stored (sealed)")
        for record in records {
            #expect((record["value"] as String).hasPrefix("v1:"), "\(record["name"] as String) is sealed")
        }
        #expect(!bot.log.contains(sessionKey) && !bot.log.contains(key), "no key in the log")
        #expect(bot.log.contains("received a room key") && bot.log.contains("shared a room key"), "\(bot.log.suffix(4000))")
        await alice.quit()
    }

    @Test("A risky action confirmed by an encrypted yes; the bot restarted between two messages decrypts both")
    func confirmationAndRestart() async throws {
        let cast = try MatrixCast()
        let key = testCryptoKey()
        var bot = try cast.startEncryptingBot(key: key)
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await alice.directRoomJoined(by: cast.bot.userID)

        try await alice.say(room, "add a note: one")
        try await alice.say(room, "add a note: two")
        _ = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 2)
        try await alice.say(room, "delete all my notes")
        var replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 3)
        #expect(replies[2].contains("This will delete 2 notes"), "got \(replies)")
        try await alice.say(room, "yes")
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 4)
        #expect(replies[3].hasPrefix("Deleted 2 notes."), "an encrypted yes from the requester's device confirms in a direct chat: \(replies)")
        #expect(try cast.auditStatuses(tool: "notes.delete").suffix(2) == ["confirmed", "executed"])

        // Restarted: one message while it is down, one after; both decrypt from the stored keys.
        try bot.stop()
        try await alice.say(room, "add a note: while you were away")
        bot = try cast.startEncryptingBot(key: key)
        defer { try? bot.stop() }
        try await alice.say(room, "add a note: after the restart")
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 6)
        #expect(replies[4].hasSuffix(": while you were away"), "got \(replies)")
        #expect(replies[5].hasSuffix(": after the restart"), "got \(replies)")
        #expect(bot.log.contains("resumed the stored session"))
        #expect(!bot.log.contains("made end-to-end encryption keys"), "the restarted bot keeps its device keys")

        // The wrong key: the stored records do not open, and the bot says why instead of
        // making new keys over them.
        try bot.stop()
        let wrong = try cast.startEncryptingBot(key: testCryptoKey())
        defer { try? wrong.stop() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !wrong.log.contains("does not open with matrix.crypto_key"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(wrong.log.contains("does not open with matrix.crypto_key"), "\(wrong.log.suffix(3000))")
        // Readiness tells the operator too, while clear-text rooms keep working.
        var matrixStatus: JSONValue?
        while ContinuousClock.now < deadline {
            let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(wrong.httpPort)/readyz"), timeout: .seconds(5))
            if let response, let body = try? await response.body.collect(upTo: 1 << 20) {
                matrixStatus = (try? JSONValue.parse(String(buffer: body)))?["checks"]?["channels"]?["matrix"]
                if matrixStatus?["last_error"] != nil { break }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(matrixStatus?["status"] == "connected", "\(String(describing: matrixStatus))")
        #expect(matrixStatus?["last_error"]?.stringValue?.contains("end-to-end encryption unavailable") == true, "\(String(describing: matrixStatus))")
        await alice.quit()
    }

    @Test("A second device of the person reads the bot's next answer; a message whose key comes late is answered once it comes")
    func secondDeviceAndLateKey() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startEncryptingBot(key: testCryptoKey())
        defer { try? bot.stop() }
        let phone = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await phone.directRoomJoined(by: cast.bot.userID)
        try await phone.say(room, "add a note: from the phone")
        _ = try await phone.waitForReplies(from: cast.bot.userID, in: room, count: 1)

        let laptop = try await EncryptingPerson(cast.alice, directory: cast.data)
        #expect(laptop.deviceID != phone.deviceID)
        try await phone.say(room, "list my notes")
        let phoneReplies = try await phone.waitForReplies(from: cast.bot.userID, in: room, count: 2)
        #expect(phoneReplies[1].contains("from the phone"))
        // The laptop joined after the first answer: that one it cannot read, the next it can.
        let deadline = ContinuousClock.now + .seconds(45)
        var seen: [String?] = []
        while ContinuousClock.now < deadline {
            seen = try await laptop.messages(from: cast.bot.userID, in: room, count: 2, timeout: 5)
            if seen.last??.contains("from the phone") == true { break }
        }
        #expect(seen.last??.contains("from the phone") == true, "the new device decrypts the bot's next answer: \(seen)")

        // The room key for this message is held back for 4 seconds.
        try await phone.call("send_late", ["room": .string(room), "text": "add a note: late key", "delay": 4])
        let replies = try await phone.waitForReplies(from: cast.bot.userID, in: room, count: 3, timeout: 60)
        #expect(replies[2] == "Added note 2: late key", "got \(replies)")
        #expect(bot.log.contains("room key has not arrived"))
        #expect(bot.log.contains("asked the sender's devices for a missing room key"))
        #expect(bot.log.contains("decrypted a message whose room key came late"))
        #expect(bot.log.contains("withdrew a room key request"))
        await laptop.quit()
        await phone.quit()
    }

    @Test("A sync that starts over (rejected token) fetches device lists again: a device added meanwhile reads the next answer")
    func deviceListsAfterRejectedToken() async throws {
        let cast = try MatrixCast()
        let key = testCryptoKey()
        var bot = try cast.startEncryptingBot(key: key)
        let phone = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await phone.directRoomJoined(by: cast.bot.userID)
        try await phone.say(room, "add a note: first")
        _ = try await phone.waitForReplies(from: cast.bot.userID, in: room, count: 1)
        // A second answer, so the bot's list of alice's devices is fresh (the first sync after
        // the join marks it changed) when it stops.
        try await Task.sleep(for: .seconds(2))
        try await phone.say(room, "add a note: second")
        _ = try await phone.waitForReplies(from: cast.bot.userID, in: room, count: 2)

        // While the bot is down its token goes bad, and alice adds a device: the fresh sync
        // that follows cannot tell the bot that her devices changed.
        try bot.stop()
        try await cast.database().write { db in
            try db.execute(sql: "UPDATE cursors SET value = 'not-a-token' WHERE name = 'matrix.next_batch'")
        }
        let laptop = try await EncryptingPerson(cast.alice, directory: cast.data)
        bot = try cast.startEncryptingBot(key: key)
        defer { try? bot.stop() }
        try await phone.say(room, "list my notes")
        _ = try await phone.waitForReplies(from: cast.bot.userID, in: room, count: 3)
        let deadline = ContinuousClock.now + .seconds(45)
        var seen: [String?] = []
        while ContinuousClock.now < deadline {
            seen = try await laptop.messages(from: cast.bot.userID, in: room, count: 3, timeout: 5)
            if seen.last??.contains("first") == true { break }
        }
        #expect(seen.last??.contains("first") == true, "the new device decrypts the answer: \(seen)")
        // From the bot's own key share, not one of alice's devices forwarding it.
        let shares = bot.log.split(separator: "\n").filter { $0.contains("shared a room key") }
        #expect(shares.contains { $0.contains("\(cast.alice.userID)|\(laptop.deviceID)") }, "\(shares)")
        #expect(bot.log.contains("rejected the sync token") && bot.log.contains("all device lists will be fetched again"))
        // The fresh sync delivers the last to-device messages again: known, skipped, and not
        // taken for a broken session.
        #expect(!bot.log.contains("could not decrypt a to-device message"), "\(bot.log.suffix(4000))")
        #expect(!bot.log.contains("started a new Olm session"))
        await laptop.quit()
        await phone.quit()
    }

    @Test("Bad input: corrupt ciphertext, a replayed index, a key from an unknown device, a broken Olm message, a device without one-time keys, a key that never comes")
    func badInput() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startEncryptingBot(key: testCryptoKey(), extra: ["SWITCHBOARD_MATRIX_UNDECRYPTABLE_WAIT_S": "5"])
        defer { try? bot.stop() }
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await alice.directRoomJoined(by: cast.bot.userID)
        try await alice.say(room, "add a note: first")
        _ = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 1)
        let botUser = JSONValue.string(cast.bot.userID)
        let botDevice = try await cast.storedDeviceID()

        // Damaged in transit: the person hears that it could not be read.
        try await alice.call("send_corrupt", ["room": .string(room)])
        var replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 2)
        #expect(replies[1].contains("couldn't decrypt your message"), "got \(replies)")

        // One ciphertext sent as two events: answered once.
        try await alice.call("send_twice", ["room": .string(room), "text": "add a note: only once"])
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 3)
        #expect(replies[2] == "Added note 2: only once")

        // To-device messages that must not do anything: garbage that cannot start an Olm
        // session, and a room key from a device alice never published.
        try await alice.call("olm_garbage", ["user": botUser, "device": .string(botDevice)])
        let stranger = try await alice.call("unknown_device_key", ["user": botUser, "device": .string(botDevice), "room": .string(room)])
        #expect(stranger["session_id"]?.stringValue != nil)

        // A device of alice's with no one-time keys: the bot cannot reach it, and says so in
        // its log, and still answers the devices it can reach.
        try await alice.call("keyless_device", [
            "homeserver": .string(cast.synapse.url), "user_id": .string(cast.alice.userID), "password": .string(cast.alice.password),
        ])
        try await alice.say(room, "list my notes")
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 4)
        #expect(replies[3].contains("only once"), "the sync loop kept going: \(replies)")

        // A key that never comes: after the wait, the sender hears it.
        try await alice.call("send_late", ["room": .string(room), "text": "add a note: lost", "delay": 3600])
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 5, timeout: 60)
        #expect(replies[4].contains("couldn't decrypt your message"), "got \(replies)")

        let log = bot.log
        #expect(log.contains("corrupt ciphertext"), "\(log.suffix(5000))")
        #expect(log.contains("a replay"))
        #expect(log.contains("could not decrypt a to-device message"))
        #expect(log.contains("unknown device"))
        #expect(log.contains("has no one-time key left"))
        #expect(log.contains("gave up waiting for an encrypted message's room key"))
        #expect(!log.contains("Fatal error"))
        let metrics = try await bot.metrics()
        #expect((metrics["switchboard_matrix_decrypt_failures_total{kind=\"corrupt\"}"] ?? 0) >= 1, "\(metrics)")
        #expect((metrics["switchboard_matrix_decrypt_failures_total{kind=\"replay\"}"] ?? 0) >= 1)
        #expect((metrics["switchboard_matrix_undecryptable_total{outcome=\"gave_up\"}"] ?? 0) >= 1)
        await alice.quit()
    }

    @Test("A lost Olm session is repaired: the message whose key could not be read gets a notice, the next one is answered")
    func wedgedSession() async throws {
        let cast = try MatrixCast()
        let key = testCryptoKey()
        let extra = ["SWITCHBOARD_MATRIX_UNDECRYPTABLE_WAIT_S": "5"]
        var bot = try cast.startEncryptingBot(key: key, extra: extra)
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await alice.directRoomJoined(by: cast.bot.userID)
        try await alice.say(room, "add a note: before")
        _ = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 1)

        // The bot loses its Olm sessions (as with a database restored from an older backup).
        try bot.stop()
        let removed = try await cast.database().write { db -> Int in
            try db.execute(sql: "DELETE FROM cursors WHERE name LIKE 'matrix.crypto.olm.%'")
            return db.changesCount
        }
        #expect(removed >= 1)
        bot = try cast.startEncryptingBot(key: key, extra: extra)
        defer { try? bot.stop() }

        try await alice.call("new_room_key", ["room": .string(room)])
        try await alice.say(room, "add a note: lost")
        var replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 2, timeout: 60)
        #expect(replies[1].contains("couldn't decrypt your message"), "got \(replies)")
        #expect(bot.log.contains("started a new Olm session with a device whose messages would not decrypt"), "\(bot.log.suffix(4000))")

        try await alice.call("new_room_key", ["room": .string(room)])
        try await alice.say(room, "add a note: repaired")
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 3, timeout: 60)
        #expect(replies[2] == "Added note 2: repaired", "got \(replies)")
        await alice.quit()
    }

    @Test("Policy: in a group room a yes from an unverified device does not confirm; encryption required refuses clear-text rooms")
    func policies() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startEncryptingBot(key: testCryptoKey(), extra: ["SWITCHBOARD_MATRIX_ENCRYPTION": "required"])
        defer { try? bot.stop() }
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let room = try await alice.call("create_room", ["invite": [.string(cast.bot.userID), .string(cast.bob.userID)]])["room_id"]?.stringValue ?? ""
        try await cast.bob.join(room)
        try await alice.waitForMember(cast.bot.userID, in: room)
        try await alice.waitForMember(cast.bob.userID, in: room)
        try await alice.say(room, "!sb add a note: shared")
        try await alice.say(room, "!sb add a note: also shared")
        try await alice.say(room, "!sb delete all my notes")
        var replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 3)
        #expect(replies[2].contains("This will delete 2 notes"), "got \(replies)")
        try await alice.say(room, "yes")
        replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 4)
        #expect(replies[3].contains("device you haven't verified"), "got \(replies)")
        #expect(try cast.auditStatuses(tool: "notes.delete").last == "awaiting_confirmation", "nothing ran")

        // A clear-text direct chat: refused with one notice, nothing read.
        let clear = try await cast.bob.createRoom(inviting: [cast.bot.userID], direct: true)
        try await cast.bob.waitForMembership(cast.bot.userID, in: clear, "join")
        try await cast.bob.say(clear, "add a note: in the clear")
        try await cast.bob.say(clear, "add a note: again")
        let notices = try await cast.bob.waitForMessages(from: cast.bot.userID, in: clear, count: 1)
        #expect(notices[0].body.contains("isn't end-to-end encrypted"), "got \(notices.map(\.body))")
        try await Task.sleep(for: .seconds(2))
        #expect(try await cast.bob.messages(from: cast.bot.userID, in: clear).count == 1, "one notice, nothing answered")
        let clearNotes = try await cast.database().read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM notes WHERE text LIKE '%clear%'") }
        #expect(clearNotes == 0)
        await alice.quit()
    }

    @Test("Room keys rotate when a member leaves and after the room's rotation_period_msgs; the members who stay read every answer")
    func rotation() async throws {
        let cast = try MatrixCast()
        let bot = try cast.startEncryptingBot(key: testCryptoKey())
        defer { try? bot.stop() }
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let bob = try await EncryptingPerson(cast.bob, directory: cast.data)
        let room = try await alice.call("create_room", [
            "invite": [.string(cast.bot.userID), .string(cast.bob.userID)], "rotation_msgs": 3,
        ])["room_id"]?.stringValue ?? ""
        try await bob.call("join", ["room": .string(room)])
        try await alice.waitForMember(cast.bot.userID, in: room)
        try await alice.waitForMember(cast.bob.userID, in: room)

        /// The room-key session of each of the bot's messages, oldest first.
        func botSessions() async throws -> [String] {
            try await cast.alice.timeline(room)
                .filter { $0["sender"]?.stringValue == cast.bot.userID && $0["type"]?.stringValue == "m.room.encrypted" }
                .compactMap { $0["content"]?["session_id"]?.stringValue }
        }
        try await alice.say(room, "!sb add a note: one")
        _ = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 1)
        let bobRead = try await bob.waitForReplies(from: cast.bot.userID, in: room, count: 1)
        #expect(bobRead == ["Added note 1: one"], "bob, a member, reads the answer")

        try await bob.call("leave", ["room": .string(room)])
        try await alice.say(room, "!sb add a note: two")
        _ = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 2)
        var sessions = try await botSessions()
        #expect(sessions.count == 2 && sessions[0] != sessions[1], "a new room key after bob left: \(sessions)")

        for text in ["three", "four", "five"] { try await alice.say(room, "!sb add a note: \(text)") }
        let replies = try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 5)
        #expect(replies.last == "Added note 5: five", "alice reads every answer: \(replies)")
        sessions = try await botSessions()
        #expect(sessions.count == 5)
        // Three messages per key: replies 2-4 share one, the fifth starts the next.
        #expect(Set(sessions[1...3]).count == 1 && sessions[4] != sessions[3], "\(sessions)")
        #expect(bot.log.contains("reason=a device left") || bot.log.contains("a device left"), "\(bot.log.suffix(3000))")
        await bob.quit()
        await alice.quit()
    }

    @Test("setup-crypto: cross-signing keys published, the device signed by them, and the recovery key restores them")
    func setupCrypto() async throws {
        let cast = try MatrixCast()
        let key = testCryptoKey()
        var bot = try cast.startEncryptingBot(key: key)
        let deadline = ContinuousClock.now + .seconds(30)
        while !bot.log.contains("published this device's identity keys"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        try bot.stop()
        var environment = cast.environment.merging(cast.encryptedEnvironment(key)) { $1 }
        environment["SWITCHBOARD_LOG_LEVEL"] = "warning"
        let output = try runCommand(Binary.path, ["matrix", "setup-crypto", "--data-dir", cast.data.path], environment: environment)
        let lines = output.split(separator: "\n").map(String.init)
        let recoveryKey = try #require(lines.last)
        #expect(lines.first?.hasPrefix("Made cross-signing keys") == true, "\(output)")
        #expect(recoveryKey.split(separator: " ").count == 12 && recoveryKey.split(separator: " ").allSatisfy { $0.count <= 4 }, "\(recoveryKey)")
        let again = try runCommand(Binary.path, ["matrix", "setup-crypto", "--data-dir", cast.data.path], environment: environment)
        #expect(again.contains("has cross-signing keys already"), "\(again)")

        // Checked by the other client's code: published, self-signing key signed by the
        // master, the bot's device signed by the self-signing key.
        let deviceID = try await cast.storedDeviceID()
        let alice = try await EncryptingPerson(cast.alice, directory: cast.data)
        let status = try await alice.call("cross_signing", ["user": .string(cast.bot.userID), "device": .string(deviceID)])
        let master = try #require(status["master"]?.stringValue)
        #expect(status["self_signing_valid"] == .bool(true), "\(status)")
        #expect(status["device_signed"] == .bool(true), "\(status)")

        // The recovery key opens the master key from secret storage, and it is the published one.
        let token = try await cast.storedAccessToken()
        let owner = MatrixPerson(homeserver: cast.synapse.url, userID: cast.bot.userID, token: token, password: cast.bot.password)
        let stored = try await owner.call(.GET, "/_matrix/client/v3/user/\(MatrixPerson.segment(cast.bot.userID))/account_data/m.cross_signing.master")
        let defaultKey = try await owner.call(.GET, "/_matrix/client/v3/user/\(MatrixPerson.segment(cast.bot.userID))/account_data/m.secret_storage.default_key")
        let keyID = try #require(defaultKey["key"]?.stringValue)
        // The owner sees the device's signature on the master key too (others do not).
        let own = try await owner.call(.POST, "/_matrix/client/v3/keys/query", ["device_keys": [cast.bot.userID: []]])
        let masterObject = try #require(own["master_keys"]?[cast.bot.userID]?.objectValue)
        let deviceKey = try #require(own["device_keys"]?[cast.bot.userID]?[deviceID]?["keys"]?["ed25519:\(deviceID)"]?.stringValue)
        let deviceSignature = try #require(masterObject["signatures"]?[cast.bot.userID]?["ed25519:\(deviceID)"]?.stringValue)
        var unsignedMaster = masterObject
        unsignedMaster["signatures"] = nil
        let verifier = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Data(base64Encoded: deviceKey + "=")))
        #expect(verifier.isValidSignature(try #require(Data(base64Encoded: deviceSignature + "==")), for: Data(JSONValue.object(unsignedMaster).canonicalText.utf8)))
        let encrypted = try #require(stored["encrypted"]?[keyID])
        let storageKey = try RecoveryKey.decode(recoveryKey)
        let secret = try SecretStorageReader.decrypt(encrypted, key: storageKey, name: "m.cross_signing.master")
        var base64 = secret
        while base64.count % 4 != 0 { base64 += "=" }
        let seed = try #require(Data(base64Encoded: base64))
        let publicKey = try Curve25519.Signing.PrivateKey(rawRepresentation: seed).publicKey.rawRepresentation
        #expect(publicKey.base64EncodedString().replacingOccurrences(of: "=", with: "") == master)
        #expect(!output.contains(key))

        // The bot keeps working with its signed device.
        bot = try cast.startEncryptingBot(key: key)
        defer { try? bot.stop() }
        let room = try await alice.directRoomJoined(by: cast.bot.userID)
        try await alice.say(room, "add a note: signed")
        #expect(try await alice.waitForReplies(from: cast.bot.userID, in: room, count: 1) == ["Added note 1: signed"])
        await alice.quit()
    }
}

/// Reads a Matrix recovery key (written here from the specification, apart from the bot's code).
enum RecoveryKey {
    static func decode(_ text: String) throws -> [UInt8] {
        let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
        var number: [UInt8] = []  // big-endian bytes
        for character in text where character != " " {
            guard var carry = alphabet.firstIndex(of: character) else { throw HarnessError(description: "not base58: \(character)") }
            for index in number.indices.reversed() {
                carry += Int(number[index]) * 58
                number[index] = UInt8(carry & 0xff)
                carry >>= 8
            }
            while carry > 0 {
                number.insert(UInt8(carry & 0xff), at: 0)
                carry >>= 8
            }
        }
        guard number.count == 35, number[0] == 0x8B, number[1] == 0x01, number.reduce(0, ^) == 0 else {
            throw HarnessError(description: "not a recovery key: \(number.count) bytes")
        }
        return Array(number[2..<34])
    }
}

enum SecretStorageReader {
    /// Checks the MAC and decrypts one `m.secret_storage.v1.aes-hmac-sha2` secret.
    static func decrypt(_ encrypted: JSONValue, key: [UInt8], name: String) throws -> String {
        guard let iv = encrypted["iv"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
            let ciphertext = encrypted["ciphertext"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
            let mac = encrypted["mac"]?.stringValue.flatMap({ Data(base64Encoded: $0) })
        else { throw HarnessError(description: "a malformed secret: \(encrypted.canonicalText)") }
        let keys = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: key), salt: Data(count: 32), info: Data(name.utf8), outputByteCount: 64)
            .withUnsafeBytes { Data($0) }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: ciphertext, using: SymmetricKey(data: keys.suffix(32))) else {
            throw HarnessError(description: "the secret's MAC does not match")
        }
        let plaintext = try AES._CTR.decrypt(ciphertext, using: SymmetricKey(data: keys.prefix(32)), nonce: try AES._CTR.Nonce(nonceBytes: iv))
        return String(decoding: plaintext, as: UTF8.self)
    }
}
