// iCalendar (RFC 5545) as a tree of components and properties: read from what a server holds
// (folded lines, quoted parameters, unknown properties and components all kept), changed in
// place, and written back (CRLF, folded at 75 octets). Keeping the tree is what lets a move
// change DTSTART and DTEND and leave alarms, attendees and a phone's own X- properties as they
// were. vCard (RFC 6350) shares the syntax and this reader.

public import Foundation

/// A property: `NAME;PARAM=VALUE:value`. The value is kept as written (escaped).
public struct ICalProperty: Sendable, Hashable {
    public var name: String
    public var parameters: [(name: String, values: [String])]
    public var value: String

    public init(_ name: String, _ value: String, parameters: [(name: String, values: [String])] = []) {
        // Names are case-insensitive and kept upper-case; a vCard group prefix ("item1.") is
        // kept as written, as the client that wrote it expects it back.
        if let dot = name.lastIndex(of: ".") {
            self.name = String(name[...dot]) + name[name.index(after: dot)...].uppercased()
        } else {
            self.name = name.uppercased()
        }
        self.value = value
        self.parameters = parameters
    }

    /// A TEXT property from plain text, escaped.
    public init(text name: String, _ text: String) {
        self.init(name, ICalendar.escapeText(text))
    }

    /// The first value of a parameter.
    public func parameter(_ name: String) -> String? {
        parameters.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.values.first
    }

    /// The value as text, unescaped.
    public var text: String { ICalendar.unescapeText(value) }

    public static func == (a: ICalProperty, b: ICalProperty) -> Bool {
        a.name == b.name && a.value == b.value && a.parameters.map(\.name) == b.parameters.map(\.name) && a.parameters.map(\.values) == b.parameters.map(\.values)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(value)
    }
}

/// A component: `BEGIN:NAME` … `END:NAME`, with properties and components inside.
public struct ICalComponent: Sendable, Hashable {
    public var name: String
    public var properties: [ICalProperty]
    public var components: [ICalComponent]

    public init(_ name: String, properties: [ICalProperty] = [], components: [ICalComponent] = []) {
        self.name = name.uppercased()
        self.properties = properties
        self.components = components
    }

    /// The first property with the name.
    public func property(_ name: String) -> ICalProperty? { properties.first { $0.name == name } }

    /// Every property with the name.
    public func properties(_ name: String) -> [ICalProperty] { properties.filter { $0.name == name } }

    /// Replaces every property with the name by `property` (or removes them when nil), where
    /// the first one was, so the order of the rest is kept.
    public mutating func set(_ name: String, _ property: ICalProperty?) {
        let index = properties.firstIndex { $0.name == name }
        properties.removeAll { $0.name == name }
        guard let property else { return }
        properties.insert(property, at: min(index ?? properties.count, properties.count))
    }

    /// The sub-components with the name.
    public func components(_ name: String) -> [ICalComponent] { components.filter { $0.name == name } }
}

/// What is wrong with a calendar or contact object.
public struct ICalError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

public enum ICalendar {
    /// The largest object read (a calendar object is rarely over a few kilobytes; 5 MB with an
    /// attachment inline is read).
    public static let maxBytes = 8 << 20

    /// Reads an object: the outermost component (VCALENDAR, VCARD).
    public static func parse(_ text: String) throws -> ICalComponent {
        let all = try parseAll(text)
        guard all.count == 1, let first = all.first else {
            throw ICalError(description: all.isEmpty ? "no BEGIN line" : "\(all.count) objects where one was expected")
        }
        return first
    }

    /// Reads every top-level component (a vCard file may hold several).
    public static func parseAll(_ text: String) throws -> [ICalComponent] {
        guard text.utf8.count <= maxBytes else { throw ICalError(description: "the object is larger than \(maxBytes >> 20) MB") }
        var stack: [ICalComponent] = []
        var done: [ICalComponent] = []
        for (number, line) in unfold(text).enumerated() where !line.isEmpty {
            let property = try contentLine(line, number: number + 1)
            switch property.name {
            case "BEGIN":
                stack.append(ICalComponent(property.value))
            case "END":
                guard let last = stack.popLast(), last.name == property.value.uppercased() else {
                    throw ICalError(description: "line \(number + 1): END:\(property.value) does not close \(stack.last?.name ?? "anything")")
                }
                if stack.isEmpty { done.append(last) } else { stack[stack.count - 1].components.append(last) }
            default:
                guard !stack.isEmpty else { throw ICalError(description: "line \(number + 1): \(property.name) outside any component") }
                stack[stack.count - 1].properties.append(property)
            }
        }
        guard stack.isEmpty else { throw ICalError(description: "\(stack.last!.name) is never closed") }
        return done
    }

    /// Joins folded lines (a line break followed by a space or tab continues the line); CRLF
    /// or bare LF.
    static func unfold(_ text: String) -> [String] {
        var lines: [String] = []
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if let first = line.first, first == " " || first == "\t", !lines.isEmpty {
                lines[lines.count - 1] += line.dropFirst()
            } else {
                lines.append(String(line))
            }
        }
        return lines
    }

    /// `NAME;P1=a,"b;c";P2=d:value`.
    static func contentLine(_ line: String, number: Int) throws -> ICalProperty {
        var name = ""
        var parameters: [(name: String, values: [String])] = []
        var index = line.startIndex
        func fail(_ why: String) -> ICalError { ICalError(description: "line \(number): \(why): \(line.prefix(80))") }
        while index < line.endIndex, line[index] != ";", line[index] != ":" {
            name.append(line[index])
            index = line.index(after: index)
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else { throw fail("not a property") }
        while index < line.endIndex, line[index] == ";" {
            index = line.index(after: index)
            var parameter = ""
            while index < line.endIndex, line[index] != "=" {
                parameter.append(line[index])
                index = line.index(after: index)
            }
            guard index < line.endIndex else { throw fail("a parameter without a value") }
            index = line.index(after: index)
            var values: [String] = []
            var value = ""
            var quoted = false
            while index < line.endIndex {
                let character = line[index]
                if character == "\"" {
                    quoted.toggle()
                } else if !quoted, character == "," {
                    values.append(value)
                    value = ""
                } else if !quoted, character == ";" || character == ":" {
                    break
                } else {
                    value.append(character)
                }
                index = line.index(after: index)
            }
            guard !quoted else { throw fail("a quote that is never closed") }
            values.append(value)
            parameters.append((parameter.uppercased(), values))
        }
        guard index < line.endIndex, line[index] == ":" else { throw fail("no ':' before the value") }
        // A group prefix ("item1.EMAIL", vCard) stays part of the name, as written.
        return ICalProperty(name, String(line[line.index(after: index)...]), parameters: parameters)
    }

    /// Writes an object: CRLF line ends, lines folded at 75 octets (never inside a character).
    public static func serialize(_ component: ICalComponent) -> String {
        var out = ""
        write(component, into: &out)
        return out
    }

    static func write(_ component: ICalComponent, into out: inout String) {
        out += "BEGIN:\(component.name)\r\n"
        for property in component.properties { out += fold(line(property)) }
        for child in component.components { write(child, into: &out) }
        out += "END:\(component.name)\r\n"
    }

    static func line(_ property: ICalProperty) -> String {
        var text = property.name
        for (name, values) in property.parameters {
            text += ";" + name + "=" + values.map { value in
                value.contains(where: { ";:,".contains($0) }) ? "\"" + value.filter { $0 != "\"" } + "\"" : value
            }.joined(separator: ",")
        }
        return text + ":" + property.value
    }

    static func fold(_ line: String) -> String {
        var out = ""
        var count = 0
        for scalar in line.unicodeScalars {
            let width = String(scalar).utf8.count
            if count + width > 75 {
                out += "\r\n "
                count = 1
            }
            out.unicodeScalars.append(scalar)
            count += width
        }
        return out + "\r\n"
    }

    /// TEXT escaping: backslash, semicolon, comma, newline.
    public static func escapeText(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case ";": out += "\\;"
            case ",": out += "\\,"
            case "\n", "\r\n": out += "\\n"
            case "\r": break
            default: out.append(character)
            }
        }
        return out
    }

    public static func unescapeText(_ text: String) -> String {
        var out = ""
        var escaping = false
        for character in text {
            if escaping {
                out.append(character == "n" || character == "N" ? "\n" : character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }
}
