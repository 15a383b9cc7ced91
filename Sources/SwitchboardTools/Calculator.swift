import Foundation

/// Arithmetic and unit conversion for `math.calc`: `12*7+3`, `17% of 240`, `2^10`,
/// `(3 + 4) / 2`, `5 miles to km`, `70 f in c`. Words work too: "12 times 7", "100 divided by 8".
enum Calculator {
    struct Failure: Error {
        let message: String
    }

    /// The result of an expression, as text.
    static func evaluate(_ input: String) throws -> String {
        let text = normalise(input)
        if let conversion = try convert(text) { return conversion }
        var parser = Parser(tokens: try tokenize(text))
        let value = try parser.parse()
        guard value.isFinite else { throw Failure(message: "That comes out as infinity (a division by zero?).") }
        return format(value)
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(format: "%.10g", value)
        if text.contains("e") { return text }
        while text.contains(".") && (text.hasSuffix("0") || text.hasSuffix(".")) { text.removeLast() }
        return text
    }

    private static func normalise(_ input: String) -> String {
        var text = " " + input.lowercased() + " "
        for (word, symbol) in [
            (" multiplied by ", " * "), (" times ", " * "), (" divided by ", " / "), (" over ", " / "),
            (" plus ", " + "), (" minus ", " - "), (" to the power of ", " ^ "), (" squared ", " ^ 2 "),
            (" percent of ", " % of "), ("×", "*"), ("÷", "/"), (",", ""),
        ] {
            text = text.replacingOccurrences(of: word, with: symbol)
        }
        // "17% of 240" is 17/100*240.
        text = text.replacingOccurrences(of: "% of", with: " / 100 * ")
        text = text.replacingOccurrences(of: "%", with: " / 100 ")
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    enum Token: Equatable {
        case number(Double)
        case op(Character)
    }

    private static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character.isWhitespace { index = text.index(after: index); continue }
            if character.isNumber || character == "." {
                var end = index
                while end < text.endIndex, text[end].isNumber || text[end] == "." { end = text.index(after: end) }
                guard let value = Double(text[index..<end]) else { throw Failure(message: "\"\(text[index..<end])\" isn't a number.") }
                tokens.append(.number(value))
                index = end
                continue
            }
            if "+-*/^()x".contains(character) {
                tokens.append(.op(character == "x" ? "*" : character))
                index = text.index(after: index)
                continue
            }
            throw Failure(message: "I can do arithmetic (+ − × ÷ ^ %, brackets) and unit conversions like \"5 miles to km\"; I couldn't read \"\(character)\".")
        }
        guard !tokens.isEmpty else { throw Failure(message: "What should I calculate? Try: 17% of 240") }
        return tokens
    }

    /// Precedence climbing: sum → product → power → unary → primary.
    struct Parser {
        let tokens: [Token]
        var position = 0

        init(tokens: [Token]) { self.tokens = tokens }

        mutating func parse() throws -> Double {
            let value = try sum()
            guard position == tokens.count else { throw Failure(message: "I couldn't follow that expression; check the brackets and operators.") }
            return value
        }

        mutating func sum() throws -> Double {
            var value = try product()
            while position < tokens.count, case .op(let op) = tokens[position], op == "+" || op == "-" {
                position += 1
                let right = try product()
                value = op == "+" ? value + right : value - right
            }
            return value
        }

        mutating func product() throws -> Double {
            var value = try power()
            while position < tokens.count, case .op(let op) = tokens[position], op == "*" || op == "/" {
                position += 1
                let right = try power()
                if op == "/" && right == 0 { throw Failure(message: "That divides by zero.") }
                value = op == "*" ? value * right : value / right
            }
            return value
        }

        mutating func power() throws -> Double {
            let base = try unary()
            if position < tokens.count, tokens[position] == .op("^") {
                position += 1
                return pow(base, try power())
            }
            return base
        }

        mutating func unary() throws -> Double {
            if position < tokens.count, tokens[position] == .op("-") {
                position += 1
                return -(try unary())
            }
            return try primary()
        }

        mutating func primary() throws -> Double {
            guard position < tokens.count else { throw Failure(message: "That expression ends too early.") }
            switch tokens[position] {
            case .number(let value):
                position += 1
                return value
            case .op("("):
                position += 1
                let value = try sum()
                guard position < tokens.count, tokens[position] == .op(")") else { throw Failure(message: "A bracket isn't closed.") }
                position += 1
                return value
            default:
                throw Failure(message: "I couldn't follow that expression; check the brackets and operators.")
            }
        }
    }

    // MARK: Units

    private struct Unit {
        let dimension: String
        let factor: Double
        let offset: Double
        let name: String
    }

    private static let units: [String: Unit] = {
        var table: [String: Unit] = [:]
        func add(_ names: [String], _ dimension: String, _ factor: Double, offset: Double = 0) {
            for name in names { table[name] = Unit(dimension: dimension, factor: factor, offset: offset, name: names[0]) }
        }
        add(["km", "kilometer", "kilometers", "kilometre", "kilometres"], "length", 1000)
        add(["m", "meter", "meters", "metre", "metres"], "length", 1)
        add(["cm", "centimeter", "centimeters", "centimetre", "centimetres"], "length", 0.01)
        add(["mm", "millimeter", "millimeters", "millimetre", "millimetres"], "length", 0.001)
        add(["mi", "mile", "miles"], "length", 1609.344)
        add(["yd", "yard", "yards"], "length", 0.9144)
        add(["ft", "foot", "feet"], "length", 0.3048)
        add(["in", "inch", "inches"], "length", 0.0254)
        add(["kg", "kilogram", "kilograms", "kilo", "kilos"], "mass", 1)
        add(["g", "gram", "grams"], "mass", 0.001)
        add(["lb", "lbs", "pound", "pounds"], "mass", 0.45359237)
        add(["oz", "ounce", "ounces"], "mass", 0.028349523125)
        add(["st", "stone", "stones"], "mass", 6.35029318)
        add(["l", "liter", "liters", "litre", "litres"], "volume", 1)
        add(["ml", "milliliter", "milliliters", "millilitre", "millilitres"], "volume", 0.001)
        add(["gal", "gallon", "gallons"], "volume", 3.785411784)
        add(["cup", "cups"], "volume", 0.2365882365)
        add(["pint", "pints"], "volume", 0.473176473)
        add(["c", "°c", "celsius", "centigrade"], "temperature", 1)
        add(["f", "°f", "fahrenheit"], "temperature", 5.0 / 9.0, offset: -32)
        add(["k", "kelvin"], "temperature", 1, offset: -273.15)
        add(["s", "sec", "secs", "second", "seconds"], "time", 1)
        add(["min", "mins", "minute", "minutes"], "time", 60)
        add(["h", "hr", "hrs", "hour", "hours"], "time", 3600)
        add(["day", "days"], "time", 86400)
        add(["week", "weeks"], "time", 604800)
        add(["kmh", "km/h", "kph"], "speed", 1 / 3.6)
        add(["mph"], "speed", 0.44704)
        add(["m/s"], "speed", 1)
        return table
    }()

    /// "5 miles to km", "70 f in c", "3.5 kg in pounds".
    private static func convert(_ text: String) throws -> String? {
        let words = text.replacingOccurrences(of: "degrees ", with: "").split(separator: " ").map(String.init)
        guard let pivot = words.lastIndex(where: { $0 == "to" || $0 == "in" || $0 == "into" }), pivot >= 1, pivot < words.count - 1 else { return nil }
        var left = Array(words[..<pivot])
        let targetName = words[(pivot + 1)...].joined(separator: " ")
        guard let target = units[targetName] else { return nil }
        // The source unit is the last word, or glued to the number ("5km").
        var sourceName = left.removeLast()
        if left.isEmpty, let split = sourceName.firstIndex(where: { !($0.isNumber || $0 == "." || $0 == "-") }) {
            left = [String(sourceName[..<split])]
            sourceName = String(sourceName[split...])
        }
        guard let source = units[sourceName] else {
            throw Failure(message: "I don't know the unit \"\(sourceName)\".")
        }
        guard source.dimension == target.dimension else {
            throw Failure(message: "I can't convert \(source.name) (\(source.dimension)) to \(target.name) (\(target.dimension)).")
        }
        var parser = Parser(tokens: try tokenize(left.joined(separator: " ")))
        let amount = try parser.parse()
        let base = (amount + source.offset) * source.factor
        let result = base / target.factor - target.offset
        return "\(format(amount)) \(source.name) = \(format((result * 1e6).rounded() / 1e6)) \(target.name)"
    }
}
