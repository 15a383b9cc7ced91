// How risky a call is, and whether it must wait for a yes.
//
// The tool's prepared call gives the risk of these particular arguments (deleting one note is
// medium, deleting many is high). Configuration may then set the base risk per tool or
// category, up or down; a raise that came from the arguments stays. Taint overrides everything except reads: when a plan was made from untrusted
// content, every non-read-only call needs confirmation, whatever its risk. And a sender the
// channel did not authenticate can never confirm, so a call that needs confirmation is refused.

public import SwitchboardModel

/// Risk overrides from configuration, and the decision whether to ask first.
public struct RiskPolicy: Sendable, Hashable {
    /// Risk by tool name or category.
    public var overrides: [String: Risk]

    /// Creates a policy.
    public init(overrides: [String: Risk] = [:]) {
        self.overrides = overrides
    }

    /// What the gate must do with a prepared call.
    public enum Decision: Hashable, Sendable {
        /// Run it now.
        case run(Risk)
        /// Ask the requester first.
        case confirm(Risk)
        /// The sender cannot confirm (not authenticated), so the call cannot run.
        case refuse(Risk, reason: String)
    }

    /// The risk of a prepared call after policy: an override replaces the tool's base risk,
    /// and what the arguments added on top of the base (a bulk delete) still counts.
    public func risk(of call: PreparedCall, tool: ToolDescriptor) -> Risk {
        guard let override = overrides[tool.name] ?? overrides[tool.category] else { return call.risk }
        return call.risk > tool.baseRisk ? max(override, call.risk) : override
    }

    /// Decides whether a call runs, waits, or is refused.
    ///
    /// `askFirst` is the person's own rule: `true` (always ask) makes every call that changes
    /// something wait for a yes. A person can only add confirmations, never remove one: what the
    /// tool, its arguments, the operator's configuration or taint require stays required, so
    /// "don't ask again" only takes back an earlier "always ask".
    public func assess(_ call: PreparedCall, tool: ToolDescriptor, tainted: Bool, senderAuthenticated: Bool, askFirst: Bool? = nil) -> Decision {
        let risk = risk(of: call, tool: tool)
        // A sender who could not be verified (an email whose From may be forged) may look
        // things up and do what is low-risk; a change worth more would be made in the name of
        // someone the sender may not be.
        if !senderAuthenticated && risk > .low && tool.effect != .readOnly {
            return .refuse(risk, reason: "I couldn't verify who sent this message, so I can only look things up or do low-risk things for it")
        }
        var needsConfirmation = risk == .high || (tainted && tool.effect != .readOnly)
        if askFirst == true && tool.effect != .readOnly { needsConfirmation = true }
        guard needsConfirmation else { return .run(risk) }
        guard senderAuthenticated else {
            return .refuse(risk, reason: "this needs a confirmation, and messages from an unverified sender cannot confirm")
        }
        return .confirm(risk)
    }
}
