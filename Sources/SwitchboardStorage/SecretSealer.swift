// Secrets the gateway keeps in its database (a Matrix access token it logged in for, the secret
// arguments of a call waiting for a yes) are sealed with a key that is not in the database:
// ChaCha20-Poly1305 under a key derived from `secrets.key`, or, with none configured, from a
// random key kept in a file of mode 0600 beside the SQLite database. A copy of the database (a
// backup, an export) then holds nothing readable; a sealed value opens only under the same key
// and under the name it was sealed for, so a value moved to another row fails to open.

import Crypto
import Foundation
public import SwitchboardModel
#if canImport(Glibc)
import Glibc
#endif

/// Seals and opens secrets stored in the database.
public struct SecretSealer: Sendable {
    private let key: SymmetricKey
    /// Where the key came from, for the start-up log.
    public let origin: Origin

    /// Where a sealer's key came from.
    public enum Origin: Sendable, Equatable {
        /// The configuration (`secrets.key`, or the key it defaults to).
        case configured
        /// A key file the gateway made or found (`secrets.key` unset).
        case file(String)
        /// A random key that lives only in this process (tests; commands that store nothing).
        case ephemeral
    }

    /// The shortest configured secret accepted: a random 32-byte key in base64 is 44.
    public static let minimumSecretLength = 32

    /// The prefix of every sealed value.
    static let prefix = "v1:"

    /// A sealer whose key is derived from a configured secret.
    ///
    /// - Parameters:
    ///   - salt: separates the uses of one secret (the Matrix crypto records, say).
    ///   - info: names what the derived key is for.
    public init(secret: Secret, salt: String = "switchboard secrets", info: String = "secret sealing v1", origin: Origin = .configured) {
        let material = SymmetricKey(data: Data(secret.revealed.utf8))
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: material, salt: Data(salt.utf8), info: Data(info.utf8), outputByteCount: 32)
        self.origin = origin
    }

    private init(randomKey: SymmetricKey) {
        key = randomKey
        origin = .ephemeral
    }

    /// A sealer with a random key that no other process has.
    public static func ephemeral() -> SecretSealer {
        SecretSealer(randomKey: SymmetricKey(size: .bits256))
    }

    /// The sealer whose key is in `path`, making the file (mode 0600, a new random key) when
    /// it does not exist.
    ///
    /// - Throws: `SealingError` when the file cannot be made or read, is readable by others, or
    ///   holds no usable key.
    public static func keyFile(_ path: String) throws -> SecretSealer {
        if !FileManager.default.fileExists(atPath: path) {
            try create(path)
        }
        var info = stat()
        guard stat(path, &info) == 0 else { throw SealingError("Cannot read the secrets key file \(path): \(String(cString: strerror(errno))).") }
        guard info.st_mode & 0o077 == 0 else {
            throw SealingError(
                "The secrets key file \(path) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))); make it private with: chmod 600 \(path)"
            )
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SealingError("Cannot read the secrets key file \(path).")
        }
        let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard secret.count >= minimumSecretLength else {
            throw SealingError("The secrets key file \(path) holds no key of at least \(minimumSecretLength) characters; remove it to make a new one (secrets sealed with the old key are lost) or put the old key back.")
        }
        return SecretSealer(secret: Secret(secret), origin: .file(path))
    }

    /// Writes a new random key to `path`, never over an existing file: two processes starting at
    /// once end up with the one key that was linked first.
    private static func create(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.secrets-key-\(UUID().uuidString)"
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let descriptor = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw SealingError("Cannot make the secrets key file in \(directory): \(String(cString: strerror(errno))).")
        }
        defer { unlink(temporary) }
        let written = key.utf8CString.withUnsafeBufferPointer { buffer in write(descriptor, buffer.baseAddress, buffer.count - 1) }
        let synced = fsync(descriptor)
        Glibc.close(descriptor)
        guard written == key.utf8.count, synced == 0 else { throw SealingError("Cannot write the secrets key file \(path).") }
        if link(temporary, path) != 0, errno != EEXIST {
            throw SealingError("Cannot make the secrets key file \(path): \(String(cString: strerror(errno))).")
        }
    }

    /// Whether a stored value is sealed (rather than a plain value written by an older version).
    public static func isSealed(_ value: String) -> Bool {
        value.hasPrefix(prefix)
    }

    /// `v1:` and the base64 of nonce, ciphertext and tag; `name` is authenticated with it.
    public func seal(_ plaintext: String, name: String) throws -> String {
        let box = try ChaChaPoly.seal(Data(plaintext.utf8), using: key, authenticating: Data(name.utf8))
        return Self.prefix + box.combined.base64EncodedString()
    }

    /// The plaintext of a value sealed for `name`.
    ///
    /// - Throws: `SealingError` when it is not sealed, was sealed with another key or for
    ///   another name, or is damaged.
    public func open(_ sealed: String, name: String) throws -> String {
        guard Self.isSealed(sealed), let data = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))) else {
            throw SealingError("\(name) is not a sealed value.")
        }
        do {
            let plaintext = try ChaChaPoly.open(ChaChaPoly.SealedBox(combined: data), using: key, authenticating: Data(name.utf8))
            return String(decoding: plaintext, as: UTF8.self)
        } catch {
            throw SealingError("\(name) does not open with this secrets key: the key changed, or the value is damaged.")
        }
    }
}

/// A secret could not be sealed, opened, or its key read.
public struct SealingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
