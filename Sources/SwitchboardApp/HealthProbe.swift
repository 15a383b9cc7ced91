import AsyncHTTPClient
import NIOCore
import NIOHTTP1
public import Foundation

/// `switchboard health`: asks a running gateway whether it is ready, for container health
/// checks on images that have no curl.
public enum HealthProbe {
    /// Whether `url` answers 200 within `timeout`, and a line saying what it answered.
    public static func check(url: String, timeout: TimeInterval) async -> (ok: Bool, line: String) {
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let body = try await response.body.collect(upTo: 64 << 10)
            let text = String(buffer: body)
            return (response.status.code == 200, "\(response.status.code) \(text)")
        } catch {
            return (false, "\(url) did not answer: \(type(of: error))")
        }
    }
}
