// Secrets never reach the audit trail or logs.
//
// Arguments are redacted before they are recorded: every value under a key the tool declares
// secret, and every value under a key whose name says it is one (password, token, secret, api
// key, authorization), at any depth.

import Foundation
public import SwitchboardModel

/// Redacts secret values from tool arguments.
public enum Redaction {
    /// The text that replaces a secret.
    public static let placeholder = "<redacted>"

    static let secretWords = ["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key"]

    /// Whether a key names a secret.
    public static func isSecretKey(_ key: String, declared: Set<String> = []) -> Bool {
        if declared.contains(key) { return true }
        let lowered = key.lowercased().replacingOccurrences(of: "-", with: "_")
        return secretWords.contains { lowered.contains($0) }
    }

    /// The arguments with secret values replaced.
    public static func redact(_ value: JSONValue, declared: Set<String> = []) -> JSONValue {
        switch value {
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (key, member) in members {
                out[key] = isSecretKey(key, declared: declared) ? .string(placeholder) : redact(member, declared: declared)
            }
            return .object(out)
        case .array(let items):
            return .array(items.map { redact($0, declared: declared) })
        default:
            return value
        }
    }
}
