// The IMAP commands the email channel needs, over libcurl.
//
// libcurl selects the mailbox named in the URL before a custom command (and remembers the
// selection on a reused connection); a custom command's untagged responses arrive through the
// header callback, and IMAPResponse reads them. Messages are fetched with BODY.PEEK[], so they
// stay unseen until the channel has committed them.

import Foundation
public import SwitchboardModel

/// Where a mail server is and how to log in.
public struct MailServer: Sendable, Hashable {
    /// scheme://host[:port], without a path.
    public var url: String
    /// The login name.
    public var username: String
    /// The password.
    public var password: Secret
    /// STARTTLS on a plain-text scheme.
    public var tls: CurlTLS

    /// Creates a server description.
    public init(url: String, username: String, password: Secret, tls: CurlTLS) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.username = username
        self.password = password
        self.tls = tls
    }
}

/// What an IMAP IDLE ended with.
enum IdleOutcome: Sendable, Equatable {
    /// The server announced new mail (or had some when IDLE began).
    case newMail
    /// Nothing happened before the timeout.
    case quiet
}

/// One IMAP connection. Calls are serialised on the connection.
final class IMAPClient: Sendable {
    let server: MailServer
    private let connection: CurlConnection

    init(server: MailServer, label: String) {
        self.server = server
        connection = CurlConnection(label: label)
    }

    private func request(mailbox: String?, command: String?, timeout: Duration = .seconds(60)) -> CurlRequest {
        var url = server.url + "/"
        if let mailbox { url += Self.pathSegment(mailbox) }
        var request = CurlRequest(url: url)
        request.username = server.username
        request.password = server.password.revealed
        request.tls = server.tls
        request.customRequest = command
        request.timeout = timeout
        return request
    }

    private func run(mailbox: String?, _ command: String, timeout: Duration = .seconds(60)) async throws -> [IMAPResponseLine] {
        let response = try await connection.perform(request(mailbox: mailbox, command: command, timeout: timeout))
        return try IMAPResponse.lines(response.headers)
    }

    /// The mailbox's UIDVALIDITY and UIDNEXT, from selecting it again.
    ///
    /// Not STATUS: on the selected mailbox a server may answer from the session's view, which
    /// learns of new mail only at the next command that may report it. A fresh SELECT always
    /// tells the current state (and keeps the mailbox selected, read-write, as libcurl assumes).
    func status(_ mailbox: String) async throws -> (uidValidity: UInt32, uidNext: UInt32) {
        let lines = try await run(mailbox: nil, "SELECT \(IMAPResponse.quoted(mailbox))")
        guard let status = IMAPResponse.selected(lines) else {
            throw IMAPResponse.Malformed(description: "the SELECT response had no UIDVALIDITY and UIDNEXT")
        }
        return status
    }

    /// UIDs and sizes of the messages with a UID in `range` (`5:*` lists 5 and later, and
    /// always the last message even when its UID is lower: callers filter).
    func sizes(_ mailbox: String, uids range: String) async throws -> [IMAPResponse.Fetched] {
        IMAPResponse.fetched(try await run(mailbox: mailbox, "UID FETCH \(range) (UID RFC822.SIZE)"))
    }

    /// UIDs of unseen messages.
    func unseen(_ mailbox: String) async throws -> [UInt32] {
        IMAPResponse.search(try await run(mailbox: mailbox, "UID SEARCH UNSEEN"))
    }

    /// What libcurl passes through its header callback for one custom command at most: it
    /// stops a transfer whose "headers" pass 300 KiB.
    static let customResponseLimit = 200 << 10

    /// Whole messages by UID (with their sizes from `sizes`).
    ///
    /// Small messages come in groups with `UID FETCH … BODY.PEEK[]`, which leaves them unseen
    /// until they are handled; the response arrives through libcurl's header callback, which
    /// holds at most 300 KiB. A larger message (or one libcurl cannot pass through whole, a
    /// line longer than its buffer) is fetched on its own through the URL form, whose body
    /// has no such limit but which marks the message seen as it is read.
    func bodies(_ mailbox: String, uidValidity: UInt32, messages: [(uid: UInt32, size: Int)]) async throws -> [UInt32: [UInt8]] {
        var result: [UInt32: [UInt8]] = [:]
        var group: [UInt32] = []
        var groupBytes = 0
        var alone: [UInt32] = []
        func flush() async throws {
            guard !group.isEmpty else { return }
            do {
                let lines = try await run(mailbox: mailbox, "UID FETCH \(IMAPResponse.set(group)) (UID BODY.PEEK[])", timeout: .seconds(120))
                for fetched in IMAPResponse.fetched(lines) {
                    if let body = fetched.body { result[fetched.uid] = body }
                }
            } catch is IMAPResponse.Malformed {
                alone += group
            }
            group = []
            groupBytes = 0
        }
        for message in messages {
            if message.size > Self.customResponseLimit {
                alone.append(message.uid)
                continue
            }
            if groupBytes + message.size > Self.customResponseLimit { try await flush() }
            group.append(message.uid)
            groupBytes += message.size + 100
        }
        try await flush()
        for uid in alone {
            var request = request(mailbox: nil, command: nil, timeout: .seconds(300))
            request.url = server.url + "/" + Self.pathSegment(mailbox) + ";UIDVALIDITY=\(uidValidity)/;UID=\(uid)"
            request.maxResponseBytes = (size(of: uid, in: messages) ?? 0) + (1 << 20)
            result[uid] = try await connection.perform(request).body
        }
        return result
    }

    private func size(of uid: UInt32, in messages: [(uid: UInt32, size: Int)]) -> Int? {
        messages.first { $0.uid == uid }?.size
    }

    /// Adds \Seen.
    func markSeen(_ mailbox: String, uids: [UInt32]) async throws {
        guard !uids.isEmpty else { return }
        _ = try await run(mailbox: mailbox, "UID STORE \(IMAPResponse.set(uids)) +FLAGS.SILENT (\\Seen)")
    }

    /// Moves messages to another mailbox (RFC 6851), marking them seen first.
    func move(_ mailbox: String, uids: [UInt32], to target: String) async throws {
        guard !uids.isEmpty else { return }
        try await markSeen(mailbox, uids: uids)
        _ = try await run(mailbox: mailbox, "UID MOVE \(IMAPResponse.set(uids)) \(IMAPResponse.quoted(target))")
    }

    /// Creates a mailbox; one that exists already is fine.
    func create(_ mailbox: String) async throws {
        do {
            _ = try await run(mailbox: nil, "CREATE \(IMAPResponse.quoted(mailbox))")
        } catch let failure as CurlFailure where !failure.isConnectionProblem && !failure.isLoginDenied {
            // NO [ALREADYEXISTS]: nothing to do. Any other refusal shows when the mailbox is used.
        }
    }

    /// Waits in IDLE until the server announces new mail or `timeout` passes.
    ///
    /// libcurl cannot end IDLE with DONE, so the transfer is ended from the header callback
    /// when an EXISTS arrives after the `+ idling` continuation; the connection is then closed
    /// and the next call opens a new one. The SELECT before IDLE already shows UIDNEXT: when it
    /// is past `knownUIDNext`, mail came in since the last look and the wait ends at once.
    func idle(_ mailbox: String, knownUIDNext: UInt32, timeout: Duration) async throws -> IdleOutcome {
        final class Progress: @unchecked Sendable {
            var idling = false
        }
        let progress = Progress()
        var request = request(mailbox: mailbox, command: "IDLE", timeout: timeout)
        request.onHeaderLine = { bytes in
            let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if line.hasPrefix("+") {
                progress.idling = true
                return true
            }
            if !progress.idling {
                if let next = IMAPResponse.uidNext(inLine: line), next > knownUIDNext { return false }
                return true
            }
            let words = line.split(separator: " ")
            return !(words.count >= 3 && words[0] == "*" && words[2].uppercased() == "EXISTS")
        }
        do {
            _ = try await connection.perform(request)
            // The server ended IDLE itself (a BYE, or a tagged answer): look again.
            return .newMail
        } catch is CurlStoppedByHook {
            return .newMail
        } catch let failure as CurlFailure where failure.code == 28 && progress.idling {
            // CURLE_OPERATION_TIMEDOUT while idling: nothing new.
            return .quiet
        }
    }

    /// A mailbox name as a URL path segment.
    static func pathSegment(_ mailbox: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return mailbox.addingPercentEncoding(withAllowedCharacters: allowed) ?? mailbox
    }
}
