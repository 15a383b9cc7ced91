// The README's worked example, run as written: the reference time server from PyPI
// (mcp-server-time, installed by scripts/test-servers/mcp.sh beside the SDK), configured as
// the README says, checked with `switchboard mcp check` and called through `chat`.

import Foundation
import Testing

@Suite("MCP: the README's worked example with a public MCP server package")
struct MCPPublicServerTests {
    /// The venv's mcp-server-time, or a failure that says how to install it.
    static func timeServer() throws -> String {
        let python = try WikiServer.python()
        let path = URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("mcp-server-time").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError(description: "mcp-server-time is missing at \(path). Install it with: bash scripts/test-servers/mcp.sh install (the README's test command does).")
        }
        return path
    }

    @Test("mcp check lists the time server's tools with their risk; run converts a time through the gate and the audit has it")
    func timeServerExample() throws {
        let dir = try TemporaryDirectory()
        let config = dir.path + "/switchboard.yaml"
        try """
            data_dir: \(dir.path)
            mcp:
              servers:
                - name: time
                  description: the time in other cities and time zones
                  command: \(try Self.timeServer())
                  args: [--local-timezone, UTC]
                  trusted: true
                  connect_timeout_seconds: 60
            """.write(toFile: config, atomically: true, encoding: .utf8)

        let check = try Binary.run(["mcp", "check", "time", "--config", config])
        #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
        #expect(check.stdout.contains("mcp.time.get_current_time") && check.stdout.contains("mcp.time.convert_time"), "\(check.stdout)")
        // The server declares readOnlyHint on both, and the server is trusted: low risk.
        let converter = check.stdout.split(separator: "\n").first { $0.contains("mcp.time.convert_time") } ?? ""
        #expect(converter.contains("low"), "\(check.stdout)")

        // Tokyo (UTC+9) to Kolkata (UTC+5:30), neither with daylight saving time: 09:00 is 05:30.
        let chat = try Binary.run(
            ["chat", "--as", "sam", "--config", config],
            input: Data("run mcp.time.convert_time source_timezone=Asia/Tokyo time=09:00 target_timezone=Asia/Kolkata\n".utf8)
        )
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(chat.stdout.contains("05:30"), "\(chat.stdout)")
        let audit = try Binary.auditJSON(dataDir: dir.path).filter { $0["tool"] as? String == "mcp.time.convert_time" }
        #expect(audit.contains { $0["status"] as? String == "executed" }, "\(audit)")
    }
}
