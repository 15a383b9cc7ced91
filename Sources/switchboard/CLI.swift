import ArgumentParser
import Foundation
import Logging
import SwitchboardApp

/// Shared command plumbing: logging setup and errors as plain sentences, never stack traces.
enum CLI {
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
