// The audit trail is append-only and hash-chained.
//
// Each record's hash is SHA-256 over the previous record's hash and the record's own canonical
// form. Editing any field of any record breaks its hash; deleting a record breaks the link of
// its successor (or, for the last one, the stored head). `verify` recomputes the whole chain.
// Canonical form: one line per field, in a fixed order, arguments as canonical JSON; times as
// whole microseconds since 1970, so they survive every storage engine's time type unchanged.

public import Foundation
public import SwitchboardModel
import Crypto

/// Hashing and verification of the audit chain. Pure: no storage.
public enum AuditChain {
    /// The previous hash of the first record.
    public static let genesis = String(repeating: "0", count: 64)

    /// The hash of a record.
    public static func hash(previous: String, sequence: Int64, entry: AuditEntry) -> String {
        hash(previous: previous, sequence: sequence, entry: entry, argumentsText: entry.arguments.canonicalText)
    }

    /// The hash of a record whose arguments' canonical text the caller already has.
    public static func hash(previous: String, sequence: Int64, entry: AuditEntry, argumentsText: String) -> String {
        let form = canonicalForm(previous: previous, sequence: sequence, entry: entry, argumentsText: argumentsText)
        let digest = SHA256.hash(data: Array(form.utf8))
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Whole microseconds since 1970: the precision every engine stores exactly.
    public static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// The date for a stored microsecond count.
    public static func date(microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }

    static func canonicalForm(previous: String, sequence: Int64, entry: AuditEntry, argumentsText: String) -> String {
        [
            "v1",
            previous,
            String(sequence),
            String(microseconds(entry.at)),
            entry.callID.rawValue,
            entry.person.rawValue,
            entry.conversation.channel.rawValue,
            entry.conversation.conversation.rawValue,
            entry.tool,
            entry.risk.description,
            entry.status.rawValue,
            argumentsText,
            entry.summary,
            entry.correlationID?.rawValue ?? "",
        ].map { field in
            // Length-prefix each field so no choice of values can forge another's layout.
            "\(field.utf8.count):\(field)"
        }.joined(separator: "\n")
    }

    /// Checks a whole trail, in sequence order, against its stored head.
    public static func verify(
        _ records: some Sequence<AuditRecord>,
        head: (sequence: Int64, hash: String)?
    ) -> AuditVerification {
        var previous = genesis
        var expectedSequence: Int64 = 1
        var count = 0
        for record in records {
            if record.sequence != expectedSequence {
                return .broken(
                    sequence: expectedSequence,
                    reason: "record \(expectedSequence) is missing (next stored record is \(record.sequence))"
                )
            }
            if record.previousHash != previous {
                return .broken(sequence: record.sequence, reason: "record \(record.sequence) does not link to record \(record.sequence - 1)")
            }
            let recomputed = hash(previous: previous, sequence: record.sequence, entry: record.entry)
            if recomputed != record.hash {
                return .broken(sequence: record.sequence, reason: "record \(record.sequence) was modified after it was written")
            }
            previous = record.hash
            expectedSequence += 1
            count += 1
        }
        let lastSequence = expectedSequence - 1
        switch head {
        case nil where count == 0:
            return .intact(records: 0)
        case nil:
            return .broken(sequence: lastSequence, reason: "the trail's head record is missing")
        case let head?:
            if head.sequence != lastSequence {
                return .broken(
                    sequence: min(head.sequence, lastSequence + 1),
                    reason: "the trail should end at record \(head.sequence) but ends at \(lastSequence): records were deleted"
                )
            }
            if head.hash != previous {
                return .broken(sequence: lastSequence, reason: "the last record does not match the stored head")
            }
            return .intact(records: count)
        }
    }
}

/// The result of verifying the audit chain.
public enum AuditVerification: Hashable, Sendable {
    /// Every record is as written.
    case intact(records: Int)
    /// The first place where the chain is broken.
    case broken(sequence: Int64, reason: String)
}
