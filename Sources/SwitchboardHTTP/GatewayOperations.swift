public import Foundation
public import SwitchboardModel

/// What the API asks of the rest of the gateway, which it cannot do itself: the HTTP layer is
/// an adapter and never touches a tool or the engine. The composition root implements it.
public protocol GatewayOperations: Sendable {
    /// The tools, with their schemas and risk.
    var tools: [ToolSummary] { get }

    /// A call's arguments with its secrets replaced, as the audit trail shows them: a pending
    /// confirmation keeps them in full (it must run them later), the API never shows them.
    func redacted(_ arguments: JSONValue, tool: String) -> JSONValue

    /// Approves or declines a pending confirmation on its requester's behalf, through the tool
    /// gate, audited under the operator's name; the requester is told in their conversation.
    ///
    /// - Throws: `OperatorDecisionError`.
    func decide(_ callID: ToolCallID, approve: Bool, operator: APIPrincipal) async throws -> OperatorDecision

    /// Forgets a person's preferences, audited under the operator's name. Returns how many.
    func forgetPreferences(of person: PersonID, operator: APIPrincipal) async throws -> Int
}

/// A tool as the API lists it.
public struct ToolSummary: Hashable, Sendable {
    public var name: String
    public var category: String
    public var description: String
    public var parameters: JSONValue
    public var risk: Risk
    /// `read_only`, `reversible` or `irreversible`.
    public var effect: String
    /// Parameters whose values are redacted in the audit trail.
    public var secretParameters: [String]
    /// Where it comes from: `built-in`, `http`, or `mcp:<server>`.
    public var source: String

    public init(
        name: String, category: String, description: String, parameters: JSONValue, risk: Risk, effect: String, secretParameters: [String],
        source: String = "built-in"
    ) {
        self.source = source
        self.name = name
        self.category = category
        self.description = description
        self.parameters = parameters
        self.risk = risk
        self.effect = effect
        self.secretParameters = secretParameters
    }
}

/// What an operator's decision did.
public struct OperatorDecision: Hashable, Sendable {
    /// `confirmed` or `declined`, or `expired` when it was too late.
    public var outcome: ConfirmationOutcome
    /// What the requester was told.
    public var reply: String

    public init(outcome: ConfirmationOutcome, reply: String) {
        self.outcome = outcome
        self.reply = reply
    }
}

/// Why an operator's decision was refused.
public enum OperatorDecisionError: Error, Hashable, Sendable {
    /// No confirmation has that id.
    case notFound
    /// It was already decided or expired.
    case alreadyDecided(ConfirmationOutcome)
    /// Policy does not let operators make this decision.
    case forbidden(String)
}
