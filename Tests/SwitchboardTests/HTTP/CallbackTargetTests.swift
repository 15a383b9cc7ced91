// Callbacks reach only public addresses: the host is resolved at each delivery, every address
// it resolves to is checked, and the connection goes to the address that was checked.

import AsyncHTTPClient
import GRDB
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardChannels
import SwitchboardModel
@testable import SwitchboardHTTP
import Testing

@Suite("HTTP API: callback hosts checked when they connect")
struct CallbackTargetTests {
    /// A resolver that answers from a table, the way a rebinding DNS server would.
    static func resolver(_ answers: [String: [String]]) -> @Sendable (String) async throws -> [String] {
        { host in answers[host] ?? [] }
    }

    @Test("A name that resolves to loopback, private, link-local or mapped addresses is refused; every address counts")
    func internalAddressesRefused() async throws {
        let answers: [String: [String]] = [
            "loop.example": ["127.0.0.1"], "lan.example": ["10.1.2.3"], "metadata.example": ["169.254.169.254"],
            "mixed.example": ["93.184.215.14", "192.168.1.10"], "six.example": ["::1"], "mapped.example": ["::ffff:127.0.0.1"],
            "zoned.example": ["fe80::1%eth0"], "ula.example": ["fd00::5"],
        ]
        for host in answers.keys.sorted() {
            await #expect(throws: SwitchboardChannels.ChannelError.self, "\(host)") {
                _ = try await CallbackTarget.check("https://\(host)/hook", allowPrivate: false, resolve: Self.resolver(answers))
            }
        }
        do {
            _ = try await CallbackTarget.check("https://mixed.example/hook", allowPrivate: false, resolve: Self.resolver(answers))
        } catch let error as SwitchboardChannels.ChannelError {
            #expect(!error.isTransient, "a refused host is not retried")
            #expect(error.message.contains("192.168.1.10") && error.message.contains("callback_allow_private"), "\(error.message)")
        }
        // Literal addresses are refused without a lookup.
        await #expect(throws: SwitchboardChannels.ChannelError.self) {
            _ = try await CallbackTarget.check("http://[::1]:8080/hook", allowPrivate: false, resolve: { _ in Issue.record("looked up"); return [] })
        }
    }

    @Test("A public name is pinned to the address that was checked; with callback_allow_private nothing is checked")
    func pinned() async throws {
        let target = try await CallbackTarget.check("https://hooks.example/x", allowPrivate: false, resolve: Self.resolver(["hooks.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]]))
        #expect(target == CallbackTarget(host: "hooks.example", pinned: "93.184.215.14"))
        let open = try await CallbackTarget.check("http://localhost:9/x", allowPrivate: true, resolve: { _ in Issue.record("looked up"); return [] })
        #expect(open.pinned == nil)
        await #expect(throws: SwitchboardChannels.ChannelError.self, "a name that does not resolve is an error, retried later") {
            _ = try await CallbackTarget.check("https://nowhere.example/x", allowPrivate: false, resolve: Self.resolver([:]))
        }
    }

    @Test("The pinned connection goes to the checked address, not to what the name resolves to later")
    func connectionUsesThePinnedAddress() async throws {
        let receiver = try await HTTPRecorder()
        defer { receiver.stop() }
        let clients = CallbackClients()
        // `.invalid` never resolves (RFC 6761): the request can reach the receiver only through the pin.
        let client = try clients.client(for: CallbackTarget(host: "callback.invalid", pinned: "127.0.0.1"))
        var request = HTTPClientRequest(url: "http://callback.invalid:\(receiver.port)/pinned")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: "{}"))
        let response = try await client.execute(request, timeout: .seconds(10))
        #expect(response.status.code == 200)
        let records = try await receiver.wait { !$0.isEmpty }
        #expect(records.map(\.path) == ["/pinned"])
        #expect(records.first?.headers["host"]?.hasPrefix("callback.invalid") == true, "the Host header keeps the name: \(records.first?.headers ?? [:])")
        await clients.shutdown()
    }

    @Test("End to end: a callback URL whose name resolves to this machine gets nothing, and the reply is kept")
    func serveRefusesRebindingName() async throws {
        let receiver = try await HTTPRecorder()
        defer { receiver.stop() }
        // This machine's own name resolves to a loopback or private address (Debian's /etc/hosts).
        let name = ProcessInfo.processInfo.hostName
        let addresses = try await CallbackTarget.resolve(name)
        try #require(
            !addresses.isEmpty && addresses.allSatisfy(CallbackHost.isInternal),
            "this test needs the machine's host name (\(name)) to resolve to a loopback or private address, as /etc/hosts makes it; it resolved to \(addresses)"
        )
        let server = try await APIServer(extra: ["SWITCHBOARD_HTTP_CALLBACK_SECRET": TestSecrets.register("callback-secret-\(UUID().uuidString)")])
        defer { try? server.stop() }
        let key = try server.key("send")
        let posted = try await server.post(
            "/v1/messages?wait=10", key: key,
            json: message("add a note: milk", key: "rebind-1", extra: ["callback_url": .string("http://\(name):\(receiver.port)/hook")])
        )
        // Accepted (the name is checked when it is used), answered, and the reply is there to fetch.
        #expect(posted.status == 200, "\(posted.text)")
        let fetched = try await server.get("/v1/messages/rebind-1", key: key)
        #expect(try fetched.json["replies"]?[0]?["text"] == "Added note 1: milk")
        // The delivery is refused for good, with the reason, and the receiver never hears of it.
        var lastError: String?
        for _ in 0..<100 {
            lastError = try await server.database().read { db in
                try String.fetchOne(db, sql: "SELECT last_error FROM outbox WHERE in_reply_to = 'rebind-1'")
            }
            if lastError != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(lastError?.contains("loopback, private or link-local") == true, "\(lastError ?? "no error recorded")\n\(server.bot.log)")
        #expect(try receiver.records.isEmpty, "nothing reached the address inside")
    }
}
