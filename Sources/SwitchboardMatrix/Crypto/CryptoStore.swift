// Where the Matrix end-to-end encryption state lives: records in the store's cursor table,
// each sealed with a key derived from `matrix.crypto_key`.
//
// Two layers protect the secrets: libolm encrypts every pickle with its own pickle key, and the
// whole record (pickle, session metadata, the cross-signing seeds) is sealed with
// ChaCha20-Poly1305 under a second derived key, so nothing readable sits in the database file.
// A record sealed with another key fails to open with a clear error instead of being misread.

import Crypto
import Foundation
import SwitchboardModel
import SwitchboardStorage

/// The keys derived from the configured `matrix.crypto_key`.
struct CryptoKeys: Sendable {
    private let sealing: SecretSealer
    /// libolm's pickle key.
    let pickle: [UInt8]

    /// The shortest `matrix.crypto_key` accepted: a random 32-byte key in base64 is 44.
    static let minimumSecretLength = SecretSealer.minimumSecretLength

    init(secret: Secret) {
        let salt = "switchboard matrix crypto"
        sealing = SecretSealer(secret: secret, salt: salt, info: "record sealing v1")
        let material = SymmetricKey(data: Data(secret.revealed.utf8))
        let pickleKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: material, salt: Data(salt.utf8), info: Data("olm pickle v1".utf8), outputByteCount: 32)
        pickle = pickleKey.withUnsafeBytes { Array($0) }
    }

    var pickleKey: PickleKey { PickleKey(pickle) }

    /// The record sealed; its name is authenticated too, so a record moved to another name fails.
    func seal(_ plaintext: String, name: String) throws -> String {
        try sealing.seal(plaintext, name: name)
    }

    func open(_ sealed: String, name: String) throws -> String {
        guard SecretSealer.isSealed(sealed) else {
            throw CryptoStoreError(description: "the record \(name) is not a sealed crypto record")
        }
        do {
            return try sealing.open(sealed, name: name)
        } catch {
            throw CryptoStoreError(
                description: "the record \(name) does not open with matrix.crypto_key: the key changed, or the record is damaged"
            )
        }
    }
}

struct CryptoStoreError: Error, CustomStringConvertible {
    var description: String
}

/// Names of the crypto records in the cursor table.
enum CryptoRecord {
    static let prefix = "matrix.crypto."
    static let account = prefix + "account"
    static let pending = prefix + "pending"
    static let crossSigning = prefix + "cross_signing"
    static let handledToDevice = prefix + "handled_to_device"
    static func olm(_ senderKey: String) -> String { prefix + "olm." + senderKey }
    static func inbound(room: String, session: String) -> String { prefix + "inbound." + room + "|" + session }
    static func outbound(room: String) -> String { prefix + "outbound." + room }
    static func devices(_ userID: String) -> String { prefix + "devices." + userID }
}

/// The bot's device account.
struct AccountRecord: Codable {
    var deviceID: String
    var pickle: String
    /// Whether the device keys are on the homeserver.
    var published: Bool
    /// Raised when every stored device list must be fetched again (a sync that started over
    /// cannot say which changed); a list from an older epoch counts as outdated.
    var deviceListEpoch: Int = 0

    enum CodingKeys: String, CodingKey {
        case deviceID = "device_id", pickle, published, deviceListEpoch = "device_list_epoch"
    }

    init(deviceID: String, pickle: String, published: Bool) {
        self.deviceID = deviceID
        self.pickle = pickle
        self.published = published
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        deviceID = try container.decode(String.self, forKey: .deviceID)
        pickle = try container.decode(String.self, forKey: .pickle)
        published = try container.decode(Bool.self, forKey: .published)
        deviceListEpoch = try container.decodeIfPresent(Int.self, forKey: .deviceListEpoch) ?? 0
    }
}

/// The account's cross-signing private keys (32-byte seeds, base64), made by `setup-crypto`.
/// A record of its own: the running bot never writes it.
struct CrossSigningSeeds: Codable {
    var master: String
    var selfSigning: String
    var userSigning: String
    /// Published, device signed and put in secret storage: set-up finished.
    var complete: Bool

    enum CodingKeys: String, CodingKey {
        case master, selfSigning = "self_signing", userSigning = "user_signing", complete
    }
}

/// The Olm sessions with one device (by its Curve25519 key), most recently used first.
struct OlmSessionsRecord: Codable {
    struct Entry: Codable {
        var pickle: String
        var lastUsed: Double
        /// Our identity key when the session was made (a new device makes new keys).
        var ownKey: String

        enum CodingKeys: String, CodingKey { case pickle, lastUsed = "last_used", ownKey = "own_key" }
    }
    var sessions: [Entry]
}

/// A Megolm session someone shared with us for one room.
struct InboundRecord: Codable {
    var pickle: String
    var roomID: String
    /// The user whose device shared it: only their events decrypt with it.
    var sender: String
    /// The sharing device's Curve25519 key and its claimed Ed25519 key.
    var senderKey: String
    var signingKey: String?
    /// Came as `m.forwarded_room_key` rather than from the sender's own ratchet.
    var forwarded: Bool
    /// Message index → event id: a second event with a used index is a replay.
    var seen: [String: String]

    enum CodingKeys: String, CodingKey {
        case pickle, roomID = "room_id", sender, senderKey = "sender_key", signingKey = "signing_key", forwarded, seen
    }
}

/// Our Megolm session for one room.
struct OutboundRecord: Codable {
    var pickle: String
    /// The bot's device that made it.
    var deviceID: String
    var createdAt: Double
    /// Messages encrypted with it.
    var messages: Int
    /// `user|device` pairs that have the key.
    var sharedWith: [String]

    enum CodingKeys: String, CodingKey {
        case pickle, deviceID = "device_id", createdAt = "created_at", messages, sharedWith = "shared_with"
    }
}

/// One user's devices as `/keys/query` last told.
struct DeviceListRecord: Codable {
    var devices: [String: DeviceInfo]
    /// The homeserver said the list changed since.
    var outdated: Bool
    /// The user's master cross-signing key as first seen: a different one later is not
    /// trusted (whoever controls the homeserver or the password could publish one).
    var masterKey: String?
    /// The account's device-list epoch when fetched.
    var epoch: Int

    enum CodingKeys: String, CodingKey {
        case devices, outdated, masterKey = "master_key", epoch
    }

    init(devices: [String: DeviceInfo], outdated: Bool, masterKey: String?, epoch: Int) {
        self.devices = devices
        self.outdated = outdated
        self.masterKey = masterKey
        self.epoch = epoch
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        devices = try container.decode([String: DeviceInfo].self, forKey: .devices)
        outdated = try container.decode(Bool.self, forKey: .outdated)
        masterKey = try container.decodeIfPresent(String.self, forKey: .masterKey)
        // A list from before epochs were kept matches no epoch: it is fetched again.
        epoch = try container.decodeIfPresent(Int.self, forKey: .epoch) ?? -1
    }
}

struct DeviceInfo: Codable, Equatable {
    var curve25519: String
    var ed25519: String
    /// Signed by its owner's self-signing key, which their master key signed.
    var crossSigned: Bool

    enum CodingKeys: String, CodingKey {
        case curve25519, ed25519, crossSigned = "cross_signed"
    }
}

/// A room event that could not be decrypted yet.
struct PendingEvent: Codable {
    var roomID: String
    var event: JSONValue
    var firstSeen: Double
    var requested: Bool
    /// The `m.room_key_request` sent for its session, cancelled once the wait is over.
    var requestID: String?

    enum CodingKeys: String, CodingKey {
        case roomID = "room_id", event, firstSeen = "first_seen", requested, requestID = "request_id"
    }
}
