// The terminal channel: one person talks to Switchboard from a shell.
//
// Each line of standard input is one message. When the input is a terminal the adapter shows a
// prompt; when it is a pipe it is scriptable: it sends a line, prints the reply, and only then
// reads the next line, so a script sees replies in order. At end of input it waits until every
// terminal message in the store is answered and delivered (including ones left by a session
// that crashed), then returns, which ends `switchboard chat`.
//
// The terminal is an authenticated channel: whoever runs the command on this machine is
// trusted to be who `--as` says.
//
// Printed once: stdout has no idempotency key, so the adapter keeps its own. Right after
// printing a reply it commits the reply's outbox id as the conversation's last printed one (a
// cursor), and only then takes the next line in; a crash after that commit but before the
// dispatcher records the delivery finds the cursor on restart and does not print it again.
// Left open is the instant between the write to stdout and that commit (a kill there prints
// the reply again: nothing can ask a pipe what it received).

import Foundation
public import Logging
import ServiceLifecycle
public import SwitchboardChannels
public import SwitchboardModel
public import SwitchboardStorage

/// Standard input and output as a channel.
public final class TerminalAdapter: ChannelAdapter {
    /// The channel name.
    public static let channelID: ChannelID = "terminal"

    public let channel: ChannelID = TerminalAdapter.channelID
    public let capabilities: ChannelCapabilities = []

    private let person: PersonID
    private let conversation: ConversationKey
    private let inbox: InboxWriter
    private let store: any Store
    private let clock: any WallClock
    private let interactive: Bool
    private let session: String
    private let reader: LineReader
    private let write: @Sendable (String) -> Void
    private let logger: Logger
    private let waiters = Locked(Waiters())

    private struct Waiters {
        var continuations: [String: CheckedContinuation<Void, Never>] = [:]
        var delivered: Set<String> = []
        var stopping = false
    }

    /// Creates the adapter.
    ///
    /// - Parameters:
    ///   - person: who is typing.
    ///   - conversation: the conversation's name; people in the same one see each other's
    ///     pending confirmations (and cannot answer them).
    ///   - inputFD: where lines come from (standard input).
    ///   - interactive: show a prompt (input is a terminal).
    ///   - write: where replies go.
    public init(
        person: PersonID,
        conversation: String,
        inbox: InboxWriter,
        store: any Store,
        clock: any WallClock,
        inputFD: Int32,
        interactive: Bool,
        write: @escaping @Sendable (String) -> Void,
        logger: Logger
    ) {
        self.person = person
        self.conversation = ConversationKey(channel: TerminalAdapter.channelID, conversation: ConversationID(conversation))
        self.inbox = inbox
        self.store = store
        self.clock = clock
        self.interactive = interactive
        self.session = UUID().uuidString.lowercased()
        self.reader = LineReader(fd: inputFD)
        self.write = write
        self.logger = logger
    }

    public func run() async throws {
        if interactive {
            write("Switchboard — you are \(person). Type \"help\" to see what I can do; Ctrl-D to leave.\n")
        }
        let reader = self.reader
        try await withGracefulShutdownHandler {
            try await converse()
        } onGracefulShutdown: {
            reader.stop()
            self.stopWaiting()
        }
    }

    /// Releases a wait for a reply and makes later waits return at once: shutting down.
    private func stopWaiting() {
        let continuations = waiters.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopping = true
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.resume() }
    }

    private func converse() async throws {
        var lineNumber = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if interactive { write("> ") }
            guard let bytes = await reader.next() else { break }
            lineNumber += 1
            // Invalid UTF-8 becomes U+FFFD here; the engine refuses to act on such text.
            let text = String(decoding: bytes, as: UTF8.self)
            if interactive && text.trimmingWhitespace().isEmpty { continue }
            let message = InboundMessage(
                externalID: "\(session)-\(lineNumber)",
                conversation: conversation,
                sender: Sender(id: person),
                text: text,
                trust: TrustFacts(senderAuthenticated: true),
                receivedAt: clock.now()
            )
            _ = try await inbox.accept([message])
            await waitForReply(to: message.externalID)
        }
        // Asked to stop (Ctrl-C, SIGTERM): leave now; what is pending is answered next time.
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        try await drain()
    }

    /// Waits until no terminal message is pending in the store.
    private func drain() async throws {
        let channel = self.channel
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let depth = try await store.read { try $0.depth(channel: channel) }
            if depth.pendingInbound == 0 && depth.pendingOutbound == 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func waitForReply(to externalID: String) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = waiters.withLock { state -> Bool in
                    if state.delivered.remove(externalID) != nil || Task.isCancelled || state.stopping { return true }
                    state.continuations[externalID] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let continuation = waiters.withLock { $0.continuations.removeValue(forKey: externalID) }
            continuation?.resume()
        }
    }

    /// The cursor holding the last outbox id printed in a conversation. The dispatcher delivers
    /// a conversation's messages one at a time in id order, and printing never fails, so every
    /// id up to it was printed.
    static func printedCursor(_ conversation: ConversationKey) -> String {
        "terminal.printed.\(conversation.conversation.rawValue)"
    }

    public func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt {
        let cursor = Self.printedCursor(message.conversation)
        let printed = try await store.read { try $0.cursor(cursor) }.flatMap(Int64.init)
        if let printed, message.id.rawValue <= printed {
            logger.debug("reply printed before a restart; not printed again", metadata: ["outbox.id": "\(message.id)"])
        } else {
            var text = message.text
            if let recipient = message.recipient, recipient != person {
                text = "[to \(recipient)] " + text
            }
            write(text + "\n")
            // Before the next line is read: what was printed is known to be printed.
            try await store.write { try $0.setCursor(cursor, value: String(message.id.rawValue)) }
        }
        guard let key = message.inReplyTo else { return DeliveryReceipt() }
        let continuation = waiters.withLock { state -> CheckedContinuation<Void, Never>? in
            if let continuation = state.continuations.removeValue(forKey: key) { return continuation }
            if key.hasPrefix(session) { state.delivered.insert(key) }
            return nil
        }
        continuation?.resume()
        return DeliveryReceipt()
    }
}
