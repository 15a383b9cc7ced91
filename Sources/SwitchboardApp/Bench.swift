// The pipeline benchmark: N messages from M simulated people through inbox → engine → tool →
// audit → outbox → delivery, on a fresh SQLite database, in this process; or on a PostgreSQL
// database with N instances (N pipelines in this process, each with its own connection pool and
// lease holder name, sharing the work through leases exactly as N `serve` processes do).
//
// Each simulated person keeps up to `window` messages in flight (like a person typing ahead, or
// a busy Matrix room), so transactions batch many people's messages: that is the group commit
// the numbers depend on. Latency is from just before a message is handed to the inbox writer
// until its reply is delivered.

import Foundation
import Logging
import ServiceLifecycle
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardModel
import SwitchboardPostgres
public import SwitchboardSQLite
import SwitchboardStorage

/// Benchmark parameters.
public struct BenchOptions: Sendable {
    public var messages: Int
    public var people: Int
    public var window: Int
    public var synchronous: SQLiteStore.Synchronous
    public var dataDirectory: String?
    /// A PostgreSQL database to run on instead of a fresh SQLite file.
    public var databaseURL: String?
    /// Instances sharing the PostgreSQL database.
    public var instances = 1
    /// Audit records of earlier work, spread over the people and the past year, written before
    /// the run; the learner then reads them while the messages flow (learning off the hot path).
    public var history = 0

    public init(messages: Int, people: Int, window: Int, synchronous: SQLiteStore.Synchronous, dataDirectory: String?) {
        self.messages = messages
        self.people = people
        self.window = window
        self.synchronous = synchronous
        self.dataDirectory = dataDirectory
    }

    /// Creates options with the synchronous mode by name (`normal` or `full`; others mean normal).
    public init(messages: Int, people: Int, window: Int, synchronousMode: String, dataDirectory: String?) {
        self.init(
            messages: messages, people: people, window: window,
            synchronous: SQLiteStore.Synchronous(rawValue: synchronousMode) ?? .normal, dataDirectory: dataDirectory
        )
    }
}

/// Benchmark results.
public struct BenchResult: Sendable {
    public var messages: Int
    public var people: Int
    public var synchronous: String
    public var engine = "sqlite"
    public var instances = 1
    public var seconds: Double
    public var p50: Double
    public var p99: Double
    public var max: Double

    public var messagesPerSecond: Double { Double(messages) / seconds }

    /// The JSON object.
    public var json: String {
        func ms(_ v: Double) -> JSONValue { .double((v * 1000 * 1000).rounded() / 1000) }
        return JSONValue.object([
            "messages": .int(Int64(messages)),
            "people": .int(Int64(people)),
            "synchronous": .string(synchronous),
            "engine": .string(engine),
            "instances": .int(Int64(instances)),
            "seconds": .double((seconds * 1000).rounded() / 1000),
            "messages_per_second": .double(messagesPerSecond.rounded()),
            "p50_ms": ms(p50),
            "p99_ms": ms(p99),
            "max_ms": ms(max),
        ]).canonicalText
    }
}

/// Runs the benchmark.
public enum Bench {
    public static func run(_ options: BenchOptions) async throws -> BenchResult {
        let directory = options.dataDirectory ?? NSTemporaryDirectory() + "switchboard-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/bench-\(UUID().uuidString).sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            if options.dataDirectory == nil { try? FileManager.default.removeItem(atPath: directory) }
        }
        var logger = Logger(label: "switchboard.bench")
        logger.logLevel = .error
        let stores: [any Store]
        var sharing: [WorkSharing?] = [nil]
        var postgres: [PostgresStore] = []
        var sqlite: SQLiteStore?
        if let text = options.databaseURL {
            let url = try PostgresURL(text)
            for index in 0..<options.instances {
                postgres.append(try await PostgresStore(url: url, options: .init(poolSize: 4), logger: logger))
                if index == 0 { sharing = [] }
                sharing.append(WorkSharing(instance: "bench-\(index)-\(UUID().uuidString.prefix(6))", lease: 15))
            }
            stores = postgres
        } else {
            let store = try SQLiteStore(path: path, options: .init(synchronous: options.synchronous))
            sqlite = store
            stores = [store]
        }
        let run = UUID().uuidString.prefix(8).lowercased()

        var engineConfiguration = EngineConfiguration()
        engineConfiguration.batchSize = 1000
        engineConfiguration.rateLimits = RateLimitPolicy(defaultLimit: RateLimit(perMinute: 1e9, burst: 1e9))
        let channel = BenchChannel(people: options.people)
        let pipelines = zip(stores, sharing).map { store, sharing in
            Pipeline(store: store, engine: engineConfiguration, retry: RetryPolicy(), sealer: .ephemeral(), logger: logger, sharing: sharing) { _ in [channel] }
        }
        let inboxes = pipelines.map(\.inbox)
        if options.history > 0 { try await Self.writeHistory(options.history, people: options.people, run: String(run), into: stores[0]) }
        let perPerson = (options.messages + options.people - 1) / options.people
        let total = min(options.messages, perPerson * options.people)
        let clock = ContinuousClock()
        let start = clock.now

        var services: [any Service] = pipelines.flatMap { [$0.engine, $0.dispatcher] as [any Service] }
        // With a history, the learner works through it during the run, as after an upgrade.
        if options.history > 0 { services += pipelines.map(\.learner) as [any Service] }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                try await group.run()
                // The pipeline stopped: release the load side if it is still waiting.
                channel.cancelWaits()
            }
            tasks.addTask {
                try await Self.load(channel: channel, inboxes: inboxes, run: String(run), options: options, perPerson: perPerson, total: total, clock: clock)
                await group.triggerGracefulShutdown()
            }
            do {
                try await tasks.waitForAll()
            } catch {
                channel.cancelWaits()
                await group.triggerGracefulShutdown()
                throw error
            }
        }
        let seconds = (clock.now - start).seconds
        let latencies = channel.latencies().sorted()
        guard latencies.count == total else {
            throw GatewayError("The benchmark pipeline stopped after \(latencies.count) of \(total) replies.")
        }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return latencies[min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)]
        }
        try sqlite?.close()
        for store in postgres { await store.close() }
        return BenchResult(
            messages: total, people: options.people, synchronous: options.synchronous.rawValue,
            engine: options.databaseURL == nil ? "sqlite" : "postgres", instances: stores.count, seconds: seconds,
            p50: percentile(0.5), p99: percentile(0.99), max: latencies.last ?? 0
        )
    }
}

extension Bench {
    /// Writes `count` executed-call audit records for the bench's people (the senders and
    /// conversations of the run), a year's worth, in
    /// transactions of 10,000 (the trail's own chaining and hashing included).
    static func writeHistory(_ count: Int, people: Int, run: String, into store: any Store) async throws {
        let tools = ["notes.add", "tasks.add", "calendar.create", "reminders.add", "notes.search"]
        let start = Date().addingTimeInterval(-365 * 86400)
        let step = 365 * 86400 / Double(count)
        var written = 0
        while written < count {
            let chunk = min(10_000, count - written)
            let first = written
            try await store.write { tx in
                for n in first..<first + chunk {
                    let person = n % people
                    let tool = tools[n % tools.count]
                    var arguments: JSONValue = ["text": .string("earlier \(n)")]
                    if tool == "calendar.create" { arguments = ["title": "sync", "duration_minutes": .int(Int64([30, 45, 45, 45, 60][n % 5]))] }
                    try tx.appendAudit(AuditEntry(
                        at: start.addingTimeInterval(Double(n) * step), callID: ToolCallID("history-\(run)-\(n)"),
                        person: PersonID("person\(person)"),
                        conversation: ConversationKey(channel: BenchChannel.channelID, conversation: ConversationID("\(run)-p\(person)")),
                        tool: tool, risk: .low, status: .executed, arguments: arguments, summary: "earlier work", correlationID: nil
                    ))
                }
            }
            written += chunk
        }
    }

    /// The simulated people: each sends its messages, keeping at most `window` unanswered.
    static func load(
        channel: BenchChannel, inboxes: [InboxWriter], run: String, options: BenchOptions, perPerson: Int, total: Int, clock: ContinuousClock
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { people in
            for person in 0..<options.people {
                let count = min(perPerson, total - person * perPerson)
                guard count > 0 else { continue }
                // Each person writes to one instance, as people reach different instances.
                let inbox = inboxes[person % inboxes.count]
                people.addTask {
                    for index in 0..<count {
                        await channel.waitForWindow(person: person, sent: index, window: options.window)
                        let message = InboundMessage(
                            externalID: "bench-\(run)-\(person)-\(index)",
                            conversation: ConversationKey(channel: BenchChannel.channelID, conversation: ConversationID("\(run)-p\(person)")),
                            sender: Sender(id: PersonID("person\(person)")),
                            text: "add a note: benchmark note \(index)",
                            trust: TrustFacts(senderAuthenticated: true),
                            receivedAt: Date()
                        )
                        channel.sent(message.externalID, at: clock.now)
                        _ = try await inbox.accept([message])
                    }
                }
            }
            try await people.waitForAll()
        }
        await channel.waitForDeliveries(total)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// The benchmark's channel: records when each reply arrives.
final class BenchChannel: ChannelAdapter {
    static let channelID: ChannelID = "bench"
    let channel: ChannelID = BenchChannel.channelID
    let capabilities: ChannelCapabilities = []

    private struct State {
        var sentAt: [String: ContinuousClock.Instant] = [:]
        var latencies: [Double] = []
        var deliveredPerPerson: [Int]
        var windowWaiters: [Int: (Int, CheckedContinuation<Void, Never>)] = [:]
        var totalWaiter: (Int, CheckedContinuation<Void, Never>)?
        var cancelled = false
    }

    private let state: Locked<State>

    init(people: Int) {
        state = Locked(State(deliveredPerPerson: Array(repeating: 0, count: people)))
    }

    func run() async throws {
        try? await gracefulShutdown()
    }

    func sent(_ id: String, at instant: ContinuousClock.Instant) {
        state.withLock { $0.sentAt[id] = instant }
    }

    func latencies() -> [Double] { state.withLock { $0.latencies } }

    /// Releases every waiter, now and later: the pipeline has stopped.
    func cancelWaits() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.cancelled = true
            var waiters = state.windowWaiters.values.map(\.1)
            if let total = state.totalWaiter { waiters.append(total.1) }
            state.windowWaiters = [:]
            state.totalWaiter = nil
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitForWindow(person: Int, sent: Int, window: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.cancelled || sent - state.deliveredPerPerson[person] < window { return true }
                state.windowWaiters[person] = (sent - window + 1, continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func waitForDeliveries(_ total: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.cancelled || state.latencies.count >= total { return true }
                state.totalWaiter = (total, continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt {
        let now = ContinuousClock.now
        guard let key = message.inReplyTo else { return DeliveryReceipt() }
        // Conversations are named RUN-pPERSON.
        let person = Int(message.conversation.conversation.rawValue.components(separatedBy: "-p").last ?? "") ?? 0
        let resume = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            var resume: [CheckedContinuation<Void, Never>] = []
            if let sent = state.sentAt.removeValue(forKey: key) {
                state.latencies.append((now - sent).seconds)
            }
            state.deliveredPerPerson[person] += 1
            if let (needed, waiter) = state.windowWaiters[person], state.deliveredPerPerson[person] >= needed {
                state.windowWaiters[person] = nil
                resume.append(waiter)
            }
            if let (needed, waiter) = state.totalWaiter, state.latencies.count >= needed {
                state.totalWaiter = nil
                resume.append(waiter)
            }
            return resume
        }
        for waiter in resume { waiter.resume() }
        return DeliveryReceipt()
    }
}
