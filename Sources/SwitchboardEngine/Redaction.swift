// Secret arguments never reach the audit trail.
//
// Arguments are redacted before they are recorded (previews and summaries are the tool's own
// words, and `Tool` forbids secrets in them): every value under a key the tool declares
// secret, and every value under a key whose name says it is one (password, token, secret, api
// key, authorization), at any depth.

public import SwitchboardModel

/// Redacts secret values from tool arguments.
public enum Redaction {
    /// The text that replaces a secret.
    public static let placeholder = "<redacted>"

    static let secretWords = ["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key"]
    private static let secretWordBytes = secretWords.map { Array($0.utf8) }

    /// Whether a key names a secret.
    public static func isSecretKey(_ key: String, declared: Set<String> = []) -> Bool {
        if declared.contains(key) { return true }
        // ASCII case-folding with '-' as '_': secret words are ASCII, and this runs for every
        // argument key of every audited call.
        let folded = key.utf8.map { byte -> UInt8 in
            if byte >= 65 && byte <= 90 { return byte + 32 }
            return byte == 45 ? 95 : byte
        }
        return secretWordBytes.contains { word in
            guard folded.count >= word.count else { return false }
            return (0...(folded.count - word.count)).contains { start in folded[start..<start + word.count].elementsEqual(word) }
        }
    }

    /// Whether anything in the value would be redacted: the common case, nothing, costs no copy.
    static func needsRedaction(_ value: JSONValue, declared: Set<String>) -> Bool {
        switch value {
        case .object(let members):
            for (key, member) in members where isSecretKey(key, declared: declared) || needsRedaction(member, declared: declared) {
                return true
            }
            return false
        case .array(let items):
            return items.contains { needsRedaction($0, declared: declared) }
        default:
            return false
        }
    }

    /// The arguments with secret values replaced.
    public static func redact(_ value: JSONValue, declared: Set<String> = []) -> JSONValue {
        guard needsRedaction(value, declared: declared) else { return value }
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
