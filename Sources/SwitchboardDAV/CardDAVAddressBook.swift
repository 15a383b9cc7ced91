// One address book on a CardDAV server (RFC 6352): its cards by an addressbook-query REPORT
// (every card with its ETag in one request), and writes that never overwrite a change made
// elsewhere: a new card with `If-None-Match: *`, a change or a delete with `If-Match` and the
// ETag that was read.

public import Foundation

/// An address book collection.
public struct CardDAVAddressBook: Sendable {
    public let client: DAVClient
    public let url: URL

    public init(client: DAVClient, url: URL) {
        self.client = client
        self.url = url
    }

    static let contentType = "text/vcard; charset=utf-8"

    /// Every card object in the address book.
    public func objects() async throws -> [DAVObject] {
        // An empty filter matches every card (RFC 6352 10.5).
        let body = """
            <?xml version="1.0" encoding="utf-8"?><card:addressbook-query xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav">\
            <d:prop><d:getetag/><card:address-data/></d:prop><card:filter/></card:addressbook-query>
            """
        return try await client.report(url, depth: 1, body: body).compactMap { resource in
            guard let data = resource.text(.addressData), !data.isEmpty else { return nil }
            return DAVObject(url: try client.resolve(resource.href, against: url), etag: resource.text(.etag), data: data)
        }
    }

    /// The contacts, each with its object and card; objects that cannot be read are returned
    /// apart, with the reason, so one bad card never hides the rest.
    public func contacts() async throws -> (contacts: [(ContactCard, ICalComponent, DAVObject)], unreadable: [(URL, String)]) {
        var contacts: [(ContactCard, ICalComponent, DAVObject)] = []
        var unreadable: [(URL, String)] = []
        for object in try await objects() {
            do {
                let card = try ICalendar.parse(object.data)
                contacts.append((try VCard.contact(card), card, object))
            } catch {
                unreadable.append((object.url, "\(error)"))
            }
        }
        return (contacts.sorted { $0.0.name.localizedCaseInsensitiveCompare($1.0.name) == .orderedAscending }, unreadable)
    }

    /// Puts a new card on the server under `<uid>.vcf`; never replaces one.
    public func create(_ card: ICalComponent, uid: String) async throws -> DAVObject {
        let data = ICalendar.serialize(card)
        let name = uid.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? UUID().uuidString
        let target = url.appendingPathComponent(name + ".vcf")
        let etag = try await client.put(target, data, contentType: Self.contentType, precondition: .absent)
        return DAVObject(url: target, etag: try await etag.asyncOr { try await client.get(target).etag }, data: data)
    }

    /// Replaces a card, only if it is still the version read.
    public func replace(_ object: DAVObject, with data: String) async throws -> DAVObject {
        let etag = try await client.put(object.url, data, contentType: Self.contentType, precondition: object.etag.map(DAVPrecondition.matches) ?? .none)
        return DAVObject(url: object.url, etag: try await etag.asyncOr { try await client.get(object.url).etag }, data: data)
    }

    /// Puts back a card that was deleted, only if nothing took its place.
    public func restore(_ url: URL, data: String) async throws {
        _ = try await client.put(url, data, contentType: Self.contentType, precondition: .absent)
    }

    /// Deletes a card, only if it is still the version read.
    public func delete(_ object: DAVObject) async throws {
        try await client.delete(object.url, etag: object.etag)
    }
}
