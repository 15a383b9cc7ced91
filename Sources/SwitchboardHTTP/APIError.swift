// Every error the API returns has one shape, {"error": {"code", "message"}}, with a stable code
// that clients can branch on and a message that says what to do.

import Foundation
import Hummingbird
import Logging
import NIOCore
import SwitchboardModel
import SwitchboardStorage

/// An error a handler returns to the caller.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }
    static func invalid(_ message: String) -> APIError { APIError(.unprocessableContent, "invalid", message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }

    static let unauthenticated: APIError = {
        var error = APIError(.unauthorized, "unauthenticated", "Send an API key as \"Authorization: Bearer KEY\" (make one with `switchboard keys create`).")
        error.headers[.wwwAuthenticate] = "Bearer realm=\"switchboard\""
        return error
    }()

    static let badKey: APIError = {
        var error = APIError(.unauthorized, "invalid_key", "That API key is unknown or revoked.")
        error.headers[.wwwAuthenticate] = "Bearer realm=\"switchboard\", error=\"invalid_token\""
        return error
    }()

    static func senderNotAllowed(_ senders: APISenders) -> APIError {
        APIError(.forbidden, "sender_not_allowed", "This key may speak only as \(senders); make a key for this sender with `switchboard keys create --sender NAME`.")
    }

    static func forbidden(scope: APIScope) -> APIError {
        APIError(.forbidden, "insufficient_scope", "This needs an API key with the \(scope.rawValue) scope.")
    }

    var response: Response {
        var response = JSONResponse.make(status, ["error": ["code": .string(code), "message": .string(message)]])
        for field in headers { response.headers.append(field) }
        return response
    }
}

/// JSON responses.
enum JSONResponse {
    static func make(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: value.canonicalText + "\n")))
    }
}

/// Turns every error into `{"error": {"code", "message"}}` with the right status; a known path
/// asked with the wrong method is 405 with an `Allow` header, not 404.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let methods: MethodTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch is NIOTooManyBytesError {
            return APIError(.contentTooLarge, "too_large", "The body is larger than http.max_body_bytes allows.").response
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .methodNotAllowed: code = "method_not_allowed"
            case .badRequest: code = "bad_request"
            case .contentTooLarge: code = "too_large"
            default: code = "http_\(error.status.code)"
            }
            if error.status == .notFound, let allowed = methods.allowed(for: request.uri.path) {
                var refusal = APIError(.methodNotAllowed, "method_not_allowed", "\(request.uri.path) answers \(allowed.joined(separator: ", ")), not \(request.method).")
                refusal.headers[.allow] = allowed.joined(separator: ", ")
                return refusal.response
            }
            let message = error.body ?? (error.status == .notFound ? "There is nothing at \(request.uri.path)." : error.status.reasonPhrase)
            return APIError(error.status, code, message).response
        } catch let error as any HTTPResponseError {
            return APIError(error.status, "http_\(error.status.code)", error.status.reasonPhrase).response
        } catch let error as StoreError where error.isTransient {
            // Locked: another writer holds the database. I/O: it is unreachable, restarting or
            // out of disk. Nothing of the request was committed either way.
            let locked = error.code == .locked
            var refusal = locked
                ? APIError(.serviceUnavailable, "busy", "The database is busy; try again shortly.")
                : APIError(.serviceUnavailable, "database_unavailable", "The database is unavailable right now; nothing was stored. Try again shortly.")
            refusal.headers[.retryAfter] = locked ? "1" : "5"
            logger.warning(
                locked ? "request refused: database busy" : "request refused: database unavailable",
                metadata: ["http.path": "\(request.uri.path)", "error": "\(error.code)"]
            )
            return refusal.response
        } catch is CancellationError {
            return APIError(.serviceUnavailable, "shutting_down", "The server is shutting down; try again shortly.").response
        } catch {
            logger.error("request failed", metadata: ["http.method": "\(request.method)", "http.path": "\(request.uri.path)", "error": "\(type(of: error))"])
            return APIError(.internalServerError, "internal", "Something went wrong on our side.").response
        }
    }
}

struct DeadlineExceeded: Error {}

/// Runs `body`, throwing `DeadlineExceeded` (and cancelling it) when it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Which methods each route path answers, to tell "wrong method" from "no such path".
final class MethodTable: Sendable {
    private let routes = Locked<[(segments: [String?], methods: [String])]>([])

    /// Sets the routes from `(method, path)` pairs, with `:name` segments as parameters.
    func fill(_ pairs: [(method: String, path: String)]) {
        var byPath: [String: [String]] = [:]
        for pair in pairs { byPath[pair.path, default: []].append(pair.method.uppercased()) }
        let table = byPath.keys.sorted().map { path in
            (path.split(separator: "/").map { $0.hasPrefix(":") ? nil : String($0) }, byPath[path]!.sorted())
        }
        routes.withLock { $0 = table }
    }

    /// The methods a path answers, or nil when no route has it.
    func allowed(for path: String) -> [String]? {
        let parts = path.split(separator: "/")
        var methods = Set<String>()
        for route in routes.withLock({ $0 }) where route.segments.count == parts.count {
            if zip(route.segments, parts).allSatisfy({ $0 == nil || $0! == $1 }) { methods.formUnion(route.methods) }
        }
        return methods.isEmpty ? nil : methods.sorted()
    }
}
