public import Foundation
public import SwitchboardModel
public import SwitchboardStorage

/// What a tool's execution does to the world, which decides undo and taint handling.
public enum ToolEffect: String, Hashable, Sendable {
    /// Reads only. Never needs confirmation for taint; nothing to undo.
    case readOnly = "read_only"
    /// Writes, and records how to revert.
    case reversible
    /// Writes or reaches outside in a way that cannot be taken back (sending an email).
    case irreversible
}

/// Where a tool comes from: shipped with Switchboard, or another system's, reached over MCP or a
/// declared HTTP API.
public enum ToolOrigin: Hashable, Sendable, CustomStringConvertible {
    /// Shipped with this build; its data lives in the store.
    case builtin
    /// A tool of the named MCP server.
    case mcp(server: String)
    /// A declared HTTP tool (`http_tools` in the configuration).
    case http

    public var description: String {
        switch self {
        case .builtin: "built-in"
        case .mcp(let server): "mcp:\(server)"
        case .http: "http"
        }
    }
}

/// What a tool declares about itself. Policy, rate limits and the audit trail use the name.
public struct ToolDescriptor: Hashable, Sendable {
    /// The dotted, stable name: `notes.delete`.
    public var name: String
    /// The category for permissions and rate limits: `notes`.
    public var category: String
    /// One sentence on what it does.
    public var summary: String
    /// JSON Schema of the arguments.
    public var parameters: JSONValue
    /// The risk of a call with ordinary arguments; arguments can raise it.
    public var baseRisk: Risk
    /// What it does to the world.
    public var effect: ToolEffect
    /// Argument names whose values are secrets and never reach the audit trail or logs.
    public var secretArguments: Set<String>
    /// Example requests that this tool serves, with `{slot}` markers for the parts that vary
    /// (`remind me {when} to {text}`): the intent engine learns from them.
    public var examples: [String]
    /// One concrete request that `help` shows ("remind me tomorrow at 9 to call bob").
    public var usage: String?
    /// Where the tool comes from.
    public var origin: ToolOrigin
    /// Whether what the tool returns is a third party's content (an MCP server's or an HTTP
    /// API's answer): a planner must treat it as data, and every later call of the same plan
    /// that changes something waits for a yes.
    public var returnsUntrustedContent: Bool
    /// What the tool's system is, in the words people use for it (an MCP server's
    /// `description`: "Confluence wiki", "GitHub: repositories, pull requests"). Only the
    /// tool retriever reads it, so that "is there a PR open on github" finds the git server's
    /// tool even when neither word is in the tool's own description.
    public var context: String

    /// Creates a descriptor.
    public init(
        name: String,
        category: String,
        summary: String,
        parameters: JSONValue,
        baseRisk: Risk,
        effect: ToolEffect,
        secretArguments: Set<String> = [],
        examples: [String] = [],
        usage: String? = nil,
        origin: ToolOrigin = .builtin,
        returnsUntrustedContent: Bool = false,
        context: String = ""
    ) {
        self.context = context
        self.origin = origin
        self.returnsUntrustedContent = returnsUntrustedContent
        self.examples = examples
        self.usage = usage
        self.name = name
        self.category = category
        self.summary = summary
        self.parameters = parameters
        self.baseRisk = baseRisk
        self.effect = effect
        self.secretArguments = secretArguments
    }
}

/// A call resolved against current data: exactly what will run, and what it will do, in words.
public struct PreparedCall: Hashable, Sendable {
    /// The arguments that will run, resolved (note ids rather than "all my notes").
    public var arguments: JSONValue
    /// A preview of exactly what will happen, for the confirmation request.
    public var preview: String
    /// The risk of these arguments, at least the tool's base risk.
    public var risk: Risk

    /// Creates a prepared call.
    public init(arguments: JSONValue, preview: String, risk: Risk) {
        self.arguments = arguments
        self.preview = preview
        self.risk = risk
    }
}

/// What an execution did.
public struct ToolOutput: Hashable, Sendable {
    /// The reply to the person.
    public var reply: String
    /// A short summary for the audit trail (no secrets, no long bodies).
    public var summary: String
    /// How to revert, for reversible tools; nil for read-only or irreversible ones.
    public var undo: JSONValue?

    /// Creates an output.
    public init(reply: String, summary: String, undo: JSONValue? = nil) {
        self.reply = reply
        self.summary = summary
        self.undo = undo
    }
}

/// A failure the person should hear about in plain words ("You have no note 7.").
///
/// Anything else a tool throws is reported to the person as a generic failure with a
/// correlation id, and to the operator in the logs.
public struct ToolFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The sentence for the person.
    public var message: String

    /// Creates a failure.
    public init(_ message: String) { self.message = message }

    public var description: String { "ToolFailure: \(message)" }
}

/// Proof that the tool gate approved this call.
///
/// Only the engine can create one (its initialiser is internal to this module), and
/// `Tool.execute` and `Tool.undo` require it: a tool cannot be run except through the gate.
public struct Approval: Sendable {
    /// The approved call.
    public let callID: ToolCallID
    /// On whose behalf.
    public let person: PersonID

    init(callID: ToolCallID, person: PersonID) {
        self.callID = callID
        self.person = person
    }
}

/// What a tool sees while it runs: who asked, where, when, the tool data and the person's
/// preferences in the current transaction, and a way to send a message through the outbox.
/// Nothing else: no inbox, no audit trail, no other tool.
public struct ToolContext {
    /// On whose behalf.
    public let person: PersonID
    /// Where.
    public let conversation: ConversationKey
    /// The current time.
    public let now: Date
    /// The call being prepared or run.
    public let callID: ToolCallID
    /// The correlation id of the message that asked.
    public let correlationID: CorrelationID?
    /// The notes data.
    public let notes: any NoteStore
    /// The other tools' data.
    public let records: any RecordStore
    /// The channels that can deliver messages a tool sends (`email`, `matrix`).
    public let sendingChannels: Set<ChannelID>
    /// How learned defaults are used.
    public let learning: LearningPolicy
    /// What a remote tool read from its system for this call before it was prepared
    /// (`RemoteTool.look`); nil otherwise.
    public let lookup: JSONValue?
    let tx: any StoreTransaction

    init(
        person: PersonID, conversation: ConversationKey, now: Date, callID: ToolCallID, correlationID: CorrelationID?,
        sendingChannels: Set<ChannelID>, store: any StoreTransaction, learning: LearningPolicy = LearningPolicy(), lookup: JSONValue? = nil
    ) {
        self.lookup = lookup
        self.learning = learning
        self.correlationID = correlationID
        self.person = person
        self.conversation = conversation
        self.now = now
        self.callID = callID
        self.notes = store.notes
        self.records = store.records
        self.sendingChannels = sendingChannels
        self.tx = store
    }

    /// The person's preferences, by key.
    public func preferences() throws -> [String: JSONValue] {
        Dictionary(try tx.preferences(of: person).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Sets one of the person's preferences.
    public func setPreference(_ key: String, _ value: JSONValue) throws {
        try tx.setPreference(person, key: key, value: value, at: now)
    }

    /// Removes one of the person's preferences, keeping the others. Returns whether it was set.
    public func removePreference(_ key: String) throws -> Bool {
        try tx.deletePreference(person, key: key)
    }

    /// The channel identities linked to the person ("email:sam@example.org").
    public func linkedIdentities() throws -> [PersonID] {
        try tx.linkedIdentities(of: person)
    }

    /// The person a channel identity is linked to, if any.
    public func linkedPerson(for identity: PersonID) throws -> PersonID? {
        try tx.linkedPerson(for: identity)
    }

    /// Links a channel identity to the person (after they proved they hold it).
    public func link(_ identity: PersonID) throws {
        try tx.linkIdentity(identity, to: person, at: now)
    }

    /// Removes a link, or gives the identity back to `previous`.
    public func unlink(_ identity: PersonID, restoring previous: PersonID?) throws {
        if let previous {
            try tx.linkIdentity(identity, to: previous, at: now)
        } else {
            _ = try tx.unlinkIdentity(identity)
        }
    }

    /// The person's sealed record for an account on another system (`dav`: their calendar
    /// server), as `DAVAccounts` wrote it; nil when they linked none. Sealed: the tool opens it.
    public func account(_ service: String) throws -> String? {
        try tx.cursor(Self.accountRecord(service, person: person))
    }

    /// Where a person's account record for a service is kept (a cursor of the store, carried
    /// by export and import, never pruned).
    public static func accountRecord(_ service: String, person: PersonID) -> String {
        "account.\(service).\(person.rawValue)"
    }

    /// Forgets all the person's preferences; returns how many there were.
    public func forgetPreferences() throws -> Int {
        try tx.forgetPreferences(of: person)
    }

    /// Queues a message for delivery by a channel, in this transaction: it goes out once the call
    /// commits, with the outbox's retries. `index` tells apart several messages of one call.
    /// `relayed`: the person asked for this message and it is theirs (an email they dictated);
    /// otherwise it is the gateway's own notice, marked automatic where the channel can say so
    /// (email's `Auto-Submitted`).
    public func send(to conversation: ConversationKey, recipient: PersonID?, subject: String?, text: String, relayed: Bool = false, index: Int = 0) throws {
        guard sendingChannels.contains(conversation.channel) else {
            throw ToolFailure("I can't send messages over \(conversation.channel) here: that channel isn't configured.")
        }
        _ = try tx.enqueueOutbound(OutboundDraft(
            deliveryKey: "send-\(callID.rawValue)-\(index)", conversation: conversation, recipient: recipient, text: text,
            inReplyTo: nil, thread: nil, kind: relayed ? .relayed : .notice, correlationID: correlationID, subject: subject
        ), at: now)
    }
}

/// A tool: something Switchboard can do for a person.
///
/// Implementers must not keep state outside the store, must not reach the network inside
/// `execute` (outside effects go through the outbox), must return from `prepare` a preview that
/// says exactly what `execute` will do with the prepared arguments, and must never put a secret
/// argument's value in a preview, reply, summary or `ToolFailure` (those are shown and audited
/// as written; only arguments are redacted).
public protocol Tool: Sendable {
    /// The tool's declaration.
    var descriptor: ToolDescriptor { get }

    /// Validates and resolves arguments against current data, and says what will happen.
    ///
    /// - Throws: `ToolFailure` for arguments the person should fix.
    func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall

    /// Runs a prepared call. Runs inside the transaction that also records it.
    ///
    /// - Throws: `ToolFailure` for outcomes the person should hear about.
    func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput

    /// Reverts an earlier execution from the payload it returned.
    ///
    /// - Returns: A sentence saying what was restored.
    func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String
}

extension Tool {
    /// Read-only and irreversible tools have nothing to undo.
    public func undo(_ payload: JSONValue, approval: Approval, context: ToolContext) throws -> String {
        throw ToolFailure("\(descriptor.name) cannot be undone.")
    }
}

/// A tool that acts on another system (an MCP server, an HTTP API).
///
/// Its call cannot run inside a database transaction: the gate first commits that the call is
/// about to run (the `dispatched` audit record, whose call id is the idempotency key the tool
/// sends along), then the engine awaits `perform` outside any transaction, then records the
/// outcome in a second transaction. A crash in between leaves the `dispatched` record without an
/// outcome: the engine then tells the person the call was interrupted and does not repeat it.
///
/// Implementers must bound `perform` and `revert` in time (their own timeout), must answer at
/// once with a `ToolFailure` when the other system is known to be down, and must never put a
/// secret (a header, a token) in a reply, summary or failure. `prepare` stays local: it checks
/// arguments and says what will be sent, without reaching the other system.
public protocol RemoteTool: Tool {
    /// Runs a prepared call against the other system.
    ///
    /// - Throws: `ToolFailure` for outcomes the person should hear about (the service is down,
    ///   it refused, it timed out).
    func perform(_ call: PreparedCall, approval: Approval, context: RemoteCallContext) async throws -> ToolOutput

    /// Reverts an earlier call from the payload its output carried (a compensating request).
    ///
    /// - Returns: A sentence saying what was restored.
    func revert(_ payload: JSONValue, approval: Approval, context: RemoteCallContext) async throws -> String

    /// Whether this prepared call goes to the other system. A tool that works on the store for
    /// some people and on their own server for others (the calendar on CalDAV) answers per
    /// call; the others go outside always.
    func performsRemotely(_ call: PreparedCall) -> Bool

    /// Whether undoing from this payload goes to the other system (else `undo` runs it in the
    /// transaction, as for a built-in tool).
    func revertsRemotely(_ payload: JSONValue) -> Bool

    /// Reads, before a call is prepared and outside any transaction, what the call would act
    /// on (the events "all my meetings tomorrow" are), so that `prepare` can say exactly that in
    /// its preview (`ToolContext.lookup`). Reads only, bounded in time; nil when it needs none.
    func look(_ arguments: JSONValue, person: PersonID) async -> JSONValue?
}

extension RemoteTool {
    public func performsRemotely(_ call: PreparedCall) -> Bool { true }
    public func look(_ arguments: JSONValue, person: PersonID) async -> JSONValue? { nil }
    public func revertsRemotely(_ payload: JSONValue) -> Bool { true }

    /// Never called: the gate runs remote tools through `perform`, outside the transaction.
    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        throw ToolFailure("\(descriptor.name) reaches another system and cannot run inside a transaction.")
    }

    /// Remote tools without a compensating call cannot be undone.
    public func revert(_ payload: JSONValue, approval: Approval, context: RemoteCallContext) async throws -> String {
        throw ToolFailure("\(descriptor.name) cannot be undone.")
    }
}

/// What a remote tool sees while it runs: who asked, and the key that makes a retried call
/// recognisable to the other system. No store: the call runs outside any transaction.
public struct RemoteCallContext: Sendable {
    /// On whose behalf.
    public let person: PersonID
    /// Where.
    public let conversation: ConversationKey
    /// The call.
    public let callID: ToolCallID
    /// The correlation id of the message that asked.
    public let correlationID: CorrelationID?
    /// Sent along as the call's idempotency key (an MCP `_meta` field, an `Idempotency-Key`
    /// header): the same call always carries the same key.
    public let idempotencyKey: String

    /// Creates a context (tests and benchmarks; the gate makes its own).
    public init(person: PersonID, conversation: ConversationKey, callID: ToolCallID, correlationID: CorrelationID?, idempotencyKey: String) {
        self.person = person
        self.conversation = conversation
        self.callID = callID
        self.correlationID = correlationID
        self.idempotencyKey = idempotencyKey
    }
}
