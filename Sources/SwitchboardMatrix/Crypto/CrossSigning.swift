// Cross-signing for the bot's account, made once by `switchboard matrix setup-crypto`.
//
// The bot makes its master, self-signing and user-signing keys (Ed25519, libolm's pk signing),
// publishes them, and signs its own device with the self-signing key, so clients that only
// send to devices their owners verified still send to the bot. The private keys stay with the
// bot (sealed in the database) and are also put in the account's secret storage, encrypted
// with a new recovery key that is printed once: with it, the keys can be restored the way
// Matrix clients restore theirs (`m.secret_storage.v1.aes-hmac-sha2`).

import Crypto
import CryptoExtras
import Foundation
import Logging
import NIOHTTP1
import SwitchboardModel
import SwitchboardStorage

/// What `setup-crypto` made.
public struct CrossSigningSetup: Sendable {
    /// The recovery key, in the usual groups of four characters: shown once, never stored.
    public var recoveryKey: String
    /// The master public key, for people who compare it.
    public var masterKey: String
}

extension MatrixCrypto {
    /// Whether cross-signing was set up (and finished: a set-up cut short is made anew).
    func hasCrossSigning() async throws -> Bool {
        try await load(CrossSigningSeeds.self, CryptoRecord.crossSigning)?.complete == true
    }

    /// Makes, publishes and stores the cross-signing keys, signs this device with them, and
    /// stores the private keys in secret storage under a new recovery key.
    func setUpCrossSigning(password: Secret?) async throws -> CrossSigningSetup {
        try await exclusively(outsideSync: true) {
            guard accountRecordPublished else {
                throw CryptoStoreError(description: "this device has not published its keys yet: run `switchboard serve` once (until it says it uploaded encryption keys), stop it, then set up cross-signing")
            }
            let seeds = (PkSigning.randomSeed(), PkSigning.randomSeed(), PkSigning.randomSeed())
            let master = try PkSigning(seed: seeds.0)
            let selfSigning = try PkSigning(seed: seeds.1)
            let userSigning = try PkSigning(seed: seeds.2)
            // Stored first: published keys whose private halves were lost would be worse than none.
            var record = CrossSigningSeeds(
                master: Data(seeds.0).base64EncodedString(), selfSigning: Data(seeds.1).base64EncodedString(),
                userSigning: Data(seeds.2).base64EncodedString(), complete: false
            )
            func save() async throws {
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                let sealed = try keys.seal(String(decoding: try encoder.encode(record), as: UTF8.self), name: CryptoRecord.crossSigning)
                try await store.write { try $0.setCursor(CryptoRecord.crossSigning, value: sealed) }
            }
            try await save()

            func key(_ usage: String, _ signer: PkSigning, signedBy: PkSigning?) throws -> JSONValue {
                var object: [String: JSONValue] = [
                    "user_id": .string(userID), "usage": [.string(usage)],
                    "keys": .object(["ed25519:\(signer.publicKey)": .string(signer.publicKey)]),
                ]
                if let signedBy {
                    let signature = try signedBy.sign(JSONValue.object(object).canonicalText)
                    object["signatures"] = .object([userID: .object(["ed25519:\(signedBy.publicKey)": .string(signature)])])
                }
                return .object(object)
            }
            let masterKey = try key("master", master, signedBy: nil)
            let body: JSONValue = [
                "master_key": masterKey,
                "self_signing_key": try key("self_signing", selfSigning, signedBy: master),
                "user_signing_key": try key("user_signing", userSigning, signedBy: master),
            ]
            try await uploadWithAuthentication("/_matrix/client/v3/keys/device_signing/upload", body: body, password: password)

            // The device signed by the self-signing key, and the master key by the device.
            var device = try signedDeviceKeys().objectValue ?? [:]
            var signatures = device["signatures"]?[userID]?.objectValue ?? [:]
            var unsigned = device
            unsigned["signatures"] = nil
            signatures["ed25519:\(selfSigning.publicKey)"] = .string(try selfSigning.sign(JSONValue.object(unsigned).canonicalText))
            device["signatures"] = .object([userID: .object(signatures)])
            var masterObject = masterKey.objectValue ?? [:]
            masterObject["signatures"] = .object([
                userID: .object(["ed25519:\(deviceID)": .string(try signAsDevice(JSONValue.object(masterObject).canonicalText))]),
            ])
            let signaturesBody: JSONValue = [userID: .object([deviceID: .object(device), master.publicKey: .object(masterObject)])]
            let response = try await client.request(.POST, "/_matrix/client/v3/keys/signatures/upload", body: signaturesBody)
            if let failures = response["failures"]?.objectValue, !failures.isEmpty {
                throw CryptoStoreError(description: "the homeserver refused a signature: \(JSONValue.object(failures).canonicalText.prefix(300))")
            }

            // Secret storage: the three private keys, encrypted under the recovery key.
            let recovery = randomBytes(32)
            let keyID = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(32).lowercased()
            let check = try SecretStorage.encrypt(Data(repeating: 0, count: 32), key: recovery, name: "")
            try await putAccountData("m.secret_storage.key.\(keyID)", [
                "algorithm": .string(SecretStorage.algorithm), "name": "Switchboard recovery key",
                "iv": .string(check.iv), "mac": .string(check.mac),
            ])
            for (name, seed) in [("m.cross_signing.master", seeds.0), ("m.cross_signing.self_signing", seeds.1), ("m.cross_signing.user_signing", seeds.2)] {
                let secret = Data(seed).base64EncodedString().replacingOccurrences(of: "=", with: "")
                let encrypted = try SecretStorage.encrypt(Data(secret.utf8), key: recovery, name: name)
                try await putAccountData(name, [
                    "encrypted": .object([String(keyID): [
                        "iv": .string(encrypted.iv), "ciphertext": .string(encrypted.ciphertext), "mac": .string(encrypted.mac),
                    ]]),
                ])
            }
            try await putAccountData("m.secret_storage.default_key", ["key": .string(String(keyID))])
            record.complete = true
            try await save()
            logger.notice("made and published cross-signing keys; this device is signed by them", metadata: ["master_key": "\(master.publicKey)"])
            return CrossSigningSetup(recoveryKey: SecretStorage.recoveryKey(recovery), masterKey: master.publicKey)
        }
    }

    private func putAccountData(_ type: String, _ content: JSONValue) async throws {
        let path = "/_matrix/client/v3/user/\(MatrixClient.segment(userID))/account_data/\(MatrixClient.segment(type))"
        try await client.request(.PUT, path, body: content)
    }

    /// A request behind user-interactive authentication: tried as it is (a first upload of
    /// cross-signing keys may need none), then with the account password.
    private func uploadWithAuthentication(_ path: String, body: JSONValue, password: Secret?) async throws {
        let first: MatrixError
        do {
            try await client.request(.POST, path, body: body)
            return
        } catch {
            first = error
        }
        guard first.status == 401, let session = first.body?["session"]?.stringValue else { throw first }
        guard let password else {
            throw CryptoStoreError(description: "the homeserver asks for the account's password to publish cross-signing keys; configure matrix.password for setup-crypto")
        }
        guard var object = body.objectValue else { return }
        object["auth"] = [
            "type": "m.login.password", "session": .string(session), "password": .string(password.revealed),
            "identifier": ["type": "m.id.user", "user": .string(userID)],
        ]
        try await client.request(.POST, path, body: .object(object))
    }
}

/// Matrix secret storage with `m.secret_storage.v1.aes-hmac-sha2`, and recovery keys.
enum SecretStorage {
    static let algorithm = "m.secret_storage.v1.aes-hmac-sha2"

    /// AES-256-CTR and HMAC-SHA-256 under keys derived (HKDF-SHA-256, 32 zero bytes of salt,
    /// the secret's name as info) from the storage key.
    static func encrypt(_ plaintext: Data, key: [UInt8], name: String) throws -> (iv: String, ciphertext: String, mac: String) {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: key), salt: Data(repeating: 0, count: 32), info: Data(name.utf8), outputByteCount: 64
        )
        let bytes = derived.withUnsafeBytes { Data($0) }
        let aesKey = SymmetricKey(data: bytes.prefix(32))
        let macKey = SymmetricKey(data: bytes.suffix(32))
        var iv = randomBytes(16)
        // The specification clears bit 63 so the counter cannot wrap in some implementations.
        iv[8] &= 0x7f
        let ciphertext = try AES._CTR.encrypt(plaintext, using: aesKey, nonce: try AES._CTR.Nonce(nonceBytes: iv))
        let mac = HMAC<SHA256>.authenticationCode(for: ciphertext, using: macKey)
        return (Data(iv).base64EncodedString(), ciphertext.base64EncodedString(), Data(mac).base64EncodedString())
    }

    private static let alphabet = Array("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")

    /// The recovery key for a 32-byte storage key: the prefix 0x8B 0x01, the key and a parity
    /// byte, in base58, in groups of four.
    static func recoveryKey(_ key: [UInt8]) -> String {
        var bytes: [UInt8] = [0x8B, 0x01] + key
        bytes.append(bytes.reduce(0, ^))
        let text = base58(bytes)
        return stride(from: 0, to: text.count, by: 4).map { start in
            let begin = text.index(text.startIndex, offsetBy: start)
            return String(text[begin..<(text.index(begin, offsetBy: 4, limitedBy: text.endIndex) ?? text.endIndex)])
        }.joined(separator: " ")
    }

    /// Bitcoin-alphabet base58.
    static func base58(_ bytes: [UInt8]) -> String {
        var digits: [Int] = []  // little-endian base-58 digits
        for byte in bytes {
            var carry = Int(byte)
            for index in digits.indices {
                carry += digits[index] << 8
                digits[index] = carry % 58
                carry /= 58
            }
            while carry > 0 {
                digits.append(carry % 58)
                carry /= 58
            }
        }
        let zeros = bytes.prefix(while: { $0 == 0 }).count
        return String(repeating: "1", count: zeros) + String(digits.reversed().map { alphabet[$0] })
    }
}
