// API keys: `sbk_<id>_<secret>`. The id is public (it names the key in `keys list` and `keys
// revoke`); the secret is 256 random bits, of which only a SHA-256 is stored. A key that long
// needs no slow password hash: guessing it is as hard as guessing the hash's preimage.

import Crypto
public import Foundation
public import SwitchboardModel
public import SwitchboardStorage

/// What a key may do.
public enum APIScope: String, Hashable, Sendable, CaseIterable {
    /// Send messages in (`POST /v1/messages`) and read their replies.
    case send
    /// Read conversations, the audit trail, confirmations, tools and preferences.
    case read
    /// Everything, plus deciding confirmations for people and forgetting their preferences.
    case admin
}

/// A key that was checked.
public struct APIPrincipal: Hashable, Sendable {
    /// The key's id.
    public var keyID: String
    /// Its name.
    public var name: String
    /// Its scopes.
    public var scopes: Set<APIScope>
    /// Whom it may speak as.
    public var senders: APISenders = .any

    /// Whether the key may do what `scope` allows; `admin` may do everything.
    public func allows(_ scope: APIScope) -> Bool {
        scopes.contains(scope) || scopes.contains(.admin)
    }
}

/// Making, parsing and checking keys.
public enum APIKeys {
    static let prefix = "sbk_"

    /// A new key: the record to store and the key to show once.
    public static func make(name: String, scopes: Set<APIScope>, senders: APISenders = .any, at now: Date) -> (record: APIKeyRecord, key: Secret) {
        let id = hex(randomBytes(6))
        let secret = hex(randomBytes(32))
        let record = APIKeyRecord(
            id: id, name: name, secretHash: hash(secret),
            scopes: APIScope.allCases.filter(scopes.contains).map(\.rawValue), createdAt: now, senders: senders
        )
        return (record, Secret("\(prefix)\(id)_\(secret)"))
    }

    /// The id in a whole key, or the text itself when it is not a whole key (already an id).
    public static func id(of idOrKey: String) -> String {
        parse(idOrKey[...])?.id ?? idOrKey
    }

    /// The id and secret of a presented key, if it has the right form.
    static func parse(_ key: Substring) -> (id: String, secret: String)? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 12, parts[1].count == 64,
            parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) })
        else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// Checks a presented key against the store: its principal, or nil when it is unknown,
    /// revoked or wrong.
    static func verify(_ key: Substring, store: any Store) async throws -> APIPrincipal? {
        guard let (id, secret) = parse(key) else { return nil }
        guard let record = try await store.read({ try $0.apiKey(id: id) }), record.revokedAt == nil else { return nil }
        guard constantTimeEqual(hash(secret), record.secretHash) else { return nil }
        return APIPrincipal(keyID: record.id, name: record.name, scopes: Set(record.scopes.compactMap(APIScope.init(rawValue:))), senders: record.senders)
    }

    static func hash(_ secret: String) -> String {
        hex(Array(SHA256.hash(data: Array(secret.utf8))))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Keys checked in the last second, so a busy integration does not cost a database read per
/// request. Only good keys are remembered; a revocation (made by `switchboard keys revoke`, in
/// another process) takes effect within `lifetime`.
final class APIKeyCache: Sendable {
    private struct Entry {
        var principal: APIPrincipal
        var expires: ContinuousClock.Instant
    }

    private let entries = Locked<[String: Entry]>([:])
    private let lifetime: Duration

    init(lifetime: Duration = .seconds(1)) {
        self.lifetime = lifetime
    }

    /// The key's principal, from memory when it was checked within `lifetime`.
    func verify(_ key: Substring, store: any Store) async throws -> APIPrincipal? {
        // Remembered by the hash of the whole key: a wrong secret never matches a good entry.
        let digest = APIKeys.hash(String(key))
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[digest] }), entry.expires > now { return entry.principal }
        guard let principal = try await APIKeys.verify(key, store: store) else {
            entries.withLock { _ = $0.removeValue(forKey: digest) }
            return nil
        }
        entries.withLock { entries in
            if entries.count > 10_000 { entries.removeAll() }
            entries[digest] = Entry(principal: principal, expires: now + lifetime)
        }
        return principal
    }
}
