// A TCP proxy that the fault matrix puts between the gateway and one dependency (Synapse,
// Dovecot, the SMTP server, PostgreSQL, a model server). In normal service it forwards bytes
// both ways; a fault changes what it does to every connection, open or new, until it is lifted:
//
//   drop    every connection is closed (FIN) at once, and new ones right after they connect
//   reset   each connection's next answer from the server is cut halfway, then both sides get
//           a TCP reset
//   stall   nothing is forwarded either way (connections stay open and silent); when the fault
//           is lifted, the held connections are reset, as a load balancer that gave up would
//   slow    every chunk waits, and goes on in small pieces with pauses between them
//
// Plain sockets and one thread per connection: the proxy must not share an event loop or a
// cooperative pool with the code under test, and must be able to send a reset (SO_LINGER 0).

import SwitchboardModel
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the proxy does to the connections through it.
enum Fault: String, Sendable, CaseIterable {
    case drop, reset, stall, slow
}

final class FaultProxy: Sendable {
    /// Where the gateway connects.
    let port: Int
    /// Where the dependency listens.
    let upstreamPort: Int

    private struct State {
        var fault: Fault?
        var stopped = false
        var connections = 0
        /// How many times each fault acted on a connection (or, for `slow`, on a chunk).
        var injected: [Fault: Int] = [:]
    }

    private let state = Locked(State())
    private let listener: Int32

    /// Listens on a free loopback port and forwards to `upstreamPort` on 127.0.0.1.
    init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError(description: "fault proxy: socket() failed") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw HarnessError(description: "fault proxy: bind() or listen() failed")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    deinit {
        stop()
        close(listener)
    }

    /// Starts a fault (nil: normal service again).
    func set(_ fault: Fault?) {
        state.withLock { $0.fault = fault }
    }

    /// How many times `fault` acted since the proxy started.
    func injected(_ fault: Fault) -> Int {
        state.withLock { $0.injected[fault, default: 0] }
    }

    /// Connections accepted since the proxy started.
    var connections: Int { state.withLock { $0.connections } }

    /// Ends every connection and stops accepting.
    func stop() {
        state.withLock { $0.stopped = true }
    }

    private func count(_ fault: Fault) {
        state.withLock { $0.injected[fault, default: 0] += 1 }
    }

    private var current: (fault: Fault?, stopped: Bool) {
        state.withLock { ($0.fault, $0.stopped) }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while !current.stopped {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            state.withLock { $0.connections += 1 }
            Thread.detachNewThread { [self] in forward(client) }
        }
    }

    /// Pumps one connection until either side ends it or a fault does.
    private func forward(_ client: Int32) {
        let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: upstreamPort)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard upstream >= 0, connected == 0 else {
            // The dependency itself is down: the gateway sees a reset, as it would connecting
            // to it directly.
            Self.reset(client)
            if upstream >= 0 { close(upstream) }
            return
        }
        var held = false
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let (fault, stopped) = current
            if stopped {
                Self.reset(client, upstream)
                return
            }
            switch fault {
            case .drop:
                count(.drop)
                shutdown(client, Int32(SHUT_RDWR))
                close(client)
                close(upstream)
                return
            case .stall:
                if !held { count(.stall) }
                held = true
                usleep(50_000)
                continue
            default:
                if held {
                    Self.reset(client, upstream)
                    return
                }
            }
            var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: upstream, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 100) > 0 else { continue }
            for (index, entry) in fds.enumerated() where entry.revents != 0 {
                let from = index == 0 ? client : upstream
                let to = index == 0 ? upstream : client
                let read = recv(from, &buffer, buffer.count, 0)
                guard read > 0 else {
                    close(client)
                    close(upstream)
                    return
                }
                let chunk = Array(buffer[0..<read])
                // The fault may have changed while this side waited.
                switch current.fault {
                case .reset where index == 1:
                    count(.reset)
                    Self.send(chunk[0..<max(1, read / 2)], to: to)
                    Self.reset(client, upstream)
                    return
                case .slow:
                    count(.slow)
                    usleep(200_000)
                    var offset = 0
                    while offset < chunk.count {
                        let end = min(chunk.count, offset + 512)
                        guard Self.send(chunk[offset..<end], to: to) else { break }
                        offset = end
                        usleep(20_000)
                    }
                default:
                    guard Self.send(chunk[...], to: to) else {
                        close(client)
                        close(upstream)
                        return
                    }
                }
            }
        }
    }

    @discardableResult
    private static func send(_ bytes: ArraySlice<UInt8>, to fd: Int32) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    /// Closes with a TCP reset rather than a FIN.
    private static func reset(_ fds: Int32...) {
        for fd in fds {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(fd)
        }
    }
}
