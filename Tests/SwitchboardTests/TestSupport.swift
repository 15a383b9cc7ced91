import Foundation
import Logging
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardModel
import SwitchboardSQLite
import SwitchboardStorage
import SwitchboardTesting
import SwitchboardTools

/// A temporary directory removed when the value goes away.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "switchboard-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        // scripts/test.sh keeps every test's files until the end of the run, to scan them all
        // for the test secrets (TestSecrets).
        guard ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_KEEP_FILES"] != "1" else { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The secrets the tests make up, listed for the scan scripts/test.sh runs after the suite
/// (scripts/test-secrets-scan.sh): none may appear in any log, database file, export, mail or
/// command output the run leaves behind.
enum TestSecrets {
    private static let lock = NSLock()

    /// Lists a secret (one line; values with a newline are not secrets any test makes) and
    /// returns it.
    @discardableResult
    static func register(_ value: String) -> String {
        guard let path = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_SECRETS_FILE"], !value.contains("\n") else { return value }
        lock.lock()
        defer { lock.unlock() }
        if let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil) {
            handle.seekToEndOfFile()
            handle.write(Data((value + "\n").utf8))
            try? handle.close()
        }
        return value
    }
}

/// The engine in this process with a manual clock and a recording channel: each `say`
/// commits a message, runs one engine batch and one delivery round, and returns the reply.
/// Deterministic: no loops, no sleeps.
struct EngineHarness {
    let directory: TemporaryDirectory
    let store: SQLiteStore
    let clock: ManualClock
    let channel = RecordingChannel()
    /// Channels that tools send through (`email.send` → "email", `matrix.post` → "matrix").
    let email = RecordingChannel(channel: "email")
    let matrix = RecordingChannel(channel: "matrix")
    let engine: ConversationEngine
    let dispatcher: OutboxDispatcher
    let inbox: InboxWriter
    let conversation = ConversationKey(channel: "test", conversation: ConversationID("room"))
    private let counter = Counter()
    /// One process-wide key, so a harness made again on the same store opens what the first sealed.
    static let sealer = SecretSealer.ephemeral()

    init(
        planner: any Planner = CommandPlanner(),
        extraTools: [any Tool] = [],
        sources: [any ToolSource] = [],
        sending: Bool = false,
        clock: ManualClock = ManualClock(),
        configure: (inout EngineConfiguration) -> Void = { _ in },
        plannerOver: ((SQLiteStore, ManualClock) -> any Planner)? = nil
    ) throws {
        self.clock = clock
        directory = try TemporaryDirectory()
        store = try SQLiteStore(path: directory.path + "/test.sqlite")
        var configuration = EngineConfiguration()
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let gate = ToolGate(
            registry: ToolRegistry(NotesTools.all + extraTools, sources: sources), access: configuration.access, riskPolicy: configuration.risk,
            rateLimits: configuration.rateLimits, confirmationLifetime: configuration.confirmationLifetime,
            sendingChannels: sending ? ["email", "matrix"] : [], sealer: Self.sealer, learning: configuration.learning, logger: logger
        )
        let inboxSignal = WorkSignal()
        let outboxSignal = WorkSignal()
        inbox = InboxWriter(store: store, signal: inboxSignal)
        engine = ConversationEngine(
            store: store, planner: plannerOver?(store, clock) ?? planner, gate: gate, configuration: configuration, clock: clock,
            inboxSignal: inboxSignal, outboxSignal: outboxSignal, logger: logger
        )
        dispatcher = OutboxDispatcher(store: store, adapters: [channel, email, matrix], clock: clock, signal: outboxSignal, logger: logger)
    }

    func message(_ person: PersonID, _ text: String, id: String? = nil, authenticated: Bool = true, untrusted: Bool = false) -> InboundMessage {
        InboundMessage(
            externalID: id ?? "e\(counter.next())", conversation: conversation, sender: Sender(id: person), text: text,
            trust: TrustFacts(senderAuthenticated: authenticated, containsUntrustedContent: untrusted), receivedAt: clock.now()
        )
    }

    /// Sends a message and returns the reply.
    @discardableResult
    func say(_ person: PersonID, _ text: String, authenticated: Bool = true, untrusted: Bool = false) async throws -> String {
        let message = message(person, text, authenticated: authenticated, untrusted: untrusted)
        _ = try await inbox.accept([message])
        try await engine.processBatch()
        try await dispatcher.deliverDue()
        let replies = channel.delivered.filter { $0.inReplyTo == message.externalID }
        guard replies.count == 1 else { throw HarnessError(description: "expected one reply to \"\(text)\", got \(replies.count)") }
        return replies[0].text
    }

    /// Commits a prepared message, runs the engine and delivery, and returns every reply to it
    /// (none, for a message the engine ignores).
    func post(_ message: InboundMessage) async throws -> [OutboundMessage] {
        let stored = try await inbox.accept([message])
        try await engine.processBatch()
        try await dispatcher.deliverDue()
        let correlation = CorrelationID(inbox: stored[0].id)
        return channel.delivered.filter { $0.correlationID == correlation }
    }

    /// Runs engine batches and deliveries until nothing is pending.
    func drain() async throws {
        while try await engine.processBatch() > 0 {}
        while try await dispatcher.deliverDue() > 0 {}
    }

    func audit() async throws -> [AuditRecord] {
        try await store.read { try $0.auditRecords(AuditQuery()) }
    }

    func statuses(tool: String? = nil) async throws -> [AuditStatus] {
        try await audit().filter { tool == nil || $0.entry.tool == tool }.map(\.entry.status)
    }

    func notes(_ person: PersonID) async throws -> [String] {
        try await store.read { try $0.notes.list(owner: person) }.map(\.text)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
}

final class Counter: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

/// Where the package lives, from this file's path.
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// Waits until `condition` holds, checking every 50 ms for at most `seconds`, and always once more
/// after the deadline: when parallel tests keep the cooperative threads busy (the first use of the
/// shared intent engine trains it for tens of seconds on two cores), a sleep can end long after the
/// deadline, and a wait that gave up without looking would blame a server that did start.
func eventually(_ seconds: Double = 20, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return await condition()
}
