// Real mail servers for the email tests, run by scripts/test-servers/mail.sh: Dovecot (IMAP
// and LMTP) and an aiosmtpd SMTP server that delivers through LMTP and stamps
// Authentication-Results as a receiving server would.
//
// People send with the curl command-line tool (or straight into LMTP when the SMTP server is
// down) and read their mail from the Maildir files, so a bug in the bot's own IMAP or SMTP code
// cannot hide itself in the test's.

import Foundation
import GRDB
import SwitchboardEmail
import SwitchboardModel
import Testing

/// One set of mail servers in a temporary directory, with mailboxes for the bot and people.
final class MailServers: Sendable {
    static let script = packageRoot + "/scripts/test-servers/mail.sh"
    static let authservID = "mx.switchboard.test"
    static let people = ["bot", "alice", "bob", "carol", "mallory"]

    let directory: TemporaryDirectory
    let imapPort: Int
    let lmtpPort: Int
    let smtpPort: Int

    /// Creates and starts fresh servers. Fails with instructions when they are not installed.
    ///
    /// - Parameter imapCapability: what Dovecot announces after login instead of its own list
    ///   (to play a server without MOVE).
    init(imapCapability: String? = nil) throws {
        directory = try TemporaryDirectory()
        imapPort = try freePort()
        lmtpPort = try freePort()
        smtpPort = try freePort()
        do {
            try runCommand(
                "/bin/bash", [Self.script, "init", directory.path, String(imapPort), String(lmtpPort), String(smtpPort)],
                environment: imapCapability.map { ["MAIL_IMAP_CAPABILITY": $0] } ?? [:]
            )
        } catch {
            throw HarnessError(description: """
                Could not set up Dovecot and the SMTP server for the email tests. The README's test \
                command (scripts/test.sh) installs them; by hand: scripts/test-servers/mail.sh install.
                \(error)
                """)
        }
        for person in Self.people {
            try runCommand("/bin/bash", [Self.script, "adduser", directory.path, person, "pw-\(person)"])
        }
        // Mail from example.test passes the SMTP server's sender check; any other domain fails it.
        try "example.test\n".write(toFile: directory.path + "/spf_pass", atomically: true, encoding: .utf8)
        try runCommand("/bin/bash", [Self.script, "start", directory.path])
    }

    deinit {
        _ = try? runCommand("/bin/bash", [Self.script, "stop", directory.path])
    }

    /// The bot's settings for these servers.
    var botEnvironment: [String: String] {
        [
            "SWITCHBOARD_EMAIL_IMAP_URL": "imap://127.0.0.1:\(imapPort)",
            "SWITCHBOARD_EMAIL_SMTP_URL": "smtp://127.0.0.1:\(smtpPort)",
            "SWITCHBOARD_EMAIL_USERNAME": "bot",
            "SWITCHBOARD_EMAIL_PASSWORD": TestSecrets.register("pw-bot"),
            "SWITCHBOARD_EMAIL_ADDRESS": "bot@example.test",
            "SWITCHBOARD_EMAIL_ALLOWED_SENDERS": "*@example.test",
            "SWITCHBOARD_EMAIL_TRUSTED_AUTHSERV_ID": Self.authservID,
        ]
    }

    /// Submits a message over SMTP with curl. `envelopeFrom` empty sends `MAIL FROM:<>`.
    func send(_ message: String, from envelopeFrom: String, to recipients: [String] = ["bot@example.test"]) throws {
        let file = directory.path + "/outgoing-\(UUID().uuidString).eml"
        try Data(message.utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        var arguments = ["-sS", "--url", "smtp://127.0.0.1:\(smtpPort)/localhost", "--mail-from", envelopeFrom, "--upload-file", file]
        for recipient in recipients { arguments += ["--mail-rcpt", recipient] }
        try runCommand("/usr/bin/curl", arguments)
    }

    /// Hands a message straight to Dovecot's LMTP (for when the SMTP server is down), stamped
    /// with the sender check the SMTP server would have added.
    func deliverDirectly(_ message: String, from envelopeFrom: String, to recipient: String = "bot@example.test") throws {
        let file = directory.path + "/direct-\(UUID().uuidString).eml"
        let stamp = "Authentication-Results: \(Self.authservID); spf=pass smtp.mailfrom=\(envelopeFrom)\r\n"
        try Data((stamp + message).utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try runCommand("/usr/bin/python3", ["-c", """
            import smtplib, sys
            with open(sys.argv[1], 'rb') as f: data = f.read()
            with smtplib.LMTP('127.0.0.1', int(sys.argv[2])) as lmtp: lmtp.sendmail(sys.argv[3], [sys.argv[4]], data)
            """, file, String(lmtpPort), envelopeFrom, recipient])
    }

    func stopSMTP() throws { try runCommand("/bin/bash", [Self.script, "stop-smtp", directory.path]) }
    func startSMTP() throws { try runCommand("/bin/bash", [Self.script, "start-smtp", directory.path]) }

    /// Makes the SMTP server answer every message with `reply` (nil: normal service).
    func failSMTP(with reply: String?) throws {
        try (reply ?? "").write(toFile: directory.path + "/smtp_fail", atomically: true, encoding: .utf8)
    }

    /// The mail in a person's folder (`nil`: the inbox), oldest first.
    func messages(of person: String, folder: String? = nil) -> [ReceivedMail] {
        let root = directory.path + "/mail/\(person)/Maildir" + (folder.map { "/.\($0)" } ?? "")
        var files: [(String, Date)] = []
        for sub in ["new", "cur"] {
            let path = root + "/" + sub
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                let full = path + "/" + name
                let date = (try? FileManager.default.attributesOfItem(atPath: full)[.modificationDate] as? Date) ?? .distantPast
                files.append((full, date))
            }
        }
        // Maildir names start with the delivery time in seconds: sort by name within a second.
        return files.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.compactMap { ReceivedMail(path: $0.0) }
    }

    /// Waits until a person has at least `count` messages; returns them all.
    func waitForMessages(of person: String, count: Int, folder: String? = nil, timeout: Duration = .seconds(30)) async throws -> [ReceivedMail] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = messages(of: person, folder: folder)
            if found.count >= count { return found }
            if ContinuousClock.now > deadline {
                throw HarnessError(description: "waited \(timeout) for \(count) messages for \(person) in \(folder ?? "INBOX"); got \(found.count): \(found.map(\.parsed.text))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// A message as it landed in a Maildir.
struct ReceivedMail: Sendable {
    let path: String
    let raw: [UInt8]
    let parsed: EmailMessage

    init?(path: String) {
        guard let data = FileManager.default.contents(atPath: path), let parsed = try? MIMEParser.parse(Array(data)) else { return nil }
        self.path = path
        raw = Array(data)
        self.parsed = parsed
    }

    /// A header's raw value (unfolded), if present.
    func header(_ name: String) -> String? { parsed.headers.text(name) }

    /// The header block as it was sent, without the lines the servers added on delivery.
    var sentHeaderLines: [String] {
        let text = String(decoding: raw, as: UTF8.self)
        let head = text.components(separatedBy: "\r\n\r\n").first ?? text.components(separatedBy: "\n\n").first ?? ""
        return head.components(separatedBy: "\n").map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
    }

    /// Whether the server flagged it \Seen (Maildir `:2,…S`).
    var isSeen: Bool {
        guard let info = path.split(separator: ":").last, info.hasPrefix("2,") else { return false }
        return info.contains("S")
    }
}

/// A plain message as a person's mail program would write it, CRLF line ends.
func mail(
    from: String = "Alice <alice@example.test>",
    to: String = "bot@example.test",
    subject: String,
    id: String? = nil,
    inReplyTo: String? = nil,
    references: [String] = [],
    extraHeaders: [String] = [],
    body: String
) -> (text: String, id: String) {
    let messageID = id ?? "\(UUID().uuidString.lowercased())@example.test"
    var lines = ["From: \(from)", "To: \(to)", "Subject: \(subject)", "Message-ID: <\(messageID)>", "Date: \(EmailComposer.rfc5322Date(Date()))"]
    if let inReplyTo { lines.append("In-Reply-To: <\(inReplyTo)>") }
    if !references.isEmpty { lines.append("References: " + references.map { "<\($0)>" }.joined(separator: " ")) }
    lines += extraHeaders
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    let text = lines.joined(separator: "\r\n") + "\r\n\r\n" + body.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n"
    return (text, messageID)
}

/// One test's cast: the servers and the bot's data directory.
struct EmailCast {
    let servers: MailServers
    let data: TemporaryDirectory

    init(imapCapability: String? = nil) throws {
        servers = try MailServers(imapCapability: imapCapability)
        data = try TemporaryDirectory()
    }

    func startBot(extra: [String: String] = [:]) throws -> RunningBot {
        try RunningBot(dataDir: data.path, environment: servers.botEnvironment.merging(extra) { $1 })
    }

    /// The bot's database, read from the outside.
    func database() throws -> DatabaseQueue {
        try DatabaseQueue(path: data.path + "/switchboard.sqlite")
    }

    /// Sends as alice (envelope and From at example.test, so the sender check passes).
    @discardableResult
    func aliceSays(_ body: String, subject: String = "A request", inReplyTo: String? = nil, references: [String] = []) throws -> String {
        let message = mail(subject: subject, inReplyTo: inReplyTo, references: references, body: body)
        try servers.send(message.text, from: "alice@example.test")
        return message.id
    }
}

/// Waits until a process has ended (killed by its own crash point, for instance).
func waitForExit(_ bot: RunningBot, timeout: Duration = .seconds(30)) async throws {
    let deadline = ContinuousClock.now + timeout
    while bot.process.isRunning {
        if ContinuousClock.now > deadline { throw HarnessError(description: "the bot did not exit within \(timeout)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
