// A WebDAV client for one account: PROPFIND, REPORT, GET, PUT and DELETE with ETag
// preconditions, over AsyncHTTPClient. Every request has a deadline; answers are read up to a
// size limit; redirects are followed only on the account's own origin (scheme, host, port), so
// the credentials never go to another host; and every failure is a `DAVError` whose kind says
// what the person should hear and whose text carries no secret.

public import AsyncHTTPClient
public import Foundation
public import NIOCore
public import NIOHTTP1
public import SwitchboardModel

/// A login for a DAV server: a user name and a password or app token.
public struct DAVCredentials: Sendable, Hashable {
    public var user: String
    public var password: Secret

    public init(user: String, password: Secret) {
        self.user = user
        self.password = password
    }

    var authorization: String {
        "Basic " + Data("\(user):\(password.revealed)".utf8).base64EncodedString()
    }
}

/// A failed DAV request, in kinds that decide what the person is told.
public struct DAVError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// 401: the login was refused; the person must reconnect.
        case unauthorized
        /// 403: not allowed (read-only calendar, no rights).
        case forbidden
        /// 404 / 410.
        case notFound
        /// 412: the object changed on the server since it was read.
        case changed
        /// 507: the server has no room.
        case full
        /// The URL is no CalDAV/CardDAV server (a web page, no multistatus).
        case notDAV
        /// A redirect (or an href) to another origin, not followed.
        case elsewhere
        /// Connection refused, reset, DNS, TLS.
        case unreachable
        /// No answer before the deadline.
        case timeout
        /// The answer was larger than the limit.
        case tooLarge
        /// The answer could not be read (bad XML, bad iCalendar or vCard).
        case malformed
        /// Any other status.
        case status
    }

    public var kind: Kind
    /// What happened, for logs and for the person; never a credential.
    public var detail: String
    /// The HTTP status, when there was one.
    public var status: Int?

    public init(_ kind: Kind, _ detail: String, status: Int? = nil) {
        self.kind = kind
        self.detail = detail
        self.status = status
    }

    public var description: String { detail }

    /// Worth trying again later: the server was away or busy, not refusing.
    public var isTransient: Bool {
        switch kind {
        case .unreachable, .timeout: return true
        case .status: return (status ?? 0) >= 500
        default: return false
        }
    }
}

/// An answer: status, headers and the body (up to the limit).
public struct DAVResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The URL that answered (after redirects on the same origin).
    public var url: URL

    public var text: String { String(decoding: body, as: UTF8.self) }
    public var etag: String? { headers.first(name: "ETag") }
}

/// What a write requires of the object on the server.
public enum DAVPrecondition: Sendable, Hashable {
    /// It must not exist yet (`If-None-Match: *`): a create never overwrites.
    case absent
    /// It must still be this version (`If-Match`): a change made elsewhere is never overwritten.
    case matches(String)
    /// Nothing (only where no version is known).
    case none
}

/// A client for one account on one server.
public struct DAVClient: Sendable {
    public let base: URL
    let credentials: DAVCredentials
    let http: HTTPClient
    /// Each request's deadline.
    public var timeout: TimeAmount
    /// The largest answer read.
    public var maxResponseBytes: Int
    /// Called once per HTTP request sent (redirects included): benchmarks count with it.
    public var onRequest: (@Sendable () -> Void)?

    /// The client for DAV servers: no redirects of its own (this client follows them, on the
    /// same origin only), a 5-second connect timeout.
    public static let sharedHTTPClient = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(5))
        )
    )

    public init(base: URL, credentials: DAVCredentials, http: HTTPClient = DAVClient.sharedHTTPClient, timeout: TimeAmount = .seconds(15), maxResponseBytes: Int = 16 << 20) {
        self.base = base
        self.credentials = credentials
        self.http = http
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }

    /// Whether a URL is on the account's origin (where its credentials may go).
    public func isOwnOrigin(_ url: URL) -> Bool {
        url.scheme?.lowercased() == base.scheme?.lowercased() && url.host?.lowercased() == base.host?.lowercased() && Self.port(url) == Self.port(base)
    }

    static func port(_ url: URL) -> Int { url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80) }

    /// An href from the server as a URL on the account's origin.
    public func resolve(_ href: String, against url: URL? = nil) throws -> URL {
        guard let resolved = URL(string: href, relativeTo: url ?? base)?.absoluteURL else {
            throw DAVError(.malformed, "the server named a resource \"\(href.prefix(200))\" that is not a URL")
        }
        guard isOwnOrigin(resolved) else {
            throw DAVError(.elsewhere, "the server pointed to \(resolved.host ?? "another host"), which is not the account's server; not followed")
        }
        return resolved
    }

    /// Sends one request, following redirects on the account's origin (at most five).
    public func send(_ method: HTTPMethod, _ url: URL, headers extra: [(String, String)] = [], body: String? = nil) async throws -> DAVResponse {
        var target = url
        for _ in 0..<6 {
            guard isOwnOrigin(target) else {
                throw DAVError(.elsewhere, "the server redirected to \(target.host ?? "another host"), which is not the account's server; not followed")
            }
            onRequest?()
            var request = HTTPClientRequest(url: target.absoluteString)
            request.method = method
            request.headers.add(name: "Authorization", value: credentials.authorization)
            request.headers.add(name: "User-Agent", value: "Switchboard")
            for (name, value) in extra { request.headers.add(name: name, value: value) }
            if let body {
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: timeout)
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
                throw DAVError(.timeout, "the server at \(target.host ?? "?") did not answer within \(timeout.nanoseconds / 1_000_000_000) s")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw DAVError(.unreachable, "could not reach \(target.host ?? "?"):\(Self.port(target)) (\(Self.plain(error)))")
            }
            let status = Int(response.status.code)
            if [301, 302, 303, 307, 308].contains(status) {
                _ = try? await response.body.collect(upTo: 64 << 10)
                guard let location = response.headers.first(name: "Location"), let next = URL(string: location, relativeTo: target)?.absoluteURL else {
                    throw DAVError(.malformed, "the server redirected (\(status)) without saying where")
                }
                target = next
                continue
            }
            var collected: [UInt8] = []
            for try await chunk in response.body {
                guard collected.count + chunk.readableBytes <= maxResponseBytes else {
                    throw DAVError(.tooLarge, "the server's answer is larger than \(maxResponseBytes >> 20) MB; not read")
                }
                collected += chunk.readableBytesView
            }
            return DAVResponse(status: status, headers: response.headers, body: collected, url: target)
        }
        throw DAVError(.malformed, "the server redirected more than five times")
    }

    /// The error a failed status means.
    public static func failure(_ response: DAVResponse, doing what: String) -> DAVError {
        let status = response.status
        switch status {
        case 401: return DAVError(.unauthorized, "the server refused the login (401) while \(what)", status: status)
        case 403: return DAVError(.forbidden, "the server does not allow \(what) (403)", status: status)
        case 404, 410: return DAVError(.notFound, "\(response.url.path) is not on the server (\(status))", status: status)
        case 412: return DAVError(.changed, "the object changed on the server since it was read (412)", status: status)
        case 507: return DAVError(.full, "the server has no room left (507) for \(what)", status: status)
        default: return DAVError(.status, "the server answered \(status) while \(what)", status: status)
        }
    }

    /// PROPFIND: the properties of a resource (depth 0) or of it and its members (depth 1).
    public func propfind(_ url: URL, depth: Int, _ properties: [DAVName]) async throws -> [DAVResource] {
        let response = try await send(.PROPFIND, url, headers: [("Depth", String(depth)), ("Content-Type", "application/xml; charset=utf-8")], body: DAVXML.propfind(properties))
        return try multistatus(response, doing: "reading \(url.path)")
    }

    /// REPORT: a calendar or address-book query.
    public func report(_ url: URL, depth: Int, body: String) async throws -> [DAVResource] {
        let response = try await send(.REPORT, url, headers: [("Depth", String(depth)), ("Content-Type", "application/xml; charset=utf-8")], body: body)
        return try multistatus(response, doing: "searching \(url.path)")
    }

    func multistatus(_ response: DAVResponse, doing what: String) throws -> [DAVResource] {
        guard response.status == 207 else {
            if (200..<300).contains(response.status) || [405, 501].contains(response.status) {
                throw DAVError(.notDAV, "\(response.url.host ?? "the server") is not a CalDAV or CardDAV server (it answered \(what) with \(response.status)\(Self.looksLikeHTML(response) ? ", a web page" : ""))", status: response.status)
            }
            throw Self.failure(response, doing: what)
        }
        do {
            return try DAVResource.multistatus(try DAVXML.parse(response.body))
        } catch let error as DAVXMLError {
            let kind: DAVError.Kind = Self.looksLikeHTML(response) ? .notDAV : .malformed
            throw DAVError(kind, "the server's answer to \(what) is not WebDAV XML: \(error.description)", status: response.status)
        }
    }

    static func looksLikeHTML(_ response: DAVResponse) -> Bool {
        response.headers.first(name: "Content-Type")?.lowercased().contains("html") == true
            || response.text.prefix(512).lowercased().contains("<html")
    }

    /// GET: an object and its version.
    public func get(_ url: URL) async throws -> DAVResponse {
        let response = try await send(.GET, url)
        guard response.status == 200 else { throw Self.failure(response, doing: "reading \(url.path)") }
        return response
    }

    /// PUT: writes an object under a precondition; returns its new ETag if the server said it.
    @discardableResult
    public func put(_ url: URL, _ body: String, contentType: String, precondition: DAVPrecondition) async throws -> String? {
        var headers = [("Content-Type", contentType)]
        switch precondition {
        case .absent: headers.append(("If-None-Match", "*"))
        case .matches(let etag): headers.append(("If-Match", etag))
        case .none: break
        }
        let response = try await send(.PUT, url, headers: headers, body: body)
        guard (200..<300).contains(response.status) else {
            // A create that finds the name taken answers 412 to If-None-Match: *.
            if response.status == 412, precondition == .absent {
                throw DAVError(.changed, "an object with that name is already on the server (412)", status: 412)
            }
            throw Self.failure(response, doing: "writing \(url.path)")
        }
        return response.etag
    }

    /// DELETE, only if the object is still the version given.
    public func delete(_ url: URL, etag: String?) async throws {
        let response = try await send(.DELETE, url, headers: etag.map { [("If-Match", $0)] } ?? [])
        guard (200..<300).contains(response.status) else { throw Self.failure(response, doing: "deleting \(url.path)") }
    }

    /// MKCALENDAR: makes a calendar collection for events.
    public func makeCalendar(_ url: URL, name: String) async throws {
        let body = """
            <?xml version="1.0" encoding="utf-8"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop>\
            <d:displayname>\(DAVXML.escape(name))</d:displayname><c:supported-calendar-component-set><c:comp name="VEVENT"/></c:supported-calendar-component-set>\
            </d:prop></d:set></c:mkcalendar>
            """
        let response = try await send(.MKCALENDAR, url, headers: [("Content-Type", "application/xml; charset=utf-8")], body: body)
        guard response.status == 201 else { throw Self.failure(response, doing: "making the calendar \(name)") }
    }

    /// Makes an address book (an extended MKCOL, RFC 5689; servers such as Radicale make none
    /// of their own).
    public func makeAddressBook(_ url: URL, name: String) async throws {
        let body = """
            <?xml version="1.0" encoding="utf-8"?><d:mkcol xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>\
            <d:resourcetype><d:collection/><card:addressbook/></d:resourcetype><d:displayname>\(DAVXML.escape(name))</d:displayname>\
            </d:prop></d:set></d:mkcol>
            """
        let response = try await send(.MKCOL, url, headers: [("Content-Type", "application/xml; charset=utf-8")], body: body)
        guard response.status == 201 else { throw Self.failure(response, doing: "making the address book \(name)") }
    }

    /// An error's words without anything that could be a credential (AHC's errors name only
    /// the failure).
    static func plain(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
