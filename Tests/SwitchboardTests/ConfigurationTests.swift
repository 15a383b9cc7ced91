import Foundation
import SwitchboardApp
import SwitchboardMatrix
import SwitchboardChannels
import SwitchboardSQLite
import SwitchboardEngine
import SwitchboardLLM
import SwitchboardModel
import SwitchboardRemoteTools
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    let example = packageRoot + "/config/switchboard.example.yaml"

    @Test("The shipped example configuration parses, and every key in it is known")
    func exampleParses() throws {
        let configuration = try AppConfiguration(file: example, environment: ["HOME": "/home/test"])
        #expect(configuration.engine.confirmationLifetime == 600)
        #expect(configuration.engine.rateLimits.limit(for: "notes") == RateLimit(perMinute: 30, burst: 10))
        #expect(configuration.engine.keywords == .defaults)
        #expect(configuration.retry.alertAfter == 10)
        #expect(configuration.dataDirectory == "/home/test/.local/share/switchboard", "a leading ~/ is the home directory")
        #expect(configuration.engine.access.minimumRoles["notes.delete"] == .user)
        #expect(configuration.llm.models.isEmpty && configuration.llm.maxToolRounds == 6 && configuration.llm.budget == LLMBudget())
        #expect(configuration.engine.escalation.isEmpty)
    }

    @Test("The example's commented model list, uncommented, parses as documented")
    func exampleModels() throws {
        let text = try String(contentsOfFile: example, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix("  # models:") })
        var block: [String] = []
        for line in lines[start...] {
            guard line.hasPrefix("  #") && !line.hasPrefix("  # Daily") else { break }
            block.append("  " + line.dropFirst(4))
        }
        let dir = try TemporaryDirectory()
        let file = dir.path + "/models.yaml"
        let keyFile = dir.path + "/anthropic"
        try "sk-ant-example\n".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let yaml = ("llm:\n" + block.joined(separator: "\n") + "\n").replacingOccurrences(of: "/run/secrets/anthropic", with: keyFile)
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let configuration = try AppConfiguration(file: file, environment: ["HOME": dir.path])
        #expect(configuration.llm.models.map(\.name) == ["local", "claude"])
        #expect(configuration.llm.models.map(\.tier) == [1, 2] && configuration.llm.models[0].maxOutputTokens == 1024)
    }

    @Test("The example's commented MCP servers and HTTP tools, uncommented, parse as documented")
    func exampleRemoteTools() throws {
        let text = try String(contentsOfFile: example, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let servers = try #require(lines.firstIndex { $0.hasPrefix("  # servers:") })
        var yaml = ["mcp:"]
        for line in lines[servers...] {
            guard line.hasPrefix("  #") else { break }
            yaml.append("  " + line.dropFirst(4))
        }
        let tools = try #require(lines.firstIndex { $0.hasPrefix("# http_tools:") })
        for line in lines[tools...] {
            guard line.hasPrefix("#") else { break }
            yaml.append(String(line.dropFirst(2)))
        }
        let dir = try TemporaryDirectory()
        var joined = yaml.joined(separator: "\n") + "\n"
        for secret in ["wiki", "tickets", "crm", "crm-key"] {
            try "secret-\(secret)\n".write(toFile: dir.path + "/\(secret)", atomically: true, encoding: .utf8)
            for end in ["\n", " "] {
                joined = joined.replacingOccurrences(of: "/run/secrets/\(secret)\(end)", with: dir.path + "/\(secret)\(end)")
            }
        }
        let file = dir.path + "/remote.yaml"
        try joined.write(toFile: file, atomically: true, encoding: .utf8)
        let configuration = try AppConfiguration(file: file, environment: ["HOME": dir.path])
        let remote = configuration.remoteTools
        #expect(remote.servers.map(\.name) == ["wiki", "tickets"])
        let wiki = try #require(remote.servers.first)
        #expect(wiki.trusted && wiki.deny == ["delete_space"] && wiki.timeout == 30 && wiki.connectTimeout == 10 && wiki.maxResultBytes == 1_000_000)
        #expect(wiki.overrides["search"] == ToolOverride(risk: .low, category: "wiki"))
        guard case .stdio(let command, let arguments, let environment, _) = wiki.transport else { Issue.record("wiki is stdio"); return }
        #expect(command == "/usr/local/bin/wiki-mcp" && arguments == ["--read-only"])
        #expect(environment["WIKI_TOKEN"]?.revealed == "secret-wiki", "a secret read from its file, without the newline")
        guard case .http(let url, let headers) = remote.servers[1].transport else { Issue.record("tickets is http"); return }
        #expect(url.absoluteString == "https://mcp.example.org/mcp")
        #expect(headers["Authorization"]?.revealed == "Bearer secret-tickets" && headers["X-Team"]?.revealed == "support")
        #expect(remote.httpTools.map(\.name) == ["crm.lookup", "crm.tag"])
        #expect(remote.httpTools[0].risk == .low && remote.httpTools[0].readOnly && remote.httpTools[0].category == "crm")
        #expect(remote.httpTools[1].risk == .high && remote.httpTools[1].undo?.method == "DELETE")
        #expect(remote.httpTools[1].headers["X-Api-Key"]?.revealed == "secret-crm-key")
    }

    @Test("Every key the loader knows appears in the example configuration (commented or not)")
    func exampleIsComplete() throws {
        let text = try String(contentsOfFile: example, encoding: .utf8)
        for key in ConfigSchema.staticKeys.union(LLMConfiguration.keys).union(LLMConfiguration.modelFields.map { "llm.models.0.\($0)" }) {
            let last = String(key.split(separator: ".").last!)
            #expect(text.contains(last + ":"), "config/switchboard.example.yaml does not mention \(key)")
        }
        for field in RemoteToolsConfiguration.serverFields.union(RemoteToolsConfiguration.httpFields) {
            let last = String(field.split(separator: ".").last!)
            #expect(text.contains(last + ":"), "config/switchboard.example.yaml does not mention the remote-tool field \(field)")
        }
        for prefix in ["permissions:", "risk:", "rate_limits:", "mcp:", "http_tools:"] {
            #expect(text.contains(prefix))
        }
    }

    @Test("No configuration at all runs on embedded defaults")
    func defaults() throws {
        let configuration = try AppConfiguration(file: nil, environment: ["HOME": "/home/test"])
        #expect(configuration.databasePath == "/home/test/.local/share/switchboard/switchboard.sqlite")
        #expect(configuration.sqlite.synchronous == .normal)
        let xdg = try AppConfiguration(file: nil, environment: ["HOME": "/home/test", "XDG_DATA_HOME": "/data"])
        #expect(xdg.databasePath == "/data/switchboard/switchboard.sqlite")
    }

    @Test("Environment variables set every key, and beat the file")
    func environment() throws {
        let configuration = try AppConfiguration(file: example, environment: [
            "HOME": "/h",
            "SWITCHBOARD_DATA_DIR": "/srv/sb",
            "SWITCHBOARD_RATE_LIMITS_NOTES_PER_MINUTE": "5",
            "SWITCHBOARD_CONFIRMATIONS_EXPIRY_SECONDS": "30",
            "SWITCHBOARD_CONFIRMATIONS_YES_WORDS": "ja, oui",
            "SWITCHBOARD_PEOPLE_OWNERS": "alice,bob",
            "SWITCHBOARD_PERMISSIONS_NOTES_DELETE": "owner",
            "SWITCHBOARD_RISK_NOTES": "high",
        ])
        #expect(configuration.databasePath == "/srv/sb/switchboard.sqlite")
        #expect(configuration.engine.rateLimits.limit(for: "notes").perMinute == 5)
        #expect(configuration.engine.confirmationLifetime == 30)
        #expect(configuration.engine.keywords.yes == ["ja", "oui"])
        #expect(configuration.engine.access.role(of: "bob") == .owner)
        #expect(configuration.engine.access.minimumRoles["notes.delete"] == .owner)
        #expect(configuration.engine.risk.overrides["notes"] == .high)
    }

    @Test("The command line beats the environment")
    func commandLine() throws {
        let configuration = try AppConfiguration(
            file: nil, environment: ["HOME": "/h", "SWITCHBOARD_DATA_DIR": "/env"], overrides: ["data_dir": "/flag"]
        )
        #expect(configuration.dataDirectory == "/flag")
    }

    @Test("Unknown keys and bad values are all reported at once, each with its variable")
    func problems() throws {
        let file = try #require(Bundle.module.path(forResource: "problems", ofType: "yaml", inDirectory: "Fixtures"))
        let error = #expect(throws: ConfigurationError.self) {
            try AppConfiguration(file: file, environment: ["HOME": "/h", "SWITCHBOARD_NOPE": "1"])
        }
        let text = error?.description ?? ""
        #expect(text.contains("colour (SWITCHBOARD_COLOUR): unknown key"))
        #expect(text.contains("rate_limits.notes.per_hour (SWITCHBOARD_RATE_LIMITS_NOTES_PER_HOUR): unknown key"))
        #expect(text.contains("SWITCHBOARD_NOPE"))
        // …and in the same report, the known keys with bad values.
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys.isSuperset(of: ["database.synchronous", "engine.batch_size", "rate_limits.notes.per_minute", "permissions.weather"]), "\(keys)")
        #expect(error?.problems.count == 7, "\(text)")
    }

    @Test("Bad values are all reported at once")
    func badValues() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try AppConfiguration(file: nil, environment: [
                "HOME": "/h",
                "SWITCHBOARD_DATABASE_SYNCHRONOUS": "sometimes",
                "SWITCHBOARD_ENGINE_BATCH_SIZE": "lots",
                "SWITCHBOARD_RATE_LIMITS_NOTES_PER_MINUTE": "-3",
                "SWITCHBOARD_PERMISSIONS_WEATHER": "owner",
                "SWITCHBOARD_PEOPLE_DEFAULT_ROLE": "king",
            ])
        }
        let problems = error?.problems.map(\.key) ?? []
        #expect(Set(problems) == ["database.synchronous", "engine.batch_size", "rate_limits.notes.per_minute", "permissions.weather", "people.default_role"])
        #expect(error?.description.contains("expected one of normal, full, got \"sometimes\"") == true)
    }

    @Test("A secret can come from a file and never prints")
    func secretFile() throws {
        let directory = try TemporaryDirectory()
        let secretPath = directory.path + "/db-url"
        try "sqlite:///tmp/secret-place.sqlite\n".write(toFile: secretPath, atomically: true, encoding: .utf8)
        let configuration = try AppConfiguration(file: nil, environment: ["HOME": "/h", "SWITCHBOARD_DATABASE_URL_FILE": secretPath])
        #expect(configuration.databasePath == "/tmp/secret-place.sqlite")
    }

    @Test("The Matrix channel is configured from the environment, its password from a file")
    func matrixFromEnvironment() throws {
        let directory = try TemporaryDirectory()
        let passwordPath = directory.path + "/matrix-password"
        try "s3cret-pass\n".write(toFile: passwordPath, atomically: true, encoding: .utf8)
        let configuration = try AppConfiguration(file: nil, environment: [
            "HOME": "/h",
            "SWITCHBOARD_MATRIX_HOMESERVER": "https://matrix.example.org/",
            "SWITCHBOARD_MATRIX_USER_ID": "@switchboard:example.org",
            "SWITCHBOARD_MATRIX_PASSWORD_FILE": passwordPath,
            "SWITCHBOARD_MATRIX_ALLOWED_USERS": "@alice:example.org, *:example.com",
        ])
        let matrix = try #require(configuration.matrix)
        #expect(matrix.homeserver == "https://matrix.example.org")
        #expect(matrix.userID == "@switchboard:example.org")
        guard case .password(let password) = matrix.credential else {
            Issue.record("expected a password credential")
            return
        }
        #expect(password.revealed == "s3cret-pass")
        #expect("\(password)" == "<redacted>")
        #expect(matrix.allowedUsers.allows("@alice:example.org") && matrix.allowedUsers.allows("@bob:example.com"))
        #expect(!matrix.allowedUsers.allows("@mallory:example.org"))
        #expect(try AppConfiguration(file: nil, environment: ["HOME": "/h"]).matrix == nil, "no homeserver, no Matrix channel")
    }

    @Test("Matrix encryption settings: the crypto key from a file, the policies, and their mistakes")
    func matrixEncryption() throws {
        let directory = try TemporaryDirectory()
        let keyPath = directory.path + "/crypto-key"
        let key = String(repeating: "k", count: 40)
        try (key + "\n").write(toFile: keyPath, atomically: true, encoding: .utf8)
        let base = [
            "HOME": "/h", "SWITCHBOARD_MATRIX_HOMESERVER": "https://matrix.example.org", "SWITCHBOARD_MATRIX_USER_ID": "@bot:example.org",
            "SWITCHBOARD_MATRIX_PASSWORD": "pw",
        ]
        var matrix = try #require(try AppConfiguration(file: nil, environment: base).matrix)
        #expect(matrix.encryption == .optional && matrix.cryptoKey == nil && !matrix.encryptionEnabled, "no key: encryption off")
        #expect(matrix.unverifiedDeviceConfirmations == .direct && matrix.undecryptableWait == .seconds(60))

        matrix = try #require(try AppConfiguration(file: nil, environment: base.merging([
            "SWITCHBOARD_MATRIX_CRYPTO_KEY_FILE": keyPath, "SWITCHBOARD_MATRIX_ENCRYPTION": "required",
            "SWITCHBOARD_MATRIX_UNDECRYPTABLE_WAIT_S": "30", "SWITCHBOARD_MATRIX_UNVERIFIED_DEVICE_CONFIRMATIONS": "never",
        ]) { $1 }).matrix)
        #expect(matrix.cryptoKey?.revealed == key && matrix.encryption == .required && matrix.encryptionEnabled)
        #expect(matrix.undecryptableWait == .seconds(30) && matrix.unverifiedDeviceConfirmations == .never)
        #expect("\(String(describing: matrix.cryptoKey))".contains(key) == false, "the key prints redacted")

        let error = #expect(throws: ConfigurationError.self) {
            try AppConfiguration(file: nil, environment: base.merging([
                "SWITCHBOARD_MATRIX_ENCRYPTION": "mandatory", "SWITCHBOARD_MATRIX_CRYPTO_KEY": "short",
                "SWITCHBOARD_MATRIX_UNVERIFIED_DEVICE_CONFIRMATIONS": "sometimes", "SWITCHBOARD_MATRIX_UNDECRYPTABLE_WAIT_S": "1",
            ]) { $1 })
        }
        let text = "\(error.map { "\($0)" } ?? "")"
        #expect(text.contains("matrix.encryption") && text.contains("required, optional or off"), "\(text)")
        #expect(text.contains("matrix.crypto_key") && text.contains("at least 32 characters"))
        #expect(text.contains("matrix.unverified_device_confirmations"))
        #expect(text.contains("matrix.undecryptable_wait_s"))
        #expect(!text.contains("short"), "the bad key is not echoed")
        let required = #expect(throws: ConfigurationError.self) {
            try AppConfiguration(file: nil, environment: base.merging(["SWITCHBOARD_MATRIX_ENCRYPTION": "required"]) { $1 })
        }
        #expect("\(required.map { "\($0)" } ?? "")".contains("is required with matrix.encryption: required"))
    }

    @Test("Matrix configuration mistakes are reported together")
    func matrixProblems() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try AppConfiguration(file: nil, environment: [
                "HOME": "/h",
                "SWITCHBOARD_MATRIX_HOMESERVER": "matrix.example.org",
                "SWITCHBOARD_MATRIX_USER_ID": "switchboard",
                "SWITCHBOARD_MATRIX_ALLOWED_USERS": "alice",
            ])
        }
        let keys = Set(error?.problems.map(\.key) ?? [])
        #expect(keys == ["matrix.homeserver", "matrix.user_id", "matrix.password", "matrix.allowed_users"], "\(error?.description ?? "")")
        let orphan = #expect(throws: ConfigurationError.self) {
            try AppConfiguration(file: nil, environment: ["HOME": "/h", "SWITCHBOARD_MATRIX_PASSWORD": "x"])
        }
        #expect(orphan?.description.contains("matrix.homeserver is not") == true)
        #expect(orphan?.description.contains("\"x\"") == false, "a secret value is never echoed")
    }

    @Test("A broken YAML file is a clear error")
    func brokenYAML() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/broken.yaml"
        try "engine: [unclosed\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: ConfigurationError.self) { try AppConfiguration(file: path, environment: ["HOME": "/h"]) }
        #expect(error?.description.contains("not valid YAML") == true)
        let missing = #expect(throws: ConfigurationError.self) { try AppConfiguration(file: directory.path + "/nope.yaml", environment: [:]) }
        #expect(missing?.description.contains("cannot read configuration file") == true)
    }
}
