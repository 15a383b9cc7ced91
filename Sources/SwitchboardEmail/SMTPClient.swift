// Sending one message over SMTP with libcurl, and what its failure means.
//
// A 4xx reply or a broken connection is worth another try later; a 5xx reply is final. The
// EHLO name goes in the URL path (libcurl otherwise sends a file name).

import CCurl
import Foundation
import SwitchboardModel

/// How an SMTP submission ended, when it did not succeed.
struct SMTPFailure: Error, CustomStringConvertible, Sendable {
    /// Whether a later attempt can succeed.
    var isTransient: Bool
    /// The login was refused.
    var isLoginDenied: Bool
    /// What happened, for the operator.
    var message: String
    /// No answer from the server at all (refused, reset, timed out): what opens the breaker.
    var isConnectionProblem = false

    var description: String { message }
}

/// Submits messages to one SMTP server, reusing the connection between them.
final class SMTPClient: Sendable {
    let server: MailServer
    let ehloName: String
    private let connection: CurlConnection

    init(server: MailServer, ehloName: String) {
        self.server = server
        self.ehloName = ehloName
        connection = CurlConnection(label: "smtp")
    }

    /// Sends a message to its recipients.
    ///
    /// - Throws: `SMTPFailure`, `CancellationError`.
    func send(from sender: String, to recipients: [String], message: [UInt8]) async throws {
        var request = CurlRequest(url: server.url + "/" + ehloName)
        if !server.username.isEmpty {
            request.username = server.username
            request.password = server.password.revealed
        }
        request.tls = server.tls
        request.mailFrom = "<\(sender)>"
        request.mailRecipients = recipients.map { "<\($0)>" }
        request.upload = message
        request.timeout = .seconds(120)
        do {
            _ = try await connection.perform(request)
        } catch let failure as CurlFailure {
            throw Self.classify(failure)
        }
    }

    /// Final only when the server refused this message with a 5xx: its recipient (RCPT), or
    /// its content (at or after DATA, which libcurl reports as CURLE_WEIRD_SERVER_REPLY). A 5xx
    /// to the greeting, the login or MAIL FROM is the server's or the configuration's trouble
    /// (authentication required, sender not permitted): every reply would fail alike, so they
    /// wait for the operator instead of being given up one by one.
    static func classify(_ failure: CurlFailure) -> SMTPFailure {
        let code = failure.responseCode
        if failure.isLoginDenied {
            return SMTPFailure(isTransient: true, isLoginDenied: true, message: "the SMTP server refused the login: \(failure)")
        }
        // 552 to MAIL FROM (SIZE): this message is too large, whatever else is sent.
        let aboutThisMessage = failure.message.contains("RCPT failed") || failure.message.contains("DATA failed")
            || failure.code == Int(CURLE_WEIRD_SERVER_REPLY.rawValue) || code == 552
        if (500..<600).contains(code), aboutThisMessage {
            return SMTPFailure(isTransient: false, isLoginDenied: false, message: "the SMTP server refused the message: \(failure)")
        }
        if (500..<600).contains(code) {
            return SMTPFailure(isTransient: true, isLoginDenied: true, message: "the SMTP server refused the session (check email.* settings): \(failure)")
        }
        return SMTPFailure(isTransient: true, isLoginDenied: false, message: "SMTP submission failed: \(failure)", isConnectionProblem: failure.isConnectionProblem)
    }
}
