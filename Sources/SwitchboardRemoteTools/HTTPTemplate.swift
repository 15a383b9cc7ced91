// Request templates for declared HTTP tools: `{name}` placeholders in a URL's path and query,
// and in a JSON body.
//
// URL placeholders are percent-encoded as one path segment or query value, so an argument can
// never add a path segment, a query parameter or another host: `{id}` given "../admin?x=1"
// becomes `..%2Fadmin%3Fx%3D1`. The host itself can never be templated; the operator's URL
// decides where a request goes. In a body, a string that is exactly one placeholder takes the
// argument's JSON value (a number stays a number); a placeholder inside a longer string is
// replaced by the value's text.

import Foundation
public import SwitchboardModel

/// Expands request templates.
public enum HTTPTemplate {
    /// What a template's URL must not be, in words, or nil when it is fine.
    public static func checkURL(_ template: String) -> String? {
        let lower = template.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            return "expected an http or https URL, got \"\(template)\""
        }
        let afterScheme = template[template.range(of: "://")!.upperBound...]
        let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if authority.isEmpty { return "the URL has no host" }
        if authority.contains("{") { return "the host and port cannot be placeholders: a request goes only where the configuration says" }
        return nil
    }

    /// What is wrong with a body template, or nil.
    public static func checkBody(_ template: String) -> String? {
        (try? JSONValue.parse(template)) == nil ? "expected JSON text (with \"{name}\" placeholders in strings)" : nil
    }

    /// The URL with its placeholders filled from `values` (missing ones become empty).
    public static func url(_ template: String, values: [String: JSONValue]) -> String {
        var result = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            result += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                // An unclosed brace is text (the configuration check reports it).
                result += rest[open...]
                rest = ""
                break
            }
            let name = String(rest[rest.index(after: open)..<close])
            result += encode(text(lookup(name, in: values) ?? .null))
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }

    /// The body with its placeholders filled, as JSON text.
    public static func body(_ template: String, values: [String: JSONValue]) throws -> String {
        try fill(JSONValue.parse(template), values: values).canonicalText
    }

    static func fill(_ value: JSONValue, values: [String: JSONValue]) -> JSONValue {
        switch value {
        case .string(let string):
            if string.hasPrefix("{"), string.hasSuffix("}"), string.dropFirst().dropLast().allSatisfy({ $0 != "{" && $0 != "}" }) {
                return lookup(String(string.dropFirst().dropLast()), in: values) ?? .null
            }
            var result = ""
            var rest = Substring(string)
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                result += rest[..<open]
                result += text(lookup(String(rest[rest.index(after: open)..<close]), in: values) ?? .null)
                rest = rest[rest.index(after: close)...]
            }
            return .string(result + rest)
        case .array(let items): return .array(items.map { fill($0, values: values) })
        case .object(let members): return .object(members.mapValues { fill($0, values: values) })
        default: return value
        }
    }

    /// A dotted name in the values: `id`, or `response.item.id`.
    static func lookup(_ name: String, in values: [String: JSONValue]) -> JSONValue? {
        if let direct = values[name] { return direct }
        let parts = name.split(separator: ".").map(String.init)
        guard var current = values[parts.first ?? ""] else { return nil }
        for part in parts.dropFirst() {
            if let index = Int(part), let items = current.arrayValue, items.indices.contains(index) {
                current = items[index]
            } else if let member = current.objectValue?[part] {
                current = member
            } else {
                return nil
            }
        }
        return current
    }

    static func text(_ value: JSONValue) -> String {
        switch value {
        case .null: ""
        case .string(let string): string
        case .int(let number): String(number)
        case .double(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        default: value.canonicalText
        }
    }

    /// Percent-encodes everything but the unreserved characters of RFC 3986.
    static func encode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
