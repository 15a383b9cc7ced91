// Schemathesis against the running API: bodies and parameters generated from /openapi.json,
// valid and invalid, and checks that every answer is documented and none is a server error.

import Foundation
import Testing

@Suite("HTTP API fuzzing")
struct APIFuzzTests {
    static let script = packageRoot + "/scripts/test-servers/schemathesis.sh"

    @Test("Schemathesis finds no server error, no undocumented answer and no crash")
    func schemathesis() async throws {
        let server = try await APIServer(extra: [
            "SWITCHBOARD_HTTP_CALLBACK_SECRET": "fuzz-secret", "SWITCHBOARD_LOG_LEVEL": "warning",
            // Generated URLs may name any address; the schema does not forbid internal ones.
            "SWITCHBOARD_HTTP_CALLBACK_ALLOW_PRIVATE": "true",
        ])
        defer { try? server.stop() }
        let key = try server.key("admin", name: "fuzz")
        let report = server.data.path + "/schemathesis.txt"
        let output: String
        do {
            output = try runCommand("/bin/bash", [
                Self.script, "run", server.base, key,
                "--checks", "all", "--max-examples", "40", "--workers", "2", "--request-timeout", "40",
                "--seed", "20261129", "--report", "junit", "--report-junit-path", report + ".xml",
            ])
        } catch let error as HarnessError where error.description.contains("is not installed") {
            Issue.record("schemathesis is missing: run `bash scripts/test-servers/schemathesis.sh install` (scripts/test.sh does)")
            return
        }
        #expect(output.contains("passed"), "\(output.suffix(4000))")
        #expect(server.bot.process.isRunning, "the server survived the run")
        #expect(!server.bot.log.contains("request failed"), "no handler threw an unexpected error:\n\(server.bot.log.suffix(2000))")
    }
}
