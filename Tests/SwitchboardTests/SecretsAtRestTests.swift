// Secrets kept in the database are sealed: the sealer itself, its key file, and a waiting
// call's secret arguments, which the database holds only redacted and sealed.

import Foundation
import GRDB
import SwitchboardEngine
import SwitchboardModel
import SwitchboardStorage
import Testing

@Suite("Secrets at rest")
struct SecretsAtRestTests {
    @Test("A sealed value opens only under its key and its name")
    func sealing() throws {
        let sealer = SecretSealer(secret: Secret(String(repeating: "k", count: 40)))
        let sealed = try sealer.seal("the-value", name: "row-1")
        #expect(SecretSealer.isSealed(sealed) && !sealed.contains("the-value"))
        #expect(try sealer.open(sealed, name: "row-1") == "the-value")
        #expect(try sealer.seal("the-value", name: "row-1") != sealed, "a fresh nonce each time")
        #expect(throws: SealingError.self, "moved to another row") { try sealer.open(sealed, name: "row-2") }
        #expect(throws: SealingError.self, "another key") { try SecretSealer.ephemeral().open(sealed, name: "row-1") }
        #expect(throws: SealingError.self, "not sealed") { try sealer.open("{\"plain\":true}", name: "row-1") }
        // A character in the middle: near the end, base64 padding bits can absorb the change.
        var damaged = Array(sealed)
        let middle = damaged.count / 2
        damaged[middle] = damaged[middle] == "A" ? "B" : "A"
        #expect(throws: SealingError.self, "damaged") { try sealer.open(String(damaged), name: "row-1") }
    }

    @Test("With no key configured, one is made in a private file and found again; a readable or empty file is refused")
    func keyFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/secrets.key"
        let first = try SecretSealer.keyFile(path)
        #expect(first.origin == .file(path))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let sealed = try first.seal("kept", name: "n")
        #expect(try SecretSealer.keyFile(path).open(sealed, name: "n") == "kept", "the same key next time")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["secrets.key"], "no temporary file left")

        chmod(path, 0o644)
        let readable = #expect(throws: SealingError.self) { try SecretSealer.keyFile(path) }
        #expect(readable?.description.contains("chmod 600") == true)

        let empty = directory.path + "/empty.key"
        FileManager.default.createFile(atPath: empty, contents: Data("short\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: SealingError.self) { try SecretSealer.keyFile(empty) }
    }

    /// A high-risk tool with a declared secret argument; it says whether it got the real value.
    struct Deploy: Tool {
        let descriptor = ToolDescriptor(
            name: "test.deploy", category: "test", summary: "Deploy with a token",
            parameters: ["type": "object"], baseRisk: .high, effect: .irreversible, secretArguments: ["token"]
        )
        func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
            PreparedCall(arguments: arguments, preview: "This will deploy \(arguments["app"]?.stringValue ?? "")", risk: .high)
        }
        func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
            let real = call.arguments["token"] == .string(SecretsAtRestTests.token)
            return ToolOutput(reply: real ? "Deployed with the token you gave." : "Deployed with the wrong token!", summary: "deployed")
        }
    }

    struct DeployPlanner: Planner {
        var plansFromHistory: Bool { false }
        func plan(_ message: InboundMessage) async throws -> Plan {
            message.text.hasPrefix("deploy ")
                ? .call(tool: "test.deploy", arguments: ["app": .string(String(message.text.dropFirst(7))), "token": .string(SecretsAtRestTests.token)])
                : CommandPlanner.plan(text: message.text)
        }
    }

    static let token = TestSecrets.register("tok-" + UUID().uuidString)

    /// Every file of the harness's database, as bytes, for looking for the secret.
    static func databaseBytes(_ h: EngineHarness) throws -> Data {
        var all = Data()
        for name in try FileManager.default.contentsOfDirectory(atPath: h.directory.path) {
            all += try Data(contentsOf: URL(fileURLWithPath: h.directory.path + "/" + name))
        }
        return all
    }

    @Test("A waiting call's secret argument is stored only sealed, and the call runs with the real value after yes")
    func pendingSecretsSealed() async throws {
        let h = try EngineHarness(planner: DeployPlanner(), extraTools: [Deploy()])
        #expect(try await h.say("alice", "deploy web").contains("This will deploy web"))
        let row = try DatabaseQueue(path: h.directory.path + "/test.sqlite").read { db in
            try Row.fetchOne(db, sql: "SELECT arguments, sealed_arguments FROM confirmations WHERE tool = 'test.deploy'")
        }
        let stored = try #require(row)
        #expect(try JSONValue.parse(stored["arguments"] as String) == ["app": "web", "token": "<redacted>"])
        let sealed = try #require(stored["sealed_arguments"] as String?)
        #expect(SecretSealer.isSealed(sealed))
        #expect(try Self.databaseBytes(h).range(of: Data(Self.token.utf8)) == nil, "the token is nowhere in the database files")

        #expect(try await h.say("alice", "yes") == "Deployed with the token you gave.")
        #expect(try Self.databaseBytes(h).range(of: Data(Self.token.utf8)) == nil, "nor after it ran")
    }

    @Test("Sealed under another key: the call does not run with what is left, and the person is told to ask again")
    func sealedUnderAnotherKey() async throws {
        let h = try EngineHarness(planner: DeployPlanner(), extraTools: [Deploy()])
        _ = try await h.say("alice", "deploy web")
        let database = try DatabaseQueue(path: h.directory.path + "/test.sqlite")
        try await database.write { db in
            let callID = try #require(try String.fetchOne(db, sql: "SELECT call_id FROM confirmations WHERE tool = 'test.deploy'"))
            let foreign = try SecretSealer.ephemeral().seal(#"{"app":"web","token":"x"}"#, name: callID)
            try db.execute(sql: "UPDATE confirmations SET sealed_arguments = ? WHERE call_id = ?", arguments: [foreign, callID])
        }
        let reply = try await h.say("alice", "yes")
        #expect(reply.contains("I can no longer read the secret values of that request") && reply.contains("nothing was done"))
        #expect(try await h.statuses(tool: "test.deploy") == [.proposed, .awaitingConfirmation, .declined])
    }
}
