// The little XML WebDAV needs: a namespace-aware tree of what a server answered (a multistatus),
// read with Foundation's XMLParser (libxml2; external entities are never resolved), and the
// request bodies written as text with every value escaped.

import Foundation
import FoundationXML

/// A qualified XML name: a namespace and a local name.
public struct DAVName: Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String

    public init(_ namespace: String, _ name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "{\(namespace)}\(name)" }

    public static let dav = "DAV:"
    public static let caldav = "urn:ietf:params:xml:ns:caldav"
    public static let carddav = "urn:ietf:params:xml:ns:carddav"
    public static let calendarServer = "http://calendarserver.org/ns/"

    public static let href = DAVName(dav, "href")
    public static let response = DAVName(dav, "response")
    public static let propstat = DAVName(dav, "propstat")
    public static let prop = DAVName(dav, "prop")
    public static let status = DAVName(dav, "status")
    public static let resourceType = DAVName(dav, "resourcetype")
    public static let displayName = DAVName(dav, "displayname")
    public static let etag = DAVName(dav, "getetag")
    public static let currentUserPrincipal = DAVName(dav, "current-user-principal")
    public static let collection = DAVName(dav, "collection")
    public static let calendarHomeSet = DAVName(caldav, "calendar-home-set")
    public static let calendar = DAVName(caldav, "calendar")
    public static let calendarData = DAVName(caldav, "calendar-data")
    public static let supportedComponents = DAVName(caldav, "supported-calendar-component-set")
    public static let addressBookHomeSet = DAVName(carddav, "addressbook-home-set")
    public static let addressBook = DAVName(carddav, "addressbook")
    public static let addressData = DAVName(carddav, "address-data")
    public static let ctag = DAVName(calendarServer, "getctag")
}

/// One element of a parsed document.
public struct DAVNode: Hashable, Sendable {
    public var name: DAVName
    public var attributes: [String: String]
    public var children: [DAVNode]
    /// The text directly inside it, trimmed.
    public var text: String

    /// The first child with the name.
    public func child(_ name: DAVName) -> DAVNode? { children.first { $0.name == name } }

    /// Every child with the name.
    public func children(_ name: DAVName) -> [DAVNode] { children.filter { $0.name == name } }

    /// The text of every `href` child.
    public var hrefs: [String] { children(.href).map(\.text).filter { !$0.isEmpty } }
}

/// What is wrong with a document.
public struct DAVXMLError: Error, CustomStringConvertible {
    public var description: String
}

public enum DAVXML {
    /// Parses a document into its root element.
    public static func parse(_ bytes: [UInt8]) throws -> DAVNode {
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        let builder = TreeBuilder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            let reason = parser.parserError.map { "\($0.localizedDescription)" } ?? "no root element"
            throw DAVXMLError(description: "not well-formed XML (line \(parser.lineNumber): \(reason))")
        }
        return root
    }

    /// Escapes text for an element's content or an attribute value.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A PROPFIND body asking for the properties.
    public static func propfind(_ properties: [DAVName]) -> String {
        var prefixes: [String: String] = [DAVName.dav: "d"]
        for property in properties where prefixes[property.namespace] == nil { prefixes[property.namespace] = "n\(prefixes.count)" }
        let declarations = prefixes.sorted { $0.value < $1.value }.map { " xmlns:\($0.value)=\"\(escape($0.key))\"" }.joined()
        let props = properties.map { "<\(prefixes[$0.namespace]!):\($0.name)/>" }.joined()
        return "<?xml version=\"1.0\" encoding=\"utf-8\"?><d:propfind\(declarations)><d:prop>\(props)</d:prop></d:propfind>"
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [DAVNode] = []
        var texts: [String] = []
        var root: DAVNode?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append(DAVNode(name: DAVName(namespaceURI ?? "", elementName), attributes: attributes, children: [], text: ""))
            texts.append("")
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !texts.isEmpty else { return }
            texts[texts.count - 1] += string
        }

        func parser(_ parser: XMLParser, foundCDATA block: Data) {
            guard !texts.isEmpty else { return }
            texts[texts.count - 1] += String(decoding: block, as: UTF8.self)
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard var node = stack.popLast(), let text = texts.popLast() else { return }
            node.text = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if stack.isEmpty {
                root = node
            } else {
                stack[stack.count - 1].children.append(node)
            }
        }
    }
}

/// One resource of a multistatus answer: its href and the properties the server found (those
/// in a 200 propstat; the others are absent).
public struct DAVResource: Hashable, Sendable {
    public var href: String
    /// The response's own status, when it gave one instead of propstats (404 for a gone member).
    public var status: Int?
    public var properties: [DAVName: DAVNode]

    /// A property's text ("" when it has none).
    public func text(_ name: DAVName) -> String? { properties[name]?.text }

    /// Whether `resourcetype` holds the name.
    public func isA(_ type: DAVName) -> Bool { properties[.resourceType]?.child(type) != nil }

    /// Reads a multistatus document.
    public static func multistatus(_ root: DAVNode) throws -> [DAVResource] {
        guard root.name == DAVName(DAVName.dav, "multistatus") else {
            throw DAVXMLError(description: "the answer is \(root.name.name), not a WebDAV multistatus")
        }
        return root.children(.response).compactMap { response in
            guard let href = response.hrefs.first else { return nil }
            var properties: [DAVName: DAVNode] = [:]
            for propstat in response.children(.propstat) where statusCode(propstat.child(.status)?.text) == 200 {
                for property in propstat.child(.prop)?.children ?? [] { properties[property.name] = property }
            }
            return DAVResource(href: href, status: statusCode(response.child(.status)?.text), properties: properties)
        }
    }

    /// "HTTP/1.1 200 OK" → 200.
    static func statusCode(_ line: String?) -> Int? {
        guard let line else { return nil }
        let parts = line.split(separator: " ")
        return parts.count >= 2 ? Int(parts[1]) : nil
    }
}
