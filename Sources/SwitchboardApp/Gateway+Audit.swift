public import Foundation
public import SwitchboardModel
public import SwitchboardStorage
import SwitchboardSQLite

extension Gateway {
    /// A page of audit records.
    public func auditPage(person: String?, since: Date?, after: Int64?, limit: Int) async throws -> [AuditRecord] {
        let query = AuditQuery(person: person.map { PersonID($0) }, since: since, afterSequence: after, limit: limit)
        return try await store.read { try $0.auditRecords(query) }
    }

    /// Verifies the whole chain against its stored head.
    public func verifyAudit() async throws -> AuditVerification {
        try await store.read { reader in
            AuditChain.verify(try reader.auditRecords(AuditQuery()), head: try reader.auditHead())
        }
    }
}

extension Gateway {
    /// Writes the audit trail, page by page, one line per record.
    public func writeAudit(json: Bool, person: String?, since: Date?, line: (String) -> Void) async throws {
        var after: Int64? = nil
        let page = 1000
        if !json { line("seq\tat\tperson\ttool\tstatus\trisk\tsummary") }
        while true {
            let records = try await auditPage(person: person, since: since, after: after, limit: page)
            for record in records {
                line(json ? AuditReport.jsonLine(record) : AuditReport.textLine(record))
            }
            guard records.count == page, let last = records.last else { break }
            after = last.sequence
        }
    }

    /// Verifies the chain; returns whether it is intact and a sentence saying so.
    public func verifyAuditReport() async throws -> (ok: Bool, text: String) {
        switch try await verifyAudit() {
        case .intact(let count):
            return (true, "audit trail intact: \(count) records, hash chain verified")
        case .broken(let sequence, let reason):
            return (false, "audit trail BROKEN at record \(sequence): \(reason)")
        }
    }
}

extension Gateway {
    /// A sentence on the schema's state, for `switchboard migrate`.
    public func schemaReport() async throws -> String {
        let version = try await engine.schemaVersion()
        return "\(store.locationDescription): schema up to date (\(version.stored.last ?? "empty"); \(version.stored.count) of \(version.known.count) migrations applied)"
    }
}

/// Turning errors into operator sentences.
public enum AppErrors {
    /// The sentence for an error: its own safe description for ours, the type otherwise.
    public static func describe(_ error: any Error) -> String {
        switch error {
        case let error as ConfigurationError: error.description
        case let error as StoreError: error.message + (error.underlying.map { " (\($0))" } ?? "")
        case let error as GatewayError: error.message
        default: String(describing: error)
        }
    }
}
