public import Foundation
public import SwitchboardEngine
public import SwitchboardModel

/// The default planner: the local intent engine, with the exact command sentences as a
/// fallback for what it is unsure of.
public struct IntentPlanner: Planner {
    private let engineProvider: @Sendable () -> IntentEngine
    private var engine: IntentEngine { engineProvider() }
    private let summaries: [String: String]
    private let zoneOf: @Sendable (PersonID) async -> TimeZone?
    private let lastReply: @Sendable (ConversationKey) async -> String?
    private let priorsOf: @Sendable (PersonID) async -> [String: Double]
    private let clock: any WallClock
    /// The tools of other systems (MCP servers, HTTP tools) there are now.
    let remoteTools: @Sendable () -> [ToolDescriptor]
    let retrievers = ToolRetrieverCache()

    /// Creates the planner.
    ///
    /// - Parameters:
    ///   - engine: the trained engine, asked for only when a message is not an exact command
    ///     (training takes a moment, which a session of plain commands never pays).
    ///   - zoneOf: the person's time zone preference, if they set one (read-only lookup).
    ///   - lastReply: the text of the last message sent in a conversation, so a second failure
    ///     in a row gets a different answer than the first.
    public init(
        engine: @escaping @Sendable () -> IntentEngine, tools: [ToolDescriptor], clock: any WallClock,
        zoneOf: @escaping @Sendable (PersonID) async -> TimeZone?,
        lastReply: @escaping @Sendable (ConversationKey) async -> String? = { _ in nil },
        remoteTools: @escaping @Sendable () -> [ToolDescriptor] = { [] },
        priorsOf: @escaping @Sendable (PersonID) async -> [String: Double] = { _ in [:] }
    ) {
        self.priorsOf = priorsOf
        self.remoteTools = remoteTools
        self.lastReply = lastReply
        self.engineProvider = engine
        var summaries = Dictionary(tools.map { ($0.name, $0.summary.lowercasedFirst) }, uniquingKeysWith: { first, _ in first })
        summaries["help"] = "hear what I can do"
        summaries["history"] = "see what I did for you today"
        summaries["undo"] = "undo your last change"
        self.summaries = summaries
        self.zoneOf = zoneOf
        self.clock = clock
    }

    /// Plans are made from the message alone.
    public var plansFromHistory: Bool { false }

    public func plan(_ message: InboundMessage) async throws -> Plan {
        // The exact commands stay exact: "delete all my notes" never depends on a model's guess.
        let command = CommandPlanner.plan(text: message.text)
        if command != .notUnderstood { return command }
        let zone = await zoneOf(message.sender.id) ?? TimeZone.current
        let result = engine.analyse(message.text, zone: zone, now: clock.now(), priors: await priorsOf(message.sender.id))
        var plan = plan(for: result)
        // No built-in intent fits: perhaps a tool of another system does.
        if Self.cannotServe(plan), let remote = remotePlan(message.text) {
            plan = remote
        } else if case .call(let tool, _) = plan, let remote = remotePlan(message.text, namingSystemOver: tool) {
            // "find wiki pages about vpn" names the wiki, not the notes the engine guessed.
            plan = remote
        }
        if Self.isFailure(plan), let previous = await lastReply(message.conversation), Self.isFailure(.reply(previous)) {
            return .reply(Self.giveUp)
        }
        return plan
    }

    /// Whether a plan (or a reply already sent) says the request was not understood.
    public static func isFailure(_ plan: Plan) -> Bool {
        switch plan {
        case .notUnderstood: return true
        case .reply(let text): return text.hasPrefix(Self.unsure) || text.hasPrefix("Sorry, I didn't understand") || text == giveUp
        default: return false
        }
    }

    /// Whether a plan leaves the request unserved: not understood, or outside what the tools do.
    public static func cannotServe(_ plan: Plan) -> Bool {
        isFailure(plan) || plan == .reply(smallTalk)
    }

    static let unsure = "I'm not sure what you mean."
    static let giveUp = "I still can't work out what you need, so I'd rather not guess. Say \"help\" for examples of what I can do, or ask the person who runs this assistant for help."


    /// The plan for an analysed message. Pure.
    public func plan(for result: IntentResult) -> Plan {
        if result.intent == IntentEngine.none {
            return result.confidence >= engine.threshold ? .reply(Self.smallTalk) : .notUnderstood
        }
        if result.confidence < engine.threshold {
            guard let alternative = result.alternative, alternative.intent != IntentEngine.none,
                  let first = summaries[result.intent], let second = summaries[alternative.intent] else {
                return .notUnderstood
            }
            return .reply("\(Self.unsure) Do you want to \(first), or to \(second)? Please say it another way, or say \"help\".")
        }
        if let question = result.question { return .reply(question) }
        switch result.intent {
        case "help": return .help
        case "history": return .history
        case "undo": return .undo(count: Int(result.arguments["nth"]?.intValue ?? 1))
        default: return .call(tool: result.intent, arguments: result.arguments)
        }
    }

    static let smallTalk = "Sorry, I can't help with that. I look after your notes, tasks, reminders, calendar and contacts; say \"help\" to see how to ask."
}

extension String {
    fileprivate var lowercasedFirst: String { isEmpty ? self : prefix(1).lowercased() + dropFirst() }
}
