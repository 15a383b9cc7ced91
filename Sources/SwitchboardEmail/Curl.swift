// libcurl from Swift: one easy handle per connection, driven on its own serial queue.
//
// `curl_easy_perform` blocks, so it never runs on Swift's cooperative pool (two threads on a
// two-core machine): each `CurlConnection` owns a dispatch queue and its handle is touched only
// there. The handle keeps its connection (and IMAP login) between transfers. Cancelling the
// calling task aborts a transfer within about a second through the progress callback.
//
// Credentials go in CURLOPT_USERNAME / CURLOPT_PASSWORD, never in a URL, so they cannot reach
// an error message that quotes one.

import CCurl
import Dispatch
import Foundation
import ServiceLifecycle
import Synchronization

/// A libcurl transfer that failed.
public struct CurlFailure: Error, CustomStringConvertible, Sendable {
    /// The `CURLcode`.
    public var code: Int
    /// libcurl's explanation (its error buffer, else `curl_easy_strerror`).
    public var message: String
    /// The server's last numeric reply (SMTP), 0 when there was none.
    public var responseCode: Int

    public var description: String {
        responseCode > 0 ? "\(message) (curl \(code), server replied \(responseCode))" : "\(message) (curl \(code))"
    }

    /// The far end could not be reached, or the connection broke or timed out.
    public var isConnectionProblem: Bool {
        [
            Int(CURLE_COULDNT_RESOLVE_HOST.rawValue), Int(CURLE_COULDNT_CONNECT.rawValue), Int(CURLE_OPERATION_TIMEDOUT.rawValue),
            Int(CURLE_SEND_ERROR.rawValue), Int(CURLE_RECV_ERROR.rawValue), Int(CURLE_GOT_NOTHING.rawValue),
            Int(CURLE_SSL_CONNECT_ERROR.rawValue), Int(CURLE_PARTIAL_FILE.rawValue), Int(CURLE_WEIRD_SERVER_REPLY.rawValue),
        ].contains(code)
    }

    /// The server refused the credentials.
    public var isLoginDenied: Bool { code == Int(CURLE_LOGIN_DENIED.rawValue) }

    /// A callback stopped the transfer (cancellation, a size limit, IDLE seeing new mail).
    public var isAbortedByUs: Bool { code == Int(CURLE_ABORTED_BY_CALLBACK.rawValue) || code == Int(CURLE_WRITE_ERROR.rawValue) }
}

/// TLS for a plain-text scheme (imap://, smtp://).
public enum CurlTLS: Sendable, Hashable {
    /// Never upgrade.
    case none
    /// Upgrade with STARTTLS when the server offers it.
    case opportunistic
    /// Require STARTTLS; fail otherwise.
    case required
}

/// One transfer's settings.
struct CurlRequest {
    var url: String
    var username: String?
    var password: String?
    var tls: CurlTLS = .none
    /// An IMAP command sent as is (CURLOPT_CUSTOMREQUEST).
    var customRequest: String?
    /// SMTP: the envelope sender and recipients; the upload is the message.
    var mailFrom: String?
    var mailRecipients: [String] = []
    var upload: [UInt8]?
    /// The whole transfer's limit.
    var timeout: Duration = .seconds(60)
    /// Stops a transfer whose response grows past this.
    var maxResponseBytes = 64 << 20
    /// A new connection for this transfer, closed after it: for a response whose end libcurl
    /// may misjudge (a custom command whose literal contains a line that looks like the tag),
    /// so nothing left in the socket can be read as the answer to the next command.
    var isolated = false
    /// Runs even when the calling task is cancelled or the service is shutting down: for a
    /// short clean-up that must not be skipped.
    var ignoresCancellation = false
    /// Called with each response line that libcurl passes as a header (IMAP untagged lines and
    /// a custom command's literals); returning false ends the transfer with CURLE_WRITE_ERROR.
    var onHeaderLine: ((ArraySlice<UInt8>) -> Bool)?
}

/// What a transfer returned.
struct CurlResponse {
    /// What libcurl wrote as the body.
    var body: [UInt8] = []
    /// What libcurl passed as headers: for an IMAP custom command, every untagged line and
    /// literal, in order.
    var headers: [UInt8] = []
    /// The server's last numeric reply, 0 when there was none.
    var responseCode = 0
}

/// A flag a task's cancellation sets and a transfer's progress callback reads; and one that a
/// graceful shutdown sets, which keeps a transfer still waiting for the connection from starting.
final class CurlCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    func cancel() { flag.store(true, ordering: .relaxed) }
    var isCancelled: Bool { flag.load(ordering: .relaxed) }
    func shutDown() { stopping.store(true, ordering: .relaxed) }
    var isShuttingDown: Bool { stopping.load(ordering: .relaxed) }
}

/// The state callbacks see, reached through the userdata pointer.
private final class TransferState {
    var response = CurlResponse()
    var upload: [UInt8] = []
    var uploadOffset = 0
    var maxResponseBytes = 0
    var onHeaderLine: ((ArraySlice<UInt8>) -> Bool)?
    var stoppedByHeaderHook = false
    var cancellation: CurlCancellation?
}

private let writeCallback: sb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    guard state.response.body.count + state.response.headers.count + length <= state.maxResponseBytes else { return 0 }
    state.response.body.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
    return length
}

private let headerCallback: sb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    guard state.response.body.count + state.response.headers.count + length <= state.maxResponseBytes else { return 0 }
    let start = state.response.headers.count
    state.response.headers.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
    if let hook = state.onHeaderLine, !hook(state.response.headers[start...]) {
        state.stoppedByHeaderHook = true
        return 0
    }
    return length
}

private let readCallback: sb_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
    let length = min(size * count, state.upload.count - state.uploadOffset)
    guard length > 0 else { return 0 }
    state.upload.withUnsafeBytes { bytes in
        UnsafeMutableRawPointer(buffer).copyMemory(from: bytes.baseAddress! + state.uploadOffset, byteCount: length)
    }
    state.uploadOffset += length
    return length
}

private let progressCallback: sb_curl_progress_callback = { userdata, _, _, _, _ in
    guard let userdata else { return 0 }
    let state = Unmanaged<TransferState>.fromOpaque(userdata).takeUnretainedValue()
    return state.cancellation?.isCancelled == true ? 1 : 0
}

/// libcurl's process-wide initialisation, done once before the first handle.
private let curlGlobalInit: Void = {
    _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
}()

/// One easy handle (and so one reusable connection) with its own queue.
final class CurlConnection: @unchecked Sendable {
    // The handle and error buffer are touched only on `queue`.
    private let queue: DispatchQueue
    /// Made on first use (on the queue): a failure is then a transfer's error, not a crash.
    private var handle: UnsafeMutableRawPointer?
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init(label: String) {
        _ = curlGlobalInit
        queue = DispatchQueue(label: "switchboard.curl.\(label)")
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        if let handle { curl_easy_cleanup(handle) }
        errorBuffer.deallocate()
    }

    /// Runs one transfer on the connection's queue. Cancelling the task aborts it; a graceful
    /// shutdown lets a running transfer finish but keeps a queued one from starting (with
    /// `CancellationError`), so shutdown never waits for a line of them against a slow server.
    /// A request that `ignoresCancellation` (a short clean-up) runs either way.
    func perform(_ request: CurlRequest) async throws -> CurlResponse {
        let cancellation = CurlCancellation()
        let box = RequestBox(request)
        if request.ignoresCancellation {
            return try await withCheckedThrowingContinuation { continuation in
                queue.async {
                    continuation.resume(with: Result { try self.performNow(box.request, cancellation: cancellation) })
                }
            }
        }
        return try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    queue.async {
                        continuation.resume(with: Result { try self.performNow(box.request, cancellation: cancellation) })
                    }
                }
            } onCancel: {
                cancellation.cancel()
            }
        } onGracefulShutdown: {
            cancellation.shutDown()
        }
    }

    /// Carries a request (its hook is not Sendable) to the queue; used there only.
    private final class RequestBox: @unchecked Sendable {
        let request: CurlRequest
        init(_ request: CurlRequest) { self.request = request }
    }

    private func performNow(_ request: CurlRequest, cancellation: CurlCancellation) throws -> CurlResponse {
        if cancellation.isCancelled || cancellation.isShuttingDown { throw CancellationError() }
        if handle == nil { handle = curl_easy_init() }
        guard let handle else {
            throw CurlFailure(code: Int(CURLE_OUT_OF_MEMORY.rawValue), message: "libcurl could not make a handle", responseCode: 0)
        }
        let state = TransferState()
        state.maxResponseBytes = request.maxResponseBytes
        state.onHeaderLine = request.onHeaderLine
        state.cancellation = cancellation
        state.upload = request.upload ?? []
        let userdata = Unmanaged.passUnretained(state).toOpaque()
        var recipients: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(recipients) }

        // Reset what a previous transfer may have set, keeping the connection.
        curl_easy_reset(handle)
        errorBuffer[0] = 0
        setString(CURLOPT_URL, request.url)
        setPointer(CURLOPT_ERRORBUFFER, errorBuffer)
        setLong(CURLOPT_NOSIGNAL, 1)
        setLong(CURLOPT_CONNECTTIMEOUT_MS, 15_000)
        setLong(CURLOPT_TIMEOUT_MS, Int(request.timeout.components.seconds * 1000 + request.timeout.components.attoseconds / 1_000_000_000_000_000))
        // A stalled connection fails instead of hanging: under 1 byte/s for 60 s.
        setLong(CURLOPT_LOW_SPEED_LIMIT, 1)
        setLong(CURLOPT_LOW_SPEED_TIME, 60)
        // Room for long lines: libcurl cuts IMAP response lines longer than half of this.
        setLong(CURLOPT_BUFFERSIZE, 1 << 20)
        setLong(CURLOPT_TCP_KEEPALIVE, 1)
        if request.isolated {
            setLong(CURLOPT_FRESH_CONNECT, 1)
            setLong(CURLOPT_FORBID_REUSE, 1)
        }
        if let username = request.username { setString(CURLOPT_USERNAME, username) }
        if let password = request.password { setString(CURLOPT_PASSWORD, password) }
        switch request.tls {
        case .none: setLong(CURLOPT_USE_SSL, Int(CURLUSESSL_NONE.rawValue))
        case .opportunistic: setLong(CURLOPT_USE_SSL, Int(CURLUSESSL_TRY.rawValue))
        case .required: setLong(CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue))
        }
        if let custom = request.customRequest { setString(CURLOPT_CUSTOMREQUEST, custom) }
        if let from = request.mailFrom { setString(CURLOPT_MAIL_FROM, from) }
        for recipient in request.mailRecipients {
            recipients = curl_slist_append(recipients, recipient)
        }
        if let recipients { _ = sb_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, recipients) }
        if request.upload != nil {
            setLong(CURLOPT_UPLOAD, 1)
            _ = sb_curl_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(state.upload.count))
            _ = sb_curl_setopt_data_callback(handle, CURLOPT_READFUNCTION, readCallback)
            setPointer(CURLOPT_READDATA, userdata)
        }
        _ = sb_curl_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, writeCallback)
        setPointer(CURLOPT_WRITEDATA, userdata)
        _ = sb_curl_setopt_data_callback(handle, CURLOPT_HEADERFUNCTION, headerCallback)
        setPointer(CURLOPT_HEADERDATA, userdata)
        setLong(CURLOPT_NOPROGRESS, 0)
        _ = sb_curl_setopt_progress_callback(handle, progressCallback)
        setPointer(CURLOPT_XFERINFODATA, userdata)

        let code = withExtendedLifetime(state) { curl_easy_perform(handle) }
        var responseCode = 0
        _ = sb_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &responseCode)
        state.response.responseCode = responseCode
        if code == CURLE_OK { return state.response }
        if cancellation.isCancelled { throw CancellationError() }
        if state.stoppedByHeaderHook { throw CurlStoppedByHook(response: state.response) }
        let detail = String(cString: errorBuffer)
        let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        throw CurlFailure(code: Int(code.rawValue), message: message.trimmingCharacters(in: .whitespacesAndNewlines), responseCode: responseCode)
    }

    private func setLong(_ option: CURLoption, _ value: Int) {
        _ = sb_curl_setopt_long(handle!, option, value)
    }

    private func setString(_ option: CURLoption, _ value: String) {
        // libcurl copies string options.
        _ = value.withCString { sb_curl_setopt_string(handle!, option, $0) }
    }

    private func setPointer(_ option: CURLoption, _ value: UnsafeMutableRawPointer) {
        _ = sb_curl_setopt_pointer(handle!, option, value)
    }
}

/// A transfer the header hook ended on purpose (IMAP IDLE saw new mail); carries what arrived.
struct CurlStoppedByHook: Error {
    var response: CurlResponse
}
