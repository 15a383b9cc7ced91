public import Foundation
public import SwitchboardModel

/// The engine's settings.
///
/// Keys (each also `SWITCHBOARD_<KEY>` in the environment, dots as underscores):
/// - `engine.batch_size` (1–1000, default 128): messages per transaction (group commit).
/// - `engine.poll_interval_ms` (10–60000, default 500): how often to look for work from other processes.
/// - `engine.max_message_bytes` (1–16777216, default 65536): longer messages get a polite refusal.
/// - `confirmations.expiry_seconds` (1–604800, default 600).
/// - `confirmations.yes_words`, `confirmations.no_words`: lists of keywords.
/// - `confirmations.operator_may_approve` (default false), `confirmations.operator_may_decline`
///   (default true): whether an operator (an admin API key) may answer for the requester.
/// - `people.owners`, `people.users`, `people.guests`: lists of person ids.
/// - `people.default_role` (guest, user, owner; default user).
/// - `permissions.<tool or category>`: the minimum role (guest, user, owner).
/// - `risk.<tool or category>`: low, medium or high, overriding the tool's own assessment.
/// - `rate_limits.<category>.per_minute`, `rate_limits.<category>.burst`; `default` for the rest.
/// - `escalation.matrix_room` (a room id), `escalation.email` (an address): where a request the
///   assistant cannot handle is passed to a human operator.
public struct EngineConfiguration: Sendable {
    /// Messages per transaction.
    public var batchSize: Int = 128
    /// Poll interval.
    public var pollInterval: Duration = .milliseconds(500)
    /// The longest message read.
    public var maxMessageBytes: Int = 65536
    /// Confirmation lifetime in seconds.
    public var confirmationLifetime: TimeInterval = 600
    /// Yes / no keywords.
    public var keywords: ConfirmationKeywords = .defaults
    /// Whether an operator may approve a pending confirmation for its requester.
    public var operatorMayApprove = false
    /// Whether an operator may decline one for its requester.
    public var operatorMayDecline = true
    /// Roles and permissions.
    public var access = AccessPolicy()
    /// Risk overrides.
    public var risk = RiskPolicy()
    /// Rate limits.
    public var rateLimits = RateLimitPolicy()
    /// Where escalations go: the operator's conversations.
    public var escalation: [EscalationContact] = []
    /// What the assistant learns, and when it offers standing approvals.
    public var learning = LearningPolicy()

    /// The defaults.
    public init() {}

    /// Reads the engine's keys, recording problems in `config`.
    ///
    /// - Parameter toolNames: known tool names and categories, to check `permissions.*` and `risk.*` keys.
    public init(config: inout ConfigValues, toolNames: Set<String>) {
        batchSize = config.int("engine.batch_size", default: batchSize, range: 1...1000)
        pollInterval = .milliseconds(config.int("engine.poll_interval_ms", default: 500, range: 10...60000))
        maxMessageBytes = config.int("engine.max_message_bytes", default: maxMessageBytes, range: 1...16_777_216)
        confirmationLifetime = TimeInterval(config.int("confirmations.expiry_seconds", default: 600, range: 1...604_800))
        let yes = config.list("confirmations.yes_words", default: Array(ConfirmationKeywords.defaults.yes))
        let no = config.list("confirmations.no_words", default: Array(ConfirmationKeywords.defaults.no))
        if yes.isEmpty { config.report("confirmations.yes_words", "needs at least one word, or nothing could ever be confirmed") }
        if no.isEmpty { config.report("confirmations.no_words", "needs at least one word, or nothing could ever be declined") }
        if !Set(yes.map { $0.lowercased() }).isDisjoint(with: no.map { $0.lowercased() }) {
            config.report("confirmations.yes_words", "a word cannot be both a yes and a no word")
        }
        for word in yes + no where word.contains(" ") {
            config.report("confirmations.yes_words", "keywords are single words; \"\(word)\" has a space")
        }
        keywords = ConfirmationKeywords(yes: Set(yes), no: Set(no))
        operatorMayApprove = config.bool("confirmations.operator_may_approve", default: operatorMayApprove)
        operatorMayDecline = config.bool("confirmations.operator_may_decline", default: operatorMayDecline)
        learning.enabled = config.bool("learning.enabled", default: true)
        learning.minimumEvidence = config.int("learning.min_evidence", default: learning.minimumEvidence, range: 2...1000)
        learning.confidence = config.double("learning.confidence", default: learning.confidence, range: 0.5...1)
        learning.burstWindow = TimeInterval(config.int("learning.burst_window_seconds", default: 600, range: 0...86400))
        learning.announceUses = config.int("learning.announce_uses", default: learning.announceUses, range: 0...100)
        learning.interval = .seconds(config.int("learning.interval_seconds", default: 30, range: 1...86400))
        learning.standingThreshold = config.int("learning.standing_approvals.offer_after", default: learning.standingThreshold, range: 2...100)
        learning.standingWindow = Double(config.int("learning.standing_approvals.window_days", default: 7, range: 1...365)) * 86400
        learning.standingLifetime = Double(config.int("learning.standing_approvals.lifetime_days", default: 30, range: 1...365)) * 86400
        let never = config.list("learning.standing_approvals.never", default: [])
        for name in never where Self.resolve(name, among: toolNames) == nil {
            config.report("learning.standing_approvals.never", "no tool or category is called \"\(name)\"")
        }
        learning.neverStanding = Set(never)

        var roles: [PersonID: Role] = [:]
        for (key, role) in [("people.guests", Role.guest), ("people.users", .user), ("people.owners", .owner)] {
            for person in config.list(key, default: []) { roles[PersonID(person)] = max(roles[PersonID(person)] ?? role, role) }
        }
        let defaultRole = Role(word: config.choice("people.default_role", default: "user", from: ["guest", "user", "owner"])) ?? .user
        var minimumRoles: [String: Role] = [:]
        for (name, key) in config.entries(under: "permissions") {
            let resolved = Self.resolve(name, among: toolNames)
            guard let resolved else {
                config.report(key, "no tool or category is called \"\(name)\"; known: \(toolNames.sorted().joined(separator: ", "))")
                continue
            }
            let word = config.choice(key, default: "user", from: ["guest", "user", "owner"])
            minimumRoles[resolved] = Role(word: word)
        }
        access = AccessPolicy(roles: roles, defaultRole: defaultRole, minimumRoles: minimumRoles)

        var overrides: [String: Risk] = [:]
        for (name, key) in config.entries(under: "risk") {
            guard let resolved = Self.resolve(name, among: toolNames) else {
                config.report(key, "no tool or category is called \"\(name)\"; known: \(toolNames.sorted().joined(separator: ", "))")
                continue
            }
            overrides[resolved] = Risk(word: config.choice(key, default: "high", from: ["low", "medium", "high"]))
        }
        risk = RiskPolicy(overrides: overrides)

        var limits: [String: RateLimit] = [:]
        var defaultLimit = RateLimitPolicy().defaultLimit
        // Categories may be dotted (`mcp.wiki`): the category is everything before the last part.
        var categories: [String] = []
        for (rest, key) in config.entries(under: "rate_limits") {
            guard let dot = rest.lastIndex(of: "."), ["per_minute", "burst"].contains(rest[rest.index(after: dot)...]) else {
                config.report(key, "unknown key; a rate limit has per_minute and burst")
                continue
            }
            let category = String(rest[..<dot])
            if !categories.contains(category) { categories.append(category) }
        }
        // The default first: the others start from it.
        for category in categories.sorted(by: { ($0 == "default" ? 0 : 1, $0) < ($1 == "default" ? 0 : 1, $1) }) {
            let base = category == "default" ? defaultLimit : limits[category] ?? defaultLimit
            guard category == "default" || Self.resolve(category, among: toolNames) != nil else {
                config.report("rate_limits.\(category)", "no tool category is called \"\(category)\"")
                continue
            }
            let resolved = category == "default" ? category : Self.resolve(category, among: toolNames)!
            let perMinute = config.double("rate_limits.\(category).per_minute", default: base.perMinute, range: 0...1_000_000)
            let burst = config.double("rate_limits.\(category).burst", default: config.has("rate_limits.\(category).per_minute") && !config.has("rate_limits.\(category).burst") ? max(1, perMinute) : base.burst, range: 1...1_000_000)
            let limit = RateLimit(perMinute: perMinute, burst: burst)
            if category == "default" { defaultLimit = limit } else { limits[resolved] = limit }
        }
        rateLimits = RateLimitPolicy(limits: limits, defaultLimit: defaultLimit)

        escalation = []
        if let room = config.string("escalation.matrix_room")?.trimmingWhitespace(), !room.isEmpty {
            if room.hasPrefix("!") && room.contains(":") {
                escalation.append(EscalationContact(conversation: ConversationKey(channel: "matrix", conversation: ConversationID(room)), recipient: nil))
            } else {
                config.report("escalation.matrix_room", "expected a room id like !abc:example.org, got \"\(room)\"")
            }
        }
        if let address = config.string("escalation.email")?.trimmingWhitespace(), !address.isEmpty {
            let parts = address.split(separator: "@")
            if parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !address.contains(" ") {
                escalation.append(EscalationContact(
                    conversation: ConversationKey(channel: "email", conversation: ConversationID(address.lowercased())),
                    recipient: PersonID("email:\(address.lowercased())")
                ))
            } else {
                config.report("escalation.email", "expected an email address, got \"\(address)\"")
            }
        }
    }

    /// Matches a configuration name against tool names and categories; environment variables
    /// turn dots into underscores, so `notes_delete` finds `notes.delete`.
    /// An MCP server's tools are listed only once it runs: any name under a configured
    /// server's `mcp.<server>` category is accepted.
    static func resolve(_ name: String, among known: Set<String>) -> String? {
        if known.contains(name) { return name }
        if name.hasPrefix("mcp."), known.contains(where: { $0.hasPrefix("mcp.") && name.hasPrefix($0 + ".") && name.count > $0.count + 1 }) {
            return name
        }
        let lowered = name.lowercased()
        return known.first { $0.replacingOccurrences(of: ".", with: "_") == lowered.replacingOccurrences(of: ".", with: "_") }
    }
}

/// An operator's conversation that escalations go to.
public struct EscalationContact: Hashable, Sendable {
    /// Where.
    public var conversation: ConversationKey
    /// To whom, for channels that address people rather than rooms (email).
    public var recipient: PersonID?

    /// Creates a contact.
    public init(conversation: ConversationKey, recipient: PersonID?) {
        self.conversation = conversation
        self.recipient = recipient
    }
}
