// MCP tools against a real MCP server: the Python SDK's (PyPI `mcp`, pinned in
// scripts/test-servers/mcp.sh), running scripts/test-servers/mcp_server.py over stdio and over
// streamable HTTP. Listing, risk from annotations, calls with their idempotency key, errors,
// timeouts, oversized answers, a changed tool list, a killed server restarted, and bad
// credentials.

import Foundation
import Logging
@testable import SwitchboardEngine
import SwitchboardModel
@testable import SwitchboardRemoteTools
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test MCP server: its Python and script, and a state directory it reports into.
struct WikiServer {
    static let script = packageRoot + "/scripts/test-servers/mcp_server.py"
    static let installer = packageRoot + "/scripts/test-servers/mcp.sh"

    /// The venv's Python, or a failure that says how to install it.
    static func python() throws -> String {
        let venv = ProcessInfo.processInfo.environment["SWITCHBOARD_MCP_VENV"] ?? packageRoot + "/.build-venv-mcp"
        let path = venv + "/bin/python"
        guard FileManager.default.isExecutableFile(atPath: path),
            (try? String(contentsOfFile: venv + "/.mcp-version", encoding: .utf8)) != nil
        else {
            throw HarnessError(description: "The MCP test server's venv is missing at \(venv). Install it with: bash scripts/test-servers/mcp.sh install (the README's test command does).")
        }
        return path
    }

    let state: String

    init() throws {
        state = NSTemporaryDirectory() + "mcp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    }

    /// The calls that reached the server (create and delete), as JSON objects.
    var calls: [JSONValue] {
        let text = (try? String(contentsOfFile: state + "/calls.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
    }

    /// The process ids of each start.
    var starts: [Int32] {
        let text = (try? String(contentsOfFile: state + "/starts", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    func stdioConfiguration(trusted: Bool = true, timeout: TimeInterval = 10, maxResultBytes: Int = 1_000_000, overrides: [String: ToolOverride] = [:], deny: Set<String> = []) throws -> MCPServerConfiguration {
        MCPServerConfiguration(
            name: "wiki",
            transport: .stdio(command: try Self.python(), arguments: [Self.script, "stdio", "--state", state], environment: ["WIKI_TOKEN": Secret(TestSecrets.register("wiki-secret-value"))], directory: nil),
            trusted: trusted, deny: deny, timeout: timeout, connectTimeout: 60, maxResultBytes: maxResultBytes, overrides: overrides
        )
    }

    /// Starts the server over HTTP and waits for its readiness line.
    func startHTTP(port: Int, token: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.python())
        process.arguments = [Self.script, "http", "--port", "\(port)", "--state", state, "--token", token]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = output.fileHandleForReading.availableDataLine(timeout: 60)
        guard line?.contains("listening") == true else {
            Self.stop(process)
            throw HarnessError(description: "the MCP test server did not start on port \(port)")
        }
        return process
    }
}

extension WikiServer {
    /// Stops an HTTP server: SIGTERM, and SIGKILL if it is still there after 3 s (uvicorn
    /// waits for open event streams before it exits, which may be never).
    static func stop(_ process: Process) {
        process.terminate()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

extension FileHandle {
    /// The first line written, waiting at most `timeout` seconds.
    func availableDataLine(timeout: TimeInterval) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var collected = Data()
        var poll = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        while Date() < deadline {
            guard Glibc.poll(&poll, 1, 200) > 0 else { continue }
            let chunk = availableData
            if chunk.isEmpty { return nil }
            collected += chunk
            if collected.contains(UInt8(ascii: "\n")) { return String(decoding: collected, as: UTF8.self) }
        }
        return nil
    }
}

@Suite("MCP servers", .serialized)
struct MCPServerTests {
    let person = PersonID("sam")
    var logger: Logger {
        var logger = Logger(label: "mcp-test")
        logger.logLevel = .critical
        return logger
    }

    func context(_ call: String) -> RemoteCallContext {
        RemoteCallContext(
            person: person, conversation: ConversationKey(channel: "test", conversation: ConversationID("room")),
            callID: ToolCallID(call), correlationID: nil, idempotencyKey: "switchboard-\(call)"
        )
    }

    func call(_ tool: MCPTool, _ arguments: String, id: String = "c1") async throws -> ToolOutput {
        let checked = try RemoteToolSupport.checked(try JSONValue.parse(arguments), descriptor: tool.descriptor)
        let prepared = PreparedCall(arguments: checked, preview: "", risk: tool.descriptor.baseRisk)
        return try await tool.perform(prepared, approval: Approval(callID: ToolCallID(id), person: person), context: context(id))
    }

    /// Runs a connection for the body, then stops it.
    func withConnection(_ configuration: MCPServerConfiguration, _ body: (MCPServerConnection) async throws -> Void) async throws {
        let connection = RemoteToolCatalog.connection(for: configuration, logger: logger)
        let running = Task { await connection.run() }
        defer { running.cancel() }
        // Generous: the Python server imports its SDK in a few seconds, longer on a loaded machine
        // (once, in a full run on two cores, more than the 60 s connect timeout): past that
        // timeout the connection restarts it, and the status says why.
        let up = await eventually(150) { connection.status.state == .up }
        try #require(up, "the MCP server did not come up: \(connection.status)")
        try await body(connection)
        running.cancel()
        await running.value
    }

    @Test("Over stdio: tools listed as mcp.wiki.*, risk from a trusted server's annotations, calls carry the idempotency key")
    func stdioListAndCall() async throws {
        let wiki = try WikiServer()
        try await withConnection(try wiki.stdioConfiguration(overrides: ["slow": ToolOverride(risk: .low, category: "waiting")], deny: ["env"])) { connection in
            let tools = connection.tools
            #expect(Set(tools.keys).isSuperset(of: ["mcp.wiki.search", "mcp.wiki.create_page", "mcp.wiki.delete_page", "mcp.wiki.fail"]))
            #expect(tools["mcp.wiki.env"] == nil, "denied tools are not offered")
            let search = try #require(tools["mcp.wiki.search"])
            #expect(search.descriptor.baseRisk == .low)
            #expect(search.descriptor.effect == .readOnly)
            #expect(search.descriptor.category == "mcp.wiki")
            #expect(search.descriptor.summary == "Search the wiki pages for a word or phrase.")
            #expect(search.descriptor.returnsUntrustedContent)
            #expect(search.descriptor.parameters["required"] == .array(["query"]))
            // destructiveHint false but openWorldHint unset (true by the specification): high.
            #expect(tools["mcp.wiki.create_page"]?.descriptor.baseRisk == .high)
            #expect(tools["mcp.wiki.delete_page"]?.descriptor.baseRisk == .high)
            #expect(tools["mcp.wiki.delete_page"]?.descriptor.effect == .irreversible)
            #expect(tools["mcp.wiki.slow"]?.descriptor.baseRisk == .low, "the operator's override wins")
            #expect(tools["mcp.wiki.slow"]?.descriptor.category == "waiting")

            let found = try await call(search, #"{"query":"onboard","limit":"3"}"#)
            #expect(found.reply == "Onboarding checklist")
            #expect(found.summary.contains("sha256"))
            #expect(!found.summary.contains("Onboarding"), "the audit summary is a digest, not the server's text")

            let created = try await call(try #require(tools["mcp.wiki.create_page"]), #"{"title":"Welcome","body":"Hello"}"#, id: "call-7")
            #expect(created.reply == "created page Welcome")
            #expect(wiki.calls.first?["idempotencyKey"] == "switchboard-call-7")
            #expect(wiki.calls.first?["title"] == "Welcome")
        }
    }

    @Test("An untrusted server's tools are all high risk; the child sees only harmless variables and its configured ones")
    func untrustedAndEnvironment() async throws {
        let wiki = try WikiServer()
        try await withConnection(try wiki.stdioConfiguration(trusted: false)) { connection in
            let tools = connection.tools
            #expect(tools.values.allSatisfy { $0.descriptor.baseRisk == .high }, "\(tools.values.map { ($0.descriptor.name, $0.descriptor.baseRisk) })")
            #expect(tools["mcp.wiki.search"]?.descriptor.effect == .irreversible, "only a trusted server's readOnlyHint makes a tool read-only")
            let shown = try await call(try #require(tools["mcp.wiki.env"]), "{}")
            let names = Set(shown.reply.split(separator: "\n").first?.split(separator: ",").map(String.init) ?? [])
            #expect(shown.reply.contains("WIKI_TOKEN length 17"))
            // Python adds LC_CTYPE itself when the locale is unset.
            #expect(names.subtracting(["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "LOGNAME", "WIKI_TOKEN", "LC_CTYPE"]).isEmpty, "\(names)")
            #expect(!names.contains { $0.hasPrefix("SWITCHBOARD") }, "the gateway's own variables never reach a server: \(names)")
        }
        let inherited = ["PATH": "/bin", "SWITCHBOARD_DATABASE_URL": "postgres://secret", "LC_ALL": "C", "AWS_SECRET_ACCESS_KEY": "x"]
        #expect(RemoteToolCatalog.childEnvironment(["A": "1"], inherited: inherited) == ["PATH": "/bin", "LC_ALL": "C", "A": "1"])
    }

    @Test("A tool error, an answer over the size limit and a call past the timeout are sentences; the server keeps working")
    func errorsAndTimeout() async throws {
        let wiki = try WikiServer()
        // 5 s: under a loaded machine (the whole suite on 2 cores) a quick call has taken over 2.
        try await withConnection(try wiki.stdioConfiguration(timeout: 5, maxResultBytes: 4096)) { connection in
            let tools = connection.tools
            let failed = await #expect(throws: ToolFailure.self) { try await call(try #require(tools["mcp.wiki.fail"]), "{}") }
            #expect(failed?.message == "mcp.wiki.fail reported an error: the wiki is read-only today")

            let big = await #expect(throws: ToolFailure.self) { try await call(try #require(tools["mcp.wiki.big"]), #"{"kilobytes":64}"#) }
            #expect(big?.message.contains("answered with more than 4096 bytes") == true, "\(big?.message ?? "")")

            let started = Date()
            let slow = await #expect(throws: ToolFailure.self) { try await call(try #require(tools["mcp.wiki.slow"]), #"{"seconds":30}"#) }
            #expect(slow?.message.contains("did not answer within 5 seconds") == true, "\(slow?.message ?? "")")
            #expect(Date().timeIntervalSince(started) < 15)

            let wrong = #expect(throws: ToolFailure.self) {
                try RemoteToolSupport.checked(JSONValue.parse(#"{"limit":2}"#), descriptor: try #require(tools["mcp.wiki.search"]).descriptor)
            }
            #expect(wrong?.message.contains("don't fit") == true)

            let after = try await call(try #require(tools["mcp.wiki.search"]), #"{"query":"vpn"}"#)
            #expect(after.reply == "VPN setup")
        }
    }

    @Test("notifications/tools/list_changed refreshes the tools without a restart")
    func listChanged() async throws {
        let wiki = try WikiServer()
        try await withConnection(try wiki.stdioConfiguration()) { connection in
            #expect(connection.tools["mcp.wiki.holidays"] == nil)
            let added = try await call(try #require(connection.tools["mcp.wiki.add_tool"]), #"{"name":"holidays"}"#)
            #expect(added.reply == "added holidays")
            let seen = await eventually(10) { connection.tools["mcp.wiki.holidays"] != nil }
            #expect(seen)
            #expect(wiki.starts.count == 1, "refreshed in the same session")
        }
    }

    @Test("A killed server is shown down, its tools answer at once that it is unavailable, and it is started again")
    func restartAfterKill() async throws {
        let wiki = try WikiServer()
        let catalog = RemoteToolCatalog({
            var remote = RemoteToolsConfiguration()
            remote.servers = [try! wiki.stdioConfiguration()]
            return remote
        }(), logger: logger)
        let connection = try #require(catalog.connections.first)
        let running = Task { await connection.run() }
        defer { running.cancel() }
        #expect(await eventually(60) { connection.status.state == .up })
        let first = try #require(wiki.starts.first)
        kill(first, SIGKILL)
        let down = await eventually(10) { connection.status.state != .up }
        #expect(down, "the server's death is noticed")
        if connection.status.state != .up {
            let stand = catalog.tool(named: "mcp.wiki.search") as? UnavailableTool
            #expect(stand?.reason.contains("the wiki server is down") == true, "\(String(describing: stand))")
        }
        #expect(await eventually(60) { connection.status.state == .up && wiki.starts.count == 2 })
        #expect(connection.status.restarts == 1)
        let search = try #require(catalog.tool(named: "mcp.wiki.search") as? MCPTool)
        #expect(try await call(search, #"{"query":"wifi"}"#).reply == "Office wifi")
        #expect(catalog.tool(named: "mcp.nothere.search") == nil)
        #expect(catalog.tool(named: "mcp.wiki.nosuchtool") == nil)
        running.cancel()
        await running.value
    }

    @Test("Over streamable HTTP with a bearer token: tools, calls and list_changed on the event stream; a wrong token is shown as the reason it is down")
    func streamableHTTP() async throws {
        let wiki = try WikiServer()
        let port = try freePort()
        let server = try wiki.startHTTP(port: port, token: "http-token-1")
        defer { WikiServer.stop(server) }
        let url = URL(string: "http://127.0.0.1:\(port)/mcp")!
        let configuration = MCPServerConfiguration(
            name: "wiki", transport: .http(url: url, headers: ["Authorization": Secret("Bearer http-token-1")]), trusted: true, timeout: 30, connectTimeout: 30
        )
        try await withConnection(configuration) { connection in
            let search = try #require(connection.tools["mcp.wiki.search"])
            #expect(search.descriptor.baseRisk == .low)
            #expect(try await call(search, #"{"query":"holiday"}"#).reply == "Holiday policy")
            _ = try await call(try #require(connection.tools["mcp.wiki.create_page"]), #"{"title":"T","body":"B"}"#, id: "http-1")
            #expect(wiki.calls.last?["idempotencyKey"] == "switchboard-http-1")
            _ = try await call(try #require(connection.tools["mcp.wiki.add_tool"]), #"{"name":"rota"}"#)
            #expect(await eventually(10) { connection.tools["mcp.wiki.rota"] != nil }, "list_changed arrives on the GET stream")
        }

        let refused = MCPServerConfiguration(
            name: "wiki", transport: .http(url: url, headers: ["Authorization": Secret("Bearer wrong-token")]), connectTimeout: 5
        )
        let connection = RemoteToolCatalog.connection(for: refused, logger: logger)
        let running = Task { await connection.run() }
        defer { running.cancel() }
        #expect(await eventually(10) { connection.status.state == .down })
        #expect(connection.status.lastError?.contains("refused the credentials (401") == true, "\(connection.status)")
        #expect(connection.status.lastError?.contains("wrong-token") == false)
        #expect(connection.tools.isEmpty)
    }

    @Test("Through the engine: run calls a tool by name, a high-risk one waits for yes with the exact arguments, the audit has the call, a down server answers at once")
    func throughTheGate() async throws {
        let wiki = try WikiServer()
        var remote = RemoteToolsConfiguration()
        remote.servers = [
            try wiki.stdioConfiguration(),
            MCPServerConfiguration(name: "broken", transport: .stdio(command: "/nonexistent/mcp-server", arguments: [], environment: [:], directory: nil)),
        ]
        let catalog = RemoteToolCatalog(remote, logger: logger)
        let running = Task { try? await catalog.run() }
        defer { running.cancel() }
        #expect(await eventually(60) { catalog.statuses.map(\.state) == [.up, .down] }, "\(catalog.statuses)")
        let harness = try EngineHarness(sources: [catalog])
        let sam = PersonID("sam")

        #expect(try await harness.say(sam, #"run mcp.wiki.search query=vpn"#) == "VPN setup")
        let asked = try await harness.say(sam, #"run mcp.wiki.delete_page title="Holiday policy""#)
        #expect(asked.contains("mcp.wiki.delete_page"), "\(asked)")
        #expect(asked.contains(#"title: "Holiday policy""#), "\(asked)")
        #expect(wiki.calls.isEmpty, "nothing reaches the server before the yes")
        let done = try await harness.say(sam, "yes")
        #expect(done.contains("deleted Holiday policy"), "\(done)")
        let deletes = wiki.calls.filter { $0["tool"] == "delete_page" }
        #expect(deletes.count == 1)
        let key = try #require(deletes.first?["idempotencyKey"]?.stringValue)
        let records = try await harness.audit().filter { $0.entry.tool == "mcp.wiki.delete_page" }
        #expect(records.map(\.entry.status).contains(.executed), "\(records.map(\.entry.status))")
        #expect(records.contains { key.contains($0.entry.callID.rawValue) }, "the idempotency key is the audited call's id: \(key)")

        let unavailable = try await harness.say(sam, "run mcp.broken.anything x=1")
        #expect(unavailable.contains("that service is unavailable right now"), "\(unavailable)")
        let unknown = try await harness.say(sam, "run mcp.wiki.nosuch x=1")
        #expect(!unknown.contains("deleted"), "\(unknown)")
        let malformed = try await harness.say(sam, #"run mcp.wiki.search query="unclosed"#)
        #expect(malformed.contains("never ends"), "\(malformed)")
        running.cancel()
        await running.value
    }
}

@Suite("MCP servers: a gateway killed mid-call", .serialized)
struct MCPCrashTests {
    /// A configuration file with the wiki server over stdio.
    func configuration(_ wiki: WikiServer, dataDir: String) throws -> String {
        let path = dataDir + "/switchboard.yaml"
        let yaml = """
            data_dir: \(dataDir)
            mcp:
              servers:
                - name: wiki
                  command: \(try WikiServer.python())
                  args: [\(WikiServer.script), stdio, --state, \(wiki.state)]
                  trusted: true
                  connect_timeout_seconds: 60
            """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("A secret in an MCP server's env never reaches the log, the audit trail, a reply or the database")
    func secretsStayOut() throws {
        let dir = try TemporaryDirectory()
        let wiki = try WikiServer()
        let secret = TestSecrets.register("wiki-secret-\(UUID().uuidString)")
        let config = dir.path + "/switchboard.yaml"
        try """
            data_dir: \(dir.path)
            log:
              level: trace
            mcp:
              servers:
                - name: wiki
                  command: \(try WikiServer.python())
                  args: [\(WikiServer.script), stdio, --state, \(wiki.state)]
                  env:
                    WIKI_TOKEN: \(secret)
                  trusted: true
                  connect_timeout_seconds: 60
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let chat = try Binary.run(
            ["chat", "--as", "sam", "--config", config],
            input: Data("run mcp.wiki.search query=vpn\nrun mcp.wiki.delete_page title=Rota\nyes\nwhat did you do today\n".utf8)
        )
        #expect(chat.status == 0, "\(chat.stderr)")
        #expect(chat.stdout.contains("mcp.wiki.delete_page"), "the calls ran: \(chat.stdout)")
        #expect(chat.stderr.contains("wiki"), "the log at trace level was written and speaks of the server: \(chat.stderr.prefix(500))")
        #expect(!chat.stdout.contains(secret) && !chat.stderr.contains(secret), "the secret reached the replies or the log")
        let audit = try Binary.run(["audit", "--json", "--data-dir", dir.path])
        #expect(audit.stdout.contains("mcp.wiki.search") && !audit.stdout.contains(secret), "the secret reached the audit trail")
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasPrefix("switchboard.sqlite") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + file))
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "the secret is in \(file)")
        }
    }

    @Test("Killed after the call is recorded as dispatched and again after the server acted: never sent twice, the person told, the audit says interrupted", arguments: ["remote_call_dispatched", "remote_call_performed"])
    func killedMidCall(point: String) throws {
        let dir = try TemporaryDirectory()
        let wiki = try WikiServer()
        let config = try configuration(wiki, dataDir: dir.path)
        let crashed = try Binary.run(
            ["chat", "--as", "sam", "--config", config], input: Data("run mcp.wiki.delete_page title=Rota\nyes\n".utf8),
            environment: ["SWITCHBOARD_TEST_CRASH_AT": point]
        )
        #expect(crashed.signalled, "the gateway was to die at \(point): \(crashed.stdout) \(crashed.stderr)")
        #expect(crashed.stdout.contains("mcp.wiki.delete_page"), "\(crashed.stdout)")
        let deletesBefore = wiki.calls.filter { $0["tool"] == "delete_page" }.count
        #expect(deletesBefore == (point == "remote_call_performed" ? 1 : 0))

        let again = try Binary.run(["chat", "--as", "sam", "--config", config], input: Data("what did you do today\n".utf8))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("interrupted"), "\(again.stdout)")
        #expect(wiki.calls.filter { $0["tool"] == "delete_page" }.count == deletesBefore, "a retry after a crash never calls the tool again")
        let statuses = try Binary.auditJSON(dataDir: dir.path).filter { $0["tool"] as? String == "mcp.wiki.delete_page" }.map { $0["status"] as! String }
        #expect(statuses.contains("dispatched") && statuses.contains("interrupted"), "\(statuses)")
        #expect(!statuses.contains("executed"), "\(statuses)")
    }
}
