// Matrix end-to-end encryption for the bot's one device: Olm for to-device messages, Megolm for
// rooms, with libolm doing all the cryptography.
//
// Receiving: the adapter hands each sync's to-device events here before anything else, and
// the record changes they cause (new room keys, advanced Olm ratchets, a used one-time key)
// are committed in the same transaction as the sync token: a to-device message is gone from
// the server once the next token is used, so its room key must be stored by then. If that
// commit fails, every cached object is dropped and reloaded, and the same sync is processed
// again from the stored state.
//
// Sending: one outbound Megolm session per room, shared over Olm with every device of every
// joined member before the first message that needs it, and replaced when it is old, has
// encrypted enough messages, or a device that had it is no longer in the room. Records written
// by sending are stored at once, before the event leaves, so a message index is never reused.
//
// All work runs one operation at a time (`exclusively`): the actor's awaits on the homeserver
// would otherwise let a sync and a delivery interleave on the same ratchet. And while a sync is
// being processed (`beginSync` to `commitSync` or `abortSync`), sending waits: a delivery must
// not store Olm ratchets that a sync moved but has not committed, and a failed sync must be
// able to drop what it changed.

import Crypto
import Foundation
import Logging
import Metrics
import NIOHTTP1
import SwitchboardModel
import SwitchboardStorage

/// What decrypting a room event gave.
enum RoomDecryption {
    /// The event as its sender wrote it, and whether their device is cross-signed by them.
    case decrypted(MatrixEvent, deviceVerified: Bool)
    /// The room key has not arrived (yet).
    case missingKey(sessionID: String, senderKey: String?)
    /// It cannot ever be decrypted: corrupt, replayed, or not from who it claims. The sender
    /// is told about damaged messages, not about replays and forgeries (nobody to tell).
    case failed(String, tellSender: Bool)
}

/// How a room encrypts, from its `m.room.encryption` state.
struct RoomEncryption: Codable, Equatable, Sendable {
    var algorithm: String
    var rotationPeriodMS: Int64
    var rotationPeriodMessages: Int

    static let megolm = "m.megolm.v1.aes-sha2"
    static let olm = "m.olm.v1.curve25519-aes-sha2"

    init(algorithm: String, rotationPeriodMS: Int64? = nil, rotationPeriodMessages: Int64? = nil) {
        self.algorithm = algorithm
        // The specification's defaults: a week, 100 messages.
        self.rotationPeriodMS = max(3_600_000, rotationPeriodMS ?? 604_800_000)
        self.rotationPeriodMessages = Int(max(1, min(rotationPeriodMessages ?? 100, 10_000)))
    }

    init?(content: JSONValue) {
        guard let algorithm = content["algorithm"]?.stringValue else { return nil }
        self.init(
            algorithm: algorithm, rotationPeriodMS: content["rotation_period_ms"]?.intValue,
            rotationPeriodMessages: content["rotation_period_msgs"]?.intValue
        )
    }

    enum CodingKeys: String, CodingKey {
        case algorithm, rotationPeriodMS = "rotation_period_ms", rotationPeriodMessages = "rotation_period_msgs"
    }
}

actor MatrixCrypto {
    let userID: String
    let deviceID: String
    let client: MatrixClient
    let store: any Store
    let keys: CryptoKeys
    let logger: Logger

    private var account: OlmAccount
    private var accountRecord: AccountRecord
    /// Our Curve25519 and Ed25519 identity keys.
    let identity: (curve25519: String, ed25519: String)

    // Caches of stored records, loaded on first use.
    private var olmSessions: [String: [(session: OlmSession, lastUsed: Double)]] = [:]
    private var inbound: [String: (session: InboundGroupSession, record: InboundRecord)] = [:]
    private var outbound: [String: (session: OutboundGroupSession, record: OutboundRecord)] = [:]
    private var deviceLists: [String: DeviceListRecord] = [:]
    private var pending: [PendingEvent]?
    /// Digests of the Olm messages handled lately, oldest first: the server delivers a
    /// to-device message again when a sync starts over, and decrypting it twice fails (its
    /// message key is spent), which must not pass for a broken session.
    private var handledToDevice: [String]?
    /// Records changed by receiving, written with the next sync token.
    private var dirty: Set<String> = []
    /// Users whose devices were queried in this sync already (one query per user per sync).
    private var queriedThisSync: Set<String> = []
    /// Device-list fetches that failed in a row, per user (their homeserver did not answer).
    private var queryFailures: [String: Int] = [:]
    /// When a broken Olm session with a device (by its key) was last replaced.
    private var unwedgedAt: [String: Date] = [:]
    /// Key requests to withdraw, once the sync that settled them commits.
    private var outgoingCancellations: [(requestID: String, sender: String)] = []
    /// `m.dummy` messages for repaired sessions, sent once the sync that made them commits.
    private var outgoingDummies: [(user: String, deviceID: String, senderKey: String, content: JSONValue)] = []
    /// Whether the bot talks to a user (to-device messages from anyone else are dropped).
    private let allowedSender: @Sendable (String) -> Bool

    private var busy = false
    /// A sync's changes are in the caches, not yet committed.
    private var syncing = false
    /// The sync that used this object stopped: another instance may hold the device's keys.
    private var closed = false
    /// The account could not be reloaded after a failed sync; work waits for a reload.
    private var accountStale = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private let decryptFailures = "switchboard_matrix_decrypt_failures_total"
    private let keysReceived = Counter(label: "switchboard_matrix_room_keys_received_total")
    private let keysShared = Counter(label: "switchboard_matrix_room_keys_shared_total")
    private let oneTimeKeysUploaded = Counter(label: "switchboard_matrix_one_time_keys_uploaded_total")

    private init(
        userID: String, deviceID: String, client: MatrixClient, store: any Store, keys: CryptoKeys, logger: Logger,
        allowedSender: @escaping @Sendable (String) -> Bool, account: OlmAccount, record: AccountRecord
    ) throws {
        self.allowedSender = allowedSender
        self.userID = userID
        self.deviceID = deviceID
        self.client = client
        self.store = store
        self.keys = keys
        self.logger = logger
        self.account = account
        self.accountRecord = record
        identity = try account.identityKeys()
    }

    /// Loads the device's account, or makes one (stored before anything is published).
    static func open(
        userID: String, deviceID: String, client: MatrixClient, store: any Store, keys: CryptoKeys, logger: Logger,
        allowedSender: @escaping @Sendable (String) -> Bool
    ) async throws -> MatrixCrypto {
        let name = CryptoRecord.account
        if let sealed = try await store.read({ try $0.cursor(name) }) {
            let record = try JSONDecoder().decode(AccountRecord.self, from: Data(try keys.open(sealed, name: name).utf8))
            if record.deviceID == deviceID {
                let account = try OlmAccount.unpickle(record.pickle, key: keys.pickleKey)
                return try MatrixCrypto(userID: userID, deviceID: deviceID, client: client, store: store, keys: keys, logger: logger, allowedSender: allowedSender, account: account, record: record)
            }
            logger.notice("the Matrix device changed; making new encryption keys for it", metadata: ["device.id": "\(deviceID)", "previous": "\(record.deviceID)"])
        }
        let account = try OlmAccount.create()
        let record = AccountRecord(deviceID: deviceID, pickle: try account.pickle(key: keys.pickleKey), published: false)
        let crypto = try MatrixCrypto(userID: userID, deviceID: deviceID, client: client, store: store, keys: keys, logger: logger, allowedSender: allowedSender, account: account, record: record)
        try await crypto.persistNow([name])
        logger.info("made end-to-end encryption keys for this device", metadata: ["device.id": "\(deviceID)", "ed25519": "\(crypto.identity.ed25519)"])
        return crypto
    }

    // MARK: One operation at a time

    /// Runs `body` alone; with `outsideSync`, also only while no sync is being processed.
    func exclusively<T>(outsideSync: Bool = false, _ body: () async throws -> T) async rethrows -> T {
        while busy || (outsideSync && syncing) {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            busy = false
            wakeWaiters()
        }
        return try await body()
    }

    /// Everyone waiting looks again (each re-checks its own condition).
    private func wakeWaiters() {
        let woken = waiters
        waiters.removeAll()
        for waiter in woken { waiter.resume() }
    }

    // MARK: Persistence

    /// Waits for work in flight, then refuses all further work: the caches are stale once
    /// another instance may sync the account.
    func close() async {
        await exclusively { closed = true }
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the encryption state was closed (the sync stopped here)" }
    }

    /// A sync's processing starts: sending waits until it is committed or dropped.
    func beginSync() async {
        await exclusively {
            syncing = true
            queriedThisSync.removeAll()
        }
    }

    /// Commits the sync's record changes inside `commit` (which writes them in the same
    /// transaction as the sync token); if it throws, every cached object is dropped.
    func commitSync<T: Sendable>(_ commit: @Sendable ([(name: String, value: String)]) async throws -> T) async throws -> T {
        try await exclusively {
            defer {
                syncing = false
                queriedThisSync.removeAll()
            }
            let result: T
            do {
                let changes = try dirty.sorted().compactMap { name in try sealedRecord(name).map { (name: name, value: $0) } }
                result = try await commit(changes)
                dirty.removeAll()
            } catch {
                await dropCaches()
                throw error
            }
            await sendDummies()
            let cancellations = outgoingCancellations
            outgoingCancellations.removeAll()
            for cancellation in cancellations where !cancellation.sender.isEmpty {
                await cancelKeyRequest(cancellation.requestID, to: cancellation.sender)
            }
            return result
        }
    }

    /// The sync failed before its commit: forget what it changed.
    func abortSync() async {
        await exclusively {
            await dropCaches()
            syncing = false
            queriedThisSync.removeAll()
        }
    }

    private func sendDummies() async {
        let dummies = outgoingDummies
        outgoingDummies.removeAll()
        for dummy in dummies {
            do {
                let txnID = UUID().uuidString
                try await client.request(
                    .PUT, "/_matrix/client/v3/sendToDevice/m.room.encrypted/\(MatrixClient.segment(txnID))",
                    body: ["messages": .object([dummy.user: .object([dummy.deviceID: dummy.content])])], timeout: .seconds(15)
                )
                logger.notice("started a new Olm session with a device whose messages would not decrypt", metadata: ["user": "\(dummy.user)", "device.id": "\(dummy.deviceID)"])
            } catch {
                // The session is stored; the device learns of it with the next message we send it.
                logger.warning("could not send the message that starts a repaired Olm session", metadata: ["user": "\(dummy.user)", "error": "\(error)"])
            }
        }
    }

    /// Reloads the account if an earlier reload failed; throws while it still cannot.
    private func requireFreshAccount() async throws {
        guard accountStale else { return }
        await dropCaches()
        if accountStale { throw CryptoStoreError(description: "the encryption account could not be reloaded from the database") }
    }

    /// Forgets everything not committed: the next use reloads from the store.
    private func dropCaches() async {
        for dummy in outgoingDummies { unwedgedAt[dummy.senderKey] = nil }
        outgoingDummies.removeAll()
        outgoingCancellations.removeAll()
        dirty.removeAll()
        olmSessions.removeAll()
        inbound.removeAll()
        outbound.removeAll()
        deviceLists.removeAll()
        pending = nil
        handledToDevice = nil
        do {
            if let sealed = try await store.read({ try $0.cursor(CryptoRecord.account) }) {
                let record = try JSONDecoder().decode(AccountRecord.self, from: Data(try keys.open(sealed, name: CryptoRecord.account).utf8))
                account = try OlmAccount.unpickle(record.pickle, key: keys.pickleKey)
                accountRecord = record
            }
            accountStale = false
        } catch {
            // Until it reloads, nothing may use the account: it may hold what the failed sync
            // changed (a spent one-time key, a raised epoch).
            accountStale = true
            logger.error("could not reload the encryption account; will try again", metadata: ["error": "\(error)"])
        }
    }

    private func persistNow(_ names: [String]) async throws {
        let records = try names.compactMap { name in try sealedRecord(name).map { (name, $0) } }
        try await store.write { tx in
            for (name, value) in records { try tx.setCursor(name, value: value) }
        }
    }

    private func sealedRecord(_ name: String) throws -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data: Data
        if name == CryptoRecord.account {
            accountRecord.pickle = try account.pickle(key: keys.pickleKey)
            data = try encoder.encode(accountRecord)
        } else if name == CryptoRecord.pending {
            data = try encoder.encode(pending ?? [])
        } else if name == CryptoRecord.handledToDevice {
            data = try encoder.encode(handledToDevice ?? [])
        } else if name.hasPrefix(CryptoRecord.prefix + "olm."), let sessions = olmSessions[String(name.dropFirst((CryptoRecord.prefix + "olm.").count))] {
            let entries = try sessions.map {
                OlmSessionsRecord.Entry(pickle: try $0.session.pickle(key: keys.pickleKey), lastUsed: $0.lastUsed, ownKey: identity.curve25519)
            }
            data = try encoder.encode(OlmSessionsRecord(sessions: entries))
        } else if let entry = inbound[name] {
            var record = entry.record
            record.pickle = try entry.session.pickle(key: keys.pickleKey)
            data = try encoder.encode(record)
        } else if let entry = outbound[name] {
            var record = entry.record
            record.pickle = try entry.session.pickle(key: keys.pickleKey)
            data = try encoder.encode(record)
        } else if name.hasPrefix(CryptoRecord.prefix + "devices."), let list = deviceLists[String(name.dropFirst((CryptoRecord.prefix + "devices.").count))] {
            data = try encoder.encode(list)
        } else {
            return nil
        }
        return try keys.seal(String(decoding: data, as: UTF8.self), name: name)
    }

    func load<T: Decodable>(_ type: T.Type, _ name: String) async throws -> T? {
        guard let sealed = try await store.read({ try $0.cursor(name) }) else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(try keys.open(sealed, name: name).utf8))
    }

    // MARK: Keys on the homeserver

    /// Publishes the device keys, and keeps one-time and fallback keys stocked.
    ///
    /// - Parameters:
    ///   - oneTimeKeyCount: the sync's count of our one-time keys on the server; nil asks.
    ///   - unusedFallbackTypes: the sync's unused fallback key types; nil when not told.
    ///   - publishDeviceKeys: upload the device keys even if they were uploaded before: done
    ///     at each start, since the homeserver drops a device's keys when it is signed out.
    func maintainKeys(oneTimeKeyCount: Int?, unusedFallbackTypes: [String]?, publishDeviceKeys: Bool = false) async throws {
        try await exclusively(outsideSync: true) {
            try await requireFreshAccount()
            let wasPublished = accountRecord.published
            var body: [String: JSONValue] = [:]
            if publishDeviceKeys || !wasPublished { body["device_keys"] = try signedDeviceKeys() }
            var count = oneTimeKeyCount
            if count == nil {
                // Ask the homeserver how many it holds (an upload with nothing new answers that).
                let response = try await client.request(.POST, "/_matrix/client/v3/keys/upload", body: .object(body))
                if body["device_keys"] != nil {
                    markPublished()
                    try await persistNow([CryptoRecord.account])
                }
                body = [:]
                count = Int(response["one_time_key_counts"]?["signed_curve25519"]?.intValue ?? 0)
            }
            // Keys made but not published yet (an upload that failed) count too: making more
            // would push the oldest, published ones out of libolm's store.
            let target = account.maxOneTimeKeys / 2
            let unpublished = try account.oneTimeKeys().count
            if let count, count + unpublished < target {
                try account.generateOneTimeKeys(target - count - unpublished)
            }
            let needsFallback = unusedFallbackTypes.map { !$0.contains("signed_curve25519") } ?? !wasPublished
            if needsFallback, try account.unpublishedFallbackKey().isEmpty {
                try account.generateFallbackKey()
            }
            let oneTime = try account.oneTimeKeys()
            let fallback = try account.unpublishedFallbackKey()
            guard !oneTime.isEmpty || !fallback.isEmpty || body["device_keys"] != nil else { return }
            // The private halves are stored before the public halves are published: a crash in
            // between must not leave keys on the server that no one can use.
            try await persistNow([CryptoRecord.account])
            body["one_time_keys"] = .object(try signedKeys(oneTime, fallback: false))
            if !fallback.isEmpty { body["fallback_keys"] = .object(try signedKeys(fallback, fallback: true)) }
            let uploaded: Result<JSONValue, MatrixError>
            do {
                uploaded = .success(try await client.request(.POST, "/_matrix/client/v3/keys/upload", body: .object(body)))
            } catch let error as MatrixError {
                uploaded = .failure(error)
            }
            let response: JSONValue
            switch uploaded {
            case .success(let value): response = value
            case .failure(let error) where error.status != 400 || !error.message.lowercased().contains("already exists"): throw error
            case .failure(let error):
                // The server holds other keys under these ids (a database restored from a
                // backup): give these up; the next round makes keys with new ids.
                account.markKeysAsPublished()
                try await persistNow([CryptoRecord.account])
                logger.warning("the homeserver refused one-time keys (ids already used, perhaps after a restore); making new ones", metadata: ["error": "\(error)"])
                return
            }
            markPublished()
            account.markKeysAsPublished()
            try await persistNow([CryptoRecord.account])
            oneTimeKeysUploaded.increment(by: oneTime.count)
            logger.info("uploaded encryption keys", metadata: [
                "one_time_keys": "\(oneTime.count)", "fallback_key": "\(!fallback.isEmpty)",
                "server_count": "\(response["one_time_key_counts"]?["signed_curve25519"]?.intValue ?? -1)",
            ])
        }
    }

    /// Whether the device keys were ever published.
    var accountRecordPublished: Bool { accountRecord.published }

    private func markPublished() {
        if !accountRecord.published {
            accountRecord.published = true
            logger.info("published this device's identity keys", metadata: ["device.id": "\(deviceID)"])
        }
    }

    func signedDeviceKeys() throws -> JSONValue {
        let unsigned: JSONValue = [
            "user_id": .string(userID), "device_id": .string(deviceID),
            "algorithms": [.string(RoomEncryption.olm), .string(RoomEncryption.megolm)],
            "keys": .object(["curve25519:\(deviceID)": .string(identity.curve25519), "ed25519:\(deviceID)": .string(identity.ed25519)]),
        ]
        return try signed(unsigned)
    }

    /// The device's Ed25519 signature of a message.
    func signAsDevice(_ message: String) throws -> String {
        try account.sign(message)
    }

    /// Adds our device's signature to an object (over its canonical JSON without
    /// `signatures` and `unsigned`).
    private func signed(_ value: JSONValue) throws -> JSONValue {
        guard var object = value.objectValue else { return value }
        var existing = object["signatures"]?.objectValue ?? [:]
        object["signatures"] = nil
        object["unsigned"] = nil
        let signature = try account.sign(JSONValue.object(object).canonicalText)
        var mine = existing[userID]?.objectValue ?? [:]
        mine["ed25519:\(deviceID)"] = .string(signature)
        existing[userID] = .object(mine)
        object["signatures"] = .object(existing)
        return .object(object)
    }

    private func signedKeys(_ keys: [String: String], fallback: Bool) throws -> [String: JSONValue] {
        var result: [String: JSONValue] = [:]
        for (id, key) in keys {
            var object: [String: JSONValue] = ["key": .string(key)]
            if fallback { object["fallback"] = true }
            result["signed_curve25519:\(id)"] = try signed(.object(object))
        }
        return result
    }

    // MARK: Receiving to-device messages

    /// Decrypts and handles a sync's to-device events. Returns how many room keys arrived.
    ///
    /// Throws only when the homeserver could not be asked about a sender's devices (a
    /// transient failure): the sync is then processed again, rather than a room key dropped.
    @discardableResult
    func receiveToDevice(_ events: [JSONValue]) async throws -> Int {
        try await exclusively {
            try await requireFreshAccount()
            var roomKeys = 0
            for event in events {
                guard let type = event["type"]?.stringValue, let sender = event["sender"]?.stringValue else { continue }
                // Only people the bot talks to (or its own account) may make it look up devices
                // and start sessions: anyone else's to-device messages are dropped unread.
                guard sender == userID || allowedSender(sender) else {
                    logger.debug("ignoring a to-device event from someone not allowed", metadata: ["sender": "\(sender)", "type": "\(type)"])
                    continue
                }
                switch type {
                case "m.room.encrypted":
                    do {
                        if try await receiveOlm(event["content"] ?? .null, from: sender) { roomKeys += 1 }
                    } catch let error as MatrixError where error.isTransient || error.isUnauthorized {
                        logger.warning("could not fetch a sender's devices; processing this sync again", metadata: ["sender": "\(sender)", "error": "\(error)"])
                        throw error
                    } catch let error as StoreError {
                        // The room key must not be lost to a database hiccup: the sync is retried.
                        throw error
                    } catch {
                        Counter(label: decryptFailures, dimensions: [("kind", "olm")]).increment()
                        logger.warning("could not decrypt a to-device message", metadata: ["sender": "\(sender)", "error": "\(error)"])
                    }
                case "m.room_key_request":
                    // Keys are shared when we send, with every device in the room; requests for
                    // them are not answered (a device that missed a key gets it with the next one).
                    logger.debug("ignoring a room key request", metadata: ["sender": "\(sender)"])
                default:
                    logger.debug("ignoring a to-device event", metadata: ["type": "\(type)", "sender": "\(sender)"])
                }
            }
            return roomKeys
        }
    }

    private struct ReceiveError: Error, CustomStringConvertible {
        var description: String
    }

    /// One Olm-encrypted to-device message; true if it carried a room key we stored.
    private func receiveOlm(_ content: JSONValue, from sender: String) async throws -> Bool {
        guard content["algorithm"]?.stringValue == RoomEncryption.olm else {
            throw ReceiveError(description: "unsupported algorithm \(content["algorithm"]?.stringValue ?? "none")")
        }
        guard let senderKey = content["sender_key"]?.stringValue,
            let mine = content["ciphertext"]?[identity.curve25519],
            let type = mine["type"]?.intValue, let body = mine["body"]?.stringValue
        else { throw ReceiveError(description: "no ciphertext for this device") }
        let digest = Data(SHA256.hash(data: Data(body.utf8))).base64EncodedString()
        var handled = try await handledDigests()
        guard !handled.contains(digest) else {
            logger.debug("a to-device message handled before, delivered again; skipped", metadata: ["sender": "\(sender)"])
            return false
        }
        let plaintext: String
        do {
            plaintext = try await decryptOlm(type: Int(type), body: body, senderKey: senderKey)
            handled.append(digest)
            handledToDevice = Array(handled.suffix(2000))
            dirty.insert(CryptoRecord.handledToDevice)
        } catch {
            if try await knownDevice(of: sender, curve25519: senderKey) != nil { await unwedge(user: sender, senderKey: senderKey) }
            throw error
        }
        guard let payload = try? JSONValue.parse(plaintext) else { throw ReceiveError(description: "the plaintext is not JSON") }
        // The payload names who sent it to whom; all of it must match the envelope.
        guard payload["sender"]?.stringValue == sender else { throw ReceiveError(description: "the payload's sender is not the event's sender") }
        guard payload["recipient"]?.stringValue == userID, payload["recipient_keys"]?["ed25519"]?.stringValue == identity.ed25519 else {
            throw ReceiveError(description: "the payload is for another recipient")
        }
        let claimedSigningKey = payload["keys"]?["ed25519"]?.stringValue
        let innerType = payload["type"]?.stringValue ?? ""
        guard innerType == "m.room_key" || innerType == "m.forwarded_room_key" else {
            logger.debug("an encrypted to-device event", metadata: ["type": "\(innerType)", "sender": "\(sender)"])
            return false
        }
        // A room key counts only from a device its owner has published.
        guard let device = try await knownDevice(of: sender, curve25519: senderKey), device.ed25519 == claimedSigningKey else {
            Counter(label: decryptFailures, dimensions: [("kind", "unknown_device")]).increment()
            throw ReceiveError(description: "a room key from a device \(sender) has not published (unknown device); ignored")
        }
        let keyContent = payload["content"] ?? .null
        guard keyContent["algorithm"]?.stringValue == RoomEncryption.megolm,
            let roomID = keyContent["room_id"]?.stringValue, let sessionID = keyContent["session_id"]?.stringValue
        else { throw ReceiveError(description: "a room key without algorithm, room or session") }
        let session: InboundGroupSession
        var originalSenderKey = senderKey
        var signingKey = claimedSigningKey
        let forwarded = innerType == "m.forwarded_room_key"
        if forwarded {
            guard let exported = keyContent["session_key"]?.stringValue else { throw ReceiveError(description: "a forwarded key without session_key") }
            session = try InboundGroupSession.importing(exportedKey: exported)
            originalSenderKey = keyContent["sender_key"]?.stringValue ?? senderKey
            signingKey = keyContent["sender_claimed_ed25519_key"]?.stringValue
            // Only a key we asked for (a message of the sender's waits for it), and only from
            // the original sender's own devices.
            let waiting = try await pendingEvents().contains { item in
                item.roomID == roomID && item.event["sender"]?.stringValue == sender
                    && item.event["content"]?["session_id"]?.stringValue == sessionID
            }
            guard waiting else {
                throw ReceiveError(description: "a forwarded room key nobody asked for; ignored")
            }
            guard try await knownDevice(of: sender, curve25519: originalSenderKey) != nil else {
                throw ReceiveError(description: "a forwarded room key for a session \(sender) did not start; ignored")
            }
        } else {
            guard let sessionKey = keyContent["session_key"]?.stringValue else { throw ReceiveError(description: "a room key without session_key") }
            session = try InboundGroupSession.create(sessionKey: sessionKey)
        }
        guard session.id == sessionID else { throw ReceiveError(description: "the room key's session id does not match its key") }
        let name = CryptoRecord.inbound(room: roomID, session: sessionID)
        if let existing = try await inboundSession(name) {
            // A session belongs to the device that started it: nobody else may replace it.
            guard existing.record.sender == sender, existing.record.senderKey == originalSenderKey else {
                throw ReceiveError(description: "a room key for a session another device started (\(existing.record.sender)); ignored")
            }
            if existing.session.firstKnownIndex <= session.firstKnownIndex {
                logger.debug("already have this room key", metadata: ["room.id": "\(roomID)", "session.id": "\(sessionID)"])
                return false
            }
        }
        let record = InboundRecord(
            pickle: "", roomID: roomID, sender: sender, senderKey: originalSenderKey, signingKey: signingKey, forwarded: forwarded,
            seen: (try await inboundSession(name))?.record.seen ?? [:]
        )
        inbound[name] = (session, record)
        dirty.insert(name)
        keysReceived.increment()
        logger.info("received a room key", metadata: [
            "room.id": "\(roomID)", "session.id": "\(sessionID)", "sender": "\(sender)", "forwarded": "\(forwarded)",
        ])
        return true
    }

    private func handledDigests() async throws -> [String] {
        if let handledToDevice { return handledToDevice }
        let stored = try await load([String].self, CryptoRecord.handledToDevice) ?? []
        handledToDevice = stored
        return stored
    }

    private func olmSessions(for senderKey: String) async throws -> [(session: OlmSession, lastUsed: Double)] {
        if let known = olmSessions[senderKey] { return known }
        let record = try await load(OlmSessionsRecord.self, CryptoRecord.olm(senderKey))
        // Sessions made by an earlier account of this bot (before a new device) are of no use.
        let sessions = try (record?.sessions ?? []).filter { $0.ownKey == identity.curve25519 }.map {
            (try OlmSession.unpickle($0.pickle, key: keys.pickleKey), $0.lastUsed)
        }
        olmSessions[senderKey] = sessions
        return sessions
    }

    private func decryptOlm(type: Int, body: String, senderKey: String) async throws -> String {
        var sessions = try await olmSessions(for: senderKey)
        let now = Date().timeIntervalSince1970
        for (index, entry) in sessions.enumerated() {
            if type == 0, !entry.session.matches(preKeyMessage: body, from: senderKey) { continue }
            do {
                let plaintext = try entry.session.decrypt(type: type, body: body)
                sessions[index].lastUsed = now
                olmSessions[senderKey] = sessions.sorted { $0.lastUsed > $1.lastUsed }
                dirty.insert(CryptoRecord.olm(senderKey))
                return plaintext
            } catch {
                if type == 0 { throw error }  // the matching session failed: the message is bad
            }
        }
        guard type == 0 else {
            throw ReceiveError(description: "no Olm session with this device decrypts the message (a wedged session)")
        }
        // A new session the other device started with one of our one-time keys.
        let session = try OlmSession.inbound(account: account, from: senderKey, preKeyMessage: body)
        let plaintext = try session.decrypt(type: type, body: body)
        try account.removeOneTimeKeys(for: session)
        sessions.insert((session, now), at: 0)
        // A handful of sessions per device is plenty; the oldest go.
        olmSessions[senderKey] = Array(sessions.prefix(5))
        dirty.insert(CryptoRecord.olm(senderKey))
        dirty.insert(CryptoRecord.account)
        logger.info("a device started an encrypted session with the bot", metadata: ["sender_key": "\(senderKey)"])
        return plaintext
    }

    // MARK: Device lists

    /// The homeserver's word that these users' devices changed.
    func devicesChanged(_ users: [String]) async throws {
        try await exclusively {
            for user in users {
                guard var list = try await deviceList(user) else { continue }
                list.outdated = true
                deviceLists[user] = list
                dirty.insert(CryptoRecord.devices(user))
            }
        }
    }

    private func deviceList(_ user: String) async throws -> DeviceListRecord? {
        if let known = deviceLists[user] { return known }
        let loaded: DeviceListRecord?
        do {
            loaded = try await load(DeviceListRecord.self, CryptoRecord.devices(user))
        } catch is DecodingError {
            // Unreadable (an older shape): as good as unknown, fetched again.
            logger.notice("a stored device list is unreadable; fetching it again", metadata: ["user": "\(user)"])
            return nil
        }
        guard var stored = loaded else { return nil }
        // Any other epoch is stale (a new device's account starts counting anew).
        if stored.epoch != accountRecord.deviceListEpoch { stored.outdated = true }
        deviceLists[user] = stored
        return stored
    }

    /// Every stored device list counts as outdated from now on: after a sync that started
    /// over, the homeserver cannot say whose devices changed meanwhile.
    func invalidateDeviceLists() async {
        await exclusively {
            accountRecord.deviceListEpoch += 1
            for user in deviceLists.keys { deviceLists[user]?.outdated = true }
            dirty.insert(CryptoRecord.account)
            logger.info("all device lists will be fetched again")
        }
    }

    /// The device of `user` with this Curve25519 key, asking the homeserver when we do not know it.
    private func knownDevice(of user: String, curve25519: String) async throws -> DeviceInfo? {
        func find(_ list: DeviceListRecord?) -> DeviceInfo? { list?.devices.values.first { $0.curve25519 == curve25519 } }
        let list = try await deviceList(user)
        if let found = find(list), list?.outdated == false { return found }
        guard !queriedThisSync.contains(user) else { return find(list) }
        try await queryDevices([user])
        return find(deviceLists[user])
    }

    /// Fresh device lists for users not known or outdated.
    private func ensureDevices(_ users: [String]) async throws -> [String: [String: DeviceInfo]] {
        var stale: [String] = []
        for user in users {
            let list = try await deviceList(user)
            if list == nil || list!.outdated { stale.append(user) }
        }
        if !stale.isEmpty { try await queryDevices(stale) }
        var result: [String: [String: DeviceInfo]] = [:]
        for user in users { result[user] = deviceLists[user]?.devices ?? [:] }
        return result
    }

    private func queryDevices(_ users: [String]) async throws {
        let request: JSONValue = [
            "timeout": 10000,
            "device_keys": .object(Dictionary(uniqueKeysWithValues: users.map { ($0, JSONValue.array([])) })),
        ]
        logger.debug("fetching device lists", metadata: ["users": "\(users.joined(separator: ","))"])
        let response = try await client.request(.POST, "/_matrix/client/v3/keys/query", body: request)
        for user in users {
            queriedThisSync.insert(user)
            guard let published = response["device_keys"]?[user]?.objectValue else {
                let server = user.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ""
                if response["failures"]?[server] != nil {
                    // Their homeserver did not answer: not "no devices". Tried again (the
                    // sync or the delivery fails for now) a few times, then given up on.
                    let failures = (queryFailures[user] ?? 0) + 1
                    queryFailures[user] = failures
                    logger.warning("could not fetch a user's devices from their homeserver", metadata: [
                        "user": "\(user)", "attempt": "\(failures)", "failures": "\(response["failures"]!.canonicalText.prefix(200))",
                    ])
                    if failures < 3 {
                        throw MatrixError(status: nil, errcode: nil, message: "the homeserver of \(user) did not answer for their devices", retryAfter: nil)
                    }
                }
                continue
            }
            queryFailures[user] = nil
            let previous = try await deviceList(user)
            let master = response["master_keys"]?[user]
            let masterKey = Self.keyOf(master, user: user, usage: "master")
            var selfSigning = Self.crossSigningKey(response["self_signing_keys"]?[user], signedBy: master, user: user)
            if let pinned = previous?.masterKey, let masterKey, pinned != masterKey {
                // Trust on first use: a replaced master key vouches for nothing until someone
                // looks into it.
                logger.error("a user's master cross-signing key changed; their devices count as unverified", metadata: ["user": "\(user)"])
                selfSigning = nil
            }
            var devices: [String: DeviceInfo] = [:]
            for (deviceID, keys) in published {
                guard keys["user_id"]?.stringValue == user, keys["device_id"]?.stringValue == deviceID,
                    let curve = keys["keys"]?["curve25519:\(deviceID)"]?.stringValue,
                    let ed = keys["keys"]?["ed25519:\(deviceID)"]?.stringValue,
                    Self.verify(keys, user: user, keyID: "ed25519:\(deviceID)", key: ed)
                else {
                    logger.warning("ignoring a device whose keys are not signed by itself", metadata: ["user": "\(user)", "device.id": "\(deviceID)"])
                    continue
                }
                // A device must not change its identity keys: a changed key is someone else.
                if let previous = deviceLists[user]?.devices[deviceID], previous.ed25519 != ed {
                    logger.error("a device's identity key changed; ignoring the new one", metadata: ["user": "\(user)", "device.id": "\(deviceID)"])
                    devices[deviceID] = previous
                    continue
                }
                let crossSigned = selfSigning.map { Self.verify(keys, user: user, keyID: "ed25519:\($0)", key: $0) } ?? false
                devices[deviceID] = DeviceInfo(curve25519: curve, ed25519: ed, crossSigned: crossSigned)
            }
            deviceLists[user] = DeviceListRecord(
                devices: devices, outdated: false, masterKey: previous?.masterKey ?? masterKey, epoch: accountRecord.deviceListEpoch
            )
            dirty.insert(CryptoRecord.devices(user))
        }
    }

    /// The public key of a cross-signing key object, if it is the user's and for this usage.
    private static func keyOf(_ object: JSONValue?, user: String, usage: String) -> String? {
        guard let object, object["user_id"]?.stringValue == user,
            object["usage"]?.arrayValue?.contains(.string(usage)) == true,
            let keys = object["keys"]?.objectValue, keys.count == 1
        else { return nil }
        return keys.values.first?.stringValue
    }

    /// The self-signing public key, if its master key signed it.
    private static func crossSigningKey(_ selfSigning: JSONValue?, signedBy master: JSONValue?, user: String) -> String? {
        guard let masterKey = keyOf(master, user: user, usage: "master"),
            let selfSigning, let key = keyOf(selfSigning, user: user, usage: "self_signing"),
            verify(selfSigning, user: user, keyID: "ed25519:\(masterKey)", key: masterKey)
        else { return nil }
        return key
    }

    /// Whether `object` carries `user`'s valid signature by `key`.
    static func verify(_ object: JSONValue, user: String, keyID: String, key: String) -> Bool {
        guard var members = object.objectValue, let signature = members["signatures"]?[user]?[keyID]?.stringValue else { return false }
        members["signatures"] = nil
        members["unsigned"] = nil
        return OlmUtility.verifyEd25519(key: key, message: JSONValue.object(members).canonicalText, signature: signature)
    }

    // MARK: Room events

    private func inboundSession(_ name: String) async throws -> (session: InboundGroupSession, record: InboundRecord)? {
        if let known = inbound[name] { return known }
        guard let record = try await load(InboundRecord.self, name) else { return nil }
        let entry = (try InboundGroupSession.unpickle(record.pickle, key: keys.pickleKey), record)
        inbound[name] = entry
        return entry
    }

    /// Decrypts one `m.room.encrypted` room event.
    func decrypt(_ event: MatrixEvent, in roomID: String) async -> RoomDecryption {
        await exclusively { await decryptLocked(event, in: roomID) }
    }

    private func decryptLocked(_ event: MatrixEvent, in roomID: String) async -> RoomDecryption {
        let content = event.content
        if content.objectValue?.isEmpty != false {
            return fail("the event was redacted", kind: "redacted")
        }
        guard content["algorithm"]?.stringValue == RoomEncryption.megolm else {
            return fail("unsupported algorithm \(content["algorithm"]?.stringValue ?? "none")", kind: "algorithm")
        }
        guard let sessionID = content["session_id"]?.stringValue, let ciphertext = content["ciphertext"]?.stringValue else {
            return fail("no session id or ciphertext", kind: "malformed")
        }
        let name = CryptoRecord.inbound(room: roomID, session: sessionID)
        let entry: (session: InboundGroupSession, record: InboundRecord)?
        do {
            entry = try await inboundSession(name)
        } catch {
            return fail("the stored room key does not load: \(error)", kind: "store")
        }
        guard var entry else { return .missingKey(sessionID: sessionID, senderKey: content["sender_key"]?.stringValue) }
        guard entry.record.sender == event.sender else {
            return fail("the room key belongs to \(entry.record.sender), not to the sender \(event.sender)", kind: "wrong_sender")
        }
        let plaintext: String
        let index: Int
        do {
            (plaintext, index) = try entry.session.decrypt(ciphertext)
        } catch let error as OlmError where error.code == "OLM_UNKNOWN_MESSAGE_INDEX" {
            // We have the session, but only from a later index: the key for this one is missing.
            return .missingKey(sessionID: sessionID, senderKey: content["sender_key"]?.stringValue)
        } catch {
            return fail("corrupt ciphertext (\(error))", kind: "corrupt")
        }
        if let previous = entry.record.seen[String(index)], previous != event.id {
            return fail("message index \(index) was already used by \(previous): a replay", kind: "replay")
        }
        guard let payload = try? JSONValue.parse(plaintext), let type = payload["type"]?.stringValue else {
            return fail("the plaintext is not an event", kind: "malformed")
        }
        guard payload["room_id"]?.stringValue == roomID else {
            return fail("the event was encrypted for another room", kind: "wrong_room")
        }
        if entry.record.seen[String(index)] == nil {
            entry.record.seen[String(index)] = event.id
            inbound[name] = entry
            dirty.insert(name)
        }
        var inner = payload["content"]?.objectValue ?? [:]
        // Relations travel in the clear so servers can aggregate them.
        if inner["m.relates_to"] == nil, let relation = content["m.relates_to"] { inner["m.relates_to"] = relation }
        let json: JSONValue = [
            "event_id": .string(event.id), "type": .string(type), "sender": .string(event.sender),
            "origin_server_ts": .int(event.timestamp), "content": .object(inner),
        ]
        guard let decrypted = MatrixEvent(json) else { return fail("the decrypted event is malformed", kind: "malformed") }
        var verified = false
        if let devices = (try? await deviceList(event.sender))??.devices.values, let device = devices.first(where: { $0.curve25519 == entry.record.senderKey }) {
            verified = device.crossSigned && !entry.record.forwarded && device.ed25519 == entry.record.signingKey
        }
        return .decrypted(decrypted, deviceVerified: verified)
    }

    private func fail(_ reason: String, kind: String) -> RoomDecryption {
        Counter(label: decryptFailures, dimensions: [("kind", kind)]).increment()
        return .failed(reason, tellSender: !["replay", "wrong_sender", "redacted"].contains(kind))
    }

    // MARK: Undecryptable events

    private func pendingEvents() async throws -> [PendingEvent] {
        if let pending { return pending }
        let stored = try await load([PendingEvent].self, CryptoRecord.pending) ?? []
        pending = stored
        return stored
    }

    /// Keeps an event whose key has not arrived, and asks the sender's devices for it.
    func deferEvent(_ event: MatrixEvent, in roomID: String, sessionID: String, senderKey: String?) async {
        await exclusively {
            do {
                var list = try await pendingEvents()
                guard !list.contains(where: { $0.event["event_id"]?.stringValue == event.id }) else { return }
                let json: JSONValue = [
                    "event_id": .string(event.id), "type": .string(event.type), "sender": .string(event.sender),
                    "origin_server_ts": .int(event.timestamp), "content": event.content,
                ]
                var item = PendingEvent(roomID: roomID, event: json, firstSeen: Date().timeIntervalSince1970, requested: false)
                // Bounded: the oldest undecryptable events give way.
                if list.count >= 500 { list.removeFirst(list.count - 499) }
                // One request per missing session, however many of its messages wait.
                let asked = list.first { $0.requested && $0.event["content"]?["session_id"]?.stringValue == sessionID }
                if let asked {
                    item.requested = true
                    item.requestID = asked.requestID
                } else {
                    do {
                        item.requestID = try await requestKey(room: roomID, sessionID: sessionID, senderKey: senderKey, from: event.sender)
                        item.requested = true
                    } catch {
                        logger.warning("could not ask for a missing room key", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
                    }
                }
                list.append(item)
                pending = list
                dirty.insert(CryptoRecord.pending)
                Gauge(label: "switchboard_matrix_undecryptable_waiting").record(list.count)
            } catch {
                logger.error("could not keep an undecryptable event for later", metadata: ["event.id": "\(event.id)", "error": "\(error)"])
            }
        }
    }

    @discardableResult
    private func requestKey(room: String, sessionID: String, senderKey: String?, from sender: String) async throws -> String {
        var body: [String: JSONValue] = ["algorithm": .string(RoomEncryption.megolm), "room_id": .string(room), "session_id": .string(sessionID)]
        if let senderKey { body["sender_key"] = .string(senderKey) }
        let requestID = UUID().uuidString
        let content: JSONValue = [
            "action": "request", "body": .object(body), "request_id": .string(requestID), "requesting_device_id": .string(deviceID),
        ]
        let message: JSONValue = ["messages": .object([sender: .object(["*": content])])]
        try await client.request(.PUT, "/_matrix/client/v3/sendToDevice/m.room_key_request/\(MatrixClient.segment(requestID))", body: message, timeout: .seconds(10))
        logger.info("asked the sender's devices for a missing room key", metadata: ["room.id": "\(room)", "session.id": "\(sessionID)", "sender": "\(sender)"])
        return requestID
    }

    /// Tells the sender's devices that a key request is answered or given up.
    private func cancelKeyRequest(_ requestID: String, to sender: String) async {
        let content: JSONValue = ["action": "request_cancellation", "request_id": .string(requestID), "requesting_device_id": .string(deviceID)]
        let txnID = UUID().uuidString
        do {
            try await client.request(
                .PUT, "/_matrix/client/v3/sendToDevice/m.room_key_request/\(MatrixClient.segment(txnID))",
                body: ["messages": .object([sender: .object(["*": content])])], timeout: .seconds(10)
            )
            logger.info("withdrew a room key request", metadata: ["sender": "\(sender)"])
        } catch {
            logger.debug("could not cancel a room key request", metadata: ["error": "\(error)"])
        }
    }

    /// Events waiting for keys, in the order they arrived: those that decrypt now, and those
    /// that waited longer than `wait` (given up on; the sender should hear about them).
    func retryPending(giveUpAfter wait: Duration) async -> (decrypted: [(roomID: String, event: MatrixEvent, verified: Bool)], expired: [(roomID: String, event: MatrixEvent)]) {
        await exclusively {
            guard let list = try? await pendingEvents(), !list.isEmpty else { return ([], []) }
            var decrypted: [(String, MatrixEvent, Bool)] = []
            var expired: [(String, MatrixEvent)] = []
            var remaining: [PendingEvent] = []
            let now = Date().timeIntervalSince1970
            let waitSeconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
            for item in list {
                guard let event = MatrixEvent(item.event) else { continue }
                switch await decryptLocked(event, in: item.roomID) {
                case .decrypted(let plain, let verified):
                    decrypted.append((item.roomID, plain, verified))
                    Counter(label: "switchboard_matrix_late_keys_total").increment()
                case .missingKey:
                    if now - item.firstSeen >= waitSeconds {
                        expired.append((item.roomID, event))
                        Counter(label: "switchboard_matrix_undecryptable_total", dimensions: [("outcome", "gave_up")]).increment()
                    } else {
                        remaining.append(item)
                    }
                case .failed(let reason, let tellSender):
                    logger.warning("an undecryptable event failed for good", metadata: ["event.id": "\(event.id)", "reason": "\(reason)"])
                    if tellSender { expired.append((item.roomID, event)) }
                }
            }
            if remaining.count != list.count {
                pending = remaining
                dirty.insert(CryptoRecord.pending)
                // Requests no waiting message needs any more are withdrawn.
                let open = Set(remaining.compactMap(\.requestID))
                var done: [String: String] = [:]
                for item in list { if let id = item.requestID, !open.contains(id) { done[id] = item.event["sender"]?.stringValue } }
                outgoingCancellations += done.sorted(by: { $0.key < $1.key }).map { (requestID: $0.key, sender: $0.value ?? "") }
            }
            Gauge(label: "switchboard_matrix_undecryptable_waiting").record(remaining.count)
            return (decrypted, expired)
        }
    }

    // MARK: Sending

    /// The `m.room.encrypted` content for an event in an encrypted room, after making sure
    /// every device of `members` has the room's current key.
    func encrypt(type: String, content: JSONValue, roomID: String, members: [String], settings: RoomEncryption) async throws -> JSONValue {
        try await exclusively(outsideSync: true) {
            guard !closed else { throw Closed() }
            try await requireFreshAccount()
            let devices = try await ensureDevices(members)
            var recipients: Set<String> = []
            for (user, list) in devices {
                for deviceID in list.keys where !(user == userID && deviceID == self.deviceID) { recipients.insert(user + "|" + deviceID) }
            }
            let name = CryptoRecord.outbound(room: roomID)
            var entry = try await outboundSession(name)
            let now = Date().timeIntervalSince1970
            if let current = entry {
                let tooOld = (now - current.record.createdAt) * 1000 >= Double(settings.rotationPeriodMS)
                let tooMany = current.record.messages >= settings.rotationPeriodMessages
                let departed = !Set(current.record.sharedWith).isSubset(of: recipients)
                if tooOld || tooMany || departed {
                    logger.info("starting a new room key", metadata: [
                        "room.id": "\(roomID)", "reason": "\(departed ? "a device left" : tooOld ? "age" : "message count")",
                    ])
                    entry = nil
                }
            }
            var current = try entry ?? (OutboundGroupSession.create(), OutboundRecord(pickle: "", deviceID: deviceID, createdAt: now, messages: 0, sharedWith: []))
            let missing = recipients.subtracting(current.record.sharedWith).sorted()
            if !missing.isEmpty {
                let shared = try await share(current.session, roomID: roomID, with: missing, devices: devices)
                current.record.sharedWith.append(contentsOf: shared)
            }
            let payload: JSONValue = ["type": .string(type), "content": content, "room_id": .string(roomID)]
            let ciphertext = try current.session.encrypt(payload.canonicalText)
            current.record.messages += 1
            outbound[name] = current
            // Stored before the event leaves: a message index must never be used twice.
            // Outside a sync, what is dirty (device lists fetched for this message) is this
            // method's own: stored now too, rather than with a sync that may never come.
            try await persistNow([name] + dirty.sorted())
            dirty.removeAll()
            var wrapper: [String: JSONValue] = [
                "algorithm": .string(RoomEncryption.megolm), "sender_key": .string(identity.curve25519), "ciphertext": .string(ciphertext),
                "session_id": .string(current.session.id), "device_id": .string(deviceID),
            ]
            if let relation = content["m.relates_to"] { wrapper["m.relates_to"] = relation }
            return .object(wrapper)
        }
    }

    private func outboundSession(_ name: String) async throws -> (session: OutboundGroupSession, record: OutboundRecord)? {
        if let known = outbound[name] { return known }
        // A session another device of the bot's started (before a new login) is not ours to use.
        guard let record = try await load(OutboundRecord.self, name), record.deviceID == deviceID else { return nil }
        let entry = (try OutboundGroupSession.unpickle(record.pickle, key: keys.pickleKey), record)
        outbound[name] = entry
        return entry
    }

    /// Sends the session's key to the devices (`user|device`) over Olm; returns those reached.
    private func share(
        _ session: OutboundGroupSession, roomID: String, with targets: [String], devices: [String: [String: DeviceInfo]]
    ) async throws -> [String] {
        // Devices without an Olm session get one from a claimed one-time key.
        var needClaim: [String: [String: JSONValue]] = [:]
        for target in targets {
            let (user, deviceID) = Self.split(target)
            guard let device = devices[user]?[deviceID] else { continue }
            if try await olmSessions(for: device.curve25519).isEmpty {
                needClaim[user, default: [:]][deviceID] = "signed_curve25519"
            }
        }
        var changed: Set<String> = []
        if !needClaim.isEmpty {
            let request: JSONValue = ["timeout": 10000, "one_time_keys": .object(needClaim.mapValues { .object($0) })]
            let response = try await client.request(.POST, "/_matrix/client/v3/keys/claim", body: request)
            for (user, wanted) in needClaim {
                for deviceID in wanted.keys.sorted() {
                    guard let device = devices[user]?[deviceID] else { continue }
                    guard let (keyID, key) = response["one_time_keys"]?[user]?[deviceID]?.objectValue?.first(where: { $0.key.hasPrefix("signed_curve25519:") }),
                        let oneTimeKey = key["key"]?.stringValue
                    else {
                        logger.warning("a device has no one-time key left; it cannot read the bot's messages until it uploads more", metadata: ["user": "\(user)", "device.id": "\(deviceID)"])
                        continue
                    }
                    guard Self.verify(key, user: user, keyID: "ed25519:\(deviceID)", key: device.ed25519) else {
                        logger.warning("a claimed one-time key is not signed by its device; skipping the device", metadata: ["user": "\(user)", "device.id": "\(deviceID)", "key.id": "\(keyID)"])
                        continue
                    }
                    do {
                        let olm = try OlmSession.outbound(account: account, identityKey: device.curve25519, oneTimeKey: oneTimeKey)
                        olmSessions[device.curve25519] = [(olm, Date().timeIntervalSince1970)] + (olmSessions[device.curve25519] ?? [])
                        changed.insert(CryptoRecord.olm(device.curve25519))
                    } catch {
                        logger.warning("could not start an Olm session with a device", metadata: ["user": "\(user)", "device.id": "\(deviceID)", "error": "\(error)"])
                    }
                }
            }
        }
        let sessionKey = try session.sessionKey()
        var messages: [String: [String: JSONValue]] = [:]
        var reached: [String] = []
        for target in targets {
            let (user, deviceID) = Self.split(target)
            guard let device = devices[user]?[deviceID], let olm = olmSessions[device.curve25519]?.first?.session else { continue }
            let key: JSONValue = [
                "algorithm": .string(RoomEncryption.megolm), "room_id": .string(roomID),
                "session_id": .string(session.id), "session_key": .string(sessionKey),
            ]
            messages[user, default: [:]][deviceID] = try olmContent(type: "m.room_key", content: key, to: user, device: device, session: olm)
            changed.insert(CryptoRecord.olm(device.curve25519))
            reached.append(target)
        }
        // The ratchets moved: stored before the messages leave.
        try await persistNow(changed.sorted())
        guard !messages.isEmpty else { return [] }
        let txnID = UUID().uuidString
        try await client.request(
            .PUT, "/_matrix/client/v3/sendToDevice/m.room.encrypted/\(MatrixClient.segment(txnID))",
            body: ["messages": .object(messages.mapValues { .object($0) })]
        )
        keysShared.increment(by: reached.count)
        logger.info("shared a room key", metadata: [
            "room.id": "\(roomID)", "devices": "\(reached.count)", "session.id": "\(session.id)",
            // Which devices (the first 20), for following a key that did not arrive.
            "to": "\(reached.prefix(20).joined(separator: ","))",
        ])
        return reached
    }

    /// An Olm-encrypted to-device event's content: the payload names sender and recipient
    /// with their keys, as receivers check.
    private func olmContent(type: String, content: JSONValue, to user: String, device: DeviceInfo, session: OlmSession) throws -> JSONValue {
        let payload: JSONValue = [
            "type": .string(type), "content": content,
            "sender": .string(userID), "sender_device": .string(deviceID),
            "keys": ["ed25519": .string(identity.ed25519)],
            "recipient": .string(user), "recipient_keys": ["ed25519": .string(device.ed25519)],
        ]
        let encrypted = try session.encrypt(payload.canonicalText)
        return [
            "algorithm": .string(RoomEncryption.olm), "sender_key": .string(identity.curve25519),
            "ciphertext": .object([device.curve25519: ["type": .int(Int64(encrypted.type)), "body": .string(encrypted.body)]]),
        ]
    }

    /// After an Olm message from a published device would not decrypt (its session with us is
    /// lost, say after a restore): a new session with it, announced with an `m.dummy`, so what
    /// it sends next (room keys among it) reaches us. At most once an hour per device.
    private func unwedge(user: String, senderKey: String) async {
        if let last = unwedgedAt[senderKey], Date().timeIntervalSince(last) < 3600 { return }
        // A few per sync: a burst of broken messages must not hold up the sync for long.
        guard outgoingDummies.count < 5 else { return }
        do {
            guard let (deviceID, device) = deviceLists[user]?.devices.first(where: { $0.value.curve25519 == senderKey }) else { return }
            let request: JSONValue = ["timeout": 10000, "one_time_keys": [user: [deviceID: "signed_curve25519"]]]
            let response = try await client.request(.POST, "/_matrix/client/v3/keys/claim", body: request, timeout: .seconds(15))
            guard let claimed = response["one_time_keys"]?[user]?[deviceID]?.objectValue?.first(where: { $0.key.hasPrefix("signed_curve25519:") })?.value,
                let oneTimeKey = claimed["key"]?.stringValue,
                Self.verify(claimed, user: user, keyID: "ed25519:\(deviceID)", key: device.ed25519)
            else {
                logger.warning("could not repair an Olm session: the device has no (validly signed) one-time key", metadata: ["user": "\(user)", "device.id": "\(deviceID)"])
                return
            }
            let session = try OlmSession.outbound(account: account, identityKey: senderKey, oneTimeKey: oneTimeKey)
            let content = try olmContent(type: "m.dummy", content: .object([:]), to: user, device: device, session: session)
            olmSessions[senderKey] = [(session, Date().timeIntervalSince1970)] + (olmSessions[senderKey] ?? [])
            // Committed with this sync, and sent only after that commit: a dummy for a session
            // we then lost would leave the device using a session we do not have.
            dirty.insert(CryptoRecord.olm(senderKey))
            unwedgedAt[senderKey] = Date()
            outgoingDummies.append((user, deviceID, senderKey, content))
        } catch {
            logger.warning("could not repair an Olm session", metadata: ["user": "\(user)", "error": "\(error)"])
        }
    }

    private static func split(_ target: String) -> (String, String) {
        guard let bar = target.lastIndex(of: "|") else { return (target, "") }
        return (String(target[..<bar]), String(target[target.index(after: bar)...]))
    }
}
