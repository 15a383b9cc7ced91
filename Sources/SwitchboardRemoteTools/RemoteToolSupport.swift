// What MCP tools and HTTP tools share: checking arguments against the declared schema, the
// preview that shows exactly what will be sent, and the audit summary of what came back (its
// size and digest, never its text).

import Crypto
public import Foundation
public import SwitchboardEngine
public import SwitchboardModel

/// Shared wording and checks for remote tools.
public enum RemoteToolSupport {
    /// The arguments as the tool will send them, checked against its schema.
    ///
    /// - Throws: `ToolFailure` naming every problem.
    public static func checked(_ arguments: JSONValue, descriptor: ToolDescriptor) throws -> JSONValue {
        var arguments = arguments == .null ? .object([:]) : arguments
        guard arguments.objectValue != nil else {
            throw ToolFailure("\(descriptor.name) takes named arguments (key=value), not \(arguments.canonicalText.prefix(80)).")
        }
        arguments = coerced(arguments, schema: descriptor.parameters)
        let problems = SchemaValidator.validate(arguments, against: descriptor.parameters)
        guard problems.isEmpty else {
            throw ToolFailure("The arguments for \(descriptor.name) don't fit what it accepts: \(problems.prefix(5).joined(separator: "; ")).")
        }
        return arguments
    }

    /// Text values converted to the number, flag, list or object a property declares, as
    /// `run TOOL limit=3` writes them; anything that does not convert is left for the check.
    static func coerced(_ arguments: JSONValue, schema: JSONValue) -> JSONValue {
        guard var members = arguments.objectValue, let properties = schema["properties"]?.objectValue else { return arguments }
        for (key, value) in members {
            guard case .string(let text) = value, let type = properties[key]?["type"]?.stringValue else { continue }
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            switch type {
            case "integer": if let number = Int64(trimmed) { members[key] = .int(number) }
            case "number":
                if let number = Int64(trimmed) { members[key] = .int(number) } else if let number = Double(trimmed), number.isFinite { members[key] = .double(number) }
            case "boolean":
                switch trimmed.lowercased() {
                case "true", "yes", "on": members[key] = .bool(true)
                case "false", "no", "off": members[key] = .bool(false)
                default: break
                }
            case "array", "object":
                if let parsed = try? JSONValue.parse(trimmed), type == "array" ? parsed.arrayValue != nil : parsed.objectValue != nil { members[key] = parsed }
            default: break
            }
        }
        return .object(members)
    }

    /// "This will call … with: • key: value", secrets shown as `<redacted>`.
    public static func preview(_ arguments: JSONValue, descriptor: ToolDescriptor, target: String) -> String {
        let redacted = Redaction.redact(arguments, declared: descriptor.secretArguments)
        var lines = ["This will call \(descriptor.name) (\(target))"]
        let members = redacted.objectValue ?? [:]
        if members.isEmpty {
            lines[0] += " with no arguments."
        } else {
            lines[0] += " with:"
            for key in members.keys.sorted() {
                var value = members[key]!.canonicalText
                if value.count > 200 { value = String(value.prefix(200)) + "…" }
                lines.append("• \(key): \(value)")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The audit summary of an answer: its size and SHA-256, so a record proves what came back
    /// without keeping a third party's text in the trail.
    public static func digestSummary(_ data: some DataProtocol, prefix: String) -> String {
        let digest = SHA256.hash(data: Data(data)).map { String(format: "%02x", $0) }.joined()
        return "\(prefix); \(data.count) bytes, sha256 \(digest.prefix(16))"
    }

    /// Text cut to `limit` characters for a reply, saying how much was left out.
    public static func cut(_ text: String, limit: Int = 4000) -> String {
        guard text.count > limit else { return text }
        return String(text.prefix(limit)) + "\n…(cut: \(text.count - limit) more characters)"
    }
}
