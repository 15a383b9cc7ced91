// The stdio transport for an MCP server the gateway starts itself: newline-delimited JSON-RPC
// on the child's stdin and stdout, its stderr logged line by line with the configured secrets
// scrubbed out.
//
// The SDK's own stdio transport polls a non-blocking descriptor every 10 ms; this one reads
// on a thread of its own, so an answer is handed on as soon as its newline arrives. Lines are
// checked before the SDK sees them: a line that is not a JSON-RPC object is logged (its size,
// never its text) and dropped, and a line over the size limit is discarded as it streams in.
// If the start of an oversized answer names its request id, the transport hands the client an
// error for that id at once, so the call fails with a clear sentence instead of timing out.

public import Foundation
public import Logging
public import MCP

#if canImport(Glibc)
import Glibc
#endif

/// An MCP server run as a child process.
public actor ProcessTransport: Transport {
    public nonisolated let logger: Logger
    private let command: String
    private let arguments: [String]
    private let environment: [String: String]
    private let directory: String?
    private let secrets: [String]
    private let maxLineBytes: Int
    private let serverName: String
    private let log: Logger
    private var process: Process?
    private var stdinHandle: FileHandle?
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private let onClose: @Sendable () -> Void

    /// Creates a transport; `connect` starts the process.
    ///
    /// - Parameters:
    ///   - secrets: values to scrub from the server's stderr before it is logged.
    ///   - onClose: called once when the server's stdout ends (it exited, or closed it).
    public init(
        server: String, command: String, arguments: [String], environment: [String: String], directory: String?, secrets: [String],
        maxLineBytes: Int, logger: Logger, onClose: @escaping @Sendable () -> Void
    ) {
        self.serverName = server
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.directory = directory
        self.secrets = secrets
        self.maxLineBytes = maxLineBytes
        self.log = logger
        self.logger = Logger(label: "switchboard.mcp.sdk", factory: { _ in SwiftLogNoOpLogHandler() })
        self.onClose = onClose
        (stream, continuation) = AsyncThrowingStream.makeStream(of: Data.self, bufferingPolicy: .unbounded)
    }

    public func connect() async throws {
        guard process == nil else { return }
        let process = Process()
        // A bare command name is looked up on PATH, as a shell would.
        if command.contains("/") {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [command] + arguments
        }
        process.environment = environment
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw MCPError.internalError("cannot start \(command): \((error as NSError).localizedDescription)")
        }
        self.process = process
        stdinHandle = input.fileHandleForWriting
        let reader = LineReader(
            descriptor: output.fileHandleForReading.fileDescriptor, maxLineBytes: maxLineBytes, continuation: continuation,
            server: serverName, logger: log, onClose: onClose
        )
        let serverLog = StderrReader(descriptor: errors.fileHandleForReading.fileDescriptor, secrets: secrets, server: serverName, logger: log)
        // Blocking reads, each on a thread of its own for as long as the pipe is open.
        Thread.detachNewThread { reader.run() }
        Thread.detachNewThread { serverLog.run() }
        // Keep the pipes' read ends open for the threads; close our copies of the child's ends.
        try? input.fileHandleForReading.close()
        try? output.fileHandleForWriting.close()
        try? errors.fileHandleForWriting.close()
    }

    public func disconnect() async {
        guard let process else { return }
        self.process = nil
        try? stdinHandle?.close()
        stdinHandle = nil
        if process.isRunning {
            process.terminate()
            // A server that ignores SIGTERM gets SIGKILL after two seconds.
            for _ in 0..<20 where process.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        // Finished with an error, never plainly: the SDK client's receive loop asks for the
        // stream again after a plain end, and would spin on a finished one.
        continuation.finish(throwing: MCPError.connectionClosed)
    }

    public func send(_ data: Data) async throws {
        guard let stdinHandle else { throw MCPError.connectionClosed }
        var line = data
        line.append(UInt8(ascii: "\n"))
        do {
            try stdinHandle.write(contentsOf: line)
        } catch {
            throw MCPError.connectionClosed
        }
    }

    public nonisolated func receive() -> AsyncThrowingStream<Data, any Error> { stream }

    /// The child's process id, while it runs (tests kill it to see the restart).
    public var processIdentifier: Int32? { process?.processIdentifier }
}

/// Reads newline-delimited messages from a descriptor until it ends.
final class LineReader: Sendable {
    let descriptor: Int32
    let maxLineBytes: Int
    let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    let server: String
    let logger: Logger
    let onClose: @Sendable () -> Void

    init(
        descriptor: Int32, maxLineBytes: Int, continuation: AsyncThrowingStream<Data, any Error>.Continuation, server: String, logger: Logger,
        onClose: @escaping @Sendable () -> Void
    ) {
        self.descriptor = descriptor
        self.maxLineBytes = maxLineBytes
        self.continuation = continuation
        self.server = server
        self.logger = logger
        self.onClose = onClose
    }

    func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var line: [UInt8] = []
        var discarding = false
        var discarded = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            var start = 0
            for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
                if discarding {
                    discarded += index - start
                    logger.error("an MCP server's message was over the size limit and was dropped", metadata: [
                        "mcp.server": "\(server)", "bytes": "\(discarded)", "limit": "\(maxLineBytes)",
                    ])
                    discarding = false
                } else {
                    line += buffer[start..<index]
                    deliver(line)
                }
                line.removeAll(keepingCapacity: true)
                start = index + 1
            }
            if start < count {
                if discarding {
                    discarded += count - start
                } else {
                    line += buffer[start..<count]
                    if line.count > maxLineBytes {
                        // Answer the call now rather than let it time out, if the id is in sight.
                        if let id = Self.requestID(in: line.prefix(256)) {
                            let error = #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32050,"message":"switchboard: the answer was larger than \#(maxLineBytes) bytes"}}"#
                            continuation.yield(Data(error.utf8))
                        }
                        discarding = true
                        discarded = line.count
                        line.removeAll()
                    }
                }
            }
        }
        close(descriptor)
        // With an error: see `ProcessTransport.disconnect`.
        continuation.finish(throwing: MCPError.connectionClosed)
        onClose()
    }

    private func deliver(_ line: [UInt8]) {
        let trimmed = line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : line
        guard !trimmed.isEmpty else { return }
        let data = Data(trimmed)
        guard Self.isJSONRPC(data) else {
            logger.warning("an MCP server sent a line that is not JSON-RPC; ignored", metadata: [
                "mcp.server": "\(server)", "bytes": "\(trimmed.count)",
            ])
            return
        }
        continuation.yield(data)
    }

    /// Whether the data is a JSON-RPC 2.0 object, or a batch of them.
    static func isJSONRPC(_ data: Data) -> Bool {
        guard let parsed = try? JSONSerialization.jsonObject(with: data) else { return false }
        if let object = parsed as? [String: Any] { return object["jsonrpc"] as? String == "2.0" }
        if let batch = parsed as? [Any] { return !batch.isEmpty && batch.allSatisfy { ($0 as? [String: Any])?["jsonrpc"] as? String == "2.0" } }
        return false
    }

    /// The `"id": …` of a message's first bytes, as JSON text (a number or a string).
    static func requestID(in prefix: some Collection<UInt8>) -> String? {
        let text = String(decoding: prefix, as: UTF8.self)
        guard let match = text.firstMatch(of: /"id"\s*:\s*("(?:[^"\\]|\\.){0,64}"|-?[0-9]{1,19})/) else { return nil }
        return String(match.1)
    }
}

/// Logs what a server writes on stderr, with secrets scrubbed, at debug level.
final class StderrReader: Sendable {
    let descriptor: Int32
    let secrets: [String]
    let server: String
    let logger: Logger

    init(descriptor: Int32, secrets: [String], server: String, logger: Logger) {
        self.descriptor = descriptor
        self.secrets = secrets
        self.server = server
        self.logger = logger
    }

    func run() {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var pending: [UInt8] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            pending += buffer[0..<count]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                emit(pending[..<newline])
                pending.removeSubrange(...newline)
            }
            if pending.count > 4096 {
                emit(pending[...])
                pending.removeAll()
            }
        }
        if !pending.isEmpty { emit(pending[...]) }
        close(descriptor)
    }

    private func emit(_ bytes: ArraySlice<UInt8>) {
        var text = String(decoding: bytes.prefix(2000), as: UTF8.self)
        for secret in secrets { text = text.replacingOccurrences(of: secret, with: "<redacted>") }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        logger.debug("mcp server stderr", metadata: ["mcp.server": "\(server)", "line": "\(text)"])
    }
}
