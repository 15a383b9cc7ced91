// Group commit for the inbox.
//
// Adapters (and the benchmark's simulated people) call `accept` concurrently. The first caller
// becomes the leader and writes everything queued so far in one transaction; callers that
// arrive meanwhile queue up and are written by the next transaction. With synchronous=FULL one
// fsync then serves many messages. A caller returns only after its messages are committed,
// which is when an adapter may acknowledge them to its protocol. The queue is bounded by the
// number of waiting callers, each of which is blocked until its commit: that is the
// back-pressure.

import Logging
import Metrics
public import SwitchboardModel
public import SwitchboardStorage

/// Commits inbound messages (and the cursors that cover them) to the inbox, batching
/// concurrent callers into one transaction.
public actor InboxWriter {
    /// A cursor to store in the same transaction as the messages it covers.
    public struct CursorUpdate: Sendable {
        /// The cursor's name, such as `matrix.next_batch`.
        public var name: String
        /// Its new value.
        public var value: String
        /// When set, the update applies only if this message (by channel and external id) is
        /// new in the same commit: state that belongs to a message is never changed by a repeat.
        public var onlyWithNew: (channel: ChannelID, externalID: String)?

        /// Creates a cursor update.
        public init(name: String, value: String, onlyWithNew message: (channel: ChannelID, externalID: String)? = nil) {
            self.name = name
            self.value = value
            self.onlyWithNew = message
        }
    }

    private enum Wake {
        case done(Result<[InboxInsertResult], any Error>)
        case lead
    }

    private struct Request {
        var messages: [InboundMessage]
        var cursors: [CursorUpdate]
        var continuation: CheckedContinuation<Wake, Never>?
    }

    private let store: any Store
    private let signal: WorkSignal
    private let maxBatch: Int
    private let crashPoint: (@Sendable (String) -> Void)?
    private var queue: [Request] = []
    private var leading = false

    /// Creates a writer.
    ///
    /// - Parameters:
    ///   - signal: signalled after each commit, to wake the engine.
    ///   - maxBatch: the most messages written in one transaction.
    public init(store: any Store, signal: WorkSignal, maxBatch: Int = 512, crashPoint: (@Sendable (String) -> Void)? = nil) {
        self.store = store
        self.signal = signal
        self.maxBatch = maxBatch
        self.crashPoint = crashPoint
    }

    /// Commits messages to the inbox; returns once they are durable.
    ///
    /// A message whose (channel, external id) is already stored is not stored again: its
    /// result is `.duplicate`.
    ///
    /// - Throws: `StoreError`; nothing was committed for these messages then.
    public func accept(_ messages: [InboundMessage], cursor: CursorUpdate? = nil) async throws -> [InboxInsertResult] {
        try await accept(messages, cursors: cursor.map { [$0] } ?? [])
    }

    /// Commits messages and several cursors in one transaction; returns once they are durable.
    ///
    /// - Throws: `StoreError`; nothing was committed for these messages then.
    public func accept(_ messages: [InboundMessage], cursors: [CursorUpdate]) async throws -> [InboxInsertResult] {
        if leading {
            let wake = await withCheckedContinuation { continuation in
                queue.append(Request(messages: messages, cursors: cursors, continuation: continuation))
            }
            switch wake {
            case .done(let result): return try result.get()
            case .lead: break
            }
        } else {
            queue.append(Request(messages: messages, cursors: cursors, continuation: nil))
        }
        leading = true
        // Lead: write batches until our own request (the one without a continuation) is done.
        while true {
            var batch: [Request] = []
            var count = 0
            while !queue.isEmpty, batch.isEmpty || count + queue[0].messages.count <= maxBatch {
                let request = queue.removeFirst()
                count += request.messages.count
                batch.append(request)
            }
            let result = await write(batch)
            var mine: Result<[InboxInsertResult], any Error>?
            var offset = 0
            for request in batch {
                let slice: Result<[InboxInsertResult], any Error> = result.map { Array($0[offset..<offset + request.messages.count]) }
                offset += request.messages.count
                if let continuation = request.continuation {
                    continuation.resume(returning: .done(slice))
                } else {
                    mine = slice
                }
            }
            if let mine {
                // Hand leadership to the next waiter, if any.
                if queue.isEmpty {
                    leading = false
                } else {
                    let next = queue[0].continuation
                    queue[0].continuation = nil
                    next?.resume(returning: .lead)
                }
                return try mine.get()
            }
        }
    }

    private func write(_ batch: [Request]) async -> Result<[InboxInsertResult], any Error> {
        let messages = batch.flatMap(\.messages)
        let cursors = batch.flatMap(\.cursors)
        let crashPoint = self.crashPoint
        do {
            let results = try await store.write { tx in
                var results: [InboxInsertResult] = []
                results.reserveCapacity(messages.count)
                var inserted = Set<String>()
                for message in messages {
                    let result = try tx.insertInbound(message)
                    if case .inserted = result { inserted.insert("\(message.channel.rawValue)\u{0}\(message.externalID)") }
                    results.append(result)
                }
                for cursor in cursors {
                    if let message = cursor.onlyWithNew, !inserted.contains("\(message.channel.rawValue)\u{0}\(message.externalID)") { continue }
                    try tx.setCursor(cursor.name, value: cursor.value)
                }
                return results
            }
            // The point is a committed message nobody has acted on yet; a write that only moves
            // a cursor (a sync with nothing new) does not count as reaching it.
            if results.contains(where: { if case .inserted = $0 { true } else { false } }) {
                crashPoint?("after_inbox_commit")
            }
            signal.signal()
            var received: [ChannelID: Int] = [:]
            for (message, result) in zip(messages, results) {
                if case .inserted = result { received[message.channel, default: 0] += 1 }
            }
            for (channel, count) in received {
                Counter(label: "switchboard_messages_received_total", dimensions: [("channel", channel.rawValue)]).increment(by: count)
            }
            return .success(results)
        } catch {
            return .failure(error)
        }
    }
}
