// Who may call what.
//
// Each person has one role (owner > user > guest) from configuration; unknown people get the
// configured default. Each tool needs a minimum role, looked up from the most specific policy
// entry: the tool's name, then its category, then a default that follows risk (reads are open
// to guests, writes need a user). Decisions are pure so they can be table-tested.

public import SwitchboardModel

/// Roles and permissions from configuration.
public struct AccessPolicy: Sendable, Hashable {
    /// Explicit roles by person.
    public var roles: [PersonID: Role]
    /// The role of anyone not listed.
    public var defaultRole: Role
    /// Minimum role by tool name or category.
    public var minimumRoles: [String: Role]

    /// Creates a policy.
    public init(roles: [PersonID: Role] = [:], defaultRole: Role = .user, minimumRoles: [String: Role] = [:]) {
        self.roles = roles
        self.defaultRole = defaultRole
        self.minimumRoles = minimumRoles
    }

    /// A person's role.
    public func role(of person: PersonID) -> Role {
        roles[person] ?? defaultRole
    }

    /// The minimum role a tool needs.
    public func minimumRole(for tool: ToolDescriptor) -> Role {
        if let role = minimumRoles[tool.name] { return role }
        if let role = minimumRoles[tool.category] { return role }
        return tool.effect == .readOnly ? .guest : .user
    }

    /// Whether a person may call a tool.
    public func allows(_ person: PersonID, _ tool: ToolDescriptor) -> Bool {
        role(of: person) >= minimumRole(for: tool)
    }
}
