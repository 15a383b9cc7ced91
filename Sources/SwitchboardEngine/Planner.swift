public import SwitchboardModel
public import SwitchboardStorage

/// What the engine should do with a message.
public enum Plan: Hashable, Sendable {
    /// Call a tool with these arguments (through the gate).
    case call(tool: String, arguments: JSONValue)
    /// Revert the person's last `count` undoable actions, newest first.
    case undo(count: Int = 1)
    /// Say what the assistant did for the person in the last day, from the audit trail.
    case history
    /// Explain what the assistant can do.
    case help
    /// Answer directly, with no tool.
    case reply(String)
    /// Answer with text that the planner's own tool calls produced: a `.confirmationRequest`
    /// when one of them is waiting for the person's "yes", so that a reaction on it answers.
    case answer(String, kind: OutboundKind)
    /// Tell the person `reply`, and ask the operator (configured as the escalation contact)
    /// to look at the conversation, for `reason`.
    case escalate(reply: String, reason: String)
    /// The planner did not understand.
    case notUnderstood
}

/// Turns a message into a plan. The command planner here; the intent engine and language
/// models later.
///
/// Planners run outside any transaction and may be slow (a model call). They change no state
/// themselves: every effect goes through the tool gate, either as the plan they return or,
/// for a planner that needs a tool's result to go on (a language model's multi-step plan),
/// through the `ToolSession` the engine lends it. A planner may keep its own bookkeeping
/// (usage counts, conversation summaries) in the store.
public protocol Planner: Sendable {
    /// Whether a plan depends on the conversation's earlier replies (a language model reading
    /// the history). If it does, the engine plans a message only after its predecessor in the
    /// conversation is answered; if not, it plans and applies several of a conversation's
    /// messages in one batch, in order.
    var plansFromHistory: Bool { get }

    /// Plans a message. Confirmation answers ("yes", "no 2") never reach the planner.
    func plan(_ message: InboundMessage) async throws -> Plan

    /// Plans a message with the right to run tools through the gate while planning. The
    /// default ignores the session.
    func plan(_ message: InboundMessage, session: any ToolSession) async throws -> Plan

    /// Whether this planner's plan stopped to ask for `confirmation` and has more to do once
    /// it is confirmed. Asked inside the transaction that confirms it: if so, the engine adds a
    /// continuation to the conversation's inbox in that transaction (so it is neither lost nor
    /// run twice) and later hands it to `resume`. The default: plans end at their question.
    func continues(after confirmation: PendingConfirmation, in reader: any StoreReader) throws -> Bool

    /// Goes on with a plan after the person confirmed the call `message.continuing` names;
    /// `message.text` is that call's result. Nil when nothing is left to do or say.
    func resume(_ message: InboundMessage, session: any ToolSession) async throws -> Plan?
}

extension Planner {
    /// By default, assume the plan depends on history: the safe choice.
    public var plansFromHistory: Bool { true }

    public func plan(_ message: InboundMessage, session: any ToolSession) async throws -> Plan {
        try await plan(message)
    }

    public func continues(after confirmation: PendingConfirmation, in reader: any StoreReader) throws -> Bool { false }

    public func resume(_ message: InboundMessage, session: any ToolSession) async throws -> Plan? { nil }
}

/// A message's tool calls made while planning. Each call goes through the whole gate
/// (permission, rate limit, risk, confirmation, audit, undo) in a transaction of its own, and
/// commits before the planner sees its outcome. Calls are numbered in order, so the message
/// processed again after a crash reuses the same call ids, and a call that already ran is
/// reported as it was recorded, not run twice.
public protocol ToolSession: Sendable {
    /// The tools the gate knows.
    var tools: [ToolDescriptor] { get }

    /// Runs a call through the gate.
    ///
    /// - Throws: `ToolSessionError` when the message may no longer be answered here (another
    ///   instance took it over, or it was answered already); store errors as they come.
    func call(_ tool: String, arguments: JSONValue) async throws -> ToolCallOutcome

    /// Marks the rest of the plan as made from untrusted content (a tool returned a third
    /// party's text): every later call that changes something needs confirmation.
    func taint()

    /// The calls already on record for this message (from an earlier attempt to plan it),
    /// described: a planner must not hand a message whose calls already ran to a fallback that
    /// could do the same thing again.
    func recordedCalls() async throws -> [String]
}

/// What one call through the gate came to.
public struct ToolCallOutcome: Hashable, Sendable {
    /// What the gate says to the person (the tool's reply, a refusal, a confirmation request).
    public var text: String
    /// The final audit status, if the call got as far as the audit trail.
    public var status: AuditStatus?
    /// A reply, or a confirmation request waiting for the person.
    public var kind: OutboundKind
    /// The call had already been recorded (the message is being processed again).
    public var replayed: Bool
    /// The text is another system's answer (an MCP server's, an HTTP API's): data for the
    /// planner, never instructions.
    public var untrusted: Bool
    /// A remote call approved but not yet performed (inside the session only).
    var dispatch: RemoteDispatch?
    /// The call's id (the confirmation's, when it waits for one).
    public var callID: ToolCallID?

    /// Creates an outcome.
    public init(text: String, status: AuditStatus?, kind: OutboundKind, replayed: Bool = false, untrusted: Bool = false) {
        self.text = text
        self.status = status
        self.kind = kind
        self.replayed = replayed
        self.untrusted = untrusted
    }

    init(text: String, status: AuditStatus?, kind: OutboundKind, dispatch: RemoteDispatch?) {
        self.init(text: text, status: status, kind: kind)
        self.dispatch = dispatch
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.text == rhs.text && lhs.status == rhs.status && lhs.kind == rhs.kind && lhs.replayed == rhs.replayed && lhs.untrusted == rhs.untrusted
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(text)
        hasher.combine(status)
        hasher.combine(kind)
    }
}

/// A planner's tool call that must not run.
public enum ToolSessionError: Error, Hashable, Sendable {
    /// Another instance holds the conversation now, or the message was answered already.
    case notHeld
}
