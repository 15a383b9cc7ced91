// The Matrix channel: a /sync long-poll loop in, PUT /send out.
//
// Receiving: each sync response becomes inbound messages that are committed to the inbox in
// one transaction together with the new `next_batch` (and any per-room state learnt), so a
// crash before the commit replays the same events and the inbox drops the duplicates by event
// id. The first sync of a new installation only records where things stand: nothing from
// before the bot joined a room is answered. A `limited` timeline is filled from /messages. A
// sync token the server rejects leads to a fresh sync whose events are deduplicated the same
// way.
//
// Sending: every outbound message is an `m.notice` sent with PUT and the outbox delivery key
// as the transaction id, so a retried send is the same event. 429 responses carry the server's
// wait to the outbox's retry policy.
//
// State kept in the store's cursors: the session (device id and access token, so a restart is
// the same device), `next_batch`, and per room the time the bot joined and whether it has told
// the room that it cannot read encrypted messages.

public import AsyncHTTPClient
import Foundation
public import Logging
import Metrics
import NIOHTTP1
import ServiceLifecycle
public import SwitchboardChannels
public import SwitchboardModel
public import SwitchboardStorage
import SwitchboardTracing
import Tracing

/// The Matrix channel adapter.
public final class MatrixAdapter: ChannelAdapter, Sendable {
    public static let channelID: ChannelID = "matrix"
    public let channel: ChannelID = MatrixAdapter.channelID
    public let capabilities: ChannelCapabilities = [.threads, .reactions, .formatting]

    private let configuration: MatrixConfiguration
    private let client: MatrixClient
    private let store: any Store
    private let inbox: InboxWriter
    private let retry: RetryPolicy
    private let logger: Logger
    private let sharing: WorkSharing?
    private let state = Locked(State())
    private let chores = AsyncStream.makeStream(of: Chore.self, bufferingPolicy: .bufferingNewest(4096))

    private struct State {
        var deviceID: String?
        var displayName: String?
        var rooms: [String: RoomState] = [:]
        /// Invites accepted but not joined yet (the join failed and is retried).
        var pendingJoins: Set<String> = []
        var pendingJoinsLoaded = false
        /// Starts every transaction id, so ids stay unique for a device even when the database
        /// (and with it the outbox numbering) starts over.
        var transactionPrefix: String?
        /// Requests not answered yet, by event id, with their room: typing shows for those
        /// that take a while.
        var unanswered: [String: String] = [:]
        /// Rooms where the bot said it is typing.
        var typingIn: Set<String> = []
        /// The newest answered request per room whose read receipt is still to be sent.
        var receipts: [String: String] = [:]
        var status = ChannelStatus(.starting)
        /// End-to-end encryption, once the device is known (nil when encryption is off).
        var crypto: MatrixCrypto?
        /// Whether the "encryption is off for want of a key" warning was logged.
        var warnedNoCryptoKey = false
        /// Why the encryption state could not be opened, as last logged.
        var cryptoProblem: String?
    }

    struct RoomState: Codable, Sendable {
        /// When the bot joined, in the origin server's milliseconds; earlier events are history.
        var joinedAt: Int64?
        /// Whether the bot already said it cannot read encrypted messages here.
        var encryptionNoticeSent: Bool = false
        /// Joined members, bot included; not persisted.
        var members: Int?
        /// How the room encrypts, from its `m.room.encryption` state; nil for a clear-text room.
        var encryption: RoomEncryption?
        /// Whether `encryption` is known (rooms joined before it was kept are asked once).
        var encryptionKnown: Bool = false

        enum CodingKeys: String, CodingKey {
            case joinedAt = "joined_at"
            case encryptionNoticeSent = "encryption_notice_sent"
            case encryption
            case encryptionKnown = "encryption_known"
        }

        init() {}

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            joinedAt = try container.decodeIfPresent(Int64.self, forKey: .joinedAt)
            encryptionNoticeSent = try container.decodeIfPresent(Bool.self, forKey: .encryptionNoticeSent) ?? false
            encryption = try container.decodeIfPresent(RoomEncryption.self, forKey: .encryption)
            encryptionKnown = try container.decodeIfPresent(Bool.self, forKey: .encryptionKnown) ?? false
        }
    }

    private enum Keys {
        static let session = "matrix.session"
        static let nextBatch = "matrix.next_batch"
        static let pendingJoins = "matrix.pending_joins"
        static let transactionPrefix = "matrix.txn_prefix"
        static func room(_ id: String) -> String { "matrix.room." + id }
    }

    /// Seals the access token the bot logged in for, so the database holds none in the clear.
    private let sealer: SecretSealer

    private let eventsReceived = Counter(label: "switchboard_matrix_events_received_total")
    private let repliesSent = Counter(label: "switchboard_matrix_replies_sent_total")
    /// Sends that failed and will be tried again (429, 5xx, unreachable).
    private let sendRetries = Counter(label: "switchboard_matrix_send_retries_total")
    /// Sends the homeserver refused for good (403, 404, 400).
    private let sendFailures = Counter(label: "switchboard_matrix_send_failures_total")
    private let syncFailures = Counter(label: "switchboard_matrix_sync_failures_total")
    private let syncLag = Gauge(label: "switchboard_matrix_sync_lag_seconds")

    /// Creates the adapter.
    public init(
        configuration: MatrixConfiguration,
        store: any Store,
        inbox: InboxWriter,
        retry: RetryPolicy = RetryPolicy(base: 0.5, cap: 15, alertAfter: 5),
        http: HTTPClient = .shared,
        sealer: SecretSealer,
        logger: Logger,
        sharing: WorkSharing? = nil
    ) {
        self.sharing = sharing
        self.sealer = sealer
        self.configuration = configuration
        self.client = MatrixClient(homeserver: configuration.homeserver, http: http)
        self.store = store
        self.inbox = inbox
        self.retry = retry
        var logger = logger
        logger[metadataKey: "channel"] = "matrix"
        self.logger = logger
    }

    public var status: ChannelStatus { state.withLock { $0.status } }

    private var identity: MatrixIdentity {
        MatrixIdentity(
            userID: configuration.userID,
            displayName: state.withLock { $0.displayName },
            commandPrefix: configuration.commandPrefix
        )
    }

    // MARK: Running

    public func run() async throws {
        // One instance at a time syncs the account; the others stand by and deliver.
        let poller = PollerLease(
            name: "poller:matrix:\(configuration.homeserver) \(configuration.userID)", sharing: sharing, store: store,
            clock: SystemWallClock(), logger: logger
        )
        if sharing != nil { state.withLock { $0.status = ChannelStatus(.standingBy) } }
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await poller.run {
                        do {
                            try await self.loop()
                        } catch {
                            await self.stepDown()
                            throw error
                        }
                        await self.stepDown()
                    }
                }
                group.addTask { await self.doChores() }
                // The sync loop ends only when cancelled; the chores end with it.
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// The sync stopped (shut down, or the lease went to another instance): what is cached is
    /// stale from now on. The encryption state is closed once work in flight is done, so no
    /// delivery here uses a ratchet the next holder of the device's keys also uses.
    private func stepDown() async {
        let crypto = state.withLock { state -> MatrixCrypto? in
            state.status = ChannelStatus(.standingBy)
            state.rooms.removeAll()
            defer { state.crypto = nil }
            return state.crypto
        }
        await crypto?.close()
    }

    /// Typing notices and read receipts: small requests that may wait a moment and must not
    /// hold up receiving or delivery. They run here, inside the adapter's own service.
    private enum Chore: Sendable {
        /// Show typing in the room if the request is still unanswered after a moment.
        case typingIfSlow(room: String, event: String)
        case stopTyping(room: String)
        /// Send the room's newest pending read receipt after a moment.
        case receipt(room: String)
    }

    private func schedule(_ chore: Chore) {
        if case .dropped = chores.continuation.yield(chore) {
            logger.debug("too many typing and receipt updates waiting; dropped one", metadata: ["chore": "\(chore)"])
        }
    }

    private func doChores() async {
        await withDiscardingTaskGroup { group in
            for await chore in chores.stream {
                group.addTask { await self.perform(chore) }
            }
        }
    }

    private func perform(_ chore: Chore) async {
        switch chore {
        case .typingIfSlow(let roomID, let eventID):
            try? await Task.sleep(for: Self.typingDelay)
            let start = state.withLock { state -> Bool in
                guard state.unanswered[eventID] != nil, !state.typingIn.contains(roomID) else { return false }
                state.typingIn.insert(roomID)
                return true
            }
            if start { _ = try? await client.request(.PUT, typingPath(roomID), body: ["typing": true, "timeout": 30000]) }
        case .stopTyping(let roomID):
            _ = try? await client.request(.PUT, typingPath(roomID), body: ["typing": false])
        case .receipt(let roomID):
            try? await Task.sleep(for: Self.receiptDelay)
            guard let latest = state.withLock({ $0.receipts.removeValue(forKey: roomID) }) else { return }
            let path = "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/receipt/m.read/\(MatrixClient.segment(latest))"
            do {
                try await client.request(.POST, path, body: .object([:]))
                logger.trace("sent a read receipt", metadata: ["room.id": "\(roomID)", "event.id": "\(latest)"])
            } catch {
                logger.debug("could not send a read receipt", metadata: ["room.id": "\(roomID)", "event.id": "\(latest)", "error": "\(error)"])
            }
        }
    }

    private func loop() async throws {
        var failures = 0
        while !Task.isCancelled {
            do {
                try await ensureSession()
                try await ensureCrypto()
                try await syncOnce()
                if failures > 0 {
                    logger.notice("homeserver reachable again", metadata: ["failures": "\(failures)"])
                }
                failures = 0
                state.withLock {
                    // Connected; a broken encryption state (a changed crypto key) shows in
                    // readiness, since encrypted rooms go unanswered until it is fixed.
                    $0.status = ChannelStatus(.connected, lastError: $0.cryptoProblem.map { "end-to-end encryption unavailable: \($0)" })
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                syncFailures.increment()
                let summary = (error as? MatrixError)?.description ?? String(describing: type(of: error))
                state.withLock { $0.status = ChannelStatus(.retrying, failures: failures, lastError: summary) }
                let matrixError = error as? MatrixError
                if matrixError?.isUnauthorized == true {
                    // A revoked or expired token: log in again (with a password) on the next turn.
                    client.setAccessToken(nil)
                }
                let delay = retry.delay(afterFailures: failures, retryAfter: matrixError?.retryAfter, jitter: Double.random(in: 0.5...1))
                let metadata: Logger.Metadata = ["error": "\(error)", "failures": "\(failures)", "retry.in_s": "\(String(format: "%.1f", delay))"]
                if failures >= retry.alertAfter {
                    logger.error("sync keeps failing; backing off", metadata: metadata)
                } else {
                    logger.warning("sync failed; retrying", metadata: metadata)
                }
                try? await Task.sleep(for: .seconds(delay))
            }
        }
    }

    // MARK: Session

    private struct StoredSession: Codable {
        var homeserver: String
        var userID: String
        var deviceID: String
        var accessToken: String

        enum CodingKeys: String, CodingKey {
            case homeserver, userID = "user_id", deviceID = "device_id", accessToken = "access_token"
        }
    }

    private func loadSession() async throws -> StoredSession? {
        guard let text = try await store.read({ try $0.cursor(Keys.session) }) else { return nil }
        let session: StoredSession
        do {
            session = try Self.openSession(text, sealer: sealer)
        } catch let error as SealingError {
            logger.warning("the stored Matrix session does not open with this secrets key; logging in again", metadata: ["error": "\(error)"])
            return nil
        } catch {
            logger.warning("the stored Matrix session is unreadable; logging in again")
            return nil
        }
        guard session.homeserver == configuration.homeserver, session.userID == configuration.userID else { return nil }
        if !SecretSealer.isSealed(text) {
            // Written in the clear by an earlier version: seal it now.
            try await saveSession(session)
        }
        return session
    }

    private func saveSession(_ session: StoredSession) async throws {
        let sealed = try sealer.seal(String(decoding: try JSONEncoder().encode(session), as: UTF8.self), name: Keys.session)
        try await store.write { try $0.setCursor(Keys.session, value: sealed) }
    }

    /// The stored session: sealed, or in the clear as versions before sealing wrote it.
    private static func openSession(_ text: String, sealer: SecretSealer) throws -> StoredSession {
        let json = SecretSealer.isSealed(text) ? try sealer.open(text, name: Keys.session) : text
        return try JSONDecoder().decode(StoredSession.self, from: Data(json.utf8))
    }

    /// Makes sure the client has a working access token.
    private func ensureSession() async throws {
        try await loadTransactionPrefix()
        guard !client.hasAccessToken else { return }
        switch configuration.credential {
        case .accessToken(let token):
            client.setAccessToken(token)
            let whoami = try await whoami()
            state.withLock { $0.deviceID = whoami.deviceID }
            logger.info("using the configured access token", metadata: ["user.id": "\(whoami.userID)", "device.id": "\(whoami.deviceID ?? "-")"])
        case .password(let password):
            let stored = try await loadSession()
            if let stored {
                client.setAccessToken(Secret(stored.accessToken))
                do {
                    _ = try await whoami()
                    state.withLock { $0.deviceID = stored.deviceID }
                    logger.info("resumed the stored session", metadata: ["device.id": "\(stored.deviceID)"])
                    try await loadProfile()
                    return
                } catch let error as MatrixError where error.isUnauthorized {
                    client.setAccessToken(nil)
                    logger.notice("the stored session was signed out; logging in again on the same device", metadata: ["device.id": "\(stored.deviceID)"])
                }
            }
            var body: [String: JSONValue] = [
                "type": "m.login.password",
                "identifier": ["type": "m.id.user", "user": .string(configuration.userID)],
                "password": .string(password.revealed),
                "initial_device_display_name": .string(configuration.deviceName),
            ]
            if let device = stored?.deviceID { body["device_id"] = .string(device) }
            let response = try await client.request(.POST, "/_matrix/client/v3/login", body: .object(body), authenticated: false)
            guard let token = response["access_token"]?.stringValue, let device = response["device_id"]?.stringValue else {
                throw MatrixError(status: 200, errcode: nil, message: "the login response had no access token or device id", retryAfter: nil)
            }
            let session = StoredSession(homeserver: configuration.homeserver, userID: configuration.userID, deviceID: device, accessToken: token)
            try await saveSession(session)
            client.setAccessToken(Secret(token))
            state.withLock { $0.deviceID = device }
            logger.info("logged in", metadata: ["device.id": "\(device)"])
        }
        try await loadProfile()
    }

    /// Takes the access token the syncing instance stored (or the configured one), without
    /// logging in: a standing-by instance never makes a device of its own.
    private func useStoredSession() async throws {
        try await loadTransactionPrefix()
        switch configuration.credential {
        case .accessToken(let token):
            client.setAccessToken(token)
        case .password:
            if let stored = try await loadSession() { client.setAccessToken(Secret(stored.accessToken)) }
        }
    }

    /// Loads (or creates, once per database) the prefix of transaction ids.
    private func loadTransactionPrefix() async throws {
        guard state.withLock({ $0.transactionPrefix == nil }) else { return }
        let fresh = String(UUID().uuidString.prefix(8)).lowercased()
        let prefix = try await store.write { tx -> String in
            if let existing = try tx.cursor(Keys.transactionPrefix) { return existing }
            try tx.setCursor(Keys.transactionPrefix, value: fresh)
            return fresh
        }
        state.withLock { $0.transactionPrefix = prefix }
    }

    private func whoami() async throws -> (userID: String, deviceID: String?) {
        let response = try await client.request(.GET, "/_matrix/client/v3/account/whoami")
        let userID = response["user_id"]?.stringValue ?? ""
        guard userID == configuration.userID else {
            throw MatrixError(
                status: nil, errcode: nil,
                message: "the access token belongs to \(userID), not matrix.user_id \(configuration.userID)", retryAfter: nil
            )
        }
        return (userID, response["device_id"]?.stringValue)
    }

    private func loadProfile() async throws {
        let path = "/_matrix/client/v3/profile/\(MatrixClient.segment(configuration.userID))"
        let name = try? await client.request(.GET, path)["displayname"]?.stringValue
        state.withLock { $0.displayName = name }
    }

    // MARK: Encryption

    /// Opens the device's encryption account once the device is known, and publishes its keys.
    private func ensureCrypto(publishKeys: Bool = true) async throws {
        guard configuration.encryption != .off else { return }
        guard let secret = configuration.cryptoKey else {
            let warn = state.withLock { state -> Bool in
                defer { state.warnedNoCryptoKey = true }
                return !state.warnedNoCryptoKey
            }
            if warn {
                logger.warning("matrix.crypto_key is not set: encrypted rooms get a notice that the bot cannot read them. Set it (openssl rand -base64 32) to turn end-to-end encryption on.")
            }
            return
        }
        guard state.withLock({ $0.crypto == nil }) else { return }
        guard let deviceID = state.withLock({ $0.deviceID }) else {
            throw MatrixError(status: nil, errcode: nil, message: "the homeserver did not say which device this is; end-to-end encryption needs it", retryAfter: nil)
        }
        let crypto: MatrixCrypto
        do {
            crypto = try await MatrixCrypto.open(
                userID: configuration.userID, deviceID: deviceID, client: client, store: store, keys: CryptoKeys(secret: secret), logger: logger,
                allowedSender: { [allowed = configuration.allowedUsers] in allowed.allows($0) }
            )
        } catch {
            // Clear-text rooms keep working; encrypted ones wait for the operator. Said once per
            // distinct problem, tried again on every sync.
            let problem = "\(error)"
            let first = state.withLock { state -> Bool in
                defer { state.cryptoProblem = problem }
                return state.cryptoProblem != problem
            }
            if first {
                logger.error("end-to-end encryption is unavailable; encrypted rooms cannot be read until this is fixed", metadata: ["error": "\(problem)"])
            }
            return
        }
        state.withLock {
            $0.crypto = crypto
            $0.cryptoProblem = nil
        }
        guard publishKeys else { return }
        do {
            // The device keys go up on every start: the homeserver drops them when a device is
            // signed out, and the bot logs in again as the same device.
            try await crypto.maintainKeys(oneTimeKeyCount: nil, unusedFallbackTypes: nil, publishDeviceKeys: true)
        } catch {
            logger.warning("could not upload encryption keys; will retry after the next sync", metadata: ["error": "\(error)"])
        }
    }

    private var crypto: MatrixCrypto? { state.withLock { $0.crypto } }

    /// For `switchboard matrix setup-crypto`: logs in (or resumes the stored session), opens
    /// the device's encryption keys, and makes the account's cross-signing keys.
    ///
    /// - Returns: nil when cross-signing keys exist and `replacing` is false.
    public func setUpCrossSigning(replacing: Bool) async throws -> CrossSigningSetup? {
        guard configuration.encryption != .off, configuration.cryptoKey != nil else {
            throw MatrixError(status: nil, errcode: nil, message: "end-to-end encryption is off: set matrix.crypto_key (and leave matrix.encryption at optional or required)", retryAfter: nil)
        }
        try await ensureSession()
        // No key upload here: that changes the account record, which is the running bot's to write.
        try await ensureCrypto(publishKeys: false)
        guard let crypto else {
            throw MatrixError(status: nil, errcode: nil, message: "the device's encryption keys could not be opened (see the error above)", retryAfter: nil)
        }
        if !replacing, try await crypto.hasCrossSigning() { return nil }
        var password: Secret?
        if case .password(let secret) = configuration.credential { password = secret }
        return try await crypto.setUpCrossSigning(password: password)
    }

    /// Signs the stored session out and forgets it.
    ///
    /// - Returns: whether there was a session to sign out.
    public static func logout(configuration: MatrixConfiguration, store: any Store, sealer: SecretSealer, http: HTTPClient = .shared) async throws -> Bool {
        guard let text = try await store.read({ try $0.cursor(Keys.session) }) else { return false }
        if let session = try? openSession(text, sealer: sealer) {
            let client = MatrixClient(homeserver: session.homeserver, http: http)
            client.setAccessToken(Secret(session.accessToken))
            do {
                try await client.request(.POST, "/_matrix/client/v3/logout", body: .object([:]))
            } catch let error where error.isUnauthorized {
                // Already signed out elsewhere: forgetting it is all that is left.
            }
        }
        try await store.write { try $0.deleteCursor(Keys.session) }
        return true
    }

    // MARK: Sync

    private static let filter: String = {
        let timelineTypes: [JSONValue] = [
            "m.room.message", "m.reaction", "m.room.redaction", "m.room.encrypted", "m.room.member", "m.room.encryption",
        ]
        let filter: JSONValue = [
            "presence": ["types": []],
            "account_data": ["types": []],
            "room": [
                "timeline": ["limit": 100, "types": .array(timelineTypes)],
                // No lazy loading: it costs the homeserver work on every sync, and the bot counts
                // members itself (/joined_members) only when a membership changes.
                "state": ["types": ["m.room.member", "m.room.encryption"]],
                "ephemeral": ["types": []],
                "account_data": ["types": []],
            ],
        ]
        return filter.canonicalText
    }()

    private func syncOnce() async throws {
        if !state.withLock({ $0.pendingJoinsLoaded }) {
            let stored = try await store.read { try $0.cursor(Keys.pendingJoins) }
            let rooms = stored.flatMap { try? JSONValue.parse($0).arrayValue?.compactMap(\.stringValue) } ?? []
            state.withLock {
                $0.pendingJoins.formUnion(rooms)
                $0.pendingJoinsLoaded = true
            }
        }
        let since = try await store.read { try $0.cursor(Keys.nextBatch) }
        var query = [("filter", Self.filter)]
        let timeoutMS = since == nil ? 0 : Int(configuration.syncTimeout.components.seconds * 1000)
        query.append(("timeout", String(timeoutMS)))
        if let since { query.append(("since", since)) }
        let result = await sync(query)
        if case .failure(let error) = result, since != nil, error.status == 400 {
            // The server no longer knows our token (a restored or reset homeserver). Start over
            // from a fresh sync; the inbox drops every event it already has by event id.
            logger.warning("the homeserver rejected the sync token; starting a fresh sync", metadata: ["error": "\(error)"])
            let fresh = try await sync([("filter", Self.filter), ("timeout", "0")]).get()
            try await processGuarded(fresh, since: nil, initial: false, startedOver: true)
            return
        }
        try await processGuarded(try result.get(), since: since, initial: since == nil)
    }

    /// Processes one sync response; if anything fails before its commit, what it learnt about
    /// rooms and what it changed in the encryption state are forgotten, so the retry (from
    /// the same token) starts from what the store says.
    private func processGuarded(_ response: JSONValue, since: String?, initial: Bool, startedOver: Bool = false) async throws {
        let crypto = self.crypto
        await crypto?.beginSync()
        do {
            // A sync that started over says nothing of which devices changed meanwhile.
            if startedOver { await crypto?.invalidateDeviceLists() }
            try await process(response, since: since, initial: initial, crypto: crypto)
        } catch {
            state.withLock { $0.rooms.removeAll() }
            await crypto?.abortSync()
            throw error
        }
    }

    private func sync(_ query: [(String, String)]) async -> Result<JSONValue, MatrixError> {
        do {
            return .success(try await client.request(.GET, "/_matrix/client/v3/sync", query: query, timeout: configuration.syncTimeout + .seconds(30)))
        } catch {
            return .failure(error)
        }
    }

    /// One inbound candidate before the store decides about it.
    private struct Candidate {
        var event: MatrixEvent
        var room: String
        var meaning: EventMeaning
        /// For a decrypted event: whether the sending device is verified by its owner.
        var deviceVerified: Bool? = nil
    }

    private func process(_ response: JSONValue, since: String?, initial: Bool, crypto: MatrixCrypto?) async throws {
        guard let nextBatch = response["next_batch"]?.stringValue else {
            throw MatrixError(status: 200, errcode: nil, message: "the sync response had no next_batch", retryAfter: nil)
        }
        let rooms = response["rooms"]
        let me = configuration.userID

        // Invites: join when the inviter is allowed, reject otherwise.
        for (roomID, room) in rooms?["invite"]?.objectValue ?? [:] {
            let events = (room["invite_state"]?["events"]?.arrayValue ?? []).compactMap { json -> (sender: String, membership: String?, stateKey: String?)? in
                guard let sender = json["sender"]?.stringValue else { return nil }
                return (sender, json["content"]?["membership"]?.stringValue, json["state_key"]?.stringValue)
            }
            let inviter = events.last(where: { $0.membership == "invite" && $0.stateKey == me })?.sender
            if let inviter, configuration.allowedUsers.allows(inviter) {
                state.withLock { _ = $0.pendingJoins.insert(roomID) }
            } else {
                logger.warning("rejecting an invite from a user who is not allowed", metadata: ["room.id": "\(roomID)", "inviter": "\(inviter ?? "unknown")"])
                await leave(roomID)
            }
        }
        await joinPending()

        // To-device messages first: they carry the room keys this sync's events need, and they
        // are committed with the token below.
        if let crypto {
            let changedUsers = (response["device_lists"]?["changed"]?.arrayValue ?? []).compactMap(\.stringValue)
            if !changedUsers.isEmpty { try await crypto.devicesChanged(changedUsers) }
            try await crypto.receiveToDevice(response["to_device"]?["events"]?.arrayValue ?? [])
        }

        var candidates: [Candidate] = []
        var roomUpdates: [String: RoomState] = [:]

        // Rooms we left or were removed from. Their state is reset, so that if the bot is
        // invited back, what was said while it was away counts as history.
        for (roomID, room) in rooms?["leave"]?.objectValue ?? [:] {
            let mine = (room["timeline"]?["events"]?.arrayValue ?? []).compactMap(MatrixEvent.init).last { $0.type == "m.room.member" && $0.stateKey == me }
            if let mine, mine.sender != me {
                logger.warning("removed from a room", metadata: ["room.id": "\(roomID)", "by": "\(mine.sender)", "membership": "\(mine.membership ?? "-")"])
            }
            state.withLock { _ = $0.rooms.removeValue(forKey: roomID) }
            roomUpdates[roomID] = RoomState()
        }
        var newest: Int64 = 0
        var membershipChanged: [String] = []
        for (roomID, room) in rooms?["join"]?.objectValue ?? [:] {
            var roomState = try await roomState(roomID)
            var changed = false
            if let count = room["summary"]?["m.joined_member_count"]?.intValue {
                roomState.members = Int(count)
            }
            let stateEvents = (room["state"]?["events"]?.arrayValue ?? []).compactMap(MatrixEvent.init)
            var timeline = (room["timeline"]?["events"]?.arrayValue ?? []).compactMap { json -> MatrixEvent? in
                guard let event = MatrixEvent(json) else {
                    logger.warning("skipping a malformed event", metadata: ["room.id": "\(roomID)"])
                    return nil
                }
                return event
            }
            if let encryption = (stateEvents + timeline).last(where: { $0.type == "m.room.encryption" && $0.stateKey == "" }) {
                let settings = RoomEncryption(content: encryption.content)
                // Encryption cannot be turned off once on: a later event without an algorithm
                // does not count.
                if let settings, settings != roomState.encryption {
                    roomState.encryption = settings
                    changed = true
                }
            }
            if !roomState.encryptionKnown {
                roomState.encryptionKnown = true
                changed = true
            }
            if (stateEvents + timeline).contains(where: { $0.type == "m.room.member" }) {
                roomState.members = nil
                membershipChanged.append(roomID)
            }
            let newlyJoined = roomState.joinedAt == nil
            if roomState.joinedAt == nil {
                let join = (stateEvents + timeline).last { $0.type == "m.room.member" && $0.stateKey == me && $0.membership == "join" }
                roomState.joinedAt = join?.timestamp ?? Int64(Date().timeIntervalSince1970 * 1000)
                changed = true
            }
            if initial {
                if changed { roomUpdates[roomID] = roomState }
                state.withLock { $0.rooms[roomID] = roomState }
                continue
            }
            // A room just joined has nothing to fill: what came before the join is history.
            if !newlyJoined, room["timeline"]?["limited"] == .bool(true), let since, let previous = room["timeline"]?["prev_batch"]?.stringValue {
                timeline = try await backfill(roomID, from: previous, to: since) + timeline
            }
            // What came before the bot joined is history, decided by position where possible:
            // in a room just joined, the timeline up to the bot's own join event; if the join
            // is not in the timeline it happened before all of it. Timestamps (set by each
            // sender's server) decide only in a fresh sync after a rejected token, which
            // replays recent history of every room.
            let beforeJoin = newlyJoined
                ? timeline.lastIndex { $0.type == "m.room.member" && $0.stateKey == me && $0.membership == "join" } ?? -1
                : -1
            var seen = Set<String>()
            for (index, event) in timeline.enumerated() where seen.insert(event.id).inserted {
                eventsReceived.increment()
                newest = max(newest, event.timestamp)
                if index <= beforeJoin {
                    logger.debug("skipping history from before the bot joined", metadata: ["room.id": "\(roomID)", "event.id": "\(event.id)"])
                    continue
                }
                if event.sender == me { continue }
                // Only allowed users talk to the bot, also in rooms others invited it to.
                guard configuration.allowedUsers.allows(event.sender) else {
                    logger.debug("not from an allowed user", metadata: ["room.id": "\(roomID)", "event.id": "\(event.id)", "sender": "\(event.sender)"])
                    continue
                }
                if since == nil, let joinedAt = roomState.joinedAt, event.timestamp < joinedAt {
                    logger.debug("skipping history from before the bot joined", metadata: ["room.id": "\(roomID)", "event.id": "\(event.id)"])
                    continue
                }
                var meaning = MatrixEvents.meaning(of: event, me: identity)
                var readable = event
                var deviceVerified: Bool?
                if case .encrypted = meaning, let crypto {
                    switch await crypto.decrypt(event, in: roomID) {
                    case .decrypted(let plain, let verified):
                        readable = plain
                        deviceVerified = verified
                        if roomState.encryption == nil {
                            // Encrypted messages in a room whose state says nothing of it: the
                            // answer must not go out in clear text either.
                            roomState.encryption = RoomEncryption(algorithm: RoomEncryption.megolm)
                            changed = true
                        }
                        meaning = MatrixEvents.meaning(of: plain, me: identity)
                        if case .encrypted = meaning { meaning = .ignore("an encrypted event inside an encrypted event") }
                    case .missingKey(let sessionID, let senderKey):
                        logger.notice("an encrypted message's room key has not arrived; waiting for it", metadata: [
                            "room.id": "\(roomID)", "event.id": "\(event.id)", "session.id": "\(sessionID)",
                        ])
                        await crypto.deferEvent(event, in: roomID, sessionID: sessionID, senderKey: senderKey)
                        continue
                    case .failed(let reason, let tellSender):
                        logger.warning("could not decrypt a message", metadata: ["room.id": "\(roomID)", "event.id": "\(event.id)", "reason": "\(reason)"])
                        guard tellSender else { continue }
                        meaning = .undecryptable
                    }
                } else if configuration.encryption == .required, configuration.cryptoKey != nil, roomState.encryption == nil {
                    // Where encryption is required nothing in a clear-text room counts (a 👍
                    // there confirms nothing either); the first text message gets a notice.
                    if case .ignore = meaning {
                    } else if case .text = meaning, !roomState.encryptionNoticeSent {
                        roomState.encryptionNoticeSent = true
                        changed = true
                        meaning = .refusedClearText
                    } else {
                        logger.debug("not read: a clear-text room where encryption is required", metadata: ["room.id": "\(roomID)", "event.id": "\(event.id)"])
                        continue
                    }
                }
                if case .ignore(let reason) = meaning {
                    logger.debug("not for the bot", metadata: ["room.id": "\(roomID)", "event.id": "\(event.id)", "reason": "\(reason)"])
                    continue
                }
                if case .encrypted = meaning {
                    if roomState.encryptionNoticeSent { continue }
                    roomState.encryptionNoticeSent = true
                    changed = true
                }
                candidates.append(Candidate(event: readable, room: roomID, meaning: meaning, deviceVerified: deviceVerified))
            }
            if changed { roomUpdates[roomID] = roomState }
            state.withLock { $0.rooms[roomID] = roomState }
        }

        if let crypto, !initial {
            // Events that waited for their room key: those whose key came, in order, and those
            // that waited too long (their senders hear that the bot could not read them).
            let (late, expired) = await crypto.retryPending(giveUpAfter: configuration.undecryptableWait)
            var earlier: [Candidate] = []
            for item in late {
                logger.info("decrypted a message whose room key came late", metadata: ["room.id": "\(item.roomID)", "event.id": "\(item.event.id)"])
                let meaning = MatrixEvents.meaning(of: item.event, me: identity)
                if case .ignore = meaning { continue }
                earlier.append(Candidate(event: item.event, room: item.roomID, meaning: meaning, deviceVerified: item.verified))
            }
            for item in expired {
                logger.warning("gave up waiting for an encrypted message's room key; telling the sender", metadata: ["room.id": "\(item.roomID)", "event.id": "\(item.event.id)"])
                earlier.append(Candidate(event: item.event, room: item.roomID, meaning: .undecryptable))
            }
            candidates = earlier.sorted { $0.event.timestamp < $1.event.timestamp } + candidates
        }

        let messages = try await inboundMessages(candidates)
        var cursors = [InboxWriter.CursorUpdate(name: Keys.nextBatch, value: nextBatch)]
        for (roomID, roomState) in roomUpdates.sorted(by: { $0.key < $1.key }) {
            let encoded = String(decoding: try JSONEncoder().encode(roomState), as: UTF8.self)
            cursors.append(InboxWriter.CursorUpdate(name: Keys.room(roomID), value: encoded))
        }
        let joins = state.withLock { Array($0.pendingJoins).sorted() }
        cursors.append(InboxWriter.CursorUpdate(name: Keys.pendingJoins, value: JSONValue.array(joins.map { .string($0) }).canonicalText))
        let results: [InboxInsertResult]
        if let crypto {
            // The encryption records this sync changed go in the same transaction.
            let inbox = self.inbox
            let settled = cursors
            results = try await crypto.commitSync { changes in
                try await inbox.accept(messages, cursors: settled + changes.map { InboxWriter.CursorUpdate(name: $0.name, value: $0.value) })
            }
        } else {
            results = try await inbox.accept(messages, cursors: cursors)
        }
        if let crypto {
            // Keep one-time keys stocked, so new devices can start sessions with the bot. A
            // count the server leaves out is zero (older servers send {} when none are left).
            let count = response["device_one_time_keys_count"]?["signed_curve25519"]?.intValue ?? 0
            do {
                try await crypto.maintainKeys(
                    oneTimeKeyCount: Int(count),
                    unusedFallbackTypes: response["device_unused_fallback_key_types"]?.arrayValue?.compactMap(\.stringValue)
                )
            } catch {
                logger.warning("could not upload encryption keys; will retry after the next sync", metadata: ["error": "\(error)"])
            }
        }
        if newest > 0 {
            syncLag.record(max(0, Date().timeIntervalSince1970 - Double(newest) / 1000))
        }
        if initial {
            logger.info("first sync: history before now is not answered", metadata: ["rooms": "\(state.withLock { $0.rooms.count })"])
        }
        // Show that the bot is working on each new addressed request.
        for (message, result) in zip(messages, results) where message.addressed && message.gesture == nil {
            if case .inserted = result { working(on: message.externalID, in: message.conversation.conversation.rawValue) }
        }
        await leaveEmptyRooms(membershipChanged)
    }

    private func roomState(_ roomID: String) async throws -> RoomState {
        if let known = state.withLock({ $0.rooms[roomID] }) { return known }
        guard let text = try await store.read({ try $0.cursor(Keys.room(roomID)) }),
            let stored = try? JSONDecoder().decode(RoomState.self, from: Data(text.utf8))
        else { return RoomState() }
        return stored
    }

    /// Events missing between the previous sync and a limited timeline, oldest first.
    private func backfill(_ roomID: String, from: String, to: String) async throws -> [MatrixEvent] {
        var events: [MatrixEvent] = []
        var token = from
        let path = "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/messages"
        // Bounded: a gap larger than this is logged, not fetched forever.
        for _ in 0..<50 {
            let page = try await client.request(.GET, path, query: [("dir", "b"), ("from", token), ("to", to), ("limit", "100")])
            let chunk = (page["chunk"]?.arrayValue ?? []).compactMap(MatrixEvent.init)
            events.append(contentsOf: chunk)
            // An empty page is not the end (the server may have filtered it); no `end` is.
            guard let end = page["end"]?.stringValue, end != token else {
                logger.info("filled a gap in a room's timeline", metadata: ["room.id": "\(roomID)", "events": "\(events.count)"])
                return events.reversed()
            }
            token = end
        }
        logger.warning("a timeline gap was larger than 5000 events; older ones were not fetched", metadata: ["room.id": "\(roomID)"])
        return events.reversed()
    }

    /// Turns candidates into inbound messages, deciding addressing with what the store knows:
    /// which events are the bot's, and whether a confirmation waits in the room.
    private func inboundMessages(_ candidates: [Candidate]) async throws -> [InboundMessage] {
        guard !candidates.isEmpty else { return [] }
        var messages: [InboundMessage] = []
        for candidate in candidates {
            let roomID = candidate.room
            let key = ConversationKey(channel: channel, conversation: ConversationID(roomID))
            let event = candidate.event
            let received = Date(timeIntervalSince1970: Double(event.timestamp) / 1000)
            var trust = TrustFacts(senderAuthenticated: true, deviceVerified: candidate.deviceVerified)
            if candidate.deviceVerified == false {
                switch configuration.unverifiedDeviceConfirmations {
                case .always: break
                case .never: trust.mayConfirm = false
                case .direct: trust.mayConfirm = try await isDirect(roomID)
                }
            }
            func message(_ text: String, addressed: Bool, replyTo: String? = nil, thread: String? = nil) -> InboundMessage {
                // The trace of a Matrix message starts here, with a span for its arrival.
                withTracedSpan("matrix.receive", ofKind: .consumer) { span in
                    span?.attributes["matrix.room_id"] = roomID
                    span?.attributes["matrix.event_id"] = event.id
                    return InboundMessage(
                        externalID: event.id, conversation: key, sender: Sender(id: PersonID(event.sender)), text: text,
                        replyTo: replyTo, thread: thread, trust: trust, receivedAt: received,
                        addressed: addressed, traceContext: TraceCarrier.capture()
                    )
                }
            }
            switch candidate.meaning {
            case .text(let body, let named, let replyTo, let thread):
                let direct = try await isDirect(roomID)
                let toUs = try await isOurs(replyTo)
                if direct || named || toUs != nil {
                    messages.append(message(body, addressed: true, replyTo: replyTo, thread: thread))
                } else if body.split(whereSeparator: \.isWhitespace).count <= 3, try await hasPendingConfirmation(key) {
                    // Perhaps a bare yes / no to a waiting request: the engine decides.
                    messages.append(message(body, addressed: false, replyTo: replyTo, thread: thread))
                }
            case .media(let what, let named, let replyTo, let thread):
                let direct = try await isDirect(roomID)
                if direct || named {
                    var inbound = message("", addressed: true, replyTo: replyTo, thread: thread)
                    inbound.unreadable = .media(what)
                    messages.append(inbound)
                }
            case .reaction(let target, let gesture, let reactionKey):
                // Only a reaction on one of our confirmation requests means anything.
                guard let ours = try await isOurs(target), ours.kind == .confirmationRequest else { continue }
                var inbound = message(reactionKey, addressed: false, replyTo: target)
                inbound.gesture = gesture
                messages.append(inbound)
            case .redaction(let target):
                // Withdrawing a request cancels what waits for it; the engine checks it was the
                // requester's own.
                guard try await store.read({ try $0.inboxID(channel: MatrixAdapter.channelID, externalID: target) }) != nil else { continue }
                var inbound = message("(withdrawn)", addressed: false, replyTo: target)
                inbound.gesture = .decline
                messages.append(inbound)
            case .encrypted, .undecryptable, .refusedClearText:
                // Nothing to read: the engine answers with what the person should know.
                var inbound = message("", addressed: true)
                inbound.unreadable = switch candidate.meaning {
                case .undecryptable: .undecryptable
                case .refusedClearText: .unencryptedRoom
                default: .encrypted
                }
                messages.append(inbound)
            case .ignore:
                continue
            }
        }
        return messages
    }

    private func isOurs(_ eventID: String?) async throws -> OutboundMessage? {
        guard let eventID else { return nil }
        return try await store.read { try $0.outbound(channel: MatrixAdapter.channelID, externalID: eventID) }
    }

    private func hasPendingConfirmation(_ key: ConversationKey) async throws -> Bool {
        try await store.read { try !$0.pendingConfirmations(in: key).isEmpty }
    }

    /// A room with the bot and one other member is a direct chat: every message there is for the bot.
    private func isDirect(_ roomID: String) async throws -> Bool {
        try await memberCount(roomID) <= 2
    }

    /// Joined members, the bot included; asked of the homeserver once after each membership change.
    private func memberCount(_ roomID: String) async throws -> Int {
        if let members = state.withLock({ $0.rooms[roomID]?.members }) { return members }
        let response = try await client.request(.GET, "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/joined_members")
        let count = response["joined"]?.objectValue?.count ?? 0
        // Only into a room state read from the store: a blank one would later pass for the
        // room's real state (no join time, no encryption).
        var room = try await roomState(roomID)
        room.members = count
        let known = room
        state.withLock { $0.rooms[roomID] = $0.rooms[roomID].map { var cached = $0; cached.members = count; return cached } ?? known }
        return count
    }

    // MARK: Room membership

    private func joinPending() async {
        let rooms = state.withLock { $0.pendingJoins }
        for roomID in rooms.sorted() {
            do {
                try await client.request(.POST, "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/join", body: .object([:]))
                _ = state.withLock { $0.pendingJoins.remove(roomID) }
                logger.info("joined a room on invitation", metadata: ["room.id": "\(roomID)"])
            } catch let error where !error.isTransient {
                _ = state.withLock { $0.pendingJoins.remove(roomID) }
                logger.warning("could not join a room; giving up on the invite", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
            } catch {
                logger.warning("could not join a room yet; will retry", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
            }
        }
    }

    private func leave(_ roomID: String) async {
        do {
            try await client.request(.POST, "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/leave", body: .object([:]))
        } catch {
            logger.warning("could not leave a room", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
        }
    }

    private func leaveEmptyRooms(_ changed: [String]) async {
        var empty: [String] = []
        for roomID in changed {
            do {
                if try await memberCount(roomID) <= 1 { empty.append(roomID) }
            } catch {
                logger.warning("could not count a room's members", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
            }
        }
        for roomID in empty.sorted() {
            logger.info("leaving a room everyone else has left", metadata: ["room.id": "\(roomID)"])
            await leave(roomID)
            _ = state.withLock { $0.rooms.removeValue(forKey: roomID) }
            do {
                try await store.write { try $0.deleteCursor(Keys.room(roomID)) }
            } catch {
                logger.warning("could not forget a room's state", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
            }
        }
    }

    // MARK: Typing and receipts

    /// How long a request waits for its answer before the bot shows that it is typing: a quick
    /// answer needs no typing notice (and saves the homeserver two requests).
    private static let typingDelay: Duration = .seconds(1)
    /// How long read receipts are gathered per room: one receipt covers every earlier message.
    private static let receiptDelay: Duration = .seconds(2)

    private func working(on eventID: String, in roomID: String) {
        state.withLock { $0.unanswered[eventID] = roomID }
        schedule(.typingIfSlow(room: roomID, event: eventID))
    }

    private func typingPath(_ roomID: String) -> String {
        "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/typing/\(MatrixClient.segment(configuration.userID))"
    }

    /// After a reply: stop typing when nothing else in the room waits, and mark the request read.
    private func answered(_ eventID: String?, in roomID: String) {
        let (stopTyping, scheduleReceipt) = state.withLock { state -> (Bool, Bool) in
            if let eventID { state.unanswered.removeValue(forKey: eventID) }
            var stop = false
            if state.typingIn.contains(roomID), !state.unanswered.values.contains(roomID) {
                state.typingIn.remove(roomID)
                stop = true
            }
            guard let eventID else { return (stop, false) }
            let first = state.receipts[roomID] == nil
            state.receipts[roomID] = eventID
            return (stop, first)
        }
        if stopTyping { schedule(.stopTyping(room: roomID)) }
        if scheduleReceipt { schedule(.receipt(room: roomID)) }
    }

    // MARK: Delivery

    public func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt {
        if !client.hasAccessToken, sharing != nil {
            // Standing by while another instance syncs: send with the session it stored.
            try? await useStoredSession()
        }
        guard client.hasAccessToken, let prefix = state.withLock({ $0.transactionPrefix }) else {
            throw ChannelError(.unavailable, "not logged in to the homeserver yet", isTransient: true)
        }
        let roomID = message.conversation.conversation.rawValue
        let content = MatrixFormatting.content(for: message)
        // The same outbox message always has the same transaction id: a retried send is the
        // same event.
        let txnID = prefix + "-" + message.deliveryKey
        do {
            var type = "m.room.message"
            var body = content
            if let encryption = try await encryptionSettings(roomID), configuration.encryptionEnabled {
                // Never clear text into an encrypted room: without the device's keys, wait.
                guard let crypto else {
                    // Starting up, or standing by while another instance holds the device's
                    // keys: soon again, so the syncing instance's dispatcher can take it.
                    throw ChannelError(.unavailable, "end-to-end encryption is not ready here (starting, or another instance holds the device)", isTransient: true, retryAfter: 1)
                }
                let members = try await client.request(.GET, "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/joined_members")
                let users = (members["joined"]?.objectValue?.keys).map(Array.init) ?? []
                body = try await crypto.encrypt(type: type, content: content, roomID: roomID, members: users.sorted(), settings: encryption)
                type = "m.room.encrypted"
            }
            let path = "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/send/\(type)/\(MatrixClient.segment(txnID))"
            let response = try await client.request(.PUT, path, body: body)
            repliesSent.increment()
            answered(message.inReplyTo, in: roomID)
            return DeliveryReceipt(externalID: response["event_id"]?.stringValue)
        } catch let error as ChannelError {
            throw error
        } catch let error as MatrixError {
            if error.isUnauthorized, sharing != nil, state.withLock({ $0.status.state == .standingBy }) {
                // The syncing instance logged in again: take its new session next time.
                client.setAccessToken(nil)
            }
            let channelError = Self.channelError(error)
            if channelError.isTransient { sendRetries.increment() } else { sendFailures.increment() }
            throw channelError
        } catch {
            // Encryption failed (a damaged record, a libolm error): nothing was sent.
            sendRetries.increment()
            logger.error("could not encrypt a reply", metadata: ["room.id": "\(roomID)", "error": "\(error)"])
            throw ChannelError(.unavailable, "could not encrypt the message: \(error)", isTransient: true)
        }
    }

    /// The room's encryption, asking the homeserver once for rooms joined before it was kept.
    private func encryptionSettings(_ roomID: String) async throws -> RoomEncryption? {
        // Encryption is never turned off, so either the cache or the store knowing it is
        // enough; the store is read every time, since a standing-by instance's cache is old.
        let cached = state.withLock { $0.rooms[roomID] }
        let stored = try await store.read { try $0.cursor(Keys.room(roomID)) }
            .flatMap { try? JSONDecoder().decode(RoomState.self, from: Data($0.utf8)) }
        if let encryption = cached?.encryption ?? stored?.encryption { return encryption }
        if cached?.encryptionKnown == true || stored?.encryptionKnown == true { return nil }
        var room = stored ?? RoomState()
        let result: Result<JSONValue, MatrixError>
        do {
            result = .success(try await client.request(.GET, "/_matrix/client/v3/rooms/\(MatrixClient.segment(roomID))/state/m.room.encryption/"))
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let content): room.encryption = RoomEncryption(content: content)
        case .failure(let error) where error.status == 404: room.encryption = nil
        case .failure(let error): throw error
        }
        let encryption = room.encryption
        // Only the cached copy learns it (the sync stores room state with its token).
        state.withLock { state in
            guard var cached = state.rooms[roomID] else { return }
            cached.encryption = cached.encryption ?? encryption
            cached.encryptionKnown = true
            state.rooms[roomID] = cached
        }
        return encryption
    }

    static func channelError(_ error: MatrixError) -> ChannelError {
        switch error.status {
        case nil:
            return ChannelError(.unreachable, error.description, isTransient: true)
        case 429:
            return ChannelError(.rateLimited, error.description, isTransient: true, retryAfter: error.retryAfter)
        case 401:
            // The sync loop logs in again; the message waits for it.
            return ChannelError(.unauthorized, error.description, isTransient: true)
        case let status? where status >= 500 || status == 408:
            return ChannelError(.unreachable, error.description, isTransient: true, retryAfter: error.retryAfter)
        default:
            // 403 (not in the room any more), 404 (unknown room), 400: sending again cannot help.
            return ChannelError(.rejected, error.description, isTransient: false)
        }
    }
}
