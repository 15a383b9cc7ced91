// Configuration is read in one pass and validated all at once.
//
// The app merges defaults, the YAML file, `SWITCHBOARD_*` environment variables and command
// line flags into flat dotted keys (`rate_limits.notes.per_minute`), remembering where each
// value came from. Each module then reads its own keys through `ConfigValues`, which records
// every bad value instead of stopping at the first, so an operator sees every mistake, each
// with its key and environment variable, in one start attempt.

/// Where a configuration value came from, for error messages.
public enum ConfigSource: Hashable, Sendable, CustomStringConvertible {
    case file(String)
    case environment(String)
    case commandLine
    case secretFile(String)

    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .environment(let name): "environment variable \(name)"
        case .commandLine: "command line"
        case .secretFile(let path): "secret file \(path)"
        }
    }
}

/// One configuration value: a scalar or a list, as text.
public enum ConfigValue: Hashable, Sendable {
    case scalar(String)
    case list([String])
}

/// A problem with one configuration key.
public struct ConfigProblem: Hashable, Sendable, CustomStringConvertible {
    /// The dotted key.
    public var key: String
    /// What is wrong, and what would be right.
    public var message: String
    /// Where the bad value came from, if it came from somewhere.
    public var source: ConfigSource?

    /// Creates a problem.
    public init(key: String, message: String, source: ConfigSource?) {
        self.key = key
        self.message = message
        self.source = source
    }

    public var description: String {
        var text = "\(key) (\(ConfigValues.environmentName(for: key))): \(message)"
        if let source { text += " [from \(source)]" }
        return text
    }
}

/// The merged configuration as flat dotted keys, with typed readers that collect problems.
public struct ConfigValues: Sendable {
    private var values: [String: (value: ConfigValue, source: ConfigSource, secret: Bool)]
    /// Problems found while reading.
    public private(set) var problems: [ConfigProblem] = []

    /// Creates an empty configuration.
    public init() { values = [:] }

    /// The environment variable that sets a dotted key: `SWITCHBOARD_` and the key in upper
    /// case with dots and dashes turned into underscores.
    public static func environmentName(for key: String) -> String {
        "SWITCHBOARD_" + key.uppercased().map { $0 == "." || $0 == "-" ? "_" : $0 }.reduce("") { $0 + String($1) }
    }

    /// Sets a value; later sets win (call in precedence order: file, environment, command line).
    public mutating func set(_ key: String, _ value: ConfigValue, source: ConfigSource, secret: Bool = false) {
        values[key] = (value, source, secret)
    }

    /// Every key that has a value.
    public var keys: [String] { values.keys.sorted() }

    /// Whether the key has a value.
    public func has(_ key: String) -> Bool { values[key] != nil }

    /// Where a key's value came from.
    public func source(of key: String) -> ConfigSource? { values[key]?.source }

    /// Records a problem with a key that has no value here (an unknown key, an unreadable
    /// secret file), so it is reported together with every other problem.
    public mutating func report(_ key: String, _ message: String, source: ConfigSource?) {
        problems.append(ConfigProblem(key: key, message: message, source: source))
    }

    /// Records a problem found by a module's own validation.
    public mutating func report(_ key: String, _ message: String) {
        problems.append(ConfigProblem(key: key, message: message, source: values[key]?.source))
    }

    /// The raw text of a scalar key.
    public mutating func string(_ key: String) -> String? {
        switch values[key]?.value {
        case nil: return nil
        case .scalar(let text)?: return text
        case .list?:
            report(key, "expected a single value, not a list")
            return nil
        }
    }

    /// A string with a default.
    public mutating func string(_ key: String, default value: String) -> String {
        string(key) ?? value
    }

    /// A secret: never printed.
    public mutating func secret(_ key: String) -> Secret? {
        string(key).map(Secret.init)
    }

    /// An integer in a range.
    public mutating func int(_ key: String, default value: Int, range: ClosedRange<Int>) -> Int {
        guard let text = string(key) else { return value }
        guard let parsed = Int(text.trimmingWhitespace()), range.contains(parsed) else {
            report(key, "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            return value
        }
        return parsed
    }

    /// A number in a range.
    public mutating func double(_ key: String, default value: Double, range: ClosedRange<Double>) -> Double {
        guard let text = string(key) else { return value }
        guard let parsed = Double(text.trimmingWhitespace()), range.contains(parsed) else {
            report(key, "expected a number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
            return value
        }
        return parsed
    }

    /// A boolean: true/false, yes/no, on/off, 1/0.
    public mutating func bool(_ key: String, default value: Bool) -> Bool {
        guard let text = string(key) else { return value }
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            report(key, "expected true or false, got \"\(text)\"")
            return value
        }
    }

    /// One of a fixed set of words.
    public mutating func choice(_ key: String, default value: String, from choices: [String]) -> String {
        guard let text = string(key) else { return value }
        let word = text.trimmingWhitespace().lowercased()
        guard choices.contains(word) else {
            report(key, "expected one of \(choices.joined(separator: ", ")), got \"\(text)\"")
            return value
        }
        return word
    }

    /// A list: a YAML sequence, or comma-separated text (as environment variables give it).
    public mutating func list(_ key: String, default value: [String]) -> [String] {
        switch values[key]?.value {
        case nil: return value
        case .list(let items)?: return items.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        case .scalar(let text)?:
            return text.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
    }

    /// The distinct next key components under a prefix: `children(of: "rate_limits")` gives
    /// `["default", "notes"]` for `rate_limits.default.burst` and `rate_limits.notes.per_minute`.
    public func children(of prefix: String) -> [String] {
        let start = prefix + "."
        var names = Set<String>()
        for key in values.keys where key.hasPrefix(start) {
            let rest = key.dropFirst(start.count)
            if let dot = rest.firstIndex(of: ".") { names.insert(String(rest[..<dot])) } else { names.insert(String(rest)) }
        }
        return names.sorted()
    }

    /// Every key under a prefix, with the rest of the key after the prefix.
    public func entries(under prefix: String) -> [(rest: String, key: String)] {
        let start = prefix + "."
        return values.keys.filter { $0.hasPrefix(start) }.sorted().map { (String($0.dropFirst(start.count)), $0) }
    }
}

extension String {
    /// The string without leading and trailing spaces and newlines.
    public func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
