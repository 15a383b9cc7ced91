import ArgumentParser
import Foundation
import Logging
import SwitchboardApp
import SwitchboardModel

/// Shared command plumbing: logging setup and errors as plain sentences, never stack traces.
enum CLI {
    /// A password or token from a file: its first line, trimmed (never from an argument, so it
    /// is in no shell history or process list).
    static func password(fromFile path: String) throws -> Secret {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw GatewayError("Cannot read the password file \(path).") }
        return Secret(String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
    }

    nonisolated(unsafe) static var loggingBootstrapped = false

    static func logger(_ configuration: AppConfiguration, default level: Logger.Level) -> Logger {
        let chosen = configuration.logLevel ?? level
        if !loggingBootstrapped {
            loggingBootstrapped = true
            switch configuration.logFormat {
            case .text:
                LoggingSystem.bootstrap { label in
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = chosen
                    return handler
                }
            case .json:
                LoggingSystem.bootstrap { label in
                    var handler = JSONLogHandler.standardError(label: label)
                    handler.logLevel = chosen
                    return handler
                }
            }
        }
        var logger = Logger(label: "switchboard")
        logger.logLevel = chosen
        return logger
    }

    static func guarding(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("error: \(AppErrors.describe(error))\n".utf8))
            throw ExitCode(1)
        }
    }

    static func printAudit(_ gateway: Gateway, json: Bool, person: String?, since: Date?) async throws {
        try await gateway.writeAudit(json: json, person: person, since: since) { print($0) }
    }

    static func verifyAudit(_ gateway: Gateway) async throws -> Bool {
        let (ok, text) = try await gateway.verifyAuditReport()
        print(text)
        return ok
    }
}
