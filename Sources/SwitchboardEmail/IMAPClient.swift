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

    private func run(mailbox: String?, _ command: String, timeout: Duration = .seconds(60), isolated: Bool = false) async throws -> [IMAPResponseLine] {
        var request = request(mailbox: mailbox, command: command, timeout: timeout)
        request.isolated = isolated
        let response = try await connection.perform(request)
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

    /// UID, size and \Seen of every message with a UID in `first...last`, asked for in pages
    /// of 2,000 UIDs: one answer must stay under libcurl's 300 KiB, however large the backlog.
    func list(_ mailbox: String, from first: UInt32, through last: UInt32) async throws -> [IMAPResponse.Fetched] {
        var result: [IMAPResponse.Fetched] = []
        var start = first
        while start <= last {
            let end = last - start >= 1999 ? start + 1999 : last
            let page = IMAPResponse.fetched(try await run(mailbox: mailbox, "UID FETCH \(start):\(end) (UID RFC822.SIZE FLAGS)"))
            // "n:m" may also list a message outside the range when none is inside it.
            result += page.filter { $0.uid >= start && $0.uid <= end }
            guard end < UInt32.max else { break }
            start = end + 1
        }
        return result
    }

    /// What libcurl passes through its header callback for one custom command at most: it
    /// stops a transfer whose "headers" pass 300 KiB.
    static let customResponseLimit = 200 << 10

    /// Whole messages by UID, as listed by `list`. A message gone from the mailbox meanwhile
    /// is simply not in the result.
    ///
    /// Small messages come in groups with `UID FETCH … BODY.PEEK[]`, which leaves them unseen
    /// until they are handled. That answer arrives through libcurl's header callback, which
    /// holds at most 300 KiB and does not follow literals: a body line that looks like the
    /// command's tag would end the answer early. So each group runs on a connection of its own
    /// (nothing left unread can be taken for the next answer), and a group whose literals come
    /// out short is fetched again message by message through the URL form, as is any message
    /// over 200 KiB: there libcurl reads the literal by its length, but marks the message seen,
    /// so a message that was unseen is made unseen again at once.
    func bodies(_ mailbox: String, uidValidity: UInt32, messages: [IMAPResponse.Fetched]) async throws -> [UInt32: [UInt8]] {
        var result: [UInt32: [UInt8]] = [:]
        var group: [UInt32] = []
        var groupBytes = 0
        var alone: [UInt32] = []
        func flush() async throws {
            guard !group.isEmpty else { return }
            do {
                let lines = try await run(mailbox: mailbox, "UID FETCH \(IMAPResponse.set(group)) (UID BODY.PEEK[])", timeout: .seconds(120), isolated: true)
                for fetched in IMAPResponse.fetched(lines) {
                    if let body = fetched.body { result[fetched.uid] = body }
                }
                // Listed but not answered: gone, or answered in a form not read here. The URL
                // form tells which.
                alone += group.filter { result[$0] == nil }
            } catch is IMAPResponse.Malformed {
                alone += group
            }
            group = []
            groupBytes = 0
        }
        for message in messages {
            let size = message.size ?? 0
            if size > Self.customResponseLimit {
                alone.append(message.uid)
                continue
            }
            if groupBytes + size > Self.customResponseLimit { try await flush() }
            group.append(message.uid)
            groupBytes += size + 100
        }
        try await flush()
        var reseen: [UInt32] = []
        for uid in alone {
            let listed = messages.first { $0.uid == uid }
            var request = request(mailbox: nil, command: nil, timeout: .seconds(300))
            request.url = server.url + "/" + Self.pathSegment(mailbox) + ";UIDVALIDITY=\(uidValidity)/;UID=\(uid)"
            request.maxResponseBytes = (listed?.size ?? 0) + (1 << 20)
            request.isolated = true
            do {
                result[uid] = try await connection.perform(request).body
                if listed?.seen == false { reseen.append(uid) }
            } catch let failure as CurlFailure where failure.code == 78 {
                // CURLE_REMOTE_FILE_NOT_FOUND: expunged since it was listed.
                continue
            }
        }
        if !reseen.isEmpty {
            _ = try await run(mailbox: mailbox, "UID STORE \(IMAPResponse.set(reseen)) -FLAGS.SILENT (\\Seen)")
        }
        return result
    }

    /// Adds \Seen.
    func markSeen(_ mailbox: String, uids: [UInt32]) async throws {
        guard !uids.isEmpty else { return }
        _ = try await run(mailbox: mailbox, "UID STORE \(IMAPResponse.set(uids)) +FLAGS.SILENT (\\Seen)")
    }

    /// Moves messages to another mailbox (RFC 6851), marking them seen first if asked.
    func move(_ mailbox: String, uids: [UInt32], to target: String, markingSeen: Bool) async throws {
        guard !uids.isEmpty else { return }
        if markingSeen { try await markSeen(mailbox, uids: uids) }
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
            var selected = false
            var idling = false
        }
        let progress = Progress()
        var request = request(mailbox: mailbox, command: "IDLE", timeout: timeout)
        // Its own connection each time: an IDLE ended from here leaves the connection unusable.
        request.isolated = true
        request.onHeaderLine = { bytes in
            let line = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            // Only the continuation after the SELECT answers IDLE; one during login (SASL
            // without an initial response) does not.
            if line.hasPrefix("+"), progress.selected {
                progress.idling = true
                return true
            }
            if !progress.idling {
                if let next = IMAPResponse.uidNext(inLine: line) {
                    progress.selected = true
                    if next > knownUIDNext { return false }
                }
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
