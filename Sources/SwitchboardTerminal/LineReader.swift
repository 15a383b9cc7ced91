#if canImport(Glibc)
import SwitchboardModel
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Reads lines of raw bytes from a file descriptor without blocking Swift's cooperative
/// threads: each read runs on a private serial dispatch queue. One line is read per call, so
/// the reader never runs ahead of the consumer.
final class LineReader: @unchecked Sendable {  // buffer and atEOF confined to `queue`; stopped is Locked
    private let fd: Int32
    private let queue = DispatchQueue(label: "switchboard.terminal.stdin")
    private var buffer: [UInt8] = []
    private var atEOF = false
    private let stopped = Locked(false)
    /// Lines longer than this are cut into pieces rather than held in memory without bound.
    private let maxLine: Int

    init(fd: Int32, maxLine: Int = 8 << 20) {
        self.fd = fd
        self.maxLine = maxLine
    }

    /// The next line without its newline (and a trailing CR), or nil at end of input or
    /// after `stop()`.
    func next() async -> [UInt8]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                queue.async {
                    continuation.resume(returning: self.readLine())
                }
            }
        } onCancel: {
            stop()
        }
    }

    /// Makes the pending and every later `next()` return nil within a fraction of a second.
    func stop() {
        stopped.withLock { $0 = true }
    }

    private func readLine() -> [UInt8]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return line
            }
            if buffer.count >= maxLine {
                let line = Array(buffer[..<maxLine])
                buffer.removeSubrange(..<maxLine)
                return line
            }
            if atEOF {
                guard !buffer.isEmpty else { return nil }
                let line = buffer
                buffer = []
                return line
            }
            if stopped.withLock({ $0 }) { return nil }
            // Wait for input in short slices, so stop() is noticed without input arriving.
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if ready == 0 || (ready < 0 && errno == EINTR) { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
            } else if count == 0 {
                atEOF = true
            } else if errno != EINTR {
                atEOF = true
            }
        }
    }
}
