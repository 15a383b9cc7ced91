import Foundation
public import SwitchboardModel

/// The email channel's settings.
///
/// Keys (each also `SWITCHBOARD_<KEY>` in the environment, dots as underscores):
/// - `email.imap_url`: `imaps://host[:port]` or `imap://host[:port]`; the channel runs when it is
///   set.
/// - `email.imap_starttls` (default true, false for a loopback host): require STARTTLS on `imap://`.
/// - `email.smtp_url`: `smtps://host[:port]` or `smtp://host[:port]` (submission, usually 587).
/// - `email.smtp_starttls` (default true, false for a loopback host): require STARTTLS on `smtp://`.
/// - `email.username`, `email.password` (secret, or `email.password_file`): the login for both.
/// - `email.address`: the bot's address, its From and the domain of its Message-IDs.
/// - `email.display_name` (default `Switchboard`).
/// - `email.allowed_senders`: addresses or `*@domain` (comma-separated in the environment); `*`
///   allows everyone. Empty: nobody.
/// - `email.poll_interval` (seconds, 1–3600, default 15): how often to look for mail when the
///   server has no IDLE (and how soon to look again after a failure clears).
/// - `email.idle` (default true): wait in IMAP IDLE, so new mail is read within a second or two.
/// - `email.mailbox` (default `INBOX`), `email.processed_mailbox` (default: none, answered mail is
///   marked seen and stays), `email.quarantine_mailbox` (default `Quarantine`): where mail is
///   read, where it goes once handled, and where mail that cannot be read is set aside.
/// - `email.trusted_authserv_id`: the authserv-id your receiving server writes in
///   `Authentication-Results`; without it no sender counts as authenticated.
/// - `email.max_per_sender_per_hour` (1–10000, default 30): more mail than this from one sender in
///   an hour is not answered (a loop with another robot ends here); counted from the stored
///   mail when reading starts, so it holds across restarts and takeovers.
/// - `email.max_message_bytes` (65536–209715200, default 41943040 = 40 MiB): larger mail is not
///   downloaded but set aside in the quarantine mailbox.
/// - `email.smtp_circuit_failures` (1–100, default 5) and `email.smtp_circuit_cooldown_seconds`
///   (1–3600, default 30): after that many SMTP submissions in a row get no answer, none is
///   tried for the cooldown (replies wait in the outbox), then one trial decides.
public struct EmailConfiguration: Sendable {
    /// The IMAP server.
    public var imap: MailServer
    /// The SMTP server.
    public var smtp: MailServer
    /// The bot's address (lower case).
    public var address: String
    /// The bot's display name.
    public var displayName: String = "Switchboard"
    /// Who may write to the bot.
    public var allowedSenders: SenderPatterns
    /// How often to look for mail without IDLE.
    public var pollInterval: Duration = .seconds(15)
    /// Whether to wait in IDLE.
    public var idle = true
    /// The mailbox read.
    public var mailbox = "INBOX"
    /// Where handled mail is moved; nil: it is marked seen.
    public var processedMailbox: String?
    /// Where unreadable mail is moved.
    public var quarantineMailbox = "Quarantine"
    /// The authserv-id whose `Authentication-Results` count.
    public var trustedAuthservID: String?
    /// Mail answered per sender per hour.
    public var maxPerSenderPerHour = 30
    /// SMTP failures in a row that open the circuit.
    public var smtpCircuitFailures = 5
    /// How long an open SMTP circuit stays open.
    public var smtpCircuitCooldown: Duration = .seconds(30)
    /// What the MIME parser accepts (size, nesting, parts).
    public var limits = MIMELimits()

    /// Creates a configuration.
    public init(imap: MailServer, smtp: MailServer, address: String, allowedSenders: SenderPatterns) {
        self.imap = imap
        self.smtp = smtp
        self.address = address.lowercased()
        self.allowedSenders = allowedSenders
    }

    /// The domain of the bot's address, for its Message-IDs and EHLO.
    public var domain: String {
        address.split(separator: "@").last.map(String.init) ?? "localhost"
    }

    /// Reads the `email.*` keys; nil when `email.imap_url` is not set. Problems are recorded in
    /// `config`.
    public static func read(_ config: inout ConfigValues) -> EmailConfiguration? {
        guard let imapURL = config.string("email.imap_url")?.trimmingWhitespace(), !imapURL.isEmpty else {
            for key in ["email.smtp_url", "email.username", "email.password", "email.address"] where config.has(key) {
                config.report(key, "is set but email.imap_url is not; set email.imap_url to run the email channel")
            }
            return nil
        }
        let username = config.string("email.username")?.trimmingWhitespace() ?? ""
        let password = config.secret("email.password") ?? Secret("")
        if username.isEmpty { config.report("email.username", "is required with email.imap_url (the mailbox login)") }
        if password.revealed.isEmpty { config.report("email.password", "is required with email.imap_url (or set email.password_file)") }

        let imap = server(&config, key: "email.imap_url", url: imapURL, schemes: ["imap", "imaps"])
        // Required, not opportunistic: a STARTTLS an attacker strips would send the password in clear.
        let imapStartTLS = config.bool("email.imap_starttls", default: !imap.loopback)
        let imapTLS: CurlTLS = imap.scheme == "imap" && imapStartTLS ? .required : .none
        let smtpURL = config.string("email.smtp_url")?.trimmingWhitespace() ?? ""
        if smtpURL.isEmpty { config.report("email.smtp_url", "is required with email.imap_url (smtp://host:587 or smtps://host:465)") }
        let smtp = server(&config, key: "email.smtp_url", url: smtpURL.isEmpty ? "smtp://localhost" : smtpURL, schemes: ["smtp", "smtps"])
        let startTLS = config.bool("email.smtp_starttls", default: !smtp.loopback)
        let smtpTLS: CurlTLS = smtp.scheme == "smtp" && startTLS ? .required : .none

        let address = config.string("email.address")?.trimmingWhitespace().lowercased() ?? ""
        if !isAddress(address) {
            config.report("email.address", address.isEmpty
                ? "is required with email.imap_url (the bot's own address, such as assistant@example.org)"
                : "must be an email address such as assistant@example.org")
        }
        var patterns: [String] = []
        for pattern in config.list("email.allowed_senders", default: []).map({ $0.lowercased() }) {
            if pattern == "*" || isAddress(pattern) || (pattern.hasPrefix("*@") && pattern.count > 2 && !pattern.dropFirst(2).contains("@")) {
                patterns.append(pattern)
            } else {
                config.report("email.allowed_senders", "\"\(pattern)\" is neither an address, a *@domain pattern, nor *")
            }
        }
        var configuration = EmailConfiguration(
            imap: MailServer(url: imap.base, username: username, password: password, tls: imapTLS),
            smtp: MailServer(url: smtp.base, username: username, password: password, tls: smtpTLS),
            address: address,
            allowedSenders: SenderPatterns(patterns)
        )
        configuration.displayName = config.string("email.display_name", default: configuration.displayName)
        configuration.pollInterval = .seconds(config.int("email.poll_interval", default: 15, range: 1...3600))
        configuration.idle = config.bool("email.idle", default: true)
        configuration.mailbox = mailbox(&config, "email.mailbox", default: "INBOX") ?? "INBOX"
        configuration.processedMailbox = mailbox(&config, "email.processed_mailbox", default: nil)
        configuration.quarantineMailbox = mailbox(&config, "email.quarantine_mailbox", default: "Quarantine") ?? "Quarantine"
        if let id = config.string("email.trusted_authserv_id")?.trimmingWhitespace(), !id.isEmpty {
            if id.unicodeScalars.allSatisfy({ $0.isASCII && !$0.properties.isWhitespace && $0 != ";" }) {
                configuration.trustedAuthservID = id
            } else {
                config.report("email.trusted_authserv_id", "must be one ASCII word without spaces or semicolons, as your server writes it")
            }
        }
        configuration.maxPerSenderPerHour = config.int("email.max_per_sender_per_hour", default: 30, range: 1...10000)
        configuration.smtpCircuitFailures = config.int("email.smtp_circuit_failures", default: 5, range: 1...100)
        configuration.smtpCircuitCooldown = .seconds(config.int("email.smtp_circuit_cooldown_seconds", default: 30, range: 1...3600))
        configuration.limits.maxBytes = config.int("email.max_message_bytes", default: MIMELimits().maxBytes, range: 65536...(200 << 20))
        return configuration
    }

    private static func server(
        _ config: inout ConfigValues, key: String, url text: String, schemes: [String]
    ) -> (base: String, scheme: String, loopback: Bool) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), schemes.contains(scheme), let host = url.host, !host.isEmpty else {
            config.report(key, "must be a \(schemes.map { $0 + "://" }.joined(separator: " or ")) URL with a host, such as \(schemes[1])://mail.example.org")
            return (text, schemes[0], false)
        }
        if url.user != nil || url.password != nil {
            config.report(key, "must not carry a user name or password; use email.username and email.password")
        }
        if !url.path.isEmpty && url.path != "/" {
            config.report(key, "must not have a path; the mailbox is email.mailbox")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let base = "\(scheme)://\(hostPart)" + (url.port.map { ":\($0)" } ?? "")
        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1"
        return (base, scheme, loopback)
    }

    private static func mailbox(_ config: inout ConfigValues, _ key: String, default value: String?) -> String? {
        guard let name = config.string(key)?.trimmingWhitespace(), !name.isEmpty else { return value }
        // Non-ASCII names need IMAP's modified UTF-7; not supported.
        guard name.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F }) else {
            config.report(key, "must be an ASCII mailbox name")
            return value
        }
        return name
    }

    /// Whether a text looks like an address: something@domain, no spaces or angle brackets.
    static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains(".") || parts[1] == "localhost" else { return false }
        return text.count <= 254 && !text.contains { $0.isWhitespace || "<>,\"".contains($0) }
    }
}

/// Allowed senders: exact addresses, `*@domain` patterns, or `*`; compared in lower case.
public struct SenderPatterns: Hashable, Sendable {
    /// The patterns, lower case.
    public let patterns: [String]

    /// Creates patterns.
    public init(_ patterns: [String]) { self.patterns = patterns.map { $0.lowercased() } }

    /// Whether an address matches one of the patterns.
    public func allows(_ address: String) -> Bool {
        let address = address.lowercased()
        return patterns.contains { pattern in
            if pattern == "*" { return true }
            if pattern.hasPrefix("*@") {
                return address.split(separator: "@").last.map { $0 == pattern.dropFirst(2) } ?? false
            }
            return pattern == address
        }
    }
}
