// Where a callback connects, checked when it connects: the callback URL's host is resolved
// for each delivery, every address it resolves to must be public (unless
// `http.callback_allow_private`), and the connection is pinned to the address that was
// checked, so a name that resolves to a public address for the check and to 127.0.0.1 for
// the connection (DNS rebinding) reaches nothing inside. Redirects are never followed.

import SwitchboardModel
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import SwitchboardChannels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A callback's host and the address its connection is pinned to.
struct CallbackTarget: Hashable, Sendable {
    /// The URL's host, as written (without brackets).
    var host: String
    /// The address to connect to; nil when the host is an address itself or private
    /// callbacks are allowed (then the system resolves as usual).
    var pinned: String?

    /// Checks the URL's host now.
    ///
    /// - Throws: `SwitchboardChannels.ChannelError` (`.rejected`, not transient) when a resolved address is
    ///   loopback, private or link-local, or the name does not resolve.
    static func check(_ url: String, allowPrivate: Bool, resolve: @Sendable (String) async throws -> [String] = CallbackTarget.resolve) async throws -> CallbackTarget {
        guard let components = URLComponents(string: url), var host = components.host, !host.isEmpty else {
            throw SwitchboardChannels.ChannelError(.rejected, "the callback URL has no host", isTransient: false)
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if allowPrivate { return CallbackTarget(host: host, pinned: nil) }
        if Self.isAddress(host) {
            guard !CallbackHost.isInternal(host) else { throw refused(host) }
            return CallbackTarget(host: host, pinned: nil)
        }
        if CallbackHost.isInternal(host) { throw refused(host) }
        guard let addresses = try? await resolve(host), let first = addresses.first else {
            throw SwitchboardChannels.ChannelError(.unreachable, "the callback host \(host) does not resolve", isTransient: true)
        }
        // Every address: a client would try them in turn, and one inside is one too many (as is
        // one that cannot be read; a zoned one, fe80::1%eth0, counts as inside).
        if let inside = addresses.first(where: { CallbackHost.isInternal($0) || !isAddress($0) }) {
            throw refused(host, address: inside)
        }
        return CallbackTarget(host: host, pinned: first)
    }

    static func refused(_ host: String, address: String? = nil) -> SwitchboardChannels.ChannelError {
        let resolved = address.map { " resolves to \($0), which" } ?? ""
        return SwitchboardChannels.ChannelError(
            .rejected,
            "the callback host \(host)\(resolved) is a loopback, private or link-local address; callbacks go only to public addresses unless http.callback_allow_private is on",
            isTransient: false
        )
    }

    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// Every address a name resolves to (getaddrinfo, on a thread of NIO's pool, not on a
    /// task's thread).
    @Sendable static func resolve(_ host: String) async throws -> [String] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, nil, &hints, &list)
            guard status == 0, let list else { throw SwitchboardChannels.ChannelError(.unreachable, "getaddrinfo failed (\(status))", isTransient: true) }
            defer { freeaddrinfo(list) }
            var addresses: [String] = []
            var entry: UnsafeMutablePointer<addrinfo>? = list
            while let current = entry {
                var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if let address = current.pointee.ai_addr,
                    getnameinfo(address, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                    let text = String(cString: buffer)
                    if !addresses.contains(text) { addresses.append(text) }
                }
                entry = current.pointee.ai_next
            }
            return addresses
        }
    }
}

/// HTTP clients for callbacks, one per pinned target, so connections to a receiver are reused
/// while its address stays the same. At most `limit`; the oldest is shut down past that.
final class CallbackClients: Sendable {
    private struct State {
        var clients: [CallbackTarget: HTTPClient] = [:]
        var order: [CallbackTarget] = []
        var closed = false
    }

    private let state = Locked(State())
    private let limit: Int

    init(limit: Int = 32) {
        self.limit = limit
    }

    func client(for target: CallbackTarget) throws -> HTTPClient {
        let (client, evicted) = try state.withLock { state -> (HTTPClient, HTTPClient?) in
            if state.closed { throw SwitchboardChannels.ChannelError(.unavailable, "the api channel has stopped", isTransient: true) }
            if let client = state.clients[target] { return (client, nil) }
            var configuration = HTTPClient.Configuration()
            // A callback URL is the caller's, not a redirect's: never follow one somewhere else.
            configuration.redirectConfiguration = .disallow
            configuration.timeout = .init(connect: .seconds(5), read: .seconds(15))
            if let pinned = target.pinned { configuration.dnsOverride = [target.host: pinned] }
            let made = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            state.clients[target] = made
            state.order.append(target)
            var evicted: HTTPClient?
            if state.order.count > limit {
                let oldest = state.order.removeFirst()
                evicted = state.clients.removeValue(forKey: oldest)
            }
            return (made, evicted)
        }
        if let evicted { Task { try? await evicted.shutdown() } }
        return client
    }

    /// Shuts every client down; later requests are refused.
    func shutdown() async {
        let all = state.withLock { state -> [HTTPClient] in
            state.closed = true
            defer { state.clients = [:]; state.order = [] }
            return Array(state.clients.values)
        }
        for client in all { try? await client.shutdown() }
    }
}
