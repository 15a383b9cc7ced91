// Thin Swift owners of libolm's objects. All cryptography is libolm's; this file only sizes
// buffers, feeds randomness from the system's secure generator, turns libolm's error values
// into thrown `OlmError`s, and wipes memory that held secrets.
//
// None of these types is Sendable: each lives inside the `MatrixCrypto` actor, which is the
// only code that touches them.

import COlm
import Foundation

/// A libolm failure: the library's own error name (`BAD_MESSAGE_MAC`, `BAD_MESSAGE_KEY_ID`, …).
struct OlmError: Error, CustomStringConvertible, Equatable {
    var code: String
    var description: String { "libolm: \(code)" }
}

/// Random bytes from the system's cryptographically secure generator (getrandom on Linux).
func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
}

/// Fills a buffer with zeros in a way the optimiser keeps.
private func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        memset_s_portable(base, buffer.count)
    }
}

@inline(never)
private func memset_s_portable(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
    let volatile = pointer.bindMemory(to: UInt8.self, capacity: count)
    for index in 0..<count { volatile[index] = 0 }
}

/// Runs a libolm call that returns `olm_error()` on failure.
@discardableResult
private func check(_ result: Int, _ lastError: () -> UnsafePointer<CChar>?) throws -> Int {
    if result == olm_error() {
        throw OlmError(code: lastError().map { String(cString: $0) } ?? "UNKNOWN_ERROR")
    }
    return result
}

/// A key for pickling: libolm encrypts and authenticates each pickle with it.
struct PickleKey {
    fileprivate var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// Reads `count` bytes a libolm call writes, as a string.
private func string(count: Int, _ body: (UnsafeMutableRawPointer) throws -> Int) throws -> String {
    var buffer = [UInt8](repeating: 0, count: max(count, 1))
    let written = try buffer.withUnsafeMutableBytes { raw in try body(raw.baseAddress!) }
    return String(decoding: buffer.prefix(written), as: UTF8.self)
}

// MARK: Account

/// The device's long-term identity: its Curve25519 and Ed25519 keys and one-time keys.
final class OlmAccount {
    fileprivate let memory: UnsafeMutableRawPointer
    fileprivate let pointer: OpaquePointer

    private init() {
        memory = UnsafeMutableRawPointer.allocate(byteCount: olm_account_size(), alignment: 16)
        pointer = olm_account(memory)
    }

    deinit {
        olm_clear_account(pointer)
        memory.deallocate()
    }

    private var lastError: () -> UnsafePointer<CChar>? { { [pointer] in olm_account_last_error(pointer) } }

    /// A new account with fresh identity keys.
    static func create() throws -> OlmAccount {
        let account = OlmAccount()
        var random = randomBytes(olm_create_account_random_length(account.pointer))
        defer { wipe(&random) }
        try check(olm_create_account(account.pointer, &random, random.count), account.lastError)
        return account
    }

    /// An account from its pickle.
    static func unpickle(_ pickle: String, key: PickleKey) throws -> OlmAccount {
        let account = OlmAccount()
        var text = Array(pickle.utf8)
        try check(olm_unpickle_account(account.pointer, key.bytes, key.bytes.count, &text, text.count), account.lastError)
        return account
    }

    func pickle(key: PickleKey) throws -> String {
        try string(count: olm_pickle_account_length(pointer)) { buffer in
            try check(olm_pickle_account(pointer, key.bytes, key.bytes.count, buffer, olm_pickle_account_length(pointer)), lastError)
        }
    }

    /// `{"curve25519": …, "ed25519": …}`, unpadded base64.
    func identityKeys() throws -> (curve25519: String, ed25519: String) {
        let text = try string(count: olm_account_identity_keys_length(pointer)) { buffer in
            try check(olm_account_identity_keys(pointer, buffer, olm_account_identity_keys_length(pointer)), lastError)
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: String] ?? [:]
        return (object["curve25519"] ?? "", object["ed25519"] ?? "")
    }

    /// An Ed25519 signature of `message`, unpadded base64.
    func sign(_ message: String) throws -> String {
        let bytes = Array(message.utf8)
        return try string(count: olm_account_signature_length(pointer)) { buffer in
            try check(olm_account_sign(pointer, bytes, bytes.count, buffer, olm_account_signature_length(pointer)), lastError)
        }
    }

    var maxOneTimeKeys: Int { olm_account_max_number_of_one_time_keys(pointer) }

    /// Unpublished one-time keys: key id → Curve25519 key.
    func oneTimeKeys() throws -> [String: String] {
        let text = try string(count: olm_account_one_time_keys_length(pointer)) { buffer in
            try check(olm_account_one_time_keys(pointer, buffer, olm_account_one_time_keys_length(pointer)), lastError)
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: [String: String]] ?? [:]
        return object["curve25519"] ?? [:]
    }

    func generateOneTimeKeys(_ count: Int) throws {
        var random = randomBytes(olm_account_generate_one_time_keys_random_length(pointer, count))
        defer { wipe(&random) }
        try check(olm_account_generate_one_time_keys(pointer, count, &random, random.count), lastError)
    }

    func generateFallbackKey() throws {
        var random = randomBytes(olm_account_generate_fallback_key_random_length(pointer))
        defer { wipe(&random) }
        try check(olm_account_generate_fallback_key(pointer, &random, random.count), lastError)
    }

    /// The fallback key not yet published: key id → Curve25519 key (empty when none).
    func unpublishedFallbackKey() throws -> [String: String] {
        let text = try string(count: olm_account_unpublished_fallback_key_length(pointer)) { buffer in
            try check(olm_account_unpublished_fallback_key(pointer, buffer, olm_account_unpublished_fallback_key_length(pointer)), lastError)
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: [String: String]] ?? [:]
        return object["curve25519"] ?? [:]
    }

    func markKeysAsPublished() { olm_account_mark_keys_as_published(pointer) }

    /// Removes the one-time key a new inbound session used, so it is never used twice.
    func removeOneTimeKeys(for session: OlmSession) throws {
        try check(olm_remove_one_time_keys(pointer, session.pointer), lastError)
    }
}

// MARK: Olm sessions

/// A pairwise Olm ratchet with one device of someone else.
final class OlmSession {
    fileprivate let memory: UnsafeMutableRawPointer
    fileprivate let pointer: OpaquePointer

    private init() {
        memory = UnsafeMutableRawPointer.allocate(byteCount: olm_session_size(), alignment: 16)
        pointer = olm_session(memory)
    }

    deinit {
        olm_clear_session(pointer)
        memory.deallocate()
    }

    private var lastError: () -> UnsafePointer<CChar>? { { [pointer] in olm_session_last_error(pointer) } }

    /// A session we start, with the other device's identity key and one of its one-time keys.
    static func outbound(account: OlmAccount, identityKey: String, oneTimeKey: String) throws -> OlmSession {
        let session = OlmSession()
        var random = randomBytes(olm_create_outbound_session_random_length(session.pointer))
        defer { wipe(&random) }
        let identity = Array(identityKey.utf8), oneTime = Array(oneTimeKey.utf8)
        try check(
            olm_create_outbound_session(session.pointer, account.pointer, identity, identity.count, oneTime, oneTime.count, &random, random.count),
            session.lastError
        )
        return session
    }

    /// A session another device started with a pre-key message to us.
    static func inbound(account: OlmAccount, from identityKey: String, preKeyMessage: String) throws -> OlmSession {
        let session = OlmSession()
        let identity = Array(identityKey.utf8)
        var message = Array(preKeyMessage.utf8)  // libolm decodes the base64 in place
        try check(olm_create_inbound_session_from(session.pointer, account.pointer, identity, identity.count, &message, message.count), session.lastError)
        return session
    }

    static func unpickle(_ pickle: String, key: PickleKey) throws -> OlmSession {
        let session = OlmSession()
        var text = Array(pickle.utf8)
        try check(olm_unpickle_session(session.pointer, key.bytes, key.bytes.count, &text, text.count), session.lastError)
        return session
    }

    func pickle(key: PickleKey) throws -> String {
        try string(count: olm_pickle_session_length(pointer)) { buffer in
            try check(olm_pickle_session(pointer, key.bytes, key.bytes.count, buffer, olm_pickle_session_length(pointer)), lastError)
        }
    }

    var id: String {
        (try? string(count: olm_session_id_length(pointer)) { buffer in
            try check(olm_session_id(pointer, buffer, olm_session_id_length(pointer)), lastError)
        }) ?? ""
    }

    /// Whether a pre-key message belongs to this session.
    func matches(preKeyMessage: String, from identityKey: String) -> Bool {
        let identity = Array(identityKey.utf8)
        var message = Array(preKeyMessage.utf8)
        return olm_matches_inbound_session_from(pointer, identity, identity.count, &message, message.count) == 1
    }

    /// Encrypts: (message type 0 = pre-key, 1 = normal; ciphertext).
    func encrypt(_ plaintext: String) throws -> (type: Int, body: String) {
        let type = try check(olm_encrypt_message_type(pointer), lastError)
        let bytes = Array(plaintext.utf8)
        var random = randomBytes(olm_encrypt_random_length(pointer))
        defer { wipe(&random) }
        let length = olm_encrypt_message_length(pointer, bytes.count)
        let body = try string(count: length) { buffer in
            try check(olm_encrypt(pointer, bytes, bytes.count, &random, random.count, buffer, length), lastError)
        }
        return (type, body)
    }

    func decrypt(type: Int, body: String) throws -> String {
        var scratch = Array(body.utf8)
        let max = try check(olm_decrypt_max_plaintext_length(pointer, type, &scratch, scratch.count), lastError)
        var message = Array(body.utf8)
        var plaintext = [UInt8](repeating: 0, count: max)
        defer { wipe(&plaintext) }
        let length = try check(olm_decrypt(pointer, type, &message, message.count, &plaintext, plaintext.count), lastError)
        return String(decoding: plaintext.prefix(length), as: UTF8.self)
    }
}

// MARK: Megolm

/// Our sending ratchet for one room.
final class OutboundGroupSession {
    fileprivate let memory: UnsafeMutableRawPointer
    fileprivate let pointer: OpaquePointer

    private init() {
        memory = UnsafeMutableRawPointer.allocate(byteCount: olm_outbound_group_session_size(), alignment: 16)
        pointer = olm_outbound_group_session(memory)
    }

    deinit {
        olm_clear_outbound_group_session(pointer)
        memory.deallocate()
    }

    private var lastError: () -> UnsafePointer<CChar>? { { [pointer] in olm_outbound_group_session_last_error(pointer) } }

    static func create() throws -> OutboundGroupSession {
        let session = OutboundGroupSession()
        var random = randomBytes(olm_init_outbound_group_session_random_length(session.pointer))
        defer { wipe(&random) }
        try check(olm_init_outbound_group_session(session.pointer, &random, random.count), session.lastError)
        return session
    }

    static func unpickle(_ pickle: String, key: PickleKey) throws -> OutboundGroupSession {
        let session = OutboundGroupSession()
        var text = Array(pickle.utf8)
        try check(olm_unpickle_outbound_group_session(session.pointer, key.bytes, key.bytes.count, &text, text.count), session.lastError)
        return session
    }

    func pickle(key: PickleKey) throws -> String {
        try string(count: olm_pickle_outbound_group_session_length(pointer)) { buffer in
            try check(olm_pickle_outbound_group_session(pointer, key.bytes, key.bytes.count, buffer, olm_pickle_outbound_group_session_length(pointer)), lastError)
        }
    }

    var id: String {
        (try? string(count: olm_outbound_group_session_id_length(pointer)) { buffer in
            try check(olm_outbound_group_session_id(pointer, buffer, olm_outbound_group_session_id_length(pointer)), lastError)
        }) ?? ""
    }

    /// The index the next message gets.
    var messageIndex: Int { Int(olm_outbound_group_session_message_index(pointer)) }

    /// The session key at the current index, for sharing with the room's devices.
    func sessionKey() throws -> String {
        try string(count: olm_outbound_group_session_key_length(pointer)) { buffer in
            try check(olm_outbound_group_session_key(pointer, buffer, olm_outbound_group_session_key_length(pointer)), lastError)
        }
    }

    func encrypt(_ plaintext: String) throws -> String {
        let bytes = Array(plaintext.utf8)
        let length = olm_group_encrypt_message_length(pointer, bytes.count)
        return try string(count: length) { buffer in
            try check(olm_group_encrypt(pointer, bytes, bytes.count, buffer, length), lastError)
        }
    }
}

/// Someone's sending ratchet for a room, as far as they shared it with us.
final class InboundGroupSession {
    fileprivate let memory: UnsafeMutableRawPointer
    fileprivate let pointer: OpaquePointer

    private init() {
        memory = UnsafeMutableRawPointer.allocate(byteCount: olm_inbound_group_session_size(), alignment: 16)
        pointer = olm_inbound_group_session(memory)
    }

    deinit {
        olm_clear_inbound_group_session(pointer)
        memory.deallocate()
    }

    private var lastError: () -> UnsafePointer<CChar>? { { [pointer] in olm_inbound_group_session_last_error(pointer) } }

    /// From an `m.room_key` session key (signed by the sender's device).
    static func create(sessionKey: String) throws -> InboundGroupSession {
        let session = InboundGroupSession()
        let key = Array(sessionKey.utf8)
        try check(olm_init_inbound_group_session(session.pointer, key, key.count), session.lastError)
        return session
    }

    /// From an exported key (`m.forwarded_room_key`), which carries no signature.
    static func importing(exportedKey: String) throws -> InboundGroupSession {
        let session = InboundGroupSession()
        let key = Array(exportedKey.utf8)
        try check(olm_import_inbound_group_session(session.pointer, key, key.count), session.lastError)
        return session
    }

    static func unpickle(_ pickle: String, key: PickleKey) throws -> InboundGroupSession {
        let session = InboundGroupSession()
        var text = Array(pickle.utf8)
        try check(olm_unpickle_inbound_group_session(session.pointer, key.bytes, key.bytes.count, &text, text.count), session.lastError)
        return session
    }

    func pickle(key: PickleKey) throws -> String {
        try string(count: olm_pickle_inbound_group_session_length(pointer)) { buffer in
            try check(olm_pickle_inbound_group_session(pointer, key.bytes, key.bytes.count, buffer, olm_pickle_inbound_group_session_length(pointer)), lastError)
        }
    }

    var id: String {
        (try? string(count: olm_inbound_group_session_id_length(pointer)) { buffer in
            try check(olm_inbound_group_session_id(pointer, buffer, olm_inbound_group_session_id_length(pointer)), lastError)
        }) ?? ""
    }

    var firstKnownIndex: Int { Int(olm_inbound_group_session_first_known_index(pointer)) }

    /// Decrypts one message: its plaintext and its index in the ratchet.
    func decrypt(_ body: String) throws -> (plaintext: String, index: Int) {
        var scratch = Array(body.utf8)
        let max = try check(olm_group_decrypt_max_plaintext_length(pointer, &scratch, scratch.count), lastError)
        var message = Array(body.utf8)
        var plaintext = [UInt8](repeating: 0, count: max)
        defer { wipe(&plaintext) }
        var index: UInt32 = 0
        let length = try check(olm_group_decrypt(pointer, &message, message.count, &plaintext, plaintext.count, &index), lastError)
        return (String(decoding: plaintext.prefix(length), as: UTF8.self), Int(index))
    }
}

// MARK: Signing and checking

/// An Ed25519 key made from a 32-byte seed: the cross-signing keys.
final class PkSigning {
    private let memory: UnsafeMutableRawPointer
    private let pointer: OpaquePointer
    /// The public key, unpadded base64.
    let publicKey: String

    static var seedLength: Int { olm_pk_signing_seed_length() }

    init(seed: [UInt8]) throws {
        memory = UnsafeMutableRawPointer.allocate(byteCount: olm_pk_signing_size(), alignment: 16)
        pointer = olm_pk_signing(memory)
        var seed = seed
        defer { wipe(&seed) }
        let pointer = self.pointer
        let length = olm_pk_signing_public_key_length()
        publicKey = try string(count: length) { buffer in
            // This call returns 0, not the key's length, when it succeeds.
            try check(olm_pk_signing_key_from_seed(pointer, buffer, length, &seed, seed.count)) {
                olm_pk_signing_last_error(pointer)
            }
            return length
        }
    }

    deinit {
        olm_clear_pk_signing(pointer)
        memory.deallocate()
    }

    static func randomSeed() -> [UInt8] { randomBytes(seedLength) }

    func sign(_ message: String) throws -> String {
        let bytes = Array(message.utf8)
        let length = olm_pk_signature_length()
        return try string(count: length) { buffer in
            try check(olm_pk_sign(pointer, bytes, bytes.count, buffer, length)) { [pointer] in
                olm_pk_signing_last_error(pointer)
            }
            return length  // a fixed length, whatever the call returns
        }
    }
}

/// Signature checks with libolm's utility object.
enum OlmUtility {
    /// Whether `signature` is `key`'s Ed25519 signature of `message`.
    static func verifyEd25519(key: String, message: String, signature: String) -> Bool {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: olm_utility_size(), alignment: 16)
        defer { memory.deallocate() }
        let utility = olm_utility(memory)
        defer { olm_clear_utility(utility) }
        let key = Array(key.utf8), message = Array(message.utf8)
        var signature = Array(signature.utf8)
        return olm_ed25519_verify(utility, key, key.count, message, message.count, &signature, signature.count) != olm_error()
    }
}
