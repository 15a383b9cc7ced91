// The deployment files: the Compose file against the Compose specification's schema (no Docker
// engine runs on the test machines), and what the Dockerfile and the systemd unit promise.

import Foundation
import Testing
import Yams

@Suite("Deployment files")
struct DeploymentTests {
    static let script = packageRoot + "/scripts/test-servers/compose-schema.sh"
    static let compose = packageRoot + "/deploy/docker-compose.yml"

    static func validate(_ file: String) throws -> (valid: Bool, output: String) {
        do {
            return (true, try runCommand("/bin/bash", [script, "validate", file]))
        } catch let error as HarnessError {
            if error.description.contains("is not installed") {
                throw HarnessError(description: """
                    The Compose schema is not installed. The README's test command (scripts/test.sh) \
                    installs it; by hand: scripts/test-servers/compose-schema.sh install.
                    \(error)
                    """)
            }
            return (false, error.description)
        }
    }

    @Test("docker-compose.yml validates against the Compose specification's schema")
    func composeValidates() throws {
        let result = try Self.validate(Self.compose)
        #expect(result.valid, "\(result.output)")
    }

    @Test("The schema check rejects a broken Compose file (so a pass means something)")
    func schemaRejects() throws {
        let directory = try TemporaryDirectory()
        let broken = directory.path + "/broken.yml"
        let text = try String(contentsOfFile: Self.compose, encoding: .utf8)
            .replacingOccurrences(of: "    restart: unless-stopped\n", with: "    restart: unless-stopped\n    restart_when: always\n", options: [], range: nil)
        try text.write(toFile: broken, atomically: true, encoding: .utf8)
        let result = try Self.validate(broken)
        #expect(!result.valid, "a service key the specification does not have was accepted")
        #expect(result.output.contains("restart_when"), "\(result.output)")
    }

    @Test("Compose runs switchboard after a healthy PostgreSQL with a volume, and Synapse only in the trial profile")
    func composeShape() throws {
        let text = try String(contentsOfFile: Self.compose, encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        let services = try #require(document["services"] as? [String: Any])
        let switchboard = try #require(services["switchboard"] as? [String: Any])
        let postgres = try #require(services["postgres"] as? [String: Any])
        let synapse = try #require(services["synapse"] as? [String: Any])
        let dependsOn = try #require(switchboard["depends_on"] as? [String: Any])
        #expect((dependsOn["postgres"] as? [String: Any])?["condition"] as? String == "service_healthy")
        #expect(postgres["healthcheck"] != nil && switchboard["healthcheck"] != nil)
        #expect((postgres["volumes"] as? [String])?.contains { $0.hasPrefix("postgres-data:") } == true)
        #expect((document["volumes"] as? [String: Any])?.keys.contains("postgres-data") == true)
        #expect(synapse["profiles"] as? [String] == ["trial"])
        #expect(services["postgres"].map { _ in true } == true && switchboard["profiles"] == nil && postgres["profiles"] == nil)
        // No password in the file: PostgreSQL's and the database URL come from secret files.
        #expect(!text.contains("POSTGRES_PASSWORD:"), "the password must come from a secret file")
        let environment = try #require(switchboard["environment"] as? [String: Any])
        #expect(environment["SWITCHBOARD_DATABASE_URL_FILE"] as? String == "/run/secrets/database-url")
        #expect(environment["SWITCHBOARD_SECRETS_KEY_FILE"] as? String == "/run/secrets/secrets-key", "instances share one secrets key")
        #expect((switchboard["secrets"] as? [String])?.contains("secrets-key") == true)
    }

    @Test("The image builds with Swift 6.3 and runs on a slim image as a user without privileges")
    func dockerfile() throws {
        let text = try String(contentsOfFile: packageRoot + "/deploy/Dockerfile", encoding: .utf8)
        let stages = text.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2, "multi-stage: \(stages)")
        #expect(stages.first?.contains("swift:6.3") == true && stages.last?.contains("slim") == true)
        let user = text.split(separator: "\n").last { $0.hasPrefix("USER ") }
        #expect(user != nil && user?.contains("root") == false && user?.contains(" 0") == false)
        // The runtime stage has the libraries, not their development packages or a compiler.
        let runtime = try #require(text.components(separatedBy: "\nFROM ").last)
        #expect(runtime.contains("libcurl4 ") && runtime.contains("libsqlite3-0") && !runtime.contains("-dev"), "\(runtime)")
    }

    @Test("The systemd unit passes systemd-analyze verify and keeps its hardening")
    func systemdUnit() throws {
        let text = try String(contentsOfFile: packageRoot + "/deploy/switchboard.service", encoding: .utf8)
        for option in ["DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                       "CapabilityBoundingSet=", "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"] {
            #expect(text.contains(option + "\n"), "missing \(option)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            Issue.record("systemd-analyze is not installed (Debian's systemd package); it verifies the unit")
            return
        }
        // Verified as installed, with the binary's path pointing at one that exists here.
        let directory = try TemporaryDirectory()
        let unit = directory.path + "/switchboard.service"
        try text.replacingOccurrences(of: "/usr/local/bin/switchboard", with: "/bin/true").write(toFile: unit, atomically: true, encoding: .utf8)
        let output = try runCommand("/usr/bin/systemd-analyze", ["verify", unit])
        #expect(!output.contains("Unknown key") && !output.contains("Failed"), "\(output)")
    }
}
