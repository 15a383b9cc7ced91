// Matrix end-to-end encryption against a real Synapse, with people who use a real encrypting
// client (matrix-nio, whose cryptography is vodozemac: an implementation independent of the
// bot's libolm). The bot is the built `switchboard serve` binary.

import Foundation
import GRDB
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

    /// Everything the bot's database holds, WAL included, as bytes.
    func databaseBytes() throws -> Data {
        var bytes = Data()
        for suffix in ["", "-wal", "-shm"] {
            if let part = FileManager.default.contents(atPath: data.path + "/switchboard.sqlite" + suffix) { bytes.append(part) }
        }
        return bytes
    }
}

/// A fresh random crypto key for one test (never a fixed one in the sources).
func testCryptoKey() -> String {
    (0..<48).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".randomElement()! }.map(String.init).joined()
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
        let room = try await alice.createDirectRoom(with: cast.bot.userID)
        try await alice.waitForMember(cast.bot.userID, in: room)

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
}
