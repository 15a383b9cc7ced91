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
    /// What the server said it can do, asked once (the answer does not change while it runs).
    private let capabilities = Locked<Set<String>?>(nil)

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

    private func run(mailbox: String?, _ command: String, timeout: Duration = .seconds(60), always: Bool = false) async throws -> [IMAPResponseLine] {
        var request = request(mailbox: mailbox, command: command, timeout: timeout)
        request.ignoresCancellation = always
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
    /// of 50 UIDs: libcurl counts a custom command's answer lines against 300 KiB in a way
    /// that grows with the square of their number (measured: 50 lines count 63 KB, 100 lines
    /// 240 KB, 150 fail), so each answer must stay short, however large the backlog.
    func list(_ mailbox: String, from first: UInt32, through last: UInt32) async throws -> [IMAPResponse.Fetched] {
        var result: [IMAPResponse.Fetched] = []
        var start = first
        while start <= last {
            let end = last - start >= 49 ? start + 49 : last
            let page = IMAPResponse.fetched(try await run(mailbox: mailbox, "UID FETCH \(start):\(end) (UID RFC822.SIZE FLAGS)"))
            // "n:m" may also list a message outside the range when none is inside it.
            result += page.filter { $0.uid >= start && $0.uid <= end }
            guard end < UInt32.max else { break }
            start = end + 1
        }
        return result
    }

    /// UID, size and \Seen of the given messages (those that still exist), 50 per command.
    func sizes(_ mailbox: String, uids: [UInt32]) async throws -> [IMAPResponse.Fetched] {
        let sorted = Array(Set(uids)).sorted()
        var result: [IMAPResponse.Fetched] = []
        var start = 0
        while start < sorted.count {
            let page = Array(sorted[start..<min(start + 50, sorted.count)])
            let wanted = Set(page)
            result += IMAPResponse.fetched(try await run(mailbox: mailbox, "UID FETCH \(IMAPResponse.set(page)) (UID RFC822.SIZE FLAGS)"))
                .filter { wanted.contains($0.uid) }
            start += 50
        }
        return result
    }

    /// UIDs of the unseen messages up to `last`, searched in ranges of 10,000 UIDs (each
    /// answer is one line).
    func unseen(_ mailbox: String, through last: UInt32) async throws -> [UInt32] {
        var result: [UInt32] = []
        var start: UInt32 = 1
        while start <= last {
            let end = last - start >= 9999 ? start + 9999 : last
            result += IMAPResponse.search(try await run(mailbox: mailbox, "UID SEARCH UID \(start):\(end) UNSEEN"))
                .filter { $0 >= start && $0 <= end }
            guard end < UInt32.max else { break }
            start = end + 1
        }
        return result
    }

    /// Whole messages by UID, as listed by `list`. A message gone from the mailbox meanwhile
    /// is simply not in the result.
    ///
    /// Through the URL form (`…/INBOX;UIDVALIDITY=v/;UID=n`): libcurl reads the literal by its
    /// length into the body, so no size limit applies and no line of a message can be taken
    /// for the end of the answer. That form runs `FETCH BODY[]`, which marks the message seen;
    /// messages that were unseen are made unseen again at once, and marked seen for good only
    /// once they are handled. (A custom `BODY.PEEK[]` would leave them unseen, but its answer
    /// goes through libcurl's header callback, which counts every line against a 300 KiB limit
    /// in a way that grows with the square of the lines, and does not follow literals.)
    func bodies(_ mailbox: String, uidValidity: UInt32, messages: [IMAPResponse.Fetched]) async throws -> [UInt32: [UInt8]] {
        var result: [UInt32: [UInt8]] = [:]
        var reseen: [UInt32] = []
        var missing: [UInt32] = []
        var failure: (any Error)?
        for message in messages {
            var request = request(mailbox: nil, command: nil, timeout: .seconds(300))
            request.url = server.url + "/" + Self.pathSegment(mailbox) + ";UIDVALIDITY=\(uidValidity)/;UID=\(message.uid)"
            request.maxResponseBytes = (message.size ?? 0) + (1 << 20)
            // Before the fetch: one that fails halfway may have set \Seen too.
            if message.seen == false { reseen.append(message.uid) }
            do {
                result[message.uid] = try await connection.perform(request).body
            } catch let notFound as CurlFailure where notFound.code == 78 {
                // CURLE_REMOTE_FILE_NOT_FOUND: no FETCH came back. Expunged since it was
                // listed, or the server refused it for now; looked at below.
                missing.append(message.uid)
            } catch {
                failure = error
                break
            }
        }
        // What was fetched is unseen again, also when a fetch failed or the task is being
        // cancelled. Best effort: the cursor, not the flag, decides what is new.
        if !reseen.isEmpty {
            _ = try? await run(mailbox: mailbox, "UID STORE \(IMAPResponse.set(reseen)) -FLAGS.SILENT (\\Seen)", timeout: .seconds(15), always: true)
        }
        if let failure { throw failure }
        if !missing.isEmpty {
            let still = IMAPResponse.search(try await run(mailbox: mailbox, "UID SEARCH UID \(IMAPResponse.set(missing))"))
                .filter { missing.contains($0) }
            if !still.isEmpty {
                throw CurlFailure(code: 78, message: "the server did not hand over message(s) \(IMAPResponse.set(still)), which still exist", responseCode: 0)
            }
        }
        return result
    }

    /// Adds \Seen.
    func markSeen(_ mailbox: String, uids: [UInt32]) async throws {
        guard !uids.isEmpty else { return }
        _ = try await run(mailbox: mailbox, "UID STORE \(IMAPResponse.set(uids)) +FLAGS.SILENT (\\Seen)")
    }

    /// The server's capabilities (CAPABILITY, once).
    func serverCapabilities() async throws -> Set<String> {
        if let known = capabilities.withLock({ $0 }) { return known }
        let listed = IMAPResponse.capabilities(try await run(mailbox: nil, "CAPABILITY"))
        capabilities.withLock { $0 = listed }
        return listed
    }

    /// How `move` moves on this server.
    enum MoveMethod: String, Sendable {
        /// UID MOVE (RFC 6851).
        case move
        /// UID COPY, \Deleted, UID EXPUNGE of just those (RFC 4315 UIDPLUS).
        case copyAndExpunge = "copy_and_expunge"
    }

    /// Moves messages to another mailbox, marking them seen first if asked: with UID MOVE
    /// (RFC 6851), or on a server without it with UID COPY, \Deleted and UID EXPUNGE of those
    /// UIDs only (UIDPLUS), so no message someone else marked deleted is expunged with them.
    /// On a server with neither, the copies are made and the originals only marked deleted.
    @discardableResult
    func move(_ mailbox: String, uids: [UInt32], to target: String, markingSeen: Bool) async throws -> MoveMethod {
        guard !uids.isEmpty else { return .move }
        if markingSeen { try await markSeen(mailbox, uids: uids) }
        let listed = try await serverCapabilities()
        let set = IMAPResponse.set(uids)
        if listed.contains("MOVE") {
            _ = try await run(mailbox: mailbox, "UID MOVE \(set) \(IMAPResponse.quoted(target))")
            return .move
        }
        // Copied first: a failure after this leaves a copy, never a lost message (the next
        // round copies again, and the duplicate is harmless next to a loss).
        _ = try await run(mailbox: mailbox, "UID COPY \(set) \(IMAPResponse.quoted(target))")
        _ = try await run(mailbox: mailbox, "UID STORE \(set) +FLAGS.SILENT (\\Deleted)")
        if listed.contains("UIDPLUS") {
            _ = try await run(mailbox: mailbox, "UID EXPUNGE \(set)")
        }
        return .copyAndExpunge
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
            /// The SELECT's message count: a larger one before `+ idling` is new mail too.
            var exists: Int?
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
            let words = line.split(separator: " ")
            let exists = words.count >= 3 && words[0] == "*" && words[2].uppercased() == "EXISTS" ? Int(words[1]) : nil
            if !progress.idling {
                if let next = IMAPResponse.uidNext(inLine: line) {
                    progress.selected = true
                    if next > knownUIDNext { return false }
                }
                if let exists {
                    if let earlier = progress.exists, exists > earlier { return false }
                    progress.exists = exists
                }
                return true
            }
            return exists == nil
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
