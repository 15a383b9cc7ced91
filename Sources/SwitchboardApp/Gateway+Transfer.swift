import Foundation
import SwitchboardModel
import SwitchboardStorage

// `switchboard export` and `switchboard import`: all data out of one database into a file,
// and from the file into a new, empty database of either engine (SQLite to PostgreSQL, say).
//
// The file is JSON Lines: a header `{"switchboard_export": 1, "migrations": [...], "tables":
// {name: row count}}`, then one `{"table": name, "row": {column: value}}` per row. Values are
// copied as stored (times as microseconds), so the audit chain's hashes still verify.

extension Gateway {
    /// Writes every table to `path` (created with mode 0600: it holds message text and key
    /// hashes). Returns the number of rows written.
    public func exportData(to path: String) async throws -> Int {
        let store = try transferable()
        var counts: [String: JSONValue] = [:]
        var lines: [String] = []
        for (table, order) in DataTransfer.tables {
            let rows = try await store.exportRows(table: table, order: order)
            counts[table] = .int(Int64(rows.count))
            for row in rows {
                lines.append(JSONValue.object(["table": .string(table), "row": row]).canonicalText)
            }
        }
        let migrations = try await engine.schemaVersion().stored
        let header = JSONValue.object([
            "switchboard_export": 1, "migrations": .array(migrations.map(JSONValue.string)), "tables": .object(counts),
        ]).canonicalText
        let text = ([header] + lines).joined(separator: "\n") + "\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw GatewayError("Cannot write the export file \(path).")
        }
        return lines.count
    }

    /// Reads an export file into this (empty) database in one transaction, then verifies the
    /// audit chain. Returns the rows imported and the verification's sentence.
    public func importData(from path: String) async throws -> (rows: Int, audit: String) {
        let store = try transferable()
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayError("Cannot read the export file \(path).")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard let first = lines.first, let header = try? JSONValue.parse(String(first)), header["switchboard_export"] == .int(1) else {
            throw GatewayError("\(path) is not a Switchboard export (its first line is not the export header).")
        }
        let known = try await engine.schemaVersion().known
        if case .array(let migrations)? = header["migrations"] {
            let unknown = migrations.compactMap(\.stringValue).filter { !known.contains($0) }
            guard unknown.isEmpty else {
                throw GatewayError("The export was made by a newer Switchboard (migrations \(unknown.joined(separator: ", "))); import it with that version.")
            }
        }
        var rowsByTable: [String: [JSONValue]] = [:]
        for (index, line) in lines.dropFirst().enumerated() {
            guard let entry = try? JSONValue.parse(String(line)), let table = entry["table"]?.stringValue, let row = entry["row"],
                DataTransfer.tables.contains(where: { $0.name == table })
            else {
                throw GatewayError("Line \(index + 2) of \(path) is not a row of a known table; nothing was imported.")
            }
            rowsByTable[table, default: []].append(row)
        }
        if case .object(let counts)? = header["tables"] {
            for (table, count) in counts where Int64(rowsByTable[table]?.count ?? 0) != count.intValue {
                throw GatewayError("\(path) is incomplete: the header promises \(count) rows of \(table), the file has \(rowsByTable[table]?.count ?? 0). Nothing was imported.")
            }
        }
        let ordered = DataTransfer.tables.map { (table: $0.name, rows: rowsByTable[$0.name] ?? []) }
        try await store.importRows(ordered)
        let (intact, sentence) = try await verifyAuditReport()
        guard intact else {
            throw GatewayError("Imported \(ordered.reduce(0) { $0 + $1.rows.count }) rows, but the audit chain does not verify: \(sentence). The export was altered or damaged; keep the original database.")
        }
        return (ordered.reduce(0) { $0 + $1.rows.count }, sentence)
    }

    private func transferable() throws -> any TransferableStore {
        switch engine {
        case .sqlite(let store): store
        case .postgres(let store): store
        }
    }
}
