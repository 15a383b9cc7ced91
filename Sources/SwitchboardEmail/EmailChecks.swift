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
        guard let trusted = trustedAuthservID?.trimmingCharacters(in: .whitespaces).lowercased(), !trusted.isEmpty,
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
            guard id == trusted else { continue }
            results += entries
        }
        return results
    }

    /// Parses a field value: the authserv-id (lowercased) and its results.
    public static func parse(_ value: String) -> (authservID: String, results: [Result]) {
        let parts = HeaderParameters.split(withoutComments(value)).map { $0.trimmingCharacters(in: .whitespaces) }
        let id = parts.first?.split(separator: " ").first.map { $0.lowercased() } ?? ""
        var results: [Result] = []
        for part in parts.dropFirst() {
            let tokens = part.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = tokens.first, let equals = first.firstIndex(of: "=") else { continue }
            let method = first[..<equals].split(separator: "/").first.map { $0.lowercased() } ?? ""
            let result = first[first.index(after: equals)...].lowercased()
            var properties: [String: String] = [:]
            for token in tokens.dropFirst() {
                guard let eq = token.firstIndex(of: "="), token[..<eq].contains(".") else { continue }
                properties[token[..<eq].lowercased()] = String(token[token.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            results.append(Result(method: method, result: result, properties: properties))
        }
        return (id, results)
    }

    static func withoutComments(_ text: String) -> String {
        var out = ""
        var depth = 0
        var quoted = false
        for character in text {
            if character == "\"" && depth == 0 { quoted.toggle() }
            if !quoted && character == "(" { depth += 1; continue }
            if !quoted && character == ")" && depth > 0 { depth -= 1; continue }
            if depth == 0 { out.append(character) }
        }
        return out
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
