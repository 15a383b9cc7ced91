import Foundation
public import SwitchboardModel

/// The Matrix channel's settings.
///
/// Keys (each also `SWITCHBOARD_<KEY>` in the environment, dots as underscores):
/// - `matrix.homeserver`: the homeserver's base URL (`https://matrix.example.org`); the channel
///   runs when it is set.
/// - `matrix.user_id`: the bot's full user id (`@switchboard:example.org`).
/// - `matrix.password` (secret, or `matrix.password_file`) or `matrix.access_token` (secret, or
///   `matrix.access_token_file`): how to log in. With a password the bot logs in once and keeps
///   its device and token in the database; restarts reuse them.
/// - `matrix.allowed_users`: who may invite the bot and talk to it: user ids or `*:server`
///   patterns (comma-separated in the environment); `*` allows everyone. Empty: nobody.
/// - `matrix.device_name` (default `Switchboard`): shown in the account's session list.
/// - `matrix.command_prefix` (default `!sb`): addresses the bot in a group room.
/// - `matrix.sync_timeout_ms` (1000–120000, default 30000): how long one `/sync` long-poll waits.
/// - `matrix.encryption`: `optional` (default: encrypted and clear-text rooms both work),
///   `required` (clear-text rooms are refused) or `off` (encrypted rooms get one notice that
///   the bot cannot read them).
/// - `matrix.crypto_key` (secret, or `matrix.crypto_key_file`): seals the encryption keys in
///   the database; at least 32 characters (`openssl rand -base64 32`). Without it, encryption
///   is off (and `required` is a configuration error).
/// - `matrix.undecryptable_wait_s` (5–86400, default 60): how long a message whose room key
///   has not arrived waits before its sender is told it could not be read.
/// - `matrix.unverified_device_confirmations`: whether a "yes" from a device its owner has not
///   verified confirms a risky action: `direct` (default: in direct chats only), `always`, `never`.
public struct MatrixConfiguration: Sendable {
    /// What to do about end-to-end encryption.
    public enum EncryptionPolicy: String, Sendable, CaseIterable {
        case required, optional, off
    }

    /// Where a confirmation from an unverified device counts.
    public enum UnverifiedConfirmations: String, Sendable, CaseIterable {
        case direct, always, never
    }

    /// How the bot proves who it is.
    public enum Credential: Sendable {
        case password(Secret)
        case accessToken(Secret)
    }

    /// The homeserver's base URL, without a trailing slash.
    public var homeserver: String
    /// The bot's user id.
    public var userID: String
    /// The credential.
    public var credential: Credential
    /// Who may invite and talk to the bot.
    public var allowedUsers: UserPatterns
    /// The device's display name.
    public var deviceName: String = "Switchboard"
    /// The group-room command prefix.
    public var commandPrefix: String = "!sb"
    /// The `/sync` long-poll timeout.
    public var syncTimeout: Duration = .seconds(30)
    /// The encryption policy.
    public var encryption: EncryptionPolicy = .optional
    /// Seals the encryption state at rest; nil turns encryption off.
    public var cryptoKey: Secret?
    /// How long an undecryptable message waits for its key.
    public var undecryptableWait: Duration = .seconds(60)
    /// Where unverified devices may confirm.
    public var unverifiedDeviceConfirmations: UnverifiedConfirmations = .direct

    /// Whether the bot reads and writes encrypted rooms.
    public var encryptionEnabled: Bool { encryption != .off && cryptoKey != nil }

    /// Creates a configuration.
    public init(homeserver: String, userID: String, credential: Credential, allowedUsers: UserPatterns) {
        self.homeserver = homeserver
        self.userID = userID
        self.credential = credential
        self.allowedUsers = allowedUsers
    }

    /// Reads the `matrix.*` keys; nil when `matrix.homeserver` is not set. Problems are
    /// recorded in `config`.
    public static func read(_ config: inout ConfigValues) -> MatrixConfiguration? {
        guard let homeserver = config.string("matrix.homeserver")?.trimmingWhitespace(), !homeserver.isEmpty else {
            for key in ["matrix.user_id", "matrix.password", "matrix.access_token"] where config.has(key) {
                config.report(key, "is set but matrix.homeserver is not; set matrix.homeserver to run the Matrix channel")
            }
            return nil
        }
        if URL(string: homeserver)?.scheme.map({ ["http", "https"].contains($0) }) != true || URL(string: homeserver)?.host == nil {
            config.report("matrix.homeserver", "must be an http:// or https:// URL, such as https://matrix.example.org")
        }
        let userID = config.string("matrix.user_id")?.trimmingWhitespace() ?? ""
        if !Self.isUserID(userID) {
            config.report("matrix.user_id", userID.isEmpty
                ? "is required with matrix.homeserver (the bot's full id, such as @switchboard:example.org)"
                : "must be a full user id such as @switchboard:example.org")
        }
        let password = config.secret("matrix.password")
        let token = config.secret("matrix.access_token")
        let credential: Credential
        switch (password, token) {
        case (let password?, nil): credential = .password(password)
        case (nil, let token?): credential = .accessToken(token)
        case (.some, .some):
            config.report("matrix.password", "set either matrix.password or matrix.access_token, not both")
            credential = .password(Secret(""))
        case (nil, nil):
            config.report("matrix.password", "is required with matrix.homeserver (or set matrix.access_token)")
            credential = .password(Secret(""))
        }
        let allowed = config.list("matrix.allowed_users", default: [])
        var patterns: [String] = []
        for pattern in allowed {
            if pattern == "*" || Self.isUserID(pattern) || (pattern.hasPrefix("*:") && pattern.count > 2) {
                patterns.append(pattern)
            } else {
                config.report("matrix.allowed_users", "\"\(pattern)\" is neither a user id (@name:server), a *:server pattern, nor *")
            }
        }
        var configuration = MatrixConfiguration(
            homeserver: homeserver.hasSuffix("/") ? String(homeserver.dropLast()) : homeserver,
            userID: userID,
            credential: credential,
            allowedUsers: UserPatterns(patterns)
        )
        configuration.deviceName = config.string("matrix.device_name", default: configuration.deviceName)
        configuration.commandPrefix = config.string("matrix.command_prefix", default: configuration.commandPrefix)
        configuration.syncTimeout = .milliseconds(config.int("matrix.sync_timeout_ms", default: 30000, range: 1000...120_000))
        let policy = config.string("matrix.encryption", default: "optional").trimmingWhitespace().lowercased()
        if let value = EncryptionPolicy(rawValue: policy) {
            configuration.encryption = value
        } else {
            config.report("matrix.encryption", "must be required, optional or off, got \"\(policy)\"")
        }
        if let key = config.secret("matrix.crypto_key") {
            if key.revealed.count < CryptoKeys.minimumSecretLength {
                config.report("matrix.crypto_key", "must be at least \(CryptoKeys.minimumSecretLength) characters (make one with: openssl rand -base64 32)")
            }
            configuration.cryptoKey = key
        } else if configuration.encryption == .required {
            config.report("matrix.crypto_key", "is required with matrix.encryption: required (make one with: openssl rand -base64 32)")
        }
        configuration.undecryptableWait = .seconds(config.int("matrix.undecryptable_wait_s", default: 60, range: 5...86400))
        let confirmations = config.string("matrix.unverified_device_confirmations", default: "direct").trimmingWhitespace().lowercased()
        if let value = UnverifiedConfirmations(rawValue: confirmations) {
            configuration.unverifiedDeviceConfirmations = value
        } else {
            config.report("matrix.unverified_device_confirmations", "must be direct, always or never, got \"\(confirmations)\"")
        }
        return configuration
    }

    /// Whether a text looks like a full Matrix user id: `@localpart:server`.
    static func isUserID(_ text: String) -> Bool {
        guard text.hasPrefix("@"), let colon = text.firstIndex(of: ":") else { return false }
        return colon > text.index(after: text.startIndex) && text.index(after: colon) < text.endIndex
            && !text.contains(where: \.isWhitespace)
    }
}

/// Allowed users: exact user ids, `*:server` patterns, or `*`.
public struct UserPatterns: Hashable, Sendable {
    /// The patterns.
    public let patterns: [String]

    /// Creates patterns.
    public init(_ patterns: [String]) { self.patterns = patterns }

    /// Whether a user id matches one of the patterns.
    public func allows(_ userID: String) -> Bool {
        patterns.contains { pattern in
            if pattern == "*" { return true }
            if pattern.hasPrefix("*:") {
                // The server part is everything after the first colon of the user id.
                guard let colon = userID.firstIndex(of: ":") else { return false }
                return userID[userID.index(after: colon)...] == pattern.dropFirst(2)
            }
            return pattern == userID
        }
    }
}
