// HTTP for the providers: one AsyncHTTPClient, a deadline per call, error bodies read, and
// server-sent events split into events as they arrive.

public import AsyncHTTPClient
public import Foundation
import SwitchboardModel
import NIOCore
import NIOHTTP1

/// Posts JSON to a provider and reads the answer, streamed or whole.
public struct HTTPTransport: Sendable {
    let client: HTTPClient
    /// The longest a whole call may take, from request to the last byte.
    let timeout: TimeInterval
    /// The most bytes of an answer read (a model's answer is small; a runaway stream is cut).
    static let maxBody = 8 * 1024 * 1024

    /// Creates a transport on a client the caller owns and shuts down.
    public init(client: HTTPClient, timeout: TimeInterval) {
        self.client = client
        self.timeout = timeout
    }

    /// What came back.
    enum Body: Sendable {
        /// Server-sent events, in order.
        case events([ServerSentEvent])
        /// A whole JSON body (a server that does not stream).
        case json(Data)
    }

    /// Posts `body` and returns the answer, or throws `ProviderError`.
    func post(url: String, headers: [(String, String)], body: String) async throws -> Body {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "accept", value: "text/event-stream, application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let deadline = timeout
        let prepared = request
        return try await withThrowingTaskGroup(of: Body.self) { group in
            group.addTask { try await self.send(prepared) }
            group.addTask {
                try await Task.sleep(for: .seconds(deadline))
                throw ProviderError.timeout
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func send(_ request: HTTPClientRequest) async throws -> Body {
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(Int64(timeout.rounded(.up))))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw ProviderError.timeout
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ProviderError.transport(Self.describe(error))
        }
        let status = Int(response.status.code)
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        if status != 200 {
            let data = try await Self.collect(response.body, limit: 64 * 1024)
            let (type, message) = Self.errorDetails(data)
            throw ProviderError.status(
                code: status, type: type, message: message ?? "\(response.status.reasonPhrase)",
                retryAfter: Self.retryAfter(response.headers)
            )
        }
        if contentType.hasPrefix("text/event-stream") {
            var parser = ServerSentEventParser()
            var events: [ServerSentEvent] = []
            var total = 0
            do {
                for try await chunk in response.body {
                    total += chunk.readableBytes
                    if total > Self.maxBody { throw ProviderError.malformed("the stream exceeded \(Self.maxBody) bytes") }
                    events += parser.feed(Array(chunk.readableBytesView))
                }
            } catch let error as ProviderError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw ProviderError.transport("the stream broke off: \(Self.describe(error))")
            }
            events += parser.finish()
            return .events(events)
        }
        return .json(try await Self.collect(response.body, limit: Self.maxBody))
    }

    private static func collect(_ body: HTTPClientResponse.Body, limit: Int) async throws -> Data {
        do {
            var buffer = try await body.collect(upTo: limit)
            return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw ProviderError.transport("reading the answer failed: \(describe(error))")
        }
    }

    /// The error type and message of a provider's error body: OpenAI's
    /// `{"error": {"message", "type", "code"}}` and Anthropic's
    /// `{"type": "error", "error": {"type", "message"}}` share this shape.
    static func errorDetails(_ data: Data) -> (type: String?, message: String?) {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            let text = String(decoding: data.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return (nil, text.isEmpty ? nil : text)
        }
        if let error = value["error"] {
            if let message = error.stringValue { return (nil, message) }
            return (error["type"]?.stringValue ?? error["code"]?.stringValue, error["message"]?.stringValue)
        }
        return (value["type"]?.stringValue, value["message"]?.stringValue ?? value["detail"]?.stringValue)
    }

    /// `Retry-After` in seconds or as an HTTP date; `retry-after-ms` where a server sends it.
    static func retryAfter(_ headers: HTTPHeaders) -> TimeInterval? {
        if let ms = headers.first(name: "retry-after-ms").flatMap(Double.init), ms >= 0 { return ms / 1000 }
        guard let value = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(value), seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        if let date = formatter.date(from: value) { return max(0, date.timeIntervalSinceNow) }
        return nil
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: error)
    }
}
