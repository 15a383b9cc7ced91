import ArgumentParser
import Foundation
import Logging
import SwitchboardApp
import SwitchboardEmail
import SwitchboardHTTP
import SwitchboardModel
import SwitchboardStorage

@main
struct Switchboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "A self-hosted assistant gateway: talk to it, it calls tools for you, and asks before anything risky.",
        subcommands: [
            Serve.self, Chat.self, Intent.self, InspectEmail.self, Audit.self, Keys.self, Migrate.self, Matrix.self, Bench.self, BenchLLM.self,
            Export.self, Import.self, Health.self, Tools.self, MCP.self, DAV.self, BenchTools.self,
        ],
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
            let gateway = try await Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .info))
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
            let gateway = try await Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
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
            let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
            try await CLI.printAudit(gateway, json: json, person: person, since: sinceDate)
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that no audit record was edited or deleted (exit 1 if one was).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                let ok = try await CLI.verifyAudit(gateway)
                if !ok { throw ExitCode(1) }
            }
        }
    }
}

struct Matrix: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the Matrix channel's session and encryption.",
        subcommands: [Logout.self, SetupCrypto.self]
    )

    struct SetupCrypto: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "setup-crypto",
            abstract: "Make the bot account's cross-signing keys, sign its device with them, and print a recovery key once.",
            discussion: """
                Clients that only talk to verified devices then talk to the bot. The private keys stay \
                sealed in the database (with matrix.crypto_key) and go to the account's secret storage, \
                encrypted under the recovery key printed on the last line: keep it somewhere safe; it is \
                not stored anywhere. Stop `switchboard serve` first (every instance, on PostgreSQL too).
                """
        )

        @OptionGroup var common: CommonOptions

        @Flag(name: .long, help: "Make new cross-signing keys even if the account has some (people who verified the bot must verify it again).")
        var replace = false

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
                guard let setup = try await gateway.matrixSetUpCrypto(replacing: replace) else {
                    print("The account has cross-signing keys already; its recovery key was printed when they were made. Use --replace to make new ones.")
                    return
                }
                print("Made cross-signing keys and signed this device. Master key: \(setup.masterKey)")
                print("Recovery key (shown once; it restores the keys from the account's secret storage):")
                print(setup.recoveryKey)
            }
        }
    }

    struct Logout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the bot's stored Matrix session out and forget it (the next start logs in as a new device)."
        )

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
                if try await gateway.matrixLogout() {
                    print("Signed out of Matrix and forgot the session.")
                } else {
                    print("There was no stored Matrix session.")
                }
            }
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the HTTP API's keys (stored hashed; a key is shown once, when it is made).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a key. It is printed alone on the last line, once: keep it somewhere safe."
        )

        @OptionGroup var common: CommonOptions

        @Option(name: .long, help: "What it may do: send (POST /v1/messages), read (conversations, audit, confirmations, tools, preferences) or admin (everything, and deciding for people). Repeat for several.")
        var scope: [String] = []

        @Option(name: .long, help: "A name for it, shown in `keys list` and in the audit trail of what it does.")
        var name: String = "api"

        @Option(name: .long, help: "The one sender it may speak as (POST /v1/messages' sender, the person api:SENDER); it answers only that sender's confirmations.")
        var sender: String?

        @Option(name: .long, help: "Speak as any sender that starts with this (ticket- for ticket-1, ticket-2, …).")
        var senderPrefix: String?

        @Flag(name: .long, help: "Speak as any sender: for an integration that relays many people, such as a bridge.")
        var anySender = false

        var senders: APISenders {
            if let sender { return .exactly(sender) }
            if let senderPrefix { return .prefix(senderPrefix) }
            return .any
        }

        func validate() throws {
            guard !scope.isEmpty else { throw ValidationError("Give at least one --scope: send, read or admin.") }
            for word in scope where APIScope(rawValue: word) == nil {
                throw ValidationError("Unknown scope \"\(word)\"; the scopes are send, read and admin.")
            }
            let bindings = [sender != nil, senderPrefix != nil, anySender].filter { $0 }.count
            guard bindings <= 1 else { throw ValidationError("Give one of --sender, --sender-prefix and --any-sender.") }
            for value in [sender, senderPrefix].compactMap({ $0 }) {
                guard !value.isEmpty, value.count <= 200 else { throw ValidationError("--sender and --sender-prefix must be 1 to 200 characters.") }
            }
            // A key that sends speaks for someone: say whom, so it cannot speak (and confirm) as anyone.
            if scope.contains("send"), bindings == 0 {
                throw ValidationError("A send key speaks for someone: give --sender NAME (one sender), --sender-prefix PREFIX (senders that start so), or --any-sender (an integration that relays everyone).")
            }
            guard !name.isEmpty, name.count <= 100, !name.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
                throw ValidationError("--name must be 1 to 100 characters without control characters.")
            }
        }

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                let made = try await gateway.createAPIKey(name: name, scopes: Set(scope.compactMap(APIScope.init(rawValue:))), senders: senders)
                print("Made key \(made.record.id) (\(made.record.name)) with scopes \(made.record.scopes.joined(separator: ", ")), for \(made.record.senders). It is shown only now:")
                print(made.key.revealed)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never the keys themselves).")

        @OptionGroup var common: CommonOptions

        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                let keys = try await gateway.apiKeys()
                if json {
                    for key in keys {
                        var object: [String: JSONValue] = [
                            "id": .string(key.id), "name": .string(key.name), "scopes": .array(key.scopes.map(JSONValue.string)),
                            "created_at": .string(key.createdAt.formatted(.iso8601)),
                        ]
                        if let at = key.revokedAt { object["revoked_at"] = .string(at.formatted(.iso8601)) }
                        switch key.senders {
                        case .any: break
                        case .exactly(let sender): object["sender"] = .string(sender)
                        case .prefix(let prefix): object["sender_prefix"] = .string(prefix)
                        }
                        print(JSONValue.object(object).canonicalText)
                    }
                    return
                }
                if keys.isEmpty {
                    print("No keys. Make one with `switchboard keys create --scope send --sender NAME`.")
                    return
                }
                for key in keys {
                    let state = key.revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "active"
                    print("\(key.id)  \(key.name)  \(key.scopes.joined(separator: ","))  \(key.senders)  created \(key.createdAt.formatted(.iso8601))  \(state)")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key at once; requests with it are refused from then on.")

        @OptionGroup var common: CommonOptions

        @Argument(help: "The key's id (from `keys list`), or the whole key.")
        var id: String

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                if try await gateway.revokeAPIKey(id) {
                    print("Revoked key \(APIKeys.id(of: id)).")
                } else {
                    throw GatewayError("There is no active key \(APIKeys.id(of: id)); `switchboard keys list` shows them.")
                }
            }
        }
    }
}

struct Tools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the assistant can call: built-in tools, HTTP tools and each MCP server's.",
        subcommands: [List.self], defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every tool with its source, risk and category.",
            discussion: "Connects to the configured MCP servers for a moment (at most their connect timeout) to list their tools."
        )

        @OptionGroup var common: CommonOptions

        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .error))
                let (tools, servers) = try await gateway.toolListing()
                if json {
                    for tool in tools {
                        print(JSONValue.object([
                            "name": .string(tool.name), "source": .string(tool.source), "risk": .string(tool.risk.description),
                            "category": .string(tool.category), "description": .string(tool.description),
                        ]).canonicalText)
                    }
                    return
                }
                let width = tools.map(\.name.count).max() ?? 0
                for tool in tools {
                    print("\(tool.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(tool.source)  \(tool.risk)  \(tool.category)  \(tool.description)")
                }
                for server in servers where server.state != "up" {
                    print("MCP server \(server.name) is \(server.state)\(server.lastError.map { ": \($0)" } ?? ""); its tools are not listed.")
                }
            }
        }
    }
}

struct MCP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "MCP servers.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect to one configured MCP server and show its state and tools; exits 1 when it cannot be reached."
        )

        @OptionGroup var common: CommonOptions

        @Argument(help: "The server's name, as under mcp.servers.")
        var name: String

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .error))
                let (tools, servers) = try await gateway.toolListing(server: name)
                guard let server = servers.first, server.state == "up" else {
                    let reason = servers.first?.lastError ?? "no answer within its connect timeout"
                    throw InspectFailure(description: "MCP server \(name) cannot be reached: \(reason)")
                }
                print("MCP server \(name) is up with \(tools.count) tool\(tools.count == 1 ? "" : "s"):")
                for tool in tools { print("  \(tool.name)  \(tool.risk)  \(tool.category)  \(tool.description)") }
            }
        }
    }
}

struct DAV: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dav",
        abstract: "Link a person's own calendar and contacts server (CalDAV, CardDAV): their calendar and contacts requests then go there.",
        subcommands: [Connect.self, Disconnect.self, Bench.self]
    )

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure listing a week on a CalDAV server with many events (in a calendar of its own, deleted after).",
            discussion: "Example: switchboard dav bench http://127.0.0.1:5232/ --user sam --password-file sam.token --events 5000"
        )

        @Argument(help: "The server's address (its root or the principal).")
        var url: String

        @Option(name: .long, help: "The account's user name.")
        var user: String

        @Option(name: .long, help: "A file holding the password (its first line).")
        var passwordFile: String

        @Option(help: "How many events to put in the benchmark calendar.")
        var events: Int = 5000

        @Option(help: "How many weeks to list.")
        var rounds: Int = 200

        @Flag(help: "Keep the benchmark calendar afterwards.")
        var keep = false

        @Flag(help: "Print one JSON object.")
        var json = false

        func validate() throws {
            guard events >= 1, rounds >= 10 else { throw ValidationError("--events must be positive and --rounds at least 10") }
        }

        func run() async throws {
            try await CLI.guarding {
                guard let base = URL(string: url), base.host != nil else { throw GatewayError("\"\(url)\" is not a server address.") }
                let password = try CLI.password(fromFile: passwordFile)
                let result = try await DAVBench.run(base: base, user: user, password: password, events: events, rounds: rounds, keep: keep) { line in
                    FileHandle.standardError.write(Data((line + "\n").utf8))
                }
                if json {
                    print(result.json)
                    return
                }
                print("""
                    \(result.events) events written in \(String(format: "%.1f", result.fillSeconds)) s; \(result.rounds) weeks listed, \(String(format: "%.1f", result.eventsPerWeek)) events each on average
                    list a week: p50 \(String(format: "%.1f", result.listP50 * 1000)) ms, p99 \(String(format: "%.1f", result.listP99 * 1000)) ms, \(String(format: "%.1f", result.requestsPerList)) HTTP requests per list
                    """)
            }
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Link a calendar account for a person, after checking it with the server.",
            discussion: """
                The password (or app token) is read from a file, so it is in no shell history or process \
                list, and stored only sealed (with secrets.key). The calendar tools use it when dav.enabled \
                is true. Example: switchboard dav connect --person matrix:@sam:example.org \
                https://dav.example.org/ --user sam --password-file ~/sam.token --calendar Work
                """
        )

        @OptionGroup var common: CommonOptions

        @Option(name: .long, help: "The person, as Switchboard knows them (matrix:@sam:example.org, email:sam@example.org, terminal:sam, api:SENDER).")
        var person: String

        @Argument(help: "The server's address (its root, the principal or a calendar).")
        var url: String

        @Option(name: .long, help: "The account's user name.")
        var user: String

        @Option(name: .long, help: "A file holding the password or app token (its first line).")
        var passwordFile: String

        @Option(name: .long, help: "The calendar to use, by name (default: the first that takes events).")
        var calendar: String?

        @Option(name: .long, help: "The address book for contacts, by name (default: the first the server has, if any).")
        var addressBook: String?

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let password = try CLI.password(fromFile: passwordFile)
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                let linked = try await gateway.davConnect(person: PersonID(person), url: url, user: user, password: password, calendar: calendar, addressBook: addressBook)
                print("Linked the calendar \(linked.calendarName) (\(linked.calendar.absoluteString)) for \(linked.person.rawValue).")
                if let book = linked.addressBook {
                    print("Linked the address book \(linked.addressBookName ?? book.lastPathComponent) (\(book.absoluteString)): contacts are kept there.")
                } else {
                    print("The server has no address book for \(user); contacts stay in Switchboard.")
                }
                if !configuration.davEnabled {
                    print("The calendar and contacts tools use it once dav.enabled is true (or SWITCHBOARD_DAV_ENABLED=true); restart serve after changing it.")
                }
            }
        }
    }

    struct Disconnect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a person's calendar account (their calendar and contacts requests go back to the built-in ones).")

        @OptionGroup var common: CommonOptions

        @Option(name: .long, help: "The person.")
        var person: String

        func run() async throws {
            try await CLI.guarding {
                let configuration = try common.load()
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                print(try await gateway.davDisconnect(person: PersonID(person)) ? "Forgot the calendar account of \(person)." : "\(person) had no calendar account linked.")
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
            let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
            print(try await gateway.schemaReport())
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write all data (messages, audit trail, notes, keys, preferences…) to a file, to move it to another database.",
        discussion: "Stop the gateway first, so nothing changes while the file is written. The file holds message text: keep it private."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .shortAndLong, help: "The file to write (JSON Lines, created with mode 0600).")
    var output: String

    func run() async throws {
        try await CLI.guarding {
            let configuration = try common.load()
            let gateway = try await Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
            let rows = try await gateway.exportData(to: output)
            print("exported \(rows) rows from \(gateway.store.locationDescription) to \(output)")
            await gateway.close()
        }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a file written by `switchboard export` into a new, empty database (of either engine), then verify the audit chain.",
        discussion: "Example, SQLite to PostgreSQL: switchboard export -o data.jsonl; then with database.url set to the new PostgreSQL database: switchboard import data.jsonl"
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "The export file.")
    var file: String

    func run() async throws {
        try await CLI.guarding {
            let configuration = try common.load()
            let gateway = try await Gateway(configuration: configuration, exclusive: true, logger: CLI.logger(configuration, default: .warning))
            let (rows, audit) = try await gateway.importData(from: file)
            print("imported \(rows) rows into \(gateway.store.locationDescription); \(audit)")
            await gateway.close()
        }
    }
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running gateway whether it is ready (exit 0) or not (exit 1): for container health checks."
    )

    @Option(name: .long, help: "The readiness URL.")
    var url = "http://127.0.0.1:8080/readyz"

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout: Double = 5

    func run() async throws {
        let (ok, line) = await HealthProbe.check(url: url, timeout: timeout)
        print(line)
        if !ok { throw ExitCode(1) }
    }
}

struct BenchLLM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-llm",
        abstract: "Measure the gateway's own overhead per language-model round (no model: a replayed provider answers at once), and the time to build a request with many tools registered."
    )

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "How many messages (two model rounds each).")
    var messages: Int = 2000

    @Option(help: "How many tools to register (the built-in ones, plus read-only lookups).")
    var tools: Int = 125

    @Option(help: "How many conversations the messages are spread over.")
    var conversations: Int = 50

    func validate() throws {
        guard messages >= 10, tools >= 1, conversations >= 1 else { throw ValidationError("--messages must be at least 10; --tools and --conversations positive") }
    }

    func run() async throws {
        try await CLI.guarding {
            let result = try await LLMBench.run(messages: messages, tools: tools, conversations: conversations)
            if json {
                print(result.json)
            } else {
                print("""
                    \(result.messages) messages, 2 model rounds each; \(result.toolsRegistered) tools registered, \(result.toolsSent) described per request (\(result.requestBytes) bytes)
                    overhead per round: p50 \(String(format: "%.3f", result.roundP50 * 1000)) ms, p99 \(String(format: "%.3f", result.roundP99 * 1000)) ms
                    request build: p50 \(String(format: "%.3f", result.buildP50 * 1000)) ms, p99 \(String(format: "%.3f", result.buildP99 * 1000)) ms
                    """)
            }
        }
    }
}

struct BenchTools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-tools",
        abstract: "Measure choosing among many tools (the tool retriever, and the ranking a model round asks for), and with --server the round trip of MCP calls.",
        discussion: "Example: switchboard bench-tools --config switchboard.yaml --server wiki --tool search --arguments '{\"query\":\"vpn\"}'"
    )

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "How many synthetic MCP tools to choose among.")
    var tools: Int = 150

    @Option(help: "How many requests to rank.")
    var rounds: Int = 20000

    @Option(help: "A configured MCP server to call.")
    var server: String?

    @Option(help: "The server's tool to call (its own name, without mcp.<server>.).")
    var tool: String?

    @Option(help: "The call's arguments as a JSON object.")
    var arguments: String = "{}"

    @Option(help: "How many calls.")
    var calls: Int = 500

    func validate() throws {
        guard tools >= 1, rounds >= 100, calls >= 10 else { throw ValidationError("--tools must be positive, --rounds at least 100, --calls at least 10") }
        guard (server == nil) == (tool == nil) else { throw ValidationError("--server and --tool go together") }
    }

    func run() async throws {
        try await CLI.guarding {
            let configuration = server == nil ? nil : try common.load()
            guard let parsed = try? JSONValue.parse(arguments), parsed.objectValue != nil else { throw ValidationError("--arguments must be a JSON object") }
            let result = try await ToolsBench.run(tools: tools, rounds: rounds, configuration: configuration, server: server, tool: tool, arguments: parsed, calls: calls)
            if json {
                print(result.json)
                return
            }
            print("""
                \(result.tools) tools, \(result.requests) requests
                retriever: p50 \(String(format: "%.4f", result.retrieverP50 * 1000)) ms, p99 \(String(format: "%.4f", result.retrieverP99 * 1000)) ms
                ranking for a model round (built-in intents and remote tools): p50 \(String(format: "%.3f", result.rankingP50 * 1000)) ms, p99 \(String(format: "%.3f", result.rankingP99 * 1000)) ms
                """)
            if let server = result.server {
                print("MCP calls to \(server): \(result.calls), round trip p50 \(String(format: "%.3f", result.callP50 * 1000)) ms, p99 \(String(format: "%.3f", result.callP99 * 1000)) ms")
            }
        }
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push messages through inbox → engine → tool → audit → outbox (a fresh SQLite database, or PostgreSQL with N instances) and report throughput and latency."
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

    @Option(help: "Run on this PostgreSQL database (postgres://…) instead of a fresh SQLite file; it is migrated, and the run's messages stay in it.")
    var databaseURL: String?

    @Option(help: "With --database-url: how many instances share the work (each with its own connections and leases).")
    var instances: Int = 1

    @Option(help: "Audit records of earlier work to write first (a year's worth, over the people); the learner reads them during the run.")
    var history: Int = 0

    func validate() throws {
        guard ["normal", "full"].contains(synchronous) else { throw ValidationError("--synchronous must be normal or full") }
        guard messages > 0, people > 0, window > 0 else { throw ValidationError("--messages, --people and --window must be positive") }
        guard (1...64).contains(instances) else { throw ValidationError("--instances must be 1 to 64") }
        guard (0...10_000_000).contains(history) else { throw ValidationError("--history must be 0 to 10000000") }
        guard instances == 1 || databaseURL != nil else { throw ValidationError("--instances needs --database-url: SQLite serves one instance") }
    }

    func run() async throws {
        try await CLI.guarding {
            var options = BenchOptions(
                messages: messages, people: people, window: window,
                synchronousMode: synchronous, dataDirectory: dataDir
            )
            options.databaseURL = databaseURL
            options.instances = instances
            options.history = history
            let result = try await SwitchboardApp.Bench.run(options)
            if json {
                print(result.json)
            } else {
                print("""
                    \(result.messages) messages from \(result.people) people, \(result.engine == "sqlite" ? "SQLite synchronous=\(result.synchronous)" : "PostgreSQL, \(result.instances) instance(s)")
                    \(String(format: "%.2f", result.seconds)) s, \(Int(result.messagesPerSecond)) messages/s
                    latency p50 \(String(format: "%.2f", result.p50 * 1000)) ms, p99 \(String(format: "%.2f", result.p99 * 1000)) ms, max \(String(format: "%.2f", result.max * 1000)) ms
                    """)
            }
        }
    }
}

struct Intent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the intent engine makes of a message: intent, confidence and arguments.",
        discussion: "With --benchmark FILE, times classification of every line of FILE (plain text, or JSON lines with a \"text\" field) instead."
    )

    @OptionGroup var common: CommonOptions

    @Argument(help: "The message.")
    var text: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(name: .customLong("as"), help: "Whose time zone preference to use (from the database).")
    var person: String = ProcessInfo.processInfo.environment["USER"] ?? "me"

    @Option(help: "Time every message of this file instead.")
    var benchmark: String?

    @Option(help: "Rounds over the benchmark file.")
    var rounds: Int = 20

    func validate() throws {
        guard text != nil || benchmark != nil else { throw ValidationError("Give a message to analyse, or --benchmark FILE.") }
        guard rounds > 0 else { throw ValidationError("--rounds must be positive") }
    }

    func run() async throws {
        try await CLI.guarding {
            if let benchmark {
                let lines = try String(contentsOfFile: benchmark, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init)
                let messages = lines.map { line in
                    (try? JSONValue.parse(line))?["text"]?.stringValue ?? line
                }
                print(IntentReport.benchmark(messages, rounds: rounds))
                return
            }
            let configuration = try common.load()
            var zone = TimeZone.current
            if FileManager.default.fileExists(atPath: configuration.dataDirectory) {
                let gateway = try await Gateway(configuration: configuration, exclusive: false, logger: CLI.logger(configuration, default: .warning))
                zone = try await IntentReport.zone(of: person, gateway: gateway) ?? zone
            }
            let report = IntentReport.json(text ?? "", zone: zone)
            if json {
                print(report)
            } else {
                let value = try JSONValue.parse(report)
                print("\(value["intent"]?.stringValue ?? "?") (confidence \(value["confidence"]?.canonicalText ?? "?"))")
                print("arguments: \(value["arguments"]?.canonicalText ?? "{}")")
                if let question = value["question"]?.stringValue { print("would ask: \(question)") }
            }
        }
    }
}

struct InspectEmail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-email",
        abstract: "Print an email file (RFC 5322, as stored in a Maildir) the way the email channel reads it, as JSON.",
        discussion: "\"authenticated\" is true only when an Authentication-Results field at the top of the message, from the trusted authserv-id, shows DMARC, or aligned DKIM or SPF, passing for the From domain."
    )

    @Argument(help: "The message file.")
    var file: String?

    @Option(help: "Instead of a file, parse a built-in corpus of realistic messages this many times and report MB/s and messages/s.")
    var benchmark: Int?

    @Option(help: "The authserv-id of the receiving server whose Authentication-Results count (or set SWITCHBOARD_EMAIL_TRUSTED_AUTHSERV_ID).")
    var trustedAuthservId: String?

    @Option(help: "The assistant's own address, to flag mail from it.")
    var ownAddress: String?

    func validate() throws {
        guard file != nil || benchmark != nil else { throw ValidationError("Give an email file, or --benchmark ROUNDS.") }
        if let benchmark, benchmark < 1 { throw ValidationError("--benchmark must be at least 1") }
    }

    func run() async throws {
        try await CLI.guarding {
            if let benchmark {
                print(try MIMEBenchmark.run(rounds: benchmark))
                return
            }
            let file = file ?? ""
            guard let data = FileManager.default.contents(atPath: file) else {
                throw InspectFailure(description: "Can't read \(file): no such file, or no permission.")
            }
            let message = try MIMEParser.parse(Array(data))
            let trusted = trustedAuthservId ?? ProcessInfo.processInfo.environment["SWITCHBOARD_EMAIL_TRUSTED_AUTHSERV_ID"]
            var report = message.inspection(authenticated: SenderAuthentication.isAuthenticated(message, trustedAuthservID: trusted))
            if case .object(var fields) = report {
                fields["no_reply"] = NoReplyReason.check(message, ownAddress: ownAddress ?? "").map { .string($0.rawValue) } ?? .null
                report = .object(fields)
            }
            print(report.canonicalText)
        }
    }
}

struct InspectFailure: Error, CustomStringConvertible {
    var description: String
}
