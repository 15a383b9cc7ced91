// After a yes, the plan goes on. When a model's plan stops to ask for a confirmation, the
// planner keeps a small record of where it stopped (the request, the tier, the calls that
// wait). The engine, confirming one of those calls, adds a continuation to the conversation's
// inbox in the same transaction; processed in order like any message, it comes back here with
// the call's result, and the model is asked to finish the request: more calls, another
// question, or nothing at all ("DONE"), in which case the person hears nothing more than the
// result they already have.

import Foundation
import Logging
public import SwitchboardEngine
public import SwitchboardModel
public import SwitchboardStorage

/// Where a model's plan stopped for a confirmation.
struct PlanStop: Sendable {
    /// The tier that planned it (the continuation asks the same models).
    var tier: Int
    /// What the person asked for, in their words.
    var request: String
}

extension LLMPlanner {
    static let stopKind = "llm.plan_stop"
    /// What the model answers when nothing of the request is left.
    static let nothingLeft = "DONE"
    /// Stops older than this are forgotten when the next one is kept (a confirmation lives
    /// minutes; this is ample).
    static let stopLifetime: TimeInterval = 7 * 86400

    /// Keeps where the plan for `message` stopped, waiting for `calls`.
    func remember(_ stop: PlanStop, waitingFor calls: [ToolCallID], message: InboundMessage, person: PersonID, now: Date) async throws {
        guard !calls.isEmpty else { return }
        let owner = ConversationMemory.owner(message.conversation, person)
        let fields: JSONValue = [
            "calls": .array(calls.map { .string($0.rawValue) }), "request": .string(stop.request), "tier": .int(Int64(stop.tier)),
        ]
        try await store.write { tx in
            let kept = try tx.records.list(owner: owner, kind: Self.stopKind, statuses: nil, from: nil, to: nil)
            let old = kept.filter { ($0.at ?? .distantPast) < now.addingTimeInterval(-Self.stopLifetime) }.map(\.id)
            if !old.isEmpty { _ = try tx.records.delete(owner: owner, kind: Self.stopKind, ids: old) }
            // Planned again after a crash: the same calls are already kept.
            let known = Set(kept.flatMap { $0.fields["calls"]?.arrayValue ?? [] }.compactMap(\.stringValue))
            guard !calls.allSatisfy({ known.contains($0.rawValue) }) else { return }
            _ = try tx.records.add(ToolRecordDraft(kind: Self.stopKind, owner: owner, title: "plan stop", status: "waiting", at: now, fields: fields), at: now)
        }
    }

    /// The kept stop that waits for `callID`, if any.
    static func stop(waitingFor callID: ToolCallID, conversation: ConversationKey, person: PersonID, in reader: any StoreReader) throws -> PlanStop? {
        let kept = try reader.records.list(owner: ConversationMemory.owner(conversation, person), kind: stopKind, statuses: nil, from: nil, to: nil)
        guard let record = kept.last(where: { ($0.fields["calls"]?.arrayValue ?? []).contains(.string(callID.rawValue)) }) else { return nil }
        return PlanStop(tier: Int(record.fields["tier"]?.intValue ?? 1), request: record.fields["request"]?.stringValue ?? "")
    }

    public func continues(after confirmation: PendingConfirmation, in reader: any StoreReader) throws -> Bool {
        try Self.stop(waitingFor: confirmation.callID, conversation: confirmation.conversation, person: confirmation.requester, in: reader) != nil
    }

    public func resume(_ message: InboundMessage, session: any ToolSession) async throws -> Plan? {
        guard let callID = message.continuing else { return nil }
        let now = clock.now()
        let found = try await store.read { reader -> (PlanStop, String?)? in
            let person = try reader.linkedPerson(for: message.sender.id) ?? message.sender.id
            guard let stop = try Self.stop(waitingFor: callID, conversation: message.conversation, person: person, in: reader) else { return nil }
            let tool = try reader.confirmationRecord(callID)?.confirmation.tool
            return (stop, tool)
        }
        guard let (stop, toolName) = found else { return nil }
        let chain = router.chain(tier: stop.tier)
        guard !chain.isEmpty else { return nil }
        let snapshot = try await read(message, now: now)
        let progress = Progress()
        // Another system's answer is data, as it is within a plan.
        let thirdParty = toolName.flatMap { name in session.tools.first { $0.name == name } }?.returnsUntrustedContent == true
        if thirdParty || message.trust.containsUntrustedContent { session.taint() }
        let result = thirdParty ? "<untrusted>\n\(message.text)\n</untrusted>" : message.text
        let turn = ChatMessage(role: .user, content: """
            (From the gateway, not the person.) The person confirmed \(toolName ?? "the call"), and it ran: \(result)
            Go on with the rest of their request if any of it is left: "\(stop.request)". If nothing is left, answer exactly \(Self.nothingLeft).
            """)
        do {
            let context = try await prepareContext(message, snapshot: snapshot, chain: chain, now: now)
            if context.window.contains(where: \.untrusted) || context.summary?.untrusted == true { session.taint() }
            let tools = selectTools(session.tools, ranked: hints.rank(stop.request), used: context.usedTools)
            let plan = try await converse(
                message, person: snapshot.person, chain: chain, context: context, tools: tools, session: session,
                previousReply: snapshot.previousReply, progress: progress, stop: stop, resuming: turn
            )
            if case .reply(let text) = plan, Self.saysNothingLeft(text) {
                // Calls that ran on the way are still news; a bare "done" is not.
                return progress.outcomes.map { .reply($0.joined(separator: "\n")) }
            }
            return plan
        } catch let error as BudgetExhausted {
            logger.notice("model budget spent; a confirmed plan stops after its confirmed step", metadata: ["llm.budget": "\(error.scope.rawValue)"])
            return progress.outcomes == nil ? .reply(Self.cannotGoOn(stop)) : .reply(Self.cannotGoOn(stop) + "\nWhat I did since:\n" + progress.outcomes!.joined(separator: "\n"))
        } catch let error as ModelsUnavailable {
            logger.error("no model answered; a confirmed plan stops after its confirmed step", metadata: ["error": "\(error)"])
            return progress.outcomes == nil ? .reply(Self.cannotGoOn(stop)) : .reply(Self.cannotGoOn(stop) + "\nWhat I did since:\n" + progress.outcomes!.joined(separator: "\n"))
        }
    }

    static func cannotGoOn(_ stop: PlanStop) -> String {
        "That step is done, but my language model is not answering, so I could not go on with the rest of \"\(stop.request)\". Ask me again for anything still missing."
    }

    /// "DONE", "Done.", "done" and nothing at all.
    static func saysNothingLeft(_ text: String) -> Bool {
        let word = text.trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters))
        return word.isEmpty || word.uppercased() == nothingLeft
    }
}
