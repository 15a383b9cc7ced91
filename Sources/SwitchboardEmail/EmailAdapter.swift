// The email channel: IMAP in, SMTP out, both over libcurl.
//
// Receiving: the mailbox's UIDVALIDITY and the last UID looked at are kept in the store's
// cursors and advanced in the same transaction that commits the mail to the inbox, so a crash
// before the commit reads the same mail again and one after it never does. Handled mail is
// then marked seen (or moved to `email.processed_mailbox`); mail that cannot be read goes to
// the quarantine mailbox. A new installation, or a mailbox whose UIDVALIDITY changed, answers
// only unseen mail, and the inbox drops anything it already has by Message-ID. Between looks
// the channel waits in IMAP IDLE (new mail is read within about a second) or polls.
//
// Threads: a References / In-Reply-To chain is one conversation, named by its first message
// id (or by the conversation of the bot's own message it answers). What a reply needs later
// (the subject, the correspondent, each message's References) is kept per conversation in a
// cursor written only by the receiving loop.
//
// Sending: each outbox message becomes one mail whose Message-ID is made from the outbox
// delivery key and a prefix kept per database, so a retry after an uncertain failure sends the
// same mail again, never a second, different one. 4xx replies and broken connections are
// retried by the outbox; a 5xx reply is final.

import Crypto
import Foundation
public import Logging
import Metrics
import ServiceLifecycle
public import SwitchboardChannels
public import SwitchboardModel
public import SwitchboardStorage
import SwitchboardTracing
import Tracing

/// The email channel adapter.
public final class EmailAdapter: ChannelAdapter, Sendable {
    public static let channelID: ChannelID = "email"
    public let channel: ChannelID = EmailAdapter.channelID
    public let capabilities: ChannelCapabilities = [.threads]

    private let configuration: EmailConfiguration
    private let store: any Store
    private let inbox: InboxWriter
    private let retry: RetryPolicy
    private let logger: Logger
    private let limits: MIMELimits
    private let sharing: WorkSharing?
    private let crashPoint: (@Sendable (String) -> Void)?
    private let imap: IMAPClient
    private let idler: IMAPClient
    private let smtp: SMTPClient
    private let state = Locked(State())
    /// Whether the log has said once that the server cannot MOVE.
    private let toldMoveFallback = Locked(false)
    /// SMTP that does not answer `email.smtp_circuit_failures` times in a row is left alone for
    /// the cooldown: replies wait in the outbox (retried after it) instead of each waiting out a
    /// connection timeout.
    let smtpBreaker: CircuitBreaker
    private let smtpCircuit = Gauge(label: "switchboard_email_circuit_open", dimensions: [("dependency", "smtp")])
    private let imapCircuit = Gauge(label: "switchboard_email_circuit_open", dimensions: [("dependency", "imap")])

    private struct State {
        var status = ChannelStatus(.starting)
        var idPrefix: String?
        /// Each sender's recent mail (Message-ID and arrival), for the per-sender limit.
        var recent: [String: [(id: String, at: Date)]] = [:]
        var idleWorks = true
        var mailboxesReady = false
        /// A message whose fetch keeps failing while the server otherwise answers, and how
        /// often it failed: after a few tries it is set aside, so one message cannot stop the
        /// mailbox.
        var failing: (uid: UInt32, count: Int)?
    }

    private enum Keys {
        static let cursor = "email.cursor"
        static let idPrefix = "email.id_prefix"
        static func thread(_ conversation: String) -> String { "email.thread." + conversation }
    }

    private let received = Counter(label: "switchboard_email_received_total")
    private let sent = Counter(label: "switchboard_email_sent_total")
    private let sendRetries = Counter(label: "switchboard_email_send_retries_total")
    private let sendFailures = Counter(label: "switchboard_email_send_failures_total")
    private let pollFailures = Counter(label: "switchboard_email_poll_failures_total")
    private let quarantined = Counter(label: "switchboard_email_quarantined_total")

    /// Creates the adapter.
    public init(
        configuration: EmailConfiguration,
        store: any Store,
        inbox: InboxWriter,
        retry: RetryPolicy = RetryPolicy(base: 1, cap: 60, alertAfter: 5),
        logger: Logger,
        crashPoint: (@Sendable (String) -> Void)? = nil,
        sharing: WorkSharing? = nil
    ) {
        self.sharing = sharing
        self.configuration = configuration
        smtpBreaker = CircuitBreaker(threshold: configuration.smtpCircuitFailures, cooldown: configuration.smtpCircuitCooldown)
        self.store = store
        self.inbox = inbox
        self.retry = retry
        self.limits = configuration.limits
        self.crashPoint = crashPoint
        var logger = logger
        logger[metadataKey: "channel"] = "email"
        self.logger = logger
        imap = IMAPClient(server: configuration.imap, label: "imap")
        idler = IMAPClient(server: configuration.imap, label: "imap-idle")
        smtp = SMTPClient(server: configuration.smtp, ehloName: configuration.domain)
    }

    /// The poll loop's state, with the circuits of both connections: IMAP is open while the
    /// loop backs off after failures, SMTP by its breaker.
    public var status: ChannelStatus {
        var status = state.withLock { $0.status }
        status.circuits = ["imap": status.state == .retrying ? .open : .closed, "smtp": smtpBreaker.state]
        return status
    }

    // MARK: Receiving

    public func run() async throws {
        // One instance at a time reads the mailbox; the others stand by and send.
        let poller = PollerLease(
            name: "poller:email:\(configuration.imap.url) \(configuration.imap.username) \(configuration.mailbox)", sharing: sharing,
            store: store, clock: SystemWallClock(), logger: logger
        )
        if sharing != nil { state.withLock { $0.status = ChannelStatus(.standingBy) } }
        try await cancelWhenGracefulShutdown {
            try await poller.run {
                defer { self.state.withLock { $0.status = ChannelStatus(.standingBy) } }
                try await self.loop()
            }
        }
    }

    /// The last hour's mail per sender, from the store: the hourly limit holds across a
    /// restart, and when another instance takes over reading, it counts what the first one read.
    private func loadRecentSenders() async {
        let since = Date().addingTimeInterval(-3600)
        let limit = max(1000, configuration.maxPerSenderPerHour * 200)
        do {
            let sightings = try await store.read { [channel] in try $0.inboundSightings(channel: channel, since: since, limit: limit) }
            var recent: [String: [(id: String, at: Date)]] = [:]
            for sighting in sightings.reversed() {
                guard let address = Self.address(of: sighting.sender) else { continue }
                recent[address, default: []].append((sighting.externalID, sighting.receivedAt))
            }
            state.withLock { $0.recent = recent }
        } catch {
            logger.warning("could not read the last hour's mail for the per-sender limit; counting from now", metadata: ["error": "\(error)"])
        }
    }

    private func loop() async throws {
        var failures = 0
        var wokenForMail = false
        await loadRecentSenders()
        logger.info("reading mail", metadata: [
            "mailbox": "\(configuration.mailbox)", "server": "\(configuration.imap.url)",
            "wait": "\(configuration.idle ? "idle" : "poll every \(configuration.pollInterval)")",
        ])
        while !Task.isCancelled {
            do {
                let (uidNext, handled) = try await pollOnce()
                if failures > 0 { logger.notice("mail server reachable again", metadata: ["failures": "\(failures)"]) }
                failures = 0
                state.withLock { $0.status = ChannelStatus(.connected) }
                imapCircuit.record(0)
                // A wake-up that found nothing new (mail delivered and removed at once) waits a
                // moment, so two views of the mailbox that disagree cannot make a busy loop.
                if wokenForMail && handled == 0 { try await Task.sleep(for: .seconds(1)) }
                wokenForMail = try await waitForMail(knownUIDNext: uidNext)
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                pollFailures.increment()
                let summary = Self.describe(error)
                state.withLock { $0.status = ChannelStatus(.retrying, failures: failures, lastError: summary) }
                imapCircuit.record(1)
                let delay = min(retry.delay(afterFailures: failures, retryAfter: nil, jitter: Double.random(in: 0.5...1)), configuration.pollInterval.seconds * 4)
                let metadata: Logger.Metadata = ["error": "\(summary)", "failures": "\(failures)", "retry.in_s": "\(String(format: "%.1f", delay))"]
                if failures >= retry.alertAfter {
                    logger.error("reading mail keeps failing; backing off", metadata: metadata)
                } else {
                    logger.warning("reading mail failed; retrying", metadata: metadata)
                }
                try? await Task.sleep(for: .seconds(delay))
            }
        }
    }

    /// Waits in IDLE when the server allows it, else for the poll interval. Returns whether
    /// the server announced new mail.
    private func waitForMail(knownUIDNext: UInt32) async throws -> Bool {
        guard configuration.idle, state.withLock({ $0.idleWorks }) else {
            try await Task.sleep(for: configuration.pollInterval)
            return false
        }
        do {
            return try await idler.idle(configuration.mailbox, knownUIDNext: knownUIDNext, timeout: .seconds(50)) == .newMail
        } catch let failure as CurlFailure where !failure.isConnectionProblem && !failure.isLoginDenied {
            // A refused IDLE (the server has none): poll from now on.
            state.withLock { $0.idleWorks = false }
            logger.warning("the IMAP server refused IDLE; polling instead", metadata: [
                "error": "\(failure)", "poll_interval": "\(configuration.pollInterval)",
            ])
            return false
        }
    }

    private struct Cursor: Codable {
        var mailbox: String
        var uidValidity: UInt32
        /// Every UID up to this one has been looked at (or belongs to a scan's `pending`).
        var lastUID: UInt32
        /// A first look's unseen mail not handled yet, as an IMAP UID set: the look resumes
        /// from it after a crash or a failure, whatever became of the messages' \Seen flags.
        var pending: String?

        enum CodingKeys: String, CodingKey {
            case mailbox, uidValidity = "uid_validity", lastUID = "last_uid", pending
        }
    }

    /// Looks for new mail and handles all of it. Returns the mailbox's UIDNEXT as seen, and
    /// how many messages were handled.
    func pollOnce() async throws -> (uidNext: UInt32, handled: Int) {
        try await prepareMailboxes()
        let mailbox = configuration.mailbox
        let status = try await imap.status(mailbox)
        let stored = try await store.read { try $0.cursor(Keys.cursor) }
            .flatMap { try? JSONDecoder().decode(Cursor.self, from: Data($0.utf8)) }
        // What is in the mailbox now: UIDs up to UIDNEXT - 1 (mail arriving meanwhile is for
        // the next look; IDLE reports it at once).
        let last = status.uidNext - 1
        var cursor: Cursor
        var candidates: [IMAPResponse.Fetched] = []
        if let stored, stored.mailbox == mailbox, stored.uidValidity == status.uidValidity {
            cursor = stored
            let pending = IMAPResponse.uids(inSet: stored.pending ?? "")
            if !pending.isEmpty {
                candidates += try await imap.sizes(mailbox, uids: pending)
            }
            if last > stored.lastUID {
                candidates += try await imap.list(mailbox, from: stored.lastUID + 1, through: last)
            }
            if candidates.isEmpty {
                // Nothing left of an unfinished look (gone meanwhile), or a gap of UIDs that
                // no longer exist: remember that, so they are not listed again.
                if !pending.isEmpty || last > stored.lastUID {
                    cursor.pending = nil
                    cursor.lastUID = max(stored.lastUID, last)
                    _ = try await inbox.accept([], cursors: [InboxWriter.CursorUpdate(name: Keys.cursor, value: try Self.encode(cursor))])
                }
                return (status.uidNext, 0)
            }
        } else {
            if let stored {
                logger.warning("the mailbox was replaced (UIDVALIDITY or name changed); reading its unseen mail, and mail already answered is recognised by Message-ID", metadata: [
                    "mailbox": "\(mailbox)", "uid_validity.old": "\(stored.uidValidity)", "uid_validity.new": "\(status.uidValidity)",
                ])
            } else {
                logger.info("first look at the mailbox: unseen mail is answered, seen mail is history", metadata: ["mailbox": "\(mailbox)"])
            }
            let unseen = last >= 1 ? try await imap.unseen(mailbox, through: last) : []
            // Everything up to UIDNEXT that is not unseen is history. The plan is committed
            // before anything is fetched.
            cursor = Cursor(mailbox: mailbox, uidValidity: status.uidValidity, lastUID: last, pending: unseen.isEmpty ? nil : IMAPResponse.set(unseen))
            _ = try await inbox.accept([], cursors: [InboxWriter.CursorUpdate(name: Keys.cursor, value: try Self.encode(cursor))])
            guard !unseen.isEmpty else { return (status.uidNext, 0) }
            candidates = try await imap.sizes(mailbox, uids: unseen)
        }
        candidates.sort { $0.uid < $1.uid }
        // After a failed fetch, go one message at a time until the troublemaker is found.
        let most = state.withLock { $0.failing == nil } ? 25 : 1
        var batches: [[IMAPResponse.Fetched]] = []
        var batchBytes = 0
        for candidate in candidates {
            if let current = batches.last, current.count < most, batchBytes + (candidate.size ?? 0) <= 8 << 20 {
                batches[batches.count - 1].append(candidate)
            } else {
                batches.append([candidate])
                batchBytes = 0
            }
            batchBytes += min(candidate.size ?? 0, limits.maxBytes)
        }
        for (index, batch) in batches.enumerated() {
            // The last batch also records that every UID up to `last` was looked at.
            cursor = try await handle(batch, cursor: cursor, through: index == batches.count - 1 ? last : nil)
        }
        return (status.uidNext, candidates.count)
    }

    private func prepareMailboxes() async throws {
        guard !state.withLock({ $0.mailboxesReady }) else { return }
        try await imap.create(configuration.quarantineMailbox)
        if let processed = configuration.processedMailbox { try await imap.create(processed) }
        state.withLock { $0.mailboxesReady = true }
    }

    /// What to do with one fetched message.
    private enum Decision {
        case answer(InboundMessage, thread: String, state: ThreadState)
        case ignore(String)
        case quarantine(String)
    }

    /// Fetches, reads and commits one batch, then files it on the server.
    private func handle(_ batch: [IMAPResponse.Fetched], cursor: Cursor, through last: UInt32?) async throws -> Cursor {
        let mailbox = configuration.mailbox
        let wanted = batch.filter { ($0.size ?? 0) <= limits.maxBytes }
        var bodies: [UInt32: [UInt8]] = [:]
        var unfetchable: String?
        do {
            bodies = try await imap.bodies(mailbox, uidValidity: cursor.uidValidity, messages: wanted)
            state.withLock { $0.failing = nil }
        } catch let error as CancellationError {
            throw error
        } catch {
            let first = batch[0].uid
            let count = state.withLock { state -> Int in
                let count = state.failing?.uid == first ? state.failing!.count + 1 : 1
                state.failing = (first, count)
                return count
            }
            // The mailbox answered the listing but not this fetch, three times running for a
            // message on its own: set it aside instead of trying forever.
            guard batch.count == 1, count >= 3 else { throw error }
            unfetchable = "it could not be fetched: \(Self.describe(error))"
            state.withLock { $0.failing = nil }
        }
        crashPoint?("email_after_fetch")
        var messages: [InboundMessage] = []
        var updates: [InboxWriter.CursorUpdate] = []
        var threads: [String: ThreadState] = [:]
        var handled: [UInt32] = []
        var setAside: [UInt32] = []
        for item in batch {
            let decision: Decision
            if let size = item.size, size > limits.maxBytes {
                decision = .quarantine("the message is \(size) bytes, over the limit of \(limits.maxBytes)")
            } else if let unfetchable {
                decision = .quarantine(unfetchable)
            } else if let bytes = bodies[item.uid] {
                decision = try await examine(bytes, uid: item.uid, threads: &threads)
            } else {
                // Expunged since it was listed: nothing to do.
                logger.debug("a listed message was gone when fetched", metadata: ["imap.uid": "\(item.uid)"])
                continue
            }
            switch decision {
            case .answer(let message, let conversation, let threadState):
                messages.append(message)
                updates.append(InboxWriter.CursorUpdate(
                    name: Keys.thread(conversation), value: try Self.encode(threadState),
                    onlyWithNew: (EmailAdapter.channelID, message.externalID)
                ))
                handled.append(item.uid)
            case .ignore(let reason):
                logger.info("not answering a message", metadata: ["imap.uid": "\(item.uid)", "reason": "\(reason)"])
                Counter(label: "switchboard_email_ignored_total", dimensions: [("reason", Self.reasonLabel(reason))]).increment()
                handled.append(item.uid)
            case .quarantine(let reason):
                logger.warning("setting a message aside in quarantine", metadata: [
                    "imap.uid": "\(item.uid)", "reason": "\(reason)", "mailbox": "\(configuration.quarantineMailbox)",
                ])
                quarantined.increment()
                setAside.append(item.uid)
            }
        }
        // Every message of the batch is dealt with (answered, ignored, set aside or gone) in
        // this commit, and leaves the unfinished look's list with it.
        var next = cursor
        let done = Set(batch.map(\.uid))
        let newest = batch.map(\.uid).filter { $0 > cursor.lastUID }.max() ?? cursor.lastUID
        next.lastUID = max(newest, last ?? 0)
        let left = IMAPResponse.uids(inSet: cursor.pending ?? "").filter { !done.contains($0) }
        next.pending = left.isEmpty ? nil : IMAPResponse.set(left)
        updates.insert(InboxWriter.CursorUpdate(name: Keys.cursor, value: try Self.encode(next)), at: 0)
        let results = try await inbox.accept(messages, cursors: updates)
        received.increment(by: results.filter { if case .inserted = $0 { true } else { false } }.count)
        // Committed: now file the mail. A failure here is logged; the cursor already keeps the
        // mail from being answered twice.
        do {
            var methods: [IMAPClient.MoveMethod] = []
            if let processed = configuration.processedMailbox {
                methods.append(try await imap.move(mailbox, uids: handled, to: processed, markingSeen: true))
            } else {
                try await imap.markSeen(mailbox, uids: handled)
            }
            // Left unseen: someone should look at it.
            methods.append(try await imap.move(mailbox, uids: setAside, to: configuration.quarantineMailbox, markingSeen: false))
            if methods.contains(.copyAndExpunge), !toldMoveFallback.withLock({ told in defer { told = true }; return told }) {
                logger.info("the mail server has no MOVE; filing mail with UID COPY, \\Deleted and UID EXPUNGE", metadata: ["method": "copy_and_expunge"])
            }
        } catch let error as CancellationError {
            throw error
        } catch {
            logger.warning("could not file handled mail on the server", metadata: ["error": "\(Self.describe(error))"])
        }
        return next
    }

    /// Reads one message and decides what to do with it.
    private func examine(_ bytes: [UInt8], uid: UInt32, threads: inout [String: ThreadState]) async throws -> Decision {
        let message: EmailMessage
        do {
            message = try MIMEParser.parse(bytes, limits: limits)
        } catch {
            return .quarantine("\(error)")
        }
        if !message.problems.isEmpty {
            logger.notice("read a damaged message; answering what could be read", metadata: [
                "imap.uid": "\(uid)", "problems": "\(message.problems.prefix(5).joined(separator: "; "))",
            ])
        }
        guard let from = message.from.first, EmailConfiguration.isAddress(from.address.lowercased()) else {
            return .quarantine("no usable sender address")
        }
        let address = from.address.lowercased()
        if let reason = NoReplyReason.check(message, ownAddress: configuration.address) {
            return .ignore(reason.rawValue)
        }
        guard configuration.allowedSenders.allows(address) else {
            logger.warning("mail from a sender who is not allowed; not answered", metadata: ["sender": "\(address)", "imap.uid": "\(uid)"])
            return .ignore("sender not allowed")
        }
        let now = Date()
        let externalID = message.messageID.map(Self.boundedID) ?? Self.contentID(bytes)
        // Counted once per message: a batch read again after a failure is not a second mail.
        let overLimit = state.withLock { state -> Bool in
            for (sender, entries) in state.recent {
                let kept = entries.filter { now.timeIntervalSince($0.at) < 3600 }
                state.recent[sender] = kept.isEmpty ? nil : kept
            }
            var entries = state.recent[address, default: []]
            if entries.contains(where: { $0.id == externalID }) { return false }
            guard entries.count < configuration.maxPerSenderPerHour else { return true }
            entries.append((externalID, now))
            state.recent[address] = entries
            return false
        }
        if overLimit {
            logger.warning("a sender wrote more than the hourly limit; not answered", metadata: [
                "sender": "\(address)", "limit": "\(configuration.maxPerSenderPerHour)",
            ])
            return .ignore("sender over the hourly limit")
        }

        let parentID = (message.inReplyTo.first ?? message.references.last).flatMap { $0.count <= Self.maxIDLength ? $0 : nil }
        let (conversation, parentKind) = try await thread(of: message, externalID: externalID)
        var text = message.text
        if parentKind == .confirmationRequest {
            // An answer to a confirmation mail: its first line is the answer.
            text = text.split(separator: "\n").first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? text
        }
        var threadState = try await loadThread(conversation, cache: threads)
            ?? ThreadState(subject: message.subject, correspondent: address, messages: [])
        threadState.record(id: externalID, references: Self.references(for: message), subject: message.subject, correspondent: address)
        threads[conversation] = threadState
        let authenticated = SenderAuthentication.isAuthenticated(message, trustedAuthservID: configuration.trustedAuthservID)
        if !message.attachments.isEmpty {
            logger.info("a message came with attachments; they are not read", metadata: [
                "imap.uid": "\(uid)", "attachments": "\(message.attachments.map { "\($0.name) (\($0.size) bytes)" }.joined(separator: ", "))",
            ])
        }
        let key = ConversationKey(channel: channel, conversation: ConversationID(conversation))
        let inbound = withTracedSpan("email.receive", ofKind: .consumer) { span in
            span?.attributes["email.imap_uid"] = Int(uid)
            return InboundMessage(
                externalID: externalID, conversation: key,
                sender: Sender(id: .email(address), displayName: from.name),
                text: text, replyTo: parentID, thread: nil,
                trust: TrustFacts(senderAuthenticated: authenticated, containsUntrustedContent: Self.forwardsContent(message)), receivedAt: now,
                addressed: true, traceContext: TraceCarrier.capture()
            )
        }
        return .answer(inbound, thread: conversation, state: threadState)
    }

    /// The conversation a message belongs to, and the kind of the bot's message it answers.
    private func thread(of message: EmailMessage, externalID: String) async throws -> (String, OutboundKind?) {
        let chain = Self.references(for: message)
        let channel = self.channel
        let parent = message.inReplyTo.first ?? chain.last
        let (known, parentKind) = try await store.read { reader -> (String?, OutboundKind?) in
            // Only a direct answer to a confirmation mail is an answer to it.
            let parentKind = try parent.flatMap { try reader.outbound(channel: channel, externalID: $0)?.kind }
            // The newest known message of the chain decides: the bot's own, else one received.
            for id in chain.reversed() {
                if let sent = try reader.outbound(channel: channel, externalID: id) {
                    return (sent.conversation.conversation.rawValue, parentKind)
                }
                if let inbound = try reader.inboundRecord(channel: channel, externalID: id) {
                    return (inbound.stored.message.conversation.conversation.rawValue, parentKind)
                }
            }
            return (nil, parentKind)
        }
        // In angle brackets, as in the headers: a thread's name never equals an address, which
        // names the conversations of mail the bot was asked to send.
        return (known ?? "<\(chain.first ?? externalID)>", parentKind)
    }

    /// The message's chain of ancestors, oldest first: References, then In-Reply-To if missing.
    /// Ids too long to copy into a reply's headers are left out.
    static func references(for message: EmailMessage) -> [String] {
        var chain = message.references.filter { $0.count <= maxIDLength }
        for id in message.inReplyTo where id.count <= maxIDLength && !chain.contains(id) { chain.append(id) }
        return chain
    }

    /// The longest message id copied into a reply.
    static let maxIDLength = 250

    /// A message's own id as kept: a longer one than a reply could carry is replaced by its hash.
    static func boundedID(_ id: String) -> String {
        id.count <= maxIDLength ? id : contentID(Array(id.utf8))
    }

    /// Whether the request carries someone else's text: a forwarded message. What it says is
    /// data, not the sender's own request (DESIGN.md: such plans are tainted).
    static func forwardsContent(_ message: EmailMessage) -> Bool {
        if message.subject.range(of: #"^\s*(fwd?|wg|tr|rv)\s*:"#, options: [.regularExpression, .caseInsensitive]) != nil { return true }
        let markers = ["---------- Forwarded message", "Begin forwarded message:", "-------- Original Message --------", "-------- Forwarded Message --------"]
        if markers.contains(where: { message.body.contains($0) }) { return true }
        return message.attachments.contains { $0.contentType.lowercased() == "message/rfc822" }
    }

    /// An id for a message without a Message-ID: its content's hash, so a repeat is recognised.
    static func contentID(_ bytes: [UInt8]) -> String {
        let digest = SHA256.hash(data: bytes).prefix(16).map { String(format: "%02x", $0) }.joined()
        return "\(digest)@no-message-id.invalid"
    }

    private static func reasonLabel(_ reason: String) -> String {
        reason.replacingOccurrences(of: " ", with: "_")
    }

    // MARK: Threads

    /// What replies in a conversation need: kept per conversation, newest messages last.
    struct ThreadState: Codable, Sendable, Equatable {
        var subject: String
        var correspondent: String
        var messages: [Entry]

        struct Entry: Codable, Sendable, Equatable {
            var id: String
            /// The message's own References (what an answer continues), at most 20 kept.
            var references: [String]
        }

        mutating func record(id: String, references: [String], subject: String, correspondent: String) {
            if !subject.trimmingCharacters(in: .whitespaces).isEmpty { self.subject = subject }
            self.correspondent = correspondent
            messages.removeAll { $0.id == id }
            messages.append(Entry(id: id, references: ThreadState.trim(references)))
            if messages.count > 20 { messages.removeFirst(messages.count - 20) }
        }

        /// The References of an answer to `parent`: the parent's own, then the parent.
        func references(answering parent: String?) -> [String] {
            guard let parent else { return messages.last.map { $0.references + [$0.id] } ?? [] }
            if let entry = messages.last(where: { $0.id == parent }) { return ThreadState.trim(entry.references + [parent]) }
            return [parent]
        }

        /// The first id (the thread's root) and the newest 19.
        static func trim(_ ids: [String]) -> [String] {
            ids.count <= 20 ? ids : [ids[0]] + ids.suffix(19)
        }
    }

    private func loadThread(_ conversation: String, cache: [String: ThreadState]) async throws -> ThreadState? {
        if let cached = cache[conversation] { return cached }
        guard let text = try await store.read({ try $0.cursor(Keys.thread(conversation)) }) else { return nil }
        return try? JSONDecoder().decode(ThreadState.self, from: Data(text.utf8))
    }

    // MARK: Delivery

    public func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt {
        let prefix = try await idPrefix()
        let conversation = message.conversation.conversation.rawValue
        let thread = try await loadThread(conversation, cache: [:])
        guard let recipient = try await recipientAddress(message, thread: thread) else {
            sendFailures.increment()
            throw ChannelError(.rejected, "the message has no email recipient", isTransient: false)
        }
        let parent = message.inReplyTo ?? thread?.messages.last?.id
        var subject: String
        if let own = message.subject, !own.isEmpty {
            subject = own
        } else if let thread {
            subject = "Re: " + Quotes.subjectRequest(thread.subject)
        } else {
            subject = "A message from \(configuration.displayName)"
        }
        // A subject is a line, not a letter: whatever came in, the reply's stays short.
        if subject.count > 200 { subject = String(subject.prefix(199)) + "…" }
        // A mail someone asked the bot to write is theirs, not an automatic one; the bot's own
        // notices (a link code, a reminder) are auto-generated, its answers auto-replied (RFC
        // 3834), so no vacation responder answers them.
        let autoSubmitted: String? = switch message.kind {
        case .relayed: nil
        case .notice: "auto-generated"
        case .reply, .confirmationRequest: "auto-replied"
        }
        let messageID = "\(prefix).\(Self.idPart(message.deliveryKey))@\(configuration.domain)"
        let email = OutgoingEmail(
            from: configuration.address, fromName: configuration.displayName, to: recipient,
            subject: subject, messageID: messageID, date: message.createdAt,
            inReplyTo: thread == nil ? message.inReplyTo : parent,
            references: thread?.references(answering: parent) ?? (message.inReplyTo.map { [$0] } ?? []),
            autoSubmitted: autoSubmitted, text: message.text
        )
        if let wait = smtpBreaker.admit() {
            sendRetries.increment()
            throw ChannelError(
                .unreachable, "the mail server (SMTP) is not answering; the next try is in \(Int(wait.rounded(.up))) s", isTransient: true, retryAfter: wait
            )
        }
        do {
            try await smtp.send(from: configuration.address, to: [recipient], message: EmailComposer.compose(email))
            smtpBreaker.succeeded()
            smtpCircuit.record(0)
            sent.increment()
            return DeliveryReceipt(externalID: messageID)
        } catch let failure as SMTPFailure {
            // The server answered (a refusal or a deferral of this message): it is up.
            if failure.isConnectionProblem || failure.isLoginDenied { smtpBreaker.failed() } else { smtpBreaker.succeeded() }
            smtpCircuit.record(smtpBreaker.state == .closed ? 0 : 1)
            if failure.isTransient { sendRetries.increment() } else { sendFailures.increment() }
            throw ChannelError(
                failure.isLoginDenied ? .unauthorized : failure.isTransient ? .unreachable : .rejected,
                failure.message, isTransient: failure.isTransient
            )
        } catch {
            // Cancelled: says nothing about the server.
            smtpBreaker.released()
            throw error
        }
    }

    /// Where a message goes: its recipient's address; for a person known by another channel
    /// (a notice to someone who linked this address), the address they linked; for a message
    /// with no recipient, the thread's correspondent.
    private func recipientAddress(_ message: OutboundMessage, thread: ThreadState?) async throws -> String? {
        guard let person = message.recipient else { return thread?.correspondent }
        if let address = Self.address(of: person) { return address }
        let linked = try await store.read { try $0.linkedIdentities(of: person) }
        return linked.lazy.compactMap { Self.address(of: $0) }.first
    }

    /// The address of an `email:` person id.
    static func address(of person: PersonID?) -> String? {
        guard let raw = person?.rawValue, raw.hasPrefix("email:") else { return nil }
        let address = String(raw.dropFirst("email:".count))
        return EmailConfiguration.isAddress(address) ? address : nil
    }

    /// A delivery key as the left part of a Message-ID: letters, digits, `-` and `.`.
    static func idPart(_ key: String) -> String {
        String(key.unicodeScalars.map { scalar in
            (scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == ".")) ? Character(scalar) : "-"
        })
    }

    /// The per-database prefix of Message-IDs, made once: ids stay unique even when a new
    /// database starts its outbox numbering again.
    private func idPrefix() async throws -> String {
        if let known = state.withLock({ $0.idPrefix }) { return known }
        let fresh = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12)).lowercased()
        let prefix = try await store.write { tx -> String in
            if let existing = try tx.cursor(Keys.idPrefix) { return existing }
            try tx.setCursor(Keys.idPrefix, value: fresh)
            return fresh
        }
        state.withLock { $0.idPrefix = prefix }
        return prefix
    }

    // MARK: Helpers

    private static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// An error for logs and status: never a credential (libcurl's messages carry none, as
    /// credentials are never in URLs).
    static func describe(_ error: any Error) -> String {
        switch error {
        case let failure as CurlFailure: failure.description
        case let failure as SMTPFailure: failure.message
        case let malformed as IMAPResponse.Malformed: "unreadable IMAP response: \(malformed)"
        default: String(describing: error)
        }
    }
}

extension Duration {
    /// The duration in seconds.
    fileprivate var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
