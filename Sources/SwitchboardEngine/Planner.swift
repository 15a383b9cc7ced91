public import SwitchboardModel

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
    /// The planner did not understand.
    case notUnderstood
}

/// Turns a message into a plan. The command planner here; the intent engine and language
/// models later.
///
/// Planners run outside any transaction and may be slow (a model call); they must not
/// change state: every effect goes through the tool gate.
public protocol Planner: Sendable {
    /// Whether a plan depends on the conversation's earlier replies (a language model reading
    /// the history). If it does, the engine plans a message only after its predecessor in the
    /// conversation is answered; if not, it plans and applies several of a conversation's
    /// messages in one batch, in order.
    var plansFromHistory: Bool { get }

    /// Plans a message. Confirmation answers ("yes", "no 2") never reach the planner.
    func plan(_ message: InboundMessage) async throws -> Plan
}

extension Planner {
    /// By default, assume the plan depends on history: the safe choice.
    public var plansFromHistory: Bool { true }
}
