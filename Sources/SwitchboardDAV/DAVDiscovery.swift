// Finding a person's calendars and address books from one URL (RFC 6764 and RFC 4791/6352):
// the URL itself or its /.well-known/caldav and /.well-known/carddav, then the
// current-user-principal, then its calendar-home-set and addressbook-home-set, then the
// collections in them. A URL that is itself a calendar or address book is taken as it is.

public import Foundation

/// A calendar or an address book on the server.
public struct DAVCollection: Sendable, Hashable {
    public enum Kind: String, Sendable { case calendar, addressBook = "addressbook" }

    public var url: URL
    public var kind: Kind
    public var displayName: String
    /// For a calendar: the components it takes (VEVENT, VTODO); empty when the server did not say.
    public var components: [String]

    /// Whether events can be put in it.
    public var takesEvents: Bool { kind == .calendar && (components.isEmpty || components.contains("VEVENT")) }
}

/// What discovery found.
public struct DAVAccountLayout: Sendable, Hashable {
    public var principal: URL?
    public var calendarHome: URL?
    public var addressBookHome: URL?
    public var collections: [DAVCollection]

    public var calendars: [DAVCollection] { collections.filter { $0.kind == .calendar } }
    public var addressBooks: [DAVCollection] { collections.filter { $0.kind == .addressBook } }
}

public enum DAVDiscovery {
    static let collectionProperties: [DAVName] = [.resourceType, .displayName, .supportedComponents, .ctag]

    /// Discovers the account's layout from its base URL.
    public static func discover(_ client: DAVClient) async throws -> DAVAccountLayout {
        let base = client.base
        // The URL first: it may be a calendar, or the principal, or the server's root.
        var first: DAVError?
        var candidates = [base]
        for path in ["/.well-known/caldav", "/.well-known/carddav"] {
            if let url = URL(string: path, relativeTo: base)?.absoluteURL { candidates.append(url) }
        }
        for candidate in candidates {
            let found: [DAVResource]
            do {
                found = try await client.propfind(candidate, depth: 0, [.currentUserPrincipal, .resourceType, .displayName, .supportedComponents, .calendarHomeSet, .addressBookHomeSet])
            } catch let error as DAVError where [.notFound, .notDAV, .status].contains(error.kind) && candidate != candidates.last {
                first = first ?? error
                continue
            }
            guard let resource = found.first else { continue }
            let at = try client.resolve(resource.href, against: candidate)
            if resource.isA(.calendar) || resource.isA(.addressBook) {
                return DAVAccountLayout(principal: nil, calendarHome: nil, addressBookHome: nil, collections: [collection(resource, at)].compactMap { $0 })
            }
            guard let principalHref = resource.properties[.currentUserPrincipal]?.hrefs.first else { continue }
            let principal = try client.resolve(principalHref, against: candidate)
            return try await layout(principal: principal, client: client)
        }
        throw first ?? DAVError(.notDAV, "\(base.host ?? "the server") does not say whose calendars these are (no current-user-principal); give the URL of the calendar itself")
    }

    static func layout(principal: URL, client: DAVClient) async throws -> DAVAccountLayout {
        let homes = try await client.propfind(principal, depth: 0, [.calendarHomeSet, .addressBookHomeSet]).first
        let calendarHome = try homes?.properties[.calendarHomeSet]?.hrefs.first.map { try client.resolve($0, against: principal) }
        let addressBookHome = try homes?.properties[.addressBookHomeSet]?.hrefs.first.map { try client.resolve($0, against: principal) }
        var collections: [DAVCollection] = []
        for home in Set([calendarHome, addressBookHome].compactMap { $0 }).sorted(by: { $0.absoluteString < $1.absoluteString }) {
            for resource in try await client.propfind(home, depth: 1, collectionProperties) {
                let url = try client.resolve(resource.href, against: home)
                if let found = collection(resource, url), !collections.contains(where: { $0.url == found.url }) { collections.append(found) }
            }
        }
        return DAVAccountLayout(principal: principal, calendarHome: calendarHome, addressBookHome: addressBookHome, collections: collections)
    }

    static func collection(_ resource: DAVResource, _ url: URL) -> DAVCollection? {
        let kind: DAVCollection.Kind
        if resource.isA(.calendar) {
            kind = .calendar
        } else if resource.isA(.addressBook) {
            kind = .addressBook
        } else {
            return nil
        }
        let components = (resource.properties[.supportedComponents]?.children(DAVName(DAVName.caldav, "comp")) ?? []).compactMap { $0.attributes["name"]?.uppercased() }
        let name = resource.text(.displayName).flatMap { $0.isEmpty ? nil : $0 } ?? url.lastPathComponent
        return DAVCollection(url: url, kind: kind, displayName: name, components: components)
    }
}
