// The /v1 routes. Each handler checks its key's scope first, validates every input with a
// message that names the field, and answers JSON (or JSON lines for the audit export).

import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardChannels
package import SwitchboardModel
import SwitchboardStorage
import SwitchboardTracing

/// The handlers, with what they need.
struct APIRoutes: Sendable {
    let configuration: HTTPConfiguration
    let store: any Store
    let inbox: InboxWriter
    let channel: APIChannel
    let operations: any GatewayOperations
    let logger: Logger
    let keys = APIKeyCache()

    func register(on router: Router<BasicRequestContext>) {
        let v1 = router.group("v1")
        v1.post("messages") { request, _ in try await postMessage(request) }
        v1.get("messages/:id") { request, context in try await getMessage(request, context) }
        v1.get("conversations/:id") { request, context in try await getConversation(request, context) }
        v1.get("audit") { request, _ in try await getAudit(request) }
        v1.get("confirmations") { request, _ in try await getConfirmations(request) }
        v1.get("confirmations/:id") { request, context in try await getConfirmation(request, context) }
        v1.post("confirmations/:id/approve") { request, context in try await decide(request, context, approve: true) }
        v1.post("confirmations/:id/decline") { request, context in try await decide(request, context, approve: false) }
        v1.get("tools") { request, _ in try await getTools(request) }
        v1.get("people/:id/preferences") { request, context in try await getPreferences(request, context) }
        v1.delete("people/:id/preferences") { request, context in try await forgetPreferences(request, context) }
    }

    /// The `{id}` of the path, percent-decoded (the router hands it over as sent).
    static func pathID(_ context: BasicRequestContext) throws -> String {
        let raw = try context.parameters.require("id")
        guard let decoded = raw.removingPercentEncoding, !decoded.isEmpty else {
            throw APIError.badRequest("The id in the path is not valid percent-encoding.")
        }
        return decoded
    }

    // MARK: Authentication

    /// The caller's key, if it allows `scope` (or, with several, any of them).
    @discardableResult
    func authorize(_ request: Request, _ scope: APIScope, or other: APIScope? = nil) async throws -> APIPrincipal {
        guard let header = request.headers[.authorization] else { throw APIError.unauthenticated }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw APIError.unauthenticated }
        guard let principal = try await keys.verify(parts[1].trimmingCharacters(in: .whitespaces)[...], store: store) else {
            throw APIError.badKey
        }
        guard principal.allows(scope) || other.map(principal.allows) == true else { throw APIError.forbidden(scope: scope) }
        return principal
    }

    // MARK: Messages

    func postMessage(_ request: Request) async throws -> Response {
        let principal = try await authorize(request, .send)
        let wait = try Query(request).seconds("wait", max: configuration.maxWaitSeconds)
        let body = try await JSONBody.read(request, limit: configuration.maxBodyBytes, timeout: .seconds(configuration.requestTimeout))
        let submission = try MessageSubmission(body, maxTextBytes: configuration.maxTextBytes, allowPrivateCallbacks: configuration.callbackAllowPrivate)
        // A key speaks only for its senders, and so answers only their confirmations (a yes
        // confirms only the requester's own request).
        guard principal.senders.allows(submission.sender) else { throw APIError.senderNotAllowed(principal.senders) }
        if submission.callbackURL != nil && !channel.signsCallbacks {
            throw APIError.invalid("callback_url needs http.callback_secret (the key that signs callbacks) to be configured.")
        }
        var message = submission.inbound(at: Date())
        // The engine continues this request's trace.
        message.traceContext = TraceCarrier.capture()
        let key = message.externalID

        // A request with a callback stores its URL with the message: look first, so a reused
        // key never changes where the original's replies go.
        var cursors: [InboxWriter.CursorUpdate] = []
        if let url = submission.callbackURL {
            if let existing = try await store.read({ try $0.inboundRecord(channel: APIChannel.channelID, externalID: key) }) {
                guard submission.matches(existing.stored.message) else { throw Self.idempotencyConflict(key) }
                return try await messageResponse(key, until: .now + .milliseconds(Int64(wait * 1000)), replayed: true)
            }
            // Stored only if this request's message is the new one: a racing repeat of the key
            // changes nothing.
            let mine = (channel: APIChannel.channelID, externalID: key)
            cursors.append(.init(name: APIChannel.replyCallbackCursor(key), value: url, onlyWithNew: mine))
            cursors.append(.init(name: APIChannel.conversationCallbackCursor(message.conversation.conversation), value: url, onlyWithNew: mine))
        }
        // Listen before the commit: the reply cannot slip past unseen.
        let ticket = wait > 0 ? channel.waiters.register(key) : nil
        defer { ticket.map(channel.waiters.finish) }
        guard let result = try await inbox.accept([message], cursors: cursors).first else {
            throw APIError(.internalServerError, "internal", "The message was not stored.")
        }
        logger.debug("message accepted", metadata: [
            "correlation.id": "\(CorrelationID(inbox: result.id))", "channel": "api", "duplicate": "\(result != .inserted(result.id))",
        ])
        guard case .inserted(let id) = result else {
            // The key was used before: the same request gets what the first one got; different
            // content under the same key is a client bug, refused.
            let stored = try await store.read { try $0.inboundRecord(channel: APIChannel.channelID, externalID: key) }
            if let stored, !submission.matches(stored.stored.message) { throw Self.idempotencyConflict(key) }
            return try await messageResponse(key, until: .now + .milliseconds(Int64(wait * 1000)), replayed: true)
        }
        // The usual case: the reply is handed over the moment it is delivered, and the answer is
        // made from what is in hand (the engine marks a message answered in the reply's commit,
        // at the reply's time). Past the first 250 ms, the store is consulted.
        if let ticket {
            let started = ContinuousClock.now
            if let reply = await channel.waiters.wait(ticket, timeout: min(.milliseconds(Int64(wait * 1000)), .milliseconds(250))) {
                let stored = InboundRecord(stored: StoredInbound(id: id, message: message), doneAt: reply.createdAt)
                return render(stored, [OutboundRecord(message: reply, state: .pending, deliveredAt: nil, lastError: nil)], replayed: false)
            }
            return try await messageResponse(key, until: started + .milliseconds(Int64(wait * 1000)), replayed: false)
        }
        return render(InboundRecord(stored: StoredInbound(id: id, message: message), doneAt: nil), [], replayed: false)
    }

    static func idempotencyConflict(_ key: String) -> APIError {
        APIError(.conflict, "idempotency_conflict", "The idempotency key \(key) was used before for a different message; use a new key for a new message.")
    }

    func getMessage(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let principal = try await authorize(request, .send, or: .read)
        let key = try Self.pathID(context)
        let wait = try Query(request).seconds("wait", max: configuration.maxWaitSeconds)
        // A key that may only send sees only its own senders' messages; a read or admin key
        // reads every conversation anyway. Another sender's message is "not found", so its
        // existence does not leak either.
        if !principal.allows(.read), principal.senders != .any {
            let stored = try await store.read { try $0.inboundRecord(channel: APIChannel.channelID, externalID: key) }
            let sender = stored.flatMap { MessageSubmission.sender(of: $0.stored.message) }
            guard let sender, principal.senders.allows(sender) else { throw APIError.notFound("There is no message with the id \(key).") }
        }
        return try await messageResponse(key, until: .now + .milliseconds(Int64(wait * 1000)), replayed: false)
    }

    /// The message with its replies: 200 once it has a reply, 202 while it waits.
    private func messageResponse(_ key: String, until deadline: ContinuousClock.Instant, replayed: Bool) async throws -> Response {
        let channelID = APIChannel.channelID
        var stored: InboundRecord
        var replies: [OutboundRecord]
        // A reply wakes us when it is delivered; one committed but held back (behind an earlier
        // reply whose callback is being retried) is found by looking again every 250 ms.
        while true {
            // Listen before reading: a reply delivered in between is kept for us.
            let ticket = channel.waiters.register(key)
            defer { channel.waiters.finish(ticket) }
            // One snapshot: the message is answered exactly when its reply is there.
            let (record, found) = try await store.read { reader in
                (try reader.inboundRecord(channel: channelID, externalID: key), try reader.outboundReplies(channel: channelID, inReplyTo: key))
            }
            guard let record else { throw APIError.notFound("There is no message with the id \(key).") }
            stored = record
            replies = found
            let left = deadline - ContinuousClock.now
            if !replies.isEmpty || left <= .zero { break }
            _ = await channel.waiters.wait(ticket, timeout: min(left, .milliseconds(250)))
        }
        return render(stored, replies, replayed: replayed)
    }

    /// The message with its replies: 200 once it has a reply, 202 while it waits.
    private func render(_ stored: InboundRecord, _ replies: [OutboundRecord], replayed: Bool) -> Response {
        let key = stored.stored.message.externalID
        var headers = HTTPFields()
        headers[.location] = "/v1/messages/\(Self.pathEscape(key))"
        headers[HTTPField.Name("Correlation-ID")!] = CorrelationID(inbox: stored.stored.id).rawValue
        if replayed { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        let body: JSONValue = ["message": Self.inboundJSON(stored), "replies": .array(replies.map(APIChannel.replyJSON))]
        return JSONResponse.make(replies.isEmpty ? .accepted : .ok, body, headers: headers)
    }

    static func pathEscape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? text
    }

    static func inboundJSON(_ record: InboundRecord) -> JSONValue {
        let message = record.stored.message
        var object: [String: JSONValue] = [
            "id": .string(message.externalID),
            "channel": .string(message.channel.rawValue),
            "conversation": .string(message.conversation.conversation.rawValue),
            "person": .string(message.sender.id.rawValue),
            "text": .string(message.text),
            "received_at": .string(APITime.format(message.receivedAt)),
            "status": .string(record.doneAt == nil ? "pending" : "answered"),
            "correlation_id": .string(CorrelationID(inbox: record.stored.id).rawValue),
        ]
        if let name = message.sender.displayName { object["sender_name"] = .string(name) }
        if let at = record.doneAt { object["answered_at"] = .string(APITime.format(at)) }
        if let to = message.replyTo { object["reply_to"] = .string(to) }
        if let thread = message.thread { object["thread"] = .string(thread) }
        return .object(object)
    }

    // MARK: Conversations

    func getConversation(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await authorize(request, .read)
        let id = try Self.pathID(context)
        let query = try Query(request)
        let channelName = try query.text("channel", maxLength: 64) ?? APIChannel.channelID.rawValue
        let limit = try query.integer("limit", range: 1...500) ?? 50
        let before = try query.time("before")
        let key = ConversationKey(channel: ChannelID(channelName), conversation: ConversationID(id))
        let (inbound, outbound) = try await store.read { reader in
            (try reader.inboundRecords(in: key, before: before, limit: limit), try reader.outboundRecords(in: key, before: before, limit: limit))
        }
        guard !inbound.isEmpty || !outbound.isEmpty || before != nil else {
            throw APIError.notFound("There is no conversation \(id) on the \(channelName) channel.")
        }
        var entries: [(at: Date, order: Int, value: JSONValue)] = []
        for record in inbound {
            var json = Self.inboundJSON(record)
            if case .object(var object) = json {
                object["direction"] = "in"
                json = .object(object)
            }
            entries.append((record.stored.message.receivedAt, 0, json))
        }
        for record in outbound {
            var json = APIChannel.replyJSON(record)
            if case .object(var object) = json {
                object["direction"] = "out"
                json = .object(object)
            }
            entries.append((record.message.createdAt, 1, json))
        }
        entries.sort { ($0.at, $0.order) < ($1.at, $1.order) }
        let page = entries.suffix(limit)
        var body: [String: JSONValue] = [
            "channel": .string(channelName),
            "conversation": .string(id),
            "messages": .array(page.map(\.value)),
        ]
        if entries.count > limit || inbound.count == limit || outbound.count == limit, let oldest = page.first {
            body["next_before"] = .string(APITime.format(oldest.at))
        }
        return JSONResponse.make(.ok, .object(body))
    }

    // MARK: Audit

    func getAudit(_ request: Request) async throws -> Response {
        try await authorize(request, .read)
        let query = try Query(request)
        var audit = AuditQuery()
        audit.person = try query.text("person", maxLength: 512).map { PersonID($0) }
        audit.tool = try query.text("tool", maxLength: 128)
        if let status = try query.text("status", maxLength: 64) {
            guard let parsed = AuditStatus(rawValue: status) else {
                throw APIError.badRequest("status must be one of \(AuditStatus.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            audit.status = parsed
        }
        let channelName = try query.text("channel", maxLength: 64) ?? APIChannel.channelID.rawValue
        if let conversation = try query.text("conversation", maxLength: 512) {
            audit.conversation = ConversationKey(channel: ChannelID(channelName), conversation: ConversationID(conversation))
        }
        audit.correlationID = try query.text("correlation_id", maxLength: 128).map(CorrelationID.init)
        audit.since = try query.time("since")
        audit.until = try query.time("until")
        audit.afterSequence = try query.integer("after", range: 0...Int.max).map(Int64.init)
        let format = try query.text("format", maxLength: 8) ?? "json"
        switch format {
        case "json":
            let limit = min(1000, try query.integer("limit", range: 1...1_000_000_000) ?? 100)
            audit.limit = limit
            let selection = audit
            let records = try await store.read { try $0.auditRecords(selection) }
            var body: [String: JSONValue] = ["records": .array(records.map(\.jsonValue))]
            if records.count == limit, let last = records.last {
                body["next_after"] = .int(last.sequence)
            }
            return JSONResponse.make(.ok, .object(body))
        case "jsonl":
            // The whole selection, one record per line, read and written a page at a time.
            let total = try query.integer("limit", range: 1...1_000_000_000)
            let store = self.store
            var headers = HTTPFields()
            headers[.contentType] = "application/x-ndjson"
            headers[.contentDisposition] = "attachment; filename=\"audit.jsonl\""
            let selection = audit
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                var page = selection
                var written = 0
                while total.map({ written < $0 }) ?? true {
                    page.limit = min(1000, total.map { $0 - written } ?? 1000)
                    let records = try await store.read { [page] in try $0.auditRecords(page) }
                    if records.isEmpty { break }
                    var buffer = ByteBuffer()
                    for record in records {
                        buffer.writeString(record.jsonValue.canonicalText)
                        buffer.writeString("\n")
                    }
                    try await writer.write(buffer)
                    written += records.count
                    page.afterSequence = records.last?.sequence
                    if records.count < page.limit ?? 0 { break }
                }
                try await writer.finish(nil)
            })
        default:
            throw APIError.badRequest("format must be json or jsonl.")
        }
    }

    // MARK: Confirmations

    func getConfirmations(_ request: Request) async throws -> Response {
        try await authorize(request, .read)
        let limit = try Query(request).integer("limit", range: 1...1000) ?? 100
        let pending = try await store.read { try $0.pendingConfirmations(limit: limit) }
        return JSONResponse.make(.ok, ["confirmations": .array(pending.map { confirmationJSON(ConfirmationRecord(confirmation: $0, outcome: nil, decidedAt: nil)) })])
    }

    func getConfirmation(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await authorize(request, .read)
        let id = try Self.pathID(context)
        guard let record = try await store.read({ try $0.confirmationRecord(ToolCallID(id)) }) else {
            throw APIError.notFound("There is no confirmation \(id).")
        }
        return JSONResponse.make(.ok, ["confirmation": confirmationJSON(record)])
    }

    func decide(_ request: Request, _ context: BasicRequestContext, approve: Bool) async throws -> Response {
        let principal = try await authorize(request, .admin)
        let id = try Self.pathID(context)
        let decision: OperatorDecision
        do {
            decision = try await operations.decide(ToolCallID(id), approve: approve, operator: principal)
        } catch let error as OperatorDecisionError {
            switch error {
            case .notFound: throw APIError.notFound("There is no confirmation \(id).")
            case .alreadyDecided(let outcome): throw APIError(.conflict, "already_decided", "Confirmation \(id) was \(outcome.rawValue) already.")
            case .forbidden(let reason): throw APIError(.forbidden, "policy_forbids", reason)
            }
        }
        let record = try await store.read { try $0.confirmationRecord(ToolCallID(id)) }
        var body: [String: JSONValue] = ["outcome": .string(decision.outcome.rawValue), "reply": .string(decision.reply)]
        if let record { body["confirmation"] = confirmationJSON(record) }
        return JSONResponse.make(.ok, .object(body))
    }

    func confirmationJSON(_ record: ConfirmationRecord) -> JSONValue {
        let c = record.confirmation
        var object: [String: JSONValue] = [
            "id": .string(c.callID.rawValue),
            "requester": .string(c.requester.rawValue),
            "channel": .string(c.conversation.channel.rawValue),
            "conversation": .string(c.conversation.conversation.rawValue),
            "tool": .string(c.tool),
            "arguments": operations.redacted(c.arguments, tool: c.tool),
            "preview": .string(c.preview),
            "risk": .string(c.risk.description),
            "tainted": .bool(c.tainted),
            "number": .int(Int64(c.number)),
            "created_at": .string(APITime.format(c.createdAt)),
            "expires_at": .string(APITime.format(c.expiresAt)),
            "status": .string(record.outcome?.rawValue ?? "pending"),
        ]
        if let at = record.decidedAt { object["decided_at"] = .string(APITime.format(at)) }
        if let correlation = c.correlationID { object["correlation_id"] = .string(correlation.rawValue) }
        return .object(object)
    }

    // MARK: Tools and people

    func getTools(_ request: Request) async throws -> Response {
        try await authorize(request, .read)
        let tools: [JSONValue] = operations.tools.map { tool in
            [
                "name": .string(tool.name), "source": .string(tool.source), "category": .string(tool.category), "description": .string(tool.description),
                "parameters": tool.parameters, "risk": .string(tool.risk.description), "effect": .string(tool.effect),
                "secret_parameters": .array(tool.secretParameters.map(JSONValue.string)),
            ]
        }
        return JSONResponse.make(.ok, ["tools": .array(tools)])
    }

    func getPreferences(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try await authorize(request, .read)
        let person = PersonID(try Self.pathID(context))
        let preferences = try await store.read { try $0.preferences(of: person) }
        var values: [String: JSONValue] = [:]
        for preference in preferences {
            values[preference.key] = ["value": preference.value, "updated_at": .string(APITime.format(preference.updatedAt))]
        }
        return JSONResponse.make(.ok, ["person": .string(person.rawValue), "preferences": .object(values)])
    }

    func forgetPreferences(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let principal = try await authorize(request, .admin)
        let person = PersonID(try Self.pathID(context))
        let count = try await operations.forgetPreferences(of: person, operator: principal)
        return JSONResponse.make(.ok, ["person": .string(person.rawValue), "forgotten": .int(Int64(count))])
    }
}

/// A `POST /v1/messages` body, validated.
package struct MessageSubmission {
    static let fields: Set<String> = ["sender", "sender_name", "conversation", "text", "idempotency_key", "reply_to", "callback_url", "untrusted_content"]

    package var sender: String
    var senderName: String?
    var conversation: String
    package var text: String
    var idempotencyKey: String
    var replyTo: String?
    var callbackURL: String?
    var untrusted: Bool

    package init(_ body: JSONValue, maxTextBytes: Int, allowPrivateCallbacks: Bool) throws {
        guard case .object(let object) = body else { throw APIError.invalid("The body must be a JSON object.") }
        if let unknown = object.keys.filter({ !Self.fields.contains($0) }).sorted().first {
            throw APIError.invalid("Unknown field \"\(unknown)\"; the fields are \(Self.fields.sorted().joined(separator: ", ")).")
        }
        sender = try Self.identifier(object, "sender", required: true)!
        conversation = try Self.identifier(object, "conversation", required: true)!
        senderName = try Self.string(object, "sender_name", maxCharacters: 256)
        guard let text = try Self.string(object, "text", maxBytes: maxTextBytes) else {
            throw APIError.invalid("text is required: the message, as plain text.")
        }
        guard !text.isEmpty else { throw APIError.invalid("text is empty.") }
        self.text = text
        idempotencyKey = try Self.identifier(object, "idempotency_key", required: false) ?? "auto-\(UUID().uuidString.lowercased())"
        replyTo = try Self.identifier(object, "reply_to", required: false)
        if let url = try Self.string(object, "callback_url", maxCharacters: 2048) {
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
                let host = parsed.host, !host.isEmpty
            else {
                throw APIError.invalid("callback_url must be an absolute http:// or https:// URL.")
            }
            if !allowPrivateCallbacks, CallbackHost.isInternal(host) {
                throw APIError.invalid("callback_url names a loopback, private or link-local address; set http.callback_allow_private to allow it.")
            }
            callbackURL = url
        }
        switch object["untrusted_content"] {
        case nil, .null: untrusted = false
        case .bool(let value): untrusted = value
        default: throw APIError.invalid("untrusted_content must be true or false.")
        }
    }

    /// A string field; `maxBytes` bounds its UTF-8 size, `maxCharacters` its length as JSON
    /// Schema counts it (Unicode code points).
    private static func string(_ object: [String: JSONValue], _ name: String, maxBytes: Int = .max, maxCharacters: Int = .max) throws -> String? {
        switch object[name] {
        case nil, .null: return nil
        case .string(let value):
            guard value.utf8.count <= maxBytes else { throw APIError.invalid("\(name) is longer than \(maxBytes) bytes.") }
            guard value.unicodeScalars.count <= maxCharacters else { throw APIError.invalid("\(name) is longer than \(maxCharacters) characters.") }
            guard !value.unicodeScalars.contains(where: { $0.value == 0 }) else { throw APIError.invalid("\(name) contains a NUL character.") }
            return value
        default: throw APIError.invalid("\(name) must be a string.")
        }
    }

    /// 1 to 200 characters.
    private static func identifier(_ object: [String: JSONValue], _ name: String, required: Bool) throws -> String? {
        guard let value = try string(object, name, maxCharacters: 200) else {
            if required { throw APIError.invalid("\(name) is required.") }
            return nil
        }
        guard !value.isEmpty else { throw APIError.invalid("\(name) must be 1 to 200 characters.") }
        return value
    }

    /// API senders are their own people: `api:` + the sender, so no caller can speak as a
    /// Matrix or email identity (and borrow its role or its pending confirmations).
    package var person: PersonID { PersonID("api:\(sender)") }

    /// The API sender a stored message came from, if it came through the API.
    static func sender(of message: InboundMessage) -> String? {
        let id = message.sender.id.rawValue
        return id.hasPrefix("api:") ? String(id.dropFirst(4)) : nil
    }

    func inbound(at now: Date) -> InboundMessage {
        InboundMessage(
            externalID: idempotencyKey,
            conversation: ConversationKey(channel: APIChannel.channelID, conversation: ConversationID(conversation)),
            sender: Sender(id: person, displayName: senderName),
            text: text,
            replyTo: replyTo,
            trust: TrustFacts(senderAuthenticated: true, containsUntrustedContent: untrusted),
            receivedAt: now
        )
    }

    /// Whether a stored message is this one again.
    func matches(_ stored: InboundMessage) -> Bool {
        stored.sender.id == person && stored.conversation.conversation.rawValue == conversation && stored.text == text
            && stored.replyTo == replyTo && stored.trust.containsUntrustedContent == untrusted
    }
}

/// A request body as JSON.
enum JSONBody {
    /// Reads the whole body, at most `limit` bytes; a client that takes longer than `timeout`
    /// to send it gets 408 rather than holding the request open.
    static func read(_ request: Request, limit: Int, timeout: Duration) async throws -> JSONValue {
        if let type = request.headers[.contentType], !type.lowercased().hasPrefix("application/json") {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "Send the body as application/json.")
        }
        let body = request.body
        let buffer: ByteBuffer
        do {
            buffer = try await withDeadline(timeout) { try await body.collect(upTo: limit) }
        } catch is DeadlineExceeded {
            throw APIError(.requestTimeout, "timeout", "The body took longer than \(timeout.components.seconds) seconds to arrive (http.request_timeout_seconds).")
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("The body is empty; send a JSON object.") }
        do {
            return try JSONValue.parse(String(buffer: buffer))
        } catch {
            throw APIError.badRequest("The body is not valid JSON.")
        }
    }
}

/// Query parameters, validated.
struct Query {
    let parameters: [String: String]

    init(_ request: Request) throws {
        var parameters: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            let name = String(key)
            guard parameters[name] == nil else { throw APIError.badRequest("The query parameter \(name) is given twice.") }
            // Already percent-decoded by the router.
            parameters[name] = String(value)
        }
        self.parameters = parameters
    }

    func text(_ name: String, maxLength: Int) throws -> String? {
        guard let value = parameters[name] else { return nil }
        guard !value.isEmpty, value.utf8.count <= maxLength else {
            throw APIError.badRequest("\(name) must be 1 to \(maxLength) bytes.")
        }
        return value
    }

    func integer(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let value = parameters[name] else { return nil }
        guard let number = Int(value), range.contains(number) else {
            let upper = range.upperBound == Int.max ? "" : " to \(range.upperBound)"
            throw APIError.badRequest("\(name) must be a whole number from \(range.lowerBound)\(upper).")
        }
        return number
    }

    func seconds(_ name: String, max: Double) throws -> Double {
        guard let value = parameters[name] else { return 0 }
        guard let number = Double(value), number.isFinite, number >= 0, number <= max else {
            throw APIError.badRequest("\(name) must be a number of seconds from 0 to \(Int(max)) (http.max_wait_seconds).")
        }
        return number
    }

    func time(_ name: String) throws -> Date? {
        guard let value = parameters[name] else { return nil }
        guard let date = APITime.parse(value) else {
            throw APIError.badRequest("\(name) must be an RFC 3339 time, such as 2026-11-29T09:00:00Z.")
        }
        return date
    }
}

/// Which callback hosts point inside: the server must not become a way to reach them.
///
/// Literal addresses and `localhost` names are refused when a request names them; a DNS name
/// is checked at each delivery, against every address it resolves to then (`CallbackTarget`).
enum CallbackHost {
    static func isInternal(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        // A zone (fe80::1%eth0) is link-local by definition.
        if name.contains("%") { return true }
        if name == "localhost" || name.hasSuffix(".localhost") || name.hasSuffix(".localhost.") { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            return isInternal(v4: UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, name, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes.allSatisfy({ $0 == 0 }) { return true }                                  // ::
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }      // ::1
            if bytes[0] & 0xFE == 0xFC { return true }                                      // fc00::/7
            if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return true }                  // fe80::/10
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                // ::ffff:a.b.c.d
                return isInternal(v4: UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15]))
            }
            return false
        }
        return false
    }

    static func isInternal(v4 address: UInt32) -> Bool {
        let first = address >> 24
        let second = (address >> 16) & 0xFF
        return first == 0 || first == 10 || first == 127                   // this host, private, loopback
            || (first == 169 && second == 254)                              // link-local (cloud metadata)
            || (first == 172 && (16...31).contains(second))                 // private
            || (first == 192 && second == 168)                              // private
            || (first == 100 && (64...127).contains(second))                // carrier-grade NAT
            || first >= 224                                                 // multicast, reserved, broadcast
    }
}
