// Validates a model's tool arguments against the tool's JSON Schema before anything runs.
//
// The keywords the tools use (JSON Schema 2020-12 validation vocabulary): type, properties,
// required, additionalProperties, enum, const, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength, maxLength, pattern, format (date-time, date, email), items,
// minItems, maxItems, uniqueItems, allOf, anyOf, oneOf. Any other keyword would be ignored at
// call time, so it is reported instead: a test checks every built-in tool's schema, and the
// gateway logs a warning at start for any tool whose schema uses one.

import Foundation
public import SwitchboardModel

/// Checks JSON values against a schema.
public enum SchemaValidator {
    /// The keywords understood.
    public static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "enum", "const", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format", "items",
        "minItems", "maxItems", "uniqueItems", "allOf", "anyOf", "oneOf", "description", "title", "default",
        "examples", "$schema",
    ]

    /// The keywords a schema uses that the validator does not know.
    public static func unsupportedKeywords(in schema: JSONValue) -> Set<String> {
        guard let object = schema.objectValue else { return [] }
        var unknown = Set(object.keys).subtracting(keywords)
        for (key, value) in object {
            switch key {
            case "properties": for child in value.objectValue?.values ?? [:].values { unknown.formUnion(unsupportedKeywords(in: child)) }
            case "items", "additionalProperties": unknown.formUnion(unsupportedKeywords(in: value))
            case "allOf", "anyOf", "oneOf": for child in value.arrayValue ?? [] { unknown.formUnion(unsupportedKeywords(in: child)) }
            default: break
            }
        }
        return unknown
    }

    /// The problems with `value`, each naming where (`/to: …`); empty when it is valid.
    public static func validate(_ value: JSONValue, against schema: JSONValue) -> [String] {
        var problems: [String] = []
        check(value, schema, path: "", into: &problems)
        return problems
    }

    private static func check(_ value: JSONValue, _ schema: JSONValue, path: String, into problems: inout [String]) {
        guard let rules = schema.objectValue else {
            if schema == .bool(false) { problems.append("\(at(path))is not allowed") }
            return
        }
        if let type = rules["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue].compactMap { $0 }
            if !allowed.contains(where: { matches(value, type: $0) }) {
                problems.append("\(at(path))must be \(allowed.joined(separator: " or ")), not \(describe(value))")
                return
            }
        }
        if let options = rules["enum"]?.arrayValue, !options.contains(where: { equal($0, value) }) {
            problems.append("\(at(path))must be one of \(options.map(\.canonicalText).joined(separator: ", "))")
        }
        if let constant = rules["const"], !equal(constant, value) {
            problems.append("\(at(path))must be \(constant.canonicalText)")
        }
        switch value {
        case .int, .double:
            let number = value.numberValue!
            if let minimum = rules["minimum"]?.numberValue, number < minimum { problems.append("\(at(path))must be at least \(format(minimum))") }
            if let maximum = rules["maximum"]?.numberValue, number > maximum { problems.append("\(at(path))must be at most \(format(maximum))") }
            if let bound = rules["exclusiveMinimum"]?.numberValue, number <= bound { problems.append("\(at(path))must be more than \(format(bound))") }
            if let bound = rules["exclusiveMaximum"]?.numberValue, number >= bound { problems.append("\(at(path))must be less than \(format(bound))") }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let minimum = rules["minLength"]?.intValue, length < minimum {
                problems.append(minimum == 1 ? "\(at(path))must not be empty" : "\(at(path))must be at least \(minimum) characters")
            }
            if let maximum = rules["maxLength"]?.intValue, length > maximum { problems.append("\(at(path))must be at most \(maximum) characters") }
            if let pattern = rules["pattern"]?.stringValue {
                if let regex = try? NSRegularExpression(pattern: pattern),
                   regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                    problems.append("\(at(path))must match \(pattern)")
                }
            }
            if let format = rules["format"]?.stringValue, !conforms(text, format: format) {
                problems.append("\(at(path))must be \(formatName(format))")
            }
        case .array(let items):
            if let minimum = rules["minItems"]?.intValue, items.count < minimum { problems.append("\(at(path))needs at least \(minimum) item(s)") }
            if let maximum = rules["maxItems"]?.intValue, items.count > maximum { problems.append("\(at(path))allows at most \(maximum) item(s)") }
            if rules["uniqueItems"]?.boolValue == true, Set(items.map(\.canonicalText)).count != items.count {
                problems.append("\(at(path))must not repeat items")
            }
            if let itemSchema = rules["items"] {
                for (index, item) in items.enumerated() { check(item, itemSchema, path: "\(path)/\(index)", into: &problems) }
            }
        case .object(let members):
            let properties = rules["properties"]?.objectValue ?? [:]
            for name in rules["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil || members[name] == .null {
                problems.append("\(at(path + "/" + name))is required")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let property = properties[name] {
                    check(member, property, path: "\(path)/\(name)", into: &problems)
                } else if let extra = rules["additionalProperties"] {
                    if extra == .bool(false) {
                        problems.append("\(at(path + "/" + name))is not an argument this tool takes"
                            + (properties.isEmpty ? "" : " (it takes: \(properties.keys.sorted().joined(separator: ", ")))"))
                    } else {
                        check(member, extra, path: "\(path)/\(name)", into: &problems)
                    }
                }
            }
        default:
            break
        }
        for sub in rules["allOf"]?.arrayValue ?? [] { check(value, sub, path: path, into: &problems) }
        if let options = rules["anyOf"]?.arrayValue, !options.contains(where: { validate(value, against: $0).isEmpty }) {
            problems.append("\(at(path))matches none of the allowed forms")
        }
        if let options = rules["oneOf"]?.arrayValue, options.filter({ validate(value, against: $0).isEmpty }).count != 1 {
            problems.append("\(at(path))must match exactly one of the allowed forms")
        }
    }

    private static func at(_ path: String) -> String { path.isEmpty ? "the arguments " : "\(path.dropFirst()) " }

    private static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object): true
        case ("number", .int), ("number", .double), ("integer", .int): true
        case ("integer", .double(let number)): number.rounded() == number && number.isFinite
        default: false
        }
    }

    private static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.numberValue, let y = b.numberValue { return x == y }
        return a == b
    }

    private static func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    private static func format(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }

    private static func formatName(_ format: String) -> String {
        switch format {
        case "date-time": "a date and time like 2026-03-12T15:00:00+01:00"
        case "date": "a date like 2026-03-12"
        case "email": "an email address"
        default: "in \(format) format"
        }
    }

    private static func conforms(_ text: String, format: String) -> Bool {
        switch format {
        case "date-time":
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime]
            if formatter.date(from: text) != nil { return true }
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.date(from: text) != nil
        case "date":
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd"
            return text.count == 10 && formatter.date(from: text) != nil
        case "email":
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !parts[1].hasPrefix(".")
                && !parts[1].hasSuffix(".") && !text.contains(where: { $0.isWhitespace })
        default: return true  // formats are annotations unless known
        }
    }
}
