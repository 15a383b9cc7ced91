import Foundation
import SwitchboardEngine
import SwitchboardHTTP
import SwitchboardModel
import SwitchboardStorage

/// What the HTTP API's operator routes need from the engine, in the engine's own terms: the
/// API never reaches a tool except through here, and here only through the gate.
struct OperatorDesk: GatewayOperations {
    let engine: ConversationEngine
    let registry: ToolRegistry
    let store: any Store

    var tools: [ToolSummary] {
        registry.descriptors.map { descriptor in
            ToolSummary(
                name: descriptor.name, category: descriptor.category, description: descriptor.summary,
                parameters: descriptor.parameters, risk: descriptor.baseRisk, effect: descriptor.effect.rawValue,
                secretParameters: descriptor.secretArguments.sorted(), source: descriptor.origin.description
            )
        }
    }

    func redacted(_ arguments: JSONValue, tool: String) -> JSONValue {
        Redaction.redact(arguments, declared: registry[tool]?.descriptor.secretArguments ?? [])
    }

    func decide(_ callID: ToolCallID, approve: Bool, operator principal: APIPrincipal) async throws -> OperatorDecision {
        switch try await engine.answerForRequester(callID, approve: approve, operatorID: principal.keyID, operatorName: principal.name) {
        case .notFound: throw OperatorDecisionError.notFound
        case .alreadyDecided(let outcome): throw OperatorDecisionError.alreadyDecided(outcome)
        case .forbidden(let reason): throw OperatorDecisionError.forbidden(reason)
        case .done(let outcome, let reply): return OperatorDecision(outcome: outcome, reply: reply)
        }
    }

    func forgetPreferences(of person: PersonID, operator principal: APIPrincipal) async throws -> Int {
        let now = Date()
        return try await store.write { tx in
            let count = try tx.forgetPreferences(of: person)
            // On the record even when there was nothing to forget: someone asked.
            _ = try tx.appendAudit(AuditEntry(
                at: now, callID: ToolCallID("op-\(UUID().uuidString.lowercased())"),
                person: PersonID("operator:\(principal.keyID)"),
                conversation: ConversationKey(channel: "api", conversation: ConversationID("operator")),
                tool: "preferences.forget", risk: .medium, status: .executed,
                arguments: ["person": .string(person.rawValue)],
                summary: "forgot \(count) preference\(count == 1 ? "" : "s") of \(person) for operator \(principal.name)",
                correlationID: nil
            ))
            return count
        }
    }
}
