// What the email channel checks before a mail may reach the assistant: whether it must never be
// answered (auto-replies, lists, bounces, our own mail), and whether its sender is authenticated
// by the receiving server's Authentication-Results (RFC 8601).

import Foundation

/// Mail that must get no answer, and why.
public enum NoReplyReason: String, Sendable, Hashable {
    /// `Auto-Submitted` other than `no` (RFC 3834): an auto-reply or a robot.
    case autoSubmitted = "auto_submitted"
    /// `Precedence: bulk`, `list` or `junk`.
    case bulk
    /// A mailing list (`List-Id`).
    case mailingList = "mailing_list"
    /// A bounce: an empty return path, or a delivery report.
    case bounce
    /// Mail from the assistant's own address: answering it would loop.
    case ownAddress = "own_address"

    /// Whether a message must get no answer.
    public static func check(_ message: EmailMessage, ownAddress: String) -> NoReplyReason? {
        let headers = message.headers
        if let auto = headers["Auto-Submitted"]?.trimmingCharacters(in: .whitespaces).lowercased(),
           !auto.isEmpty, auto.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespaces) }) != "no" {
            return .autoSubmitted
        }
        if let precedence = headers["Precedence"]?.trimmingCharacters(in: .whitespaces).lowercased(), ["bulk", "list", "junk"].contains(precedence) {
            return .bulk
        }
        if headers["List-Id"] != nil { return .mailingList }
        if let returnPath = headers["Return-Path"], returnPath.trimmingCharacters(in: .whitespaces) == "<>" { return .bounce }
        if message.isReport { return .bounce }
        if message.from.contains(where: { $0.address.caseInsensitiveCompare(ownAddress) == .orderedSame }) { return .ownAddress }
        return nil
    }
}

/// Sender authentication from Authentication-Results header fields (RFC 8601).
///
/// Only fields in the trace block at the top of the message (before the first field that is not
/// Return-Path, Delivered-To, X-Original-To, Received, ARC-* or Authentication-Results) count,
/// and of those only fields whose authserv-id is the trusted one. The trusted server must remove
/// incoming fields that carry its own id (RFC 8601 §5), which is what makes a forged one in the
/// trace block impossible; one further down, in the sender's own headers, never counts.
public enum SenderAuthentication {
    /// One method's result: `dkim=pass header.d=example.org`.
    public struct Result: Sendable, Hashable {
        public var method: String
        public var result: String
        public var properties: [String: String]
    }

    /// Whether the From domain is authenticated: DMARC passed for it, or DKIM or SPF passed
    /// aligned with it (same domain, or one a subdomain of the other).
    public static func isAuthenticated(_ message: EmailMessage, trustedAuthservID: String?) -> Bool {
        guard let trusted = trustedAuthservID.flatMap(asciiLowercased), !trusted.isEmpty,
              // One From field with one address, and one Subject: a second From put above a
              // signed message's own would otherwise borrow its signature.
              message.headers.all("From").count == 1, message.headers.all("Subject").count <= 1,
              message.from.count == 1, let fromDomain = domain(of: message.from[0].address) else { return false }
        let results = trustedResults(message.headers, trustedAuthservID: trusted)
        for result in results where result.result == "pass" {
            switch result.method {
            case "dmarc":
                if let header = result.properties["header.from"], aligned(domain(of: header) ?? header, fromDomain) { return true }
            case "dkim":
                if let signer = result.properties["header.d"] ?? result.properties["header.i"].flatMap(domain(of:)), aligned(signer, fromDomain) { return true }
            case "spf":
                if let envelope = result.properties["smtp.mailfrom"].flatMap({ domain(of: $0) ?? $0 }), aligned(envelope, fromDomain) { return true }
            default:
                break
            }
        }
        return false
    }

    /// The results in trusted Authentication-Results fields at the top of the message.
    public static func trustedResults(_ headers: MIMEHeaders, trustedAuthservID trusted: String) -> [Result] {
        let trace: Set<String> = ["return-path", "delivered-to", "x-original-to", "received", "authentication-results"]
        var results: [Result] = []
        for field in headers.fields {
            let name = field.name.lowercased()
            guard trace.contains(name) || name.hasPrefix("arc-") else { break }
            guard name == "authentication-results" else { continue }
            let (id, entries) = parse(field.value)
            guard let id = asciiLowercased(id), id == trusted else { continue }
            results += entries
        }
        return results
    }

    /// Parses a field value: the authserv-id and its results. A quoted string (with its escapes)
    /// stays inside the token it belongs to, comments are dropped, and a result that names a
    /// property twice is dropped whole: a sender-controlled value such as a quoted local part
    /// can never add a property of its own.
    public static func parse(_ value: String) -> (authservID: String, results: [Result]) {
        let statements = lex(value)
        let id = statements.first?.first ?? ""
        var results: [Result] = []
        for tokens in statements.dropFirst() {
            guard let first = tokens.first, let equals = first.firstIndex(of: "=") else { continue }
            let method = first[..<equals].split(separator: "/").first.map { $0.lowercased() } ?? ""
            let result = first[first.index(after: equals)...].lowercased()
            var properties: [String: String] = [:]
            var repeated = false
            for token in tokens.dropFirst() {
                guard let eq = token.firstIndex(of: "="), token[..<eq].contains(".") else { continue }
                let key = token[..<eq].lowercased()
                if properties[key] != nil { repeated = true }
                properties[key] = String(token[token.index(after: eq)...])
            }
            if !repeated { results.append(Result(method: method, result: result, properties: properties)) }
        }
        return (id, results)
    }

    /// Statements (split at `;`) of tokens (split at white space), outside quoted strings and
    /// comments. Quotes are removed from a token and escapes resolved; a quoted string never
    /// splits a token.
    static func lex(_ value: String) -> [[String]] {
        var statements: [[String]] = []
        var tokens: [String] = []
        var token = ""
        var quoted = false
        var comment = 0
        var escaped = false
        func endToken() {
            if !token.isEmpty { tokens.append(token) }
            token = ""
        }
        for character in value {
            if escaped {
                if comment == 0 { token.append(character) }
                escaped = false
                continue
            }
            if character == "\\" && (quoted || comment > 0) {
                escaped = true
                continue
            }
            if quoted {
                if character == "\"" { quoted = false } else { token.append(character) }
                continue
            }
            if comment > 0 {
                if character == "(" { comment += 1 }
                if character == ")" { comment -= 1 }
                continue
            }
            switch character {
            case "\"": quoted = true
            case "(": comment = 1; endToken()
            case ";":
                endToken()
                statements.append(tokens)
                tokens = []
            case " ", "\t", "\r", "\n": endToken()
            default: token.append(character)
            }
        }
        endToken()
        statements.append(tokens)
        return statements
    }

    /// ASCII letters lowercased; nil for text with anything outside printable ASCII, so no
    /// Unicode case folding (K → k) can make a forged id match.
    static func asciiLowercased(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else { return nil }
        return ASCIIFold.fold(trimmed)
    }

    static func domain(of address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let domain = address[address.index(after: at)...].trimmingCharacters(in: CharacterSet(charactersIn: "<> ")).lowercased()
        return domain.isEmpty ? nil : domain
    }

    /// Relaxed alignment, approximated without a public-suffix list: the same domain, or one a
    /// subdomain of the other, where the shorter is no bare suffix such as `com` or `co.uk`.
    static func aligned(_ a: String, _ b: String) -> Bool {
        let a = a.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "@. "))
        let b = b.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "@. "))
        guard !a.isEmpty, !b.isEmpty else { return false }
        if a == b { return true }
        let shorter = a.count < b.count ? a : b
        let longer = a.count < b.count ? b : a
        let labels = shorter.split(separator: ".")
        let suffixLike: Set<Substring> = ["co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "go", "gv"]
        guard labels.count >= 2, !(labels.count == 2 && suffixLike.contains(labels[0])) else { return false }
        return longer.hasSuffix("." + shorter)
    }
}

/// ASCII case folding.
enum ASCIIFold {
    static func fold(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { ("A"..."Z").contains($0) ? Unicode.Scalar($0.value + 32)! : $0 }))
    }
}
