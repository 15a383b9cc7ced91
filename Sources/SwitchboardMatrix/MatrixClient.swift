// A small client for the parts of the Matrix client-server API the bot uses.
//
// Every response is read as `JSONValue` and picked apart with tolerant accessors, so one odd
// event never fails a whole sync. Errors carry the HTTP status, the Matrix `errcode` and the
// server's wait hint (`Retry-After` header, or the older `retry_after_ms`). The access token
// travels only in the Authorization header and never appears in an error or a log line.

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardModel

/// A failed Matrix request.
public struct MatrixError: Error, CustomStringConvertible, Sendable {
    /// The HTTP status; nil when no response arrived (connection refused, timeout).
    public var status: Int?
    /// The Matrix error code, such as `M_LIMIT_EXCEEDED`.
    public var errcode: String?
    /// The server's message or the transport error, for the operator.
    public var message: String
    /// How long the server asked us to wait, in seconds.
    public var retryAfter: Double?
    /// The error response's JSON body (user-interactive authentication puts its session there).
    var body: JSONValue?

    /// Whether trying again later can succeed: no response, 429, or a server error.
    public var isTransient: Bool {
        guard let status else { return true }
        return status == 429 || status >= 500 || status == 408
    }

    /// Whether the access token was refused.
    public var isUnauthorized: Bool { status == 401 || errcode == "M_UNKNOWN_TOKEN" || errcode == "M_MISSING_TOKEN" }

    public var description: String {
        let code = [status.map { "HTTP \($0)" }, errcode].compactMap { $0 }.joined(separator: " ")
        return code.isEmpty ? message : "\(code): \(message)"
    }
}

/// Requests to one homeserver.
final class MatrixClient: Sendable {
    private let http: HTTPClient
    let homeserver: String
    private let token = Locked<Secret?>(nil)
    /// The largest response body read (a sync of a busy account can be large).
    private let maxBody = 64 * 1024 * 1024

    init(homeserver: String, http: HTTPClient = .shared) {
        self.homeserver = homeserver
        self.http = http
    }

    /// The access token used from now on.
    func setAccessToken(_ value: Secret?) {
        token.withLock { $0 = value }
    }

    var hasAccessToken: Bool { token.withLock { $0 != nil } }

    /// Percent-encodes one path segment or query value (room ids, event ids and user ids
    /// contain `!`, `$`, `:`; filters contain JSON).
    static func segment(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Sends one request and returns the JSON body.
    @discardableResult
    func request(
        _ method: HTTPMethod,
        _ path: String,
        query: [(String, String)] = [],
        body: JSONValue? = nil,
        authenticated: Bool = true,
        timeout: Duration = .seconds(30)
    ) async throws(MatrixError) -> JSONValue {
        var url = homeserver + path
        if !query.isEmpty {
            url += "?" + query.map { key, value in "\(key)=\(Self.segment(value))" }.joined(separator: "&")
        }
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Switchboard")
        if authenticated, let token = token.withLock({ $0 }) {
            request.headers.add(name: "Authorization", value: "Bearer \(token.revealed)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.canonicalText))
        }
        let response: HTTPClientResponse
        let data: ByteBuffer
        do {
            let seconds = Int64(timeout.components.seconds) + 1
            response = try await http.execute(request, timeout: .seconds(seconds))
            data = try await response.body.collect(upTo: maxBody)
        } catch {
            throw MatrixError(status: nil, errcode: nil, message: Self.describe(error), retryAfter: nil)
        }
        let text = String(buffer: data)
        let json = try? JSONValue.parse(text.isEmpty ? "{}" : text)
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            var retryAfter = response.headers.first(name: "Retry-After").flatMap(Double.init)
            if retryAfter == nil, let ms = json?["retry_after_ms"]?.number { retryAfter = ms / 1000 }
            throw MatrixError(
                status: status,
                errcode: json?["errcode"]?.stringValue,
                message: json?["error"]?.stringValue.map { String($0.prefix(300)) } ?? "HTTP \(status)",
                retryAfter: retryAfter,
                body: json
            )
        }
        guard let json else {
            throw MatrixError(status: status, errcode: nil, message: "the response was not JSON", retryAfter: nil)
        }
        return json
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: type(of: error)) + ": \(error)"
    }
}

extension JSONValue {
    /// The number, if this is an integer or a double.
    var number: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }
}
