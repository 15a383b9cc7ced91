import ArgumentParser
import Foundation
import Logging
import SwitchboardApp

@main
struct Switchboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "A self-hosted assistant gateway: talk to it, it calls tools for you, and asks before anything risky.",
        subcommands: [Serve.self, Chat.self, Audit.self, Migrate.self, Matrix.self, Bench.self],
        defaultSubcommand: Serve.self
    )
}

/// Options every command that touches the database takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "A YAML configuration file (or set SWITCHBOARD_CONFIG).")
    var config: String?

    @Option(name: .long, help: "Where the embedded database lives (or set SWITCHBOARD_DATA_DIR).")
    var dataDir: String?

    func load() throws -> AppConfiguration {
        var overrides: [String: String] = [:]
        if let dataDir { overrides["data_dir"] = dataDir }
        let environment = ProcessInfo.processInfo.environment
        return try AppConfiguration(file: config ?? environment["SWITCHBOARD_CONFIG"], environment: environment, overrides: overrides)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway with its configured channels (the terminal when none is configured).")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        try await CLI.guarding {
            let configuration = try common.load()
            let gateway = try Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .info))
            try await gateway.serve()
        }
    }
}

struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Talk to the assistant from this terminal.",
        discussion: "When standard input is not a terminal, reads one message per line and prints each reply."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("as"), help: "Who is speaking.")
    var person: String = ProcessInfo.processInfo.environment["USER"] ?? "me"

    @Option(help: "The conversation's name (people in one conversation share it).")
    var conversation: String?

    func run() async throws {
        try await CLI.guarding {
            let configuration = try common.load()
            let gateway = try Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
            try await gateway.chat(personNamed: person, conversation: conversation, interactive: isatty(0) == 1)
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the audit trail.",
        subcommands: [Verify.self]
    )

    @OptionGroup var common: CommonOptions

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: "Only this person's records.")
    var person: String?

    @Option(help: "Only records since a time: ISO 8601 (2026-11-29 or 2026-11-29T10:00:00Z) or an age (30m, 2h, 7d).")
    var since: String?

    func run() async throws {
        try await CLI.guarding {
            let configuration = try common.load()
            var sinceDate: Date?
            if let since {
                guard let parsed = AuditReport.parseSince(since) else {
                    throw GatewayError("--since: \"\(since)\" is neither an ISO 8601 time nor an age like 30m, 2h or 7d.")
                }
                sinceDate = parsed
            }
            let gateway = try Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
            try await CLI.printAudit(gateway, json: json, person: person, since: sinceDate)
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that no audit record was edited or deleted (exit 1 if one was).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                let ok = try await CLI.verifyAudit(gateway)
                if !ok { throw ExitCode(1) }
            }
        }
    }
}

struct Matrix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the Matrix channel's session.",
        subcommands: [Logout.self]
    )

    struct Logout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the bot's stored Matrix session out and forget it (the next start logs in as a new device)."
        )

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
                if try await gateway.matrixLogout() {
                    print("Signed out of Matrix and forgot the session.")
                } else {
                    print("There was no stored Matrix session.")
                }
            }
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema, then exit.")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        try await CLI.guarding {
            let configuration = try common.load()
            let gateway = try Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
            print(try await gateway.schemaReport())
        }
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push messages through inbox → engine → tool → audit → outbox on a fresh SQLite database and report throughput and latency."
    )

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "normal or full.")
    var synchronous: String = "normal"

    @Option(help: "How many messages.")
    var messages: Int = 20000

    @Option(help: "How many simulated people (one conversation each).")
    var people: Int = 50

    @Option(help: "Messages each person keeps in flight.")
    var window: Int = 8

    @Option(help: "Where to create the temporary database (default: the system's temporary directory).")
    var dataDir: String?

    func validate() throws {
        guard ["normal", "full"].contains(synchronous) else { throw ValidationError("--synchronous must be normal or full") }
        guard messages > 0, people > 0, window > 0 else { throw ValidationError("--messages, --people and --window must be positive") }
    }

    func run() async throws {
        try await CLI.guarding {
            let result = try await SwitchboardApp.Bench.run(BenchOptions(
                messages: messages, people: people, window: window,
                synchronousMode: synchronous, dataDirectory: dataDir
            ))
            if json {
                print(result.json)
            } else {
                print("""
                    \(result.messages) messages from \(result.people) people, synchronous=\(result.synchronous)
                    \(String(format: "%.2f", result.seconds)) s, \(Int(result.messagesPerSecond)) messages/s
                    latency p50 \(String(format: "%.2f", result.p50 * 1000)) ms, p99 \(String(format: "%.2f", result.p99 * 1000)) ms, max \(String(format: "%.2f", result.max * 1000)) ms
                    """)
            }
        }
    }
}
