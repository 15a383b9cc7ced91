// One calendar collection on a CalDAV server: events in a time range by a calendar-query
// REPORT (the server filters; a week is one request, not a download of the calendar), and
// writes that never overwrite what changed elsewhere: a create with `If-None-Match: *`, a
// change or a delete with `If-Match` and the ETag that was read.

public import Foundation

/// A calendar object as the server holds it: where, which version, what.
public struct DAVObject: Sendable, Hashable {
    public var url: URL
    public var etag: String?
    public var data: String

    public init(url: URL, etag: String?, data: String) {
        self.url = url
        self.etag = etag
        self.data = data
    }
}

/// A calendar collection.
public struct CalDAVCalendar: Sendable {
    public let client: DAVClient
    public let url: URL

    public init(client: DAVClient, url: URL) {
        self.client = client
        self.url = url
    }

    /// The objects with an event in [from, to), repeating ones included when an occurrence
    /// falls in it (the server expands the rule for the filter).
    public func objects(from: Date, to: Date) async throws -> [DAVObject] {
        let body = """
            <?xml version="1.0" encoding="utf-8"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">\
            <d:prop><d:getetag/><c:calendar-data/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">\
            <c:time-range start="\(CalendarEvent.utc(from))" end="\(CalendarEvent.utc(to))"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>
            """
        return try await client.report(url, depth: 1, body: body).compactMap { resource in
            guard let data = resource.text(.calendarData), !data.isEmpty else { return nil }
            return DAVObject(url: try client.resolve(resource.href, against: url), etag: resource.text(.etag), data: data)
        }
    }

    /// The events in [from, to), each with its object; objects that cannot be read are
    /// returned apart, with the reason, so one bad object never hides the rest.
    public func events(from: Date, to: Date, zone: TimeZone) async throws -> (events: [(CalendarEvent, DAVObject)], unreadable: [(URL, String)]) {
        var events: [(CalendarEvent, DAVObject)] = []
        var unreadable: [(URL, String)] = []
        for object in try await objects(from: from, to: to) {
            do {
                events.append((try CalendarEvent(calendar: try ICalendar.parse(object.data), defaultZone: zone), object))
            } catch {
                unreadable.append((object.url, "\(error)"))
            }
        }
        return (events.sorted { $0.0.start.date < $1.0.start.date }, unreadable)
    }

    /// Puts a new event on the server under `<uid>.ics`; never replaces an object.
    public func create(_ event: CalendarEvent, stamp: Date) async throws -> DAVObject {
        let data = ICalendar.serialize(event.calendarObject(stamp: stamp))
        let name = event.uid.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? UUID().uuidString
        let target = url.appendingPathComponent(name + ".ics")
        let etag = try await client.put(target, data, contentType: "text/calendar; charset=utf-8", precondition: .absent)
        return DAVObject(url: target, etag: try await etag.asyncOr { try await client.get(target).etag }, data: data)
    }

    /// Replaces an object, only if it is still the version read.
    public func replace(_ object: DAVObject, with data: String) async throws -> DAVObject {
        let etag = try await client.put(object.url, data, contentType: "text/calendar; charset=utf-8", precondition: object.etag.map(DAVPrecondition.matches) ?? .none)
        return DAVObject(url: object.url, etag: try await etag.asyncOr { try await client.get(object.url).etag }, data: data)
    }

    /// Deletes an object, only if it is still the version read.
    public func delete(_ object: DAVObject) async throws {
        try await client.delete(object.url, etag: object.etag)
    }
}

extension Optional where Wrapped == String {
    /// The value, or (when the server gave no ETag with a write) the one it gives when asked.
    func asyncOr(_ fetch: () async throws -> String?) async throws -> String? {
        if let self { return self }
        return try await fetch()
    }
}
