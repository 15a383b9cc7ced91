// What the models cost, per person and for everyone, per UTC day: kept in the store as the
// planner's bookkeeping (records of kind `llm.usage`, one per call, append-only), so every
// instance sharing the database sees the same spending, and a restart forgets nothing.

public import Foundation
public import SwitchboardModel
public import SwitchboardStorage

/// Which budget ran out.
public enum BudgetScope: String, Hashable, Sendable {
    /// The person's own.
    case person
    /// Everyone's together.
    case global
}

/// A model call would go over a daily budget.
public struct BudgetExhausted: Error, Hashable, Sendable {
    /// Whose budget.
    public var scope: BudgetScope
}

/// Reads and records model spending.
public struct UsageLedger: Sendable {
    static let kind = "llm.usage"
    /// The owner of the everyone-together records.
    static let everyone = PersonID("switchboard:llm")

    let store: any Store
    let budget: LLMBudget

    /// Creates a ledger over a store.
    public init(store: any Store, budget: LLMBudget) {
        self.store = store
        self.budget = budget
    }

    /// Spending so far today.
    public struct Spent: Hashable, Sendable {
        /// Tokens, input and output.
        public var tokens: Int
        /// Cost.
        public var cost: Double
    }

    /// The UTC day containing `now`.
    static func day(_ now: Date) -> (start: Date, end: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.startOfDay(for: now)
        return (start, start.addingTimeInterval(86400))
    }

    /// What `owner` has spent today.
    public func spent(_ owner: PersonID, now: Date) async throws -> Spent {
        let (start, end) = Self.day(now)
        let records = try await store.read { try $0.records.list(owner: owner, kind: Self.kind, statuses: nil, from: start, to: end) }
        var spent = Spent(tokens: 0, cost: 0)
        for record in records {
            spent.tokens += Int(record.fields["input"]?.intValue ?? 0) + Int(record.fields["output"]?.intValue ?? 0)
            spent.cost += record.fields["cost"]?.numberValue ?? 0
        }
        return spent
    }

    /// Throws `BudgetExhausted` if a call of up to `tokens` tokens costing up to `cost` would
    /// take the person or everyone over a daily limit.
    public func check(person: PersonID, tokens: Int, cost: Double, now: Date) async throws {
        if budget.tokensPerPerson != nil || budget.costPerPerson != nil {
            let mine = try await spent(person, now: now)
            if let limit = budget.tokensPerPerson, mine.tokens + tokens > limit { throw BudgetExhausted(scope: .person) }
            if let limit = budget.costPerPerson, mine.cost + cost > limit { throw BudgetExhausted(scope: .person) }
        }
        if budget.tokens != nil || budget.cost != nil {
            let all = try await spent(Self.everyone, now: now)
            if let limit = budget.tokens, all.tokens + tokens > limit { throw BudgetExhausted(scope: .global) }
            if let limit = budget.cost, all.cost + cost > limit { throw BudgetExhausted(scope: .global) }
        }
    }

    /// Records a call's use, for the person and for everyone.
    public func record(person: PersonID, model: String, usage: TokenUsage, cost: Double, now: Date) async throws {
        let fields: JSONValue = ["input": .int(Int64(usage.input)), "output": .int(Int64(usage.output)), "cost": .double(cost), "model": .string(model)]
        try await store.write { tx in
            for owner in [person, Self.everyone] {
                _ = try tx.records.add(ToolRecordDraft(kind: Self.kind, owner: owner, title: model, status: "used", at: now, fields: fields), at: now)
            }
        }
    }
}
