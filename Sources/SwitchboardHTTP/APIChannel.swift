// The generic channel behind `POST /v1/messages`: any system can talk to the assistant.
//
// A request becomes an inbound message on the `api` channel whose external id is the caller's
// idempotency key, so the inbox's (channel, external id) uniqueness is what makes a repeated
// key run nothing twice. Replies travel through the outbox like any other channel's; their
// "delivery" is (1) waking a caller that waits for them (`?wait=`) and (2) when the request
// named a callback URL, a signed POST to it, retried with backoff by the outbox dispatcher
// like any delivery. Without a callback, a reply stays in the outbox, fetched by
// `GET /v1/messages/{id}` or `GET /v1/conversations/{id}`.

import AsyncHTTPClient
import Crypto
public import Foundation
public import Logging
import Metrics
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
public import ServiceLifecycle
public import SwitchboardChannels
public import SwitchboardModel
public import SwitchboardStorage

/// The `api` channel.
public final class APIChannel: ChannelAdapter, Sendable {
    /// The channel's name.
    public static let channelID: ChannelID = "api"

    public let channel: ChannelID = APIChannel.channelID
    public let capabilities: ChannelCapabilities = []

    private let store: any Store
    private let callbackSecret: Secret?
    private let allowPrivateCallbacks: Bool
    private let logger: Logger
    /// Made as callbacks need them, shut down when the channel stops.
    private let clients = CallbackClients()
    let waiters = ReplyWaiters()

    /// Creates the channel.
    ///
    /// - Parameters:
    ///   - callbackSecret: the key that signs callback requests; without it, requests that
    ///     name a callback URL are refused.
    ///   - allowPrivateCallbacks: `http.callback_allow_private`: let callbacks reach loopback,
    ///     private and link-local addresses.
    public init(store: any Store, callbackSecret: Secret?, allowPrivateCallbacks: Bool = false, logger: Logger) {
        self.store = store
        self.callbackSecret = callbackSecret
        self.allowPrivateCallbacks = allowPrivateCallbacks
        self.logger = logger
    }

    /// Whether callbacks can be signed.
    var signsCallbacks: Bool { callbackSecret != nil }

    public func run() async throws {
        // Nothing to poll: requests arrive through the HTTP server. Stay up until shutdown,
        // then let the client finish.
        try? await gracefulShutdown()
        await clients.shutdown()
    }

    /// The cursor that remembers a request's callback URL.
    static func replyCallbackCursor(_ externalID: String) -> String { "api.reply_callback.\(externalID)" }
    /// The cursor that remembers a conversation's latest callback URL, for notices that answer
    /// no particular request (an expired confirmation).
    static func conversationCallbackCursor(_ conversation: ConversationID) -> String { "api.conversation_callback.\(conversation.rawValue)" }

    public func deliver(_ message: OutboundMessage) async throws -> DeliveryReceipt {
        // A reply goes to its own request's callback only; a notice that answers no request
        // (an expired confirmation, an operator's decision) to the conversation's latest one.
        let url = try await store.read { reader -> String? in
            if let request = message.inReplyTo {
                return try reader.cursor(Self.replyCallbackCursor(request))
            }
            return try reader.cursor(Self.conversationCallbackCursor(message.conversation.conversation))
        }
        // A caller waiting on the request gets the reply now, whatever the callback's far end
        // does; a retried delivery finds nobody waiting any more.
        if let request = message.inReplyTo {
            waiters.resume(request, with: message)
        }
        if let url, let secret = callbackSecret {
            try await post(message, to: url, secret: secret)
        }
        return DeliveryReceipt(externalID: nil)
    }

    private func post(_ message: OutboundMessage, to url: String, secret: Secret) async throws {
        let body = Self.replyJSON(OutboundRecord(message: message, state: .delivered, deliveredAt: nil, lastError: nil)).canonicalText
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Switchboard")
        request.headers.add(name: "Switchboard-Delivery", value: message.deliveryKey)
        request.headers.add(name: "Switchboard-Signature", value: Self.signature(body: body, timestamp: timestamp, secret: secret))
        request.body = .bytes(ByteBuffer(string: body))
        // Checked at every delivery, against what the name resolves to now.
        let target = try await CallbackTarget.check(url, allowPrivate: allowPrivateCallbacks)
        let client = try clients.client(for: target)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(20))
            // Read (and drop) what the receiver says, up to 1 MiB; past that the connection is
            // simply closed. Its answer is the status.
            var seen = 0
            for try await chunk in response.body {
                seen += chunk.readableBytes
                if seen > 1 << 20 { break }
            }
        } catch {
            throw ChannelError(.unreachable, "the callback could not be reached (\(type(of: error)))", isTransient: true)
        }
        let status = response.status.code
        switch status {
        case 200..<300:
            return
        case 408, 429, 500...:
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
            throw ChannelError(.unreachable, "the callback answered \(status)", isTransient: true, retryAfter: retryAfter)
        default:
            throw ChannelError(.rejected, "the callback refused the reply with \(status)", isTransient: false)
        }
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the receiver recomputes it
    /// with the shared secret, and rejects stale timestamps to stop replays.
    static func signature(body: String, timestamp: Int, secret: Secret) -> String {
        let key = SymmetricKey(data: Array(secret.revealed.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).\(body)".utf8), using: key)
        return "t=\(timestamp),v1=\(APIKeys.hex(Array(mac)))"
    }

    /// A reply as the API shows it.
    static func replyJSON(_ record: OutboundRecord) -> JSONValue {
        let message = record.message
        var object: [String: JSONValue] = [
            "id": .string(message.deliveryKey),
            "conversation": .string(message.conversation.conversation.rawValue),
            "channel": .string(message.conversation.channel.rawValue),
            "text": .string(message.text),
            "kind": .string(message.kind.rawValue),
            "created_at": .string(APITime.format(message.createdAt)),
            "delivery": .string(record.state.rawValue),
        ]
        if let to = message.inReplyTo { object["in_reply_to"] = .string(to) }
        if let correlation = message.correlationID { object["correlation_id"] = .string(correlation.rawValue) }
        if let recipient = message.recipient { object["recipient"] = .string(recipient.rawValue) }
        if let at = record.deliveredAt { object["delivered_at"] = .string(APITime.format(at)) }
        if let error = record.lastError { object["last_error"] = .string(error) }
        return .object(object)
    }
}

/// Callers waiting for the first reply to a message.
///
/// A caller registers (synchronously) before it commits or reads, then waits; a reply that
/// arrives in between is kept in its slot, so none slips past unseen.
final class ReplyWaiters: Sendable {
    /// A registration.
    struct Ticket: Sendable {
        fileprivate let id: UInt64
        fileprivate let key: String
    }

    private enum Slot {
        case registered
        case waiting(CheckedContinuation<OutboundMessage?, Never>)
        case arrived(OutboundMessage)
    }

    private struct State {
        var next: UInt64 = 0
        var slots: [UInt64: Slot] = [:]
        var byKey: [String: [UInt64]] = [:]
    }

    private let state = Locked(State())

    /// Starts listening for a reply to `key`.
    func register(_ key: String) -> Ticket {
        state.withLock { state in
            state.next += 1
            state.slots[state.next] = .registered
            state.byKey[key, default: []].append(state.next)
            return Ticket(id: state.next, key: key)
        }
    }

    /// Waits up to `timeout` for the reply; nil when none came in time. Ends the registration.
    func wait(_ ticket: Ticket, timeout: Duration) async -> OutboundMessage? {
        await withTaskGroup(of: OutboundMessage?.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let early: OutboundMessage?? = self.state.withLock { state in
                            switch state.slots[ticket.id] {
                            case .arrived(let message):
                                Self.remove(ticket, from: &state)
                                return .some(message)
                            case .registered where !Task.isCancelled:
                                state.slots[ticket.id] = .waiting(continuation)
                                return nil
                            default:
                                Self.remove(ticket, from: &state)
                                return .some(nil)
                            }
                        }
                        if let early { continuation.resume(returning: early) }
                    }
                } onCancel: {
                    self.finish(ticket)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// Ends a registration without waiting.
    func finish(_ ticket: Ticket) {
        let slot = state.withLock { state -> Slot? in
            let slot = state.slots[ticket.id]
            Self.remove(ticket, from: &state)
            return slot
        }
        if case .waiting(let continuation) = slot { continuation.resume(returning: nil) }
    }

    /// Hands a reply to everyone registered for `key`.
    func resume(_ key: String, with message: OutboundMessage) {
        let continuations = state.withLock { state -> [CheckedContinuation<OutboundMessage?, Never>] in
            var waking: [CheckedContinuation<OutboundMessage?, Never>] = []
            for id in state.byKey.removeValue(forKey: key) ?? [] {
                switch state.slots[id] {
                case .waiting(let continuation):
                    waking.append(continuation)
                    state.slots[id] = nil
                case .registered:
                    state.slots[id] = .arrived(message)
                    state.byKey[key, default: []].append(id)
                default:
                    break
                }
            }
            return waking
        }
        for continuation in continuations { continuation.resume(returning: message) }
    }

    private static func remove(_ ticket: Ticket, from state: inout State) {
        state.slots[ticket.id] = nil
        if var ids = state.byKey[ticket.key] {
            ids.removeAll { $0 == ticket.id }
            state.byKey[ticket.key] = ids.isEmpty ? nil : ids
        }
    }

    /// How many registrations are open (for tests: none may leak).
    var open: Int { state.withLock { $0.slots.count } }
}

/// Times as the API writes and reads them: RFC 3339 in UTC with milliseconds.
enum APITime {
    static func format(_ date: Date) -> String { RFC3339.format(date) }

    /// Reads an RFC 3339 date-time (section 5.6): `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, `T`
    /// and `Z` in either case.
    static func parse(_ text: some StringProtocol) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + digits] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2), expect("Tt"),
            let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
            (1...12).contains(month), (1...31).contains(day), hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, bytes[index] >= 48 && bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        if expect("Zz") {
            offset = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = number(2), expect(":"), let minutes = number(2), hours <= 23, minutes <= 59 else { return nil }
            offset = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= monthDays[month - 1] else { return nil }
        // Days since 1970-01-01 in the proleptic Gregorian calendar (the civil-from-days
        // algorithm run backwards), without Foundation's Calendar, which is slow and not
        // safe to create from many threads at once on every platform.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + min(second, 59) - offset)
        return Date(timeIntervalSince1970: seconds + fraction)
    }
}
