// The tool gate: the only path by which a tool runs.
//
//   permission → rate limit → risk → confirmation → execute → audit → undo record
//
// Every step runs inside the caller's write transaction, so a tool's effect, its audit
// records, its undo record and the reply that reports it commit together or not at all. The
// tool call id is derived from the inbound message, and the audit trail refuses a second
// record of the same state for the same call, so a reprocessed message can never run a tool
// twice. `Approval`, which `Tool.execute` requires, can only be made here.

public import Foundation
public import Logging
public import SwitchboardModel
public import SwitchboardStorage
import SwitchboardTracing
import Tracing

/// Runs tool calls under policy, recording every state change.
public struct ToolGate: Sendable {
    /// The tools.
    public let registry: ToolRegistry
    /// Roles and permissions.
    public let access: AccessPolicy
    /// Risk overrides.
    public let riskPolicy: RiskPolicy
    /// Rate limits per category.
    public let rateLimits: RateLimitPolicy
    /// How long a confirmation stays valid.
    public let confirmationLifetime: TimeInterval
    /// The channels tools may send messages through (`email.send`, `matrix.post`).
    public let sendingChannels: Set<ChannelID>
    /// Learned defaults and standing approvals.
    public let learning: LearningPolicy
    /// Seals the secret arguments of a call that waits for a yes.
    let sealer: SecretSealer
    let logger: Logger

    /// Creates a gate.
    public init(
        registry: ToolRegistry,
        access: AccessPolicy,
        riskPolicy: RiskPolicy,
        rateLimits: RateLimitPolicy,
        confirmationLifetime: TimeInterval,
        sendingChannels: Set<ChannelID> = [],
        sealer: SecretSealer,
        learning: LearningPolicy = LearningPolicy(),
        logger: Logger
    ) {
        self.learning = learning
        self.sendingChannels = sendingChannels
        self.sealer = sealer
        self.registry = registry
        self.access = access
        self.riskPolicy = riskPolicy
        self.rateLimits = rateLimits
        self.confirmationLifetime = confirmationLifetime
        self.logger = logger
    }

    /// Who asks, where, and with what trust.
    public struct Request: Sendable {
        /// The requester.
        public var person: PersonID
        /// Where.
        public var conversation: ConversationKey
        /// The inbound message that asked.
        public var inboxID: InboxID
        /// The correlation id.
        public var correlationID: CorrelationID
        /// The channel authenticated the sender.
        public var senderAuthenticated: Bool
        /// The plan was made from untrusted content.
        public var tainted: Bool
        /// Now.
        public var now: Date
        /// What the gate recorded for this request, counted in metrics once the transaction commits.
        public let events = GateEvents()
        /// What a remote tool read from its system for this call before it was prepared
        /// (`RemoteTool.look`), for `prepare` to resolve against.
        public var lookup: JSONValue?

        /// Creates a request.
        public init(
            person: PersonID,
            conversation: ConversationKey,
            inboxID: InboxID,
            correlationID: CorrelationID,
            senderAuthenticated: Bool,
            tainted: Bool,
            now: Date
        ) {
            self.person = person
            self.conversation = conversation
            self.inboxID = inboxID
            self.correlationID = correlationID
            self.senderAuthenticated = senderAuthenticated
            self.tainted = tainted
            self.now = now
        }
    }

    /// What the gate did, for the reply.
    public struct Result: Sendable {
        /// The sentence(s) for the person.
        public var text: String
        /// Reply or confirmation request.
        public var kind: OutboundKind
        /// The final audit status, if a call was involved.
        public var status: AuditStatus?
        /// A remote call the gate approved and recorded as `dispatched`: the caller must commit,
        /// then `perform` it outside the transaction, then `complete` it in another.
        public var dispatch: RemoteDispatch?
        /// With a dispatched confirmed call whose plan goes on: the continuation to add once
        /// the call has been performed.
        var continuation: InboundMessage?

        init(_ text: String, kind: OutboundKind = .reply, status: AuditStatus?, dispatch: RemoteDispatch? = nil) {
            self.text = text
            self.kind = kind
            self.status = status
            self.dispatch = dispatch
        }
    }

    // MARK: Propose

    /// Takes a planned call through the whole gate.
    public func propose(
        tool name: String,
        arguments: JSONValue,
        index: Int,
        request: Request,
        in tx: any StoreTransaction
    ) throws -> Result {
        guard let tool = registry[name] else {
            logger.warning("planner proposed an unknown tool", metadata: ["tool.name": "\(name)"])
            return Result("I don't have a tool called \(name).", status: nil)
        }
        let descriptor = tool.descriptor
        let callID = ToolCallID(inbox: request.inboxID, index: index)
        let context = ToolContext(
            person: request.person, conversation: request.conversation, now: request.now, callID: callID,
            correlationID: request.correlationID, sendingChannels: sendingChannels, store: tx, learning: learning, lookup: request.lookup
        )
        var audit = AuditWriter(
            tx: tx, callID: callID, person: request.person, conversation: request.conversation,
            descriptor: descriptor, correlationID: request.correlationID, now: request.now, events: request.events
        )

        // Resolve arguments first, so every later record shows exactly what would run.
        let prepared: PreparedCall
        do {
            prepared = try tool.prepare(arguments, context: context)
        } catch let failure as ToolFailure {
            try audit.append(.proposed, arguments: arguments, risk: descriptor.baseRisk, summary: "invalid request")
            try audit.append(.failed, arguments: arguments, risk: descriptor.baseRisk, summary: failure.message)
            return Result(failure.message, status: .failed)
        }
        let risk = riskPolicy.risk(of: prepared, tool: descriptor)
        try audit.append(.proposed, arguments: prepared.arguments, risk: risk, summary: prepared.preview)

        // Permission.
        guard access.allows(request.person, descriptor) else {
            let needed = access.minimumRole(for: descriptor)
            try audit.append(.denied, arguments: prepared.arguments, risk: risk, summary: "needs role \(needed)")
            return Result(
                "Sorry, \(descriptor.name) needs the \(needed) role, and you are a \(access.role(of: request.person)).",
                status: .denied
            )
        }

        // Risk, before the rate limit: a call that is refused outright (an unverified sender
        // asking for a change) must not spend the person's tokens, or forged mail could make
        // their real requests wait.
        let preferences = try tx.preferences(of: request.person)
        let personal = Self.askFirst(preferences, tool: descriptor)
        let short = Self.wantsShortAnswers(preferences)
        let decision = riskPolicy.assess(
            prepared, tool: descriptor, tainted: request.tainted, senderAuthenticated: request.senderAuthenticated, askFirst: personal
        )
        switch decision {
        case .refuse(_, let reason):
            try audit.append(.denied, arguments: prepared.arguments, risk: risk, summary: reason)
            return Result("I can't do that: \(reason).", status: .denied)
        case .run, .confirm:
            break
        }
        // A standing approval the person accepted answers for them, for its one scope, when
        // the only reason to ask is the tool's risk (not taint, not their own "always ask").
        let standing = decision == .confirm(risk) && !request.tainted && personal != true
            ? Self.standingApproval(preferences, tool: descriptor, arguments: prepared.arguments, policy: learning, now: request.now) : nil

        // Rate limit.
        let limit = rateLimits.limit(for: descriptor.category)
        let bucket = try tx.rateBucket(person: request.person, category: descriptor.category)
        switch TokenBucket.take(bucket, limit: limit, now: request.now) {
        case .allowed(let state):
            try tx.setRateBucket(person: request.person, category: descriptor.category, state: state)
        case .limited(let retryAfter):
            let wait = Self.describeWait(retryAfter)
            try audit.append(.rateLimited, arguments: prepared.arguments, risk: risk, summary: "retry after \(wait)")
            return Result(
                "You're going too fast for \(descriptor.category) (limit: \(Self.describeRate(limit))). Try again in \(wait).",
                status: .rateLimited
            )
        }

        // Run, or ask first (a refusal returned above).
        if case .run = decision {
            return try execute(tool, prepared, risk: risk, callID: callID, context: context, audit: &audit, tx: tx, short: short)
        }
        if let standing {
            try audit.append(.confirmed, arguments: prepared.arguments, risk: risk, summary: "standing approval until \(RFC3339.format(standing))")
            return try execute(tool, prepared, risk: risk, callID: callID, context: context, audit: &audit, tx: tx, short: short)
        }
        // Numbers count up from 1 while the requester has any request pending, and are not
        // reused until none is: "yes 2" never lands on a newer request than the one shown as 2.
        let mine = try tx.pendingConfirmations(in: request.conversation).filter { $0.requester == request.person }
        var number = 1
        if let oldest = mine.map(\.createdAt).min() {
            number = (try tx.highestConfirmationNumber(in: request.conversation, requester: request.person, since: oldest) ?? 0) + 1
        }
        // Secret arguments wait sealed; the stored arguments show them redacted.
        var stored = prepared.arguments
        var sealed: String?
        if Redaction.needsRedaction(prepared.arguments, declared: descriptor.secretArguments) {
            stored = Redaction.redact(prepared.arguments, declared: descriptor.secretArguments)
            sealed = try sealer.seal(prepared.arguments.canonicalText, name: callID.rawValue)
        }
        let pending = PendingConfirmation(
            callID: callID, requester: request.person, conversation: request.conversation,
            tool: descriptor.name, arguments: stored, preview: prepared.preview, risk: risk,
            tainted: request.tainted, createdAt: request.now,
            expiresAt: request.now.addingTimeInterval(confirmationLifetime), correlationID: request.correlationID,
            number: number, sealedArguments: sealed
        )
        try tx.savePendingConfirmation(pending)
        try audit.append(.awaitingConfirmation, arguments: prepared.arguments, risk: risk, summary: prepared.preview)
        return Result(
            Self.confirmationRequest(pending, waiting: mine.count + 1, lifetime: confirmationLifetime),
            kind: .confirmationRequest, status: .awaitingConfirmation
        )
    }

    /// The expiry of the person's standing approval that covers this call, if one does.
    static func standingApproval(_ preferences: [Preference], tool: ToolDescriptor, arguments: JSONValue, policy: LearningPolicy, now: Date) -> Date? {
        guard policy.allowsStanding(tool), let argument = StandingScope.argument(for: tool.name),
              let value = arguments[argument]?.stringValue?.lowercased() else { return nil }
        let key = LearnedKey.approval(tool.name, value)
        guard let row = preferences.first(where: { $0.key == key }),
              let until = row.value["until"]?.stringValue.flatMap(RFC3339.parse), until > now else { return nil }
        return until
    }

    /// After the requester confirmed a call whose kind they have confirmed often lately: the
    /// offer of a standing approval, once per window, unless one is in force or may not exist.
    func standingOffer(for pending: PendingConfirmation, tool: ToolDescriptor, now: Date, in tx: any StoreTransaction) throws -> String? {
        guard learning.allowsStanding(tool), let argument = StandingScope.argument(for: tool.name),
              let value = pending.arguments[argument]?.stringValue?.lowercased() else { return nil }
        let preferences = try tx.preferences(of: pending.requester)
        let profile = LearnedProfile(preferences, policy: learning)
        guard !profile.off, Self.askFirst(preferences, tool: tool) != true,
              Self.standingApproval(preferences, tool: tool, arguments: pending.arguments, policy: learning, now: now) == nil else { return nil }
        let key = LearnedKey.confirmed(tool.name, value)
        var evidence = profile.evidence[key] ?? LearnedEvidence()
        if let offered = evidence.offered, now.timeIntervalSince(offered) < learning.standingWindow { return nil }
        // This confirmation is not committed yet, so the learner has not counted it.
        let count = evidence.recent(now, window: learning.standingWindow) + 1
        guard count >= learning.standingThreshold else { return nil }
        evidence.offered = now
        try tx.setPreference(pending.requester, key: LearnedKey.prefix + key, value: evidence.json, at: now)
        let scope = StandingScope.describe(tool.name, value)
        let days = Int((learning.standingWindow / 86400).rounded())
        let lifetime = Int((learning.standingLifetime / 86400).rounded())
        return "You have confirmed \(scope) \(count) times \(days == 7 ? "this week" : "in \(days) days"). Say \"always allow \(scope)\" to stop asking, for \(lifetime) days."
    }

    /// The person's own rule for asking first about this tool (`confirm:notes.add`), else its
    /// category (`confirm:notes`): true for always, false for never, nil when they set none.
    static func askFirst(_ preferences: [Preference], tool: ToolDescriptor) -> Bool? {
        let rules = Dictionary(preferences.map { ($0.key, $0.value.stringValue) }, uniquingKeysWith: { _, last in last })
        guard let rule = rules["confirm:\(tool.name)"] ?? rules["confirm:\(tool.category)"] else { return nil }
        switch rule {
        case "always": return true
        case "never": return false
        default: return nil
        }
    }

    // MARK: Confirm, decline, expire

    /// Runs a confirmed call, unless it expired or was already used.
    public func confirm(_ pending: PendingConfirmation, request: Request, in tx: any StoreTransaction) throws -> Result {
        try confirm(
            pending, by: request.person, summary: "confirmed by requester", correlationID: request.correlationID,
            now: request.now, events: request.events, in: tx
        )
    }

    /// Runs a confirmed call for whoever decided it (the requester, or an operator where policy
    /// lets one answer for them), recording `person` and `summary` in the audit trail.
    public func confirm(
        _ pending: PendingConfirmation,
        by person: PersonID,
        summary: String,
        correlationID: CorrelationID?,
        now: Date,
        events: GateEvents,
        in tx: any StoreTransaction
    ) throws -> Result {
        guard let tool = registry[pending.tool] else {
            if try tx.resolveConfirmation(pending.callID, outcome: .declined, at: now) {
                var audit = AuditWriter(
                    tx: tx, callID: pending.callID, person: person, conversation: pending.conversation,
                    descriptor: nil, tool: pending.tool, correlationID: correlationID, now: now, events: events
                )
                try audit.append(.declined, arguments: pending.arguments, risk: pending.risk, summary: "tool no longer available")
            }
            return Result("The tool \(pending.tool) is no longer available, so nothing was done.", status: .declined)
        }
        var audit = AuditWriter(
            tx: tx, callID: pending.callID, person: person, conversation: pending.conversation,
            descriptor: tool.descriptor, correlationID: correlationID, now: now, events: events
        )
        if now >= pending.expiresAt {
            if try tx.resolveConfirmation(pending.callID, outcome: .expired, at: now) {
                try audit.append(.expired, arguments: pending.arguments, risk: pending.risk, summary: "confirmation arrived after expiry")
            }
            return Result("That request expired before you confirmed it, so nothing was done. Ask again if you still want it.", status: .expired)
        }
        var arguments = pending.arguments
        if let sealed = pending.sealedArguments {
            do {
                arguments = try JSONValue.parse(sealer.open(sealed, name: pending.callID.rawValue))
            } catch {
                // Sealed under another secrets key (changed, or another instance's): the call
                // cannot run as asked, and running it with redacted values would be wrong.
                logger.error("a confirmed call's secret arguments do not open", metadata: ["call.id": "\(pending.callID)", "error": "\(error)"])
                guard try tx.resolveConfirmation(pending.callID, outcome: .declined, at: now) else {
                    return Result("That request was already handled.", status: nil)
                }
                try audit.append(.declined, arguments: pending.arguments, risk: pending.risk, summary: "its secret arguments no longer open (the secrets key changed)")
                return Result(
                    "I can no longer read the secret values of that request (the gateway's secrets key changed), so nothing was done. Please ask again.",
                    status: .declined
                )
            }
        }
        guard try tx.resolveConfirmation(pending.callID, outcome: .confirmed, at: now) else {
            return Result("That request was already handled.", status: nil)
        }
        try audit.append(.confirmed, arguments: pending.arguments, risk: pending.risk, summary: summary)
        let context = ToolContext(
            person: pending.requester, conversation: pending.conversation, now: now, callID: pending.callID,
            correlationID: correlationID, sendingChannels: sendingChannels, store: tx, learning: learning
        )
        let prepared = PreparedCall(arguments: arguments, preview: pending.preview, risk: pending.risk)
        let short = Self.wantsShortAnswers(try tx.preferences(of: pending.requester))
        var result = try execute(tool, prepared, risk: pending.risk, callID: pending.callID, context: context, audit: &audit, tx: tx, short: short)
        if person == pending.requester, result.status == .executed, result.dispatch == nil,
           let offer = try standingOffer(for: pending, tool: tool.descriptor, now: now, in: tx) {
            result.text += "\n\n" + offer
        }
        return result
    }

    /// Declines a pending call.
    public func decline(_ pending: PendingConfirmation, request: Request, in tx: any StoreTransaction) throws -> Result {
        try decline(
            pending, by: request.person, summary: "declined by requester", correlationID: request.correlationID,
            now: request.now, events: request.events, in: tx
        )
    }

    /// Declines a pending call for whoever decided it, recording `person` and `summary`.
    public func decline(
        _ pending: PendingConfirmation,
        by person: PersonID,
        summary: String,
        correlationID: CorrelationID?,
        now: Date,
        events: GateEvents,
        in tx: any StoreTransaction
    ) throws -> Result {
        guard try tx.resolveConfirmation(pending.callID, outcome: .declined, at: now) else {
            return Result("That request was already handled.", status: nil)
        }
        var audit = AuditWriter(
            tx: tx, callID: pending.callID, person: person, conversation: pending.conversation,
            descriptor: registry[pending.tool]?.descriptor, tool: pending.tool, correlationID: correlationID, now: now, events: events
        )
        try audit.append(.declined, arguments: pending.arguments, risk: pending.risk, summary: summary)
        return Result("Cancelled. Nothing was changed.", status: .declined)
    }

    /// Records that someone other than the requester answered a pending confirmation; nothing
    /// else changes. The record carries the answering message's own call id.
    public func ignoreAnswer(_ pending: PendingConfirmation, confirms: Bool, request: Request, in tx: any StoreTransaction) throws {
        var audit = AuditWriter(
            tx: tx, callID: ToolCallID(inbox: request.inboxID, index: 0), person: request.person,
            conversation: request.conversation, descriptor: registry[pending.tool]?.descriptor, tool: pending.tool,
            correlationID: request.correlationID, now: request.now, events: request.events
        )
        try audit.append(
            .answerIgnored,
            arguments: .object(["request": .string(pending.callID.rawValue), "answer": .string(confirms ? "yes" : "no")]),
            risk: pending.risk,
            summary: "only \(pending.requester) can answer request \(pending.callID)"
        )
    }

    /// Expires a pending call whose time is up; returns the notice for the requester.
    public func expire(_ pending: PendingConfirmation, now: Date, events: GateEvents, in tx: any StoreTransaction) throws -> String? {
        guard try tx.resolveConfirmation(pending.callID, outcome: .expired, at: now) else { return nil }
        var audit = AuditWriter(
            tx: tx, callID: pending.callID, person: pending.requester, conversation: pending.conversation,
            descriptor: registry[pending.tool]?.descriptor, tool: pending.tool, correlationID: pending.correlationID, now: now,
            events: events
        )
        try audit.append(.expired, arguments: pending.arguments, risk: pending.risk, summary: "no answer before expiry")
        return "Your request expired without a yes, so nothing was done: \(pending.preview.firstLine)"
    }

    // MARK: Undo

    /// Reverts the person's last `count` undoable actions, newest first, stopping at the first
    /// that cannot be undone.
    public func undo(count: Int, request: Request, in tx: any StoreTransaction) throws -> Result {
        guard count > 1, request.senderAuthenticated, !request.tainted else { return try undo(request: request, in: tx) }
        guard count <= 20 else { return Result("I can undo up to 20 actions at a time.", status: nil) }
        var lines: [String] = []
        var last: AuditStatus?
        for _ in 0..<count {
            if !lines.isEmpty, let entry = try tx.lastUndoEntry(for: request.person), let remote = registry[entry.tool] as? any RemoteTool,
               entry.payload.map(remote.revertsRemotely) ?? false {
                lines.append("I stopped there: \(entry.description) is undone on another system; say \"undo\" again for it.")
                break
            }
            let result = try undo(request: request, in: tx)
            if result.dispatch != nil {
                return result
            }
            if result.status != .undone {
                if lines.isEmpty { return result }
                lines.append("I stopped there: " + result.text)
                break
            }
            lines.append(result.text)
            last = result.status
        }
        return Result(lines.joined(separator: "\n"), status: last)
    }

    /// Reverts the person's last undoable action.
    public func undo(request: Request, in tx: any StoreTransaction) throws -> Result {
        // Undo changes data like any tool: not for a sender who could not be verified (a
        // forged From), and not on the strength of content from someone else.
        guard request.senderAuthenticated else {
            return Result("I can't undo anything for this message: I couldn't verify who sent it.", status: nil)
        }
        guard !request.tainted else {
            return Result("I can't undo anything on the strength of content I can't fully trust. Ask me directly.", status: nil)
        }
        guard let entry = try tx.lastUndoEntry(for: request.person) else {
            return Result("There's nothing of yours to undo.", status: nil)
        }
        guard let payload = entry.payload else {
            return Result("Your last action (\(entry.description)) can't be undone: \(entry.tool) is irreversible.", status: nil)
        }
        guard let tool = registry[entry.tool] else {
            return Result("Your last action used \(entry.tool), which is no longer available, so it can't be undone.", status: nil)
        }
        guard access.allows(request.person, tool.descriptor) else {
            return Result("Sorry, undoing \(entry.tool) needs the \(access.minimumRole(for: tool.descriptor)) role.", status: nil)
        }
        var audit = AuditWriter(
            tx: tx, callID: entry.callID, person: request.person, conversation: request.conversation,
            descriptor: tool.descriptor, correlationID: request.correlationID, now: request.now, events: request.events
        )
        let context = ToolContext(
            person: entry.person, conversation: entry.conversation, now: request.now, callID: entry.callID,
            correlationID: request.correlationID, sendingChannels: sendingChannels, store: tx, learning: learning
        )
        if let remote = tool as? any RemoteTool, remote.revertsRemotely(payload) {
            try audit.append(.undoDispatched, arguments: payload, risk: tool.descriptor.baseRisk, summary: "undoing \(entry.description)")
            return Result("", status: .undoDispatched, dispatch: RemoteDispatch(
                tool: remote, prepared: PreparedCall(arguments: payload, preview: entry.description, risk: tool.descriptor.baseRisk),
                risk: tool.descriptor.baseRisk, callID: entry.callID, person: request.person, conversation: request.conversation,
                correlationID: request.correlationID, short: false, undo: entry
            ))
        }
        let approval = Approval(callID: entry.callID, person: request.person)
        do {
            let text = try tx.savepoint { try tool.undo(payload, approval: approval, context: context) }
            try tx.markUndone(entry.callID, at: request.now)
            try audit.append(.undone, arguments: payload, risk: tool.descriptor.baseRisk, summary: text)
            return Result("Undone: \(text)", status: .undone)
        } catch let failure as ToolFailure {
            return Result("I couldn't undo \(entry.description): \(failure.message)", status: nil)
        }
    }

    // MARK: Execute

    private func execute(
        _ tool: any Tool,
        _ prepared: PreparedCall,
        risk: Risk,
        callID: ToolCallID,
        context: ToolContext,
        audit: inout AuditWriter,
        tx: any StoreTransaction,
        short: Bool = false
    ) throws -> Result {
        let descriptor = tool.descriptor
        if let remote = tool as? any RemoteTool, remote.performsRemotely(prepared) {
            // Committed before the call leaves: a crash mid-call leaves this record without an
            // outcome, and the call is reported as interrupted instead of being sent again.
            try audit.append(.dispatched, arguments: prepared.arguments, risk: risk, summary: descriptor.origin == .builtin ? "sending to the person's own server" : "sending to \(descriptor.origin)")
            return Result("", status: .dispatched, dispatch: RemoteDispatch(
                tool: remote, prepared: prepared, risk: risk, callID: callID, person: context.person,
                conversation: context.conversation, correlationID: context.correlationID, short: short, undo: nil
            ))
        }
        let approval = Approval(callID: callID, person: context.person)
        let output: ToolOutput
        do {
            output = try withTracedSpan("tool \(descriptor.name)") { span in
                span?.attributes["switchboard.tool.call_id"] = callID.rawValue
                span?.attributes["switchboard.tool.risk"] = risk.description
                return try tx.savepoint { try tool.execute(prepared, approval: approval, context: context) }
            }
        } catch let failure as ToolFailure {
            try audit.append(.failed, arguments: prepared.arguments, risk: risk, summary: failure.message)
            return Result(failure.message, status: .failed)
        } catch let error as StoreError where error.code != .constraint {
            throw error
        } catch {
            logger.error(
                "tool failed",
                metadata: ["tool.name": "\(descriptor.name)", "tool.call_id": "\(callID)", "error": "\(error)"]
            )
            try audit.append(.failed, arguments: prepared.arguments, risk: risk, summary: "internal error")
            return Result("Something went wrong while running \(descriptor.name); nothing was changed. (ref \(audit.correlationID?.rawValue ?? callID.rawValue))", status: .failed)
        }
        try audit.append(.executed, arguments: prepared.arguments, risk: risk, summary: output.summary)
        // An irreversible call is recorded so "undo" can say it cannot be undone; a reversible
        // call that changed nothing (a wrong code) leaves nothing to undo.
        if descriptor.effect == .irreversible || (descriptor.effect == .reversible && output.undo != nil) {
            try tx.recordUndo(UndoEntry(
                callID: callID, person: context.person, conversation: context.conversation, tool: descriptor.name,
                payload: descriptor.effect == .reversible ? output.undo : nil,
                description: output.summary, createdAt: context.now
            ))
        }
        return Result(short ? Self.shorten(output.reply) : output.reply, status: .executed)
    }

    /// Whether the person asked for short answers ("keep answers short").
    static func wantsShortAnswers(_ preferences: [Preference]) -> Bool {
        preferences.contains { $0.key == "reply_length" && $0.value.stringValue == "short" }
    }

    /// A long answer cut to its first lines, saying how much was left out. iCalendar text is
    /// never cut: half a calendar file is no use.
    static func shorten(_ reply: String, lines limit: Int = 6) -> String {
        let lines = reply.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > limit, !reply.hasPrefix("BEGIN:VCALENDAR") else { return reply }
        return lines.prefix(limit).joined(separator: "\n") + "\n…and \(lines.count - limit) more lines (you asked for short answers; say \"keep answers normal\" to see everything)."
    }

    // MARK: Wording

    static func confirmationRequest(_ pending: PendingConfirmation, waiting: Int, lifetime: TimeInterval) -> String {
        let number = pending.number
        let answer = waiting > 1 || number > 1 ? "yes \(number)" : "yes"
        let cancel = waiting > 1 || number > 1 ? "no \(number)" : "no"
        var text = pending.preview
        if pending.tainted {
            text += "\n(I'm asking because this request came from content I can't fully trust.)"
        }
        text += "\nReply \(answer) to confirm, \(cancel) to cancel. This expires in \(describeWait(lifetime))."
        if waiting > 1 { text += " You have \(waiting) requests waiting." }
        return text
    }

    static func describeWait(_ seconds: TimeInterval) -> String {
        guard seconds.isFinite else { return "a while (this category is turned off)" }
        let whole = max(1, Int(seconds.rounded(.up)))
        if whole < 60 { return whole == 1 ? "1 second" : "\(whole) seconds" }
        let minutes = Int((Double(whole) / 60).rounded(.up))
        return minutes == 1 ? "1 minute" : "\(minutes) minutes"
    }

    static func describeRate(_ limit: RateLimit) -> String {
        let perMinute = limit.perMinute == limit.perMinute.rounded() ? String(Int(limit.perMinute)) : String(limit.perMinute)
        return "\(perMinute) per minute"
    }
}

/// Appends audit records for one call, with its fixed facts filled in and arguments redacted.
struct AuditWriter {
    let tx: any StoreTransaction
    let callID: ToolCallID
    let person: PersonID
    let conversation: ConversationKey
    let tool: String
    let secretArguments: Set<String>
    let correlationID: CorrelationID?
    let now: Date
    let category: String?
    let events: GateEvents

    init(
        tx: any StoreTransaction, callID: ToolCallID, person: PersonID, conversation: ConversationKey,
        descriptor: ToolDescriptor?, tool: String? = nil, correlationID: CorrelationID?, now: Date, events: GateEvents
    ) {
        self.category = descriptor?.category
        self.events = events
        self.tx = tx
        self.callID = callID
        self.person = person
        self.conversation = conversation
        self.tool = descriptor?.name ?? tool ?? "unknown"
        self.secretArguments = descriptor?.secretArguments ?? []
        self.correlationID = correlationID
        self.now = now
    }

    mutating func append(_ status: AuditStatus, arguments: JSONValue, risk: Risk, summary: String) throws {
        _ = try tx.appendAudit(AuditEntry(
            at: now, callID: callID, person: person, conversation: conversation, tool: tool, risk: risk,
            status: status, arguments: Redaction.redact(arguments, declared: secretArguments),
            summary: String(summary.prefix(500)), correlationID: correlationID
        ))
        events.record(GateEvent(tool: tool, category: category ?? tool, risk: risk, status: status, correlationID: correlationID))
    }
}

extension String {
    var firstLine: String {
        split(separator: "\n", maxSplits: 1).first.map(String.init) ?? self
    }
}

/// A state change the gate recorded, for metrics.
public struct GateEvent: Hashable, Sendable {
    /// The tool.
    public var tool: String
    /// Its category (its name when unknown).
    public var category: String
    /// The call's risk.
    public var risk: Risk
    /// The new state.
    public var status: AuditStatus
    /// The work it belongs to.
    public var correlationID: CorrelationID?
}

/// The state changes recorded while handling one request. The engine counts them in metrics
/// only after their transaction commits, so a rolled-back attempt is never counted.
public final class GateEvents: Sendable {
    private let recorded = Locked<[GateEvent]>([])

    /// Creates an empty list.
    public init() {}

    func record(_ event: GateEvent) {
        recorded.withLock { $0.append(event) }
    }

    /// Forgets everything (the work was rolled back).
    public func clear() {
        recorded.withLock { $0.removeAll() }
    }

    /// What was recorded, in order.
    public var all: [GateEvent] { recorded.withLock { $0 } }
}
