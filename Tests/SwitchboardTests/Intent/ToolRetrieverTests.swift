// The tool retriever and the intent engine's way to tools of other systems: a request that no
// built-in intent serves reaches the MCP or HTTP tool its words name, with the rest of the
// request as its text argument; close matches are offered as a choice, tools that need more
// arguments say how to call them.

import Foundation
import SwitchboardEngine
import SwitchboardIntent
import SwitchboardModel
@testable import SwitchboardApp
import Testing

@Suite("Tool retriever")
struct ToolRetrieverTests {
    static func tool(_ name: String, _ summary: String, required: [String] = ["query"], origin: ToolOrigin? = nil) -> ToolDescriptor {
        var properties: [String: JSONValue] = [:]
        for name in required { properties[name] = ["type": "string"] }
        return ToolDescriptor(
            name: name, category: "mcp", summary: summary,
            parameters: ["type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string))],
            baseRisk: .low, effect: .readOnly, origin: origin ?? .mcp(server: String(name.split(separator: ".")[1])), returnsUntrustedContent: true
        )
    }

    static let remote: [ToolDescriptor] = [
        tool("mcp.wiki.search", "Search the wiki pages for a word or phrase."),
        tool("mcp.wiki.create_page", "Create a wiki page.", required: ["title", "body"]),
        tool("mcp.tickets.search_issues", "Find issues in the tracker by text."),
        tool("mcp.tickets.create_issue", "Open a new issue in the tracker.", required: ["title"]),
        tool("mcp.drive.find_file", "Find a file in the shared drive by name."),
        tool("mcp.home.lights_off", "Turn off the lights in a room.", required: ["room"]),
        tool("crm.lookup", "Look up a customer in the CRM by email address.", required: ["email"], origin: .http),
    ]

    func planner() -> IntentPlanner {
        IntentPlanner(
            engine: { BuiltinTools.intentEngine }, tools: BuiltinTools.all.map(\.descriptor), clock: SystemWallClock(),
            zoneOf: { _ in TimeZone(identifier: "UTC") }, remoteTools: { Self.remote }
        )
    }

    func plan(_ text: String) async throws -> Plan {
        let message = InboundMessage(
            externalID: "e", conversation: ConversationKey(channel: "test", conversation: ConversationID("room")), sender: Sender(id: "sam"),
            text: text, trust: TrustFacts(senderAuthenticated: true, containsUntrustedContent: false), receivedAt: Date()
        )
        return try await planner().plan(message)
    }

    @Test("BM25 ranks the tool whose name and description a request uses first")
    func ranking() {
        let retriever = ToolRetriever(Self.remote)
        #expect(retriever.rank("search the wiki for onboarding").first?.tool == "mcp.wiki.search")
        #expect(retriever.rank("find the file called budget.xlsx on the drive").first?.tool == "mcp.drive.find_file")
        #expect(retriever.rank("open a new issue in the tracker: printer jammed").first?.tool == "mcp.tickets.create_issue")
        #expect(retriever.rank("turn the lights off in the kitchen").first?.tool == "mcp.home.lights_off")
        #expect(retriever.rank("what's the weather").isEmpty)
    }

    @Test("With no built-in intent for it, a request reaches the remote tool, its subject as the text argument")
    func intentFallback() async throws {
        #expect(try await plan("search the wiki for onboarding") == .call(tool: "mcp.wiki.search", arguments: ["query": "onboarding"]))
        #expect(try await plan("search the wiki about \"holiday policy\"") == .call(tool: "mcp.wiki.search", arguments: ["query": "holiday policy"]))
        #expect(try await plan("find the file budget on the drive") == .call(tool: "mcp.drive.find_file", arguments: ["query": "budget"]))
        // The built-in engine would take this for a notes search; it names the wiki.
        #expect(try await plan("find wiki pages about vpn") == .call(tool: "mcp.wiki.search", arguments: ["query": "vpn"]))
        guard case .reply(let needs) = try await plan("create a wiki page") else { Issue.record("a reply naming the arguments"); return }
        #expect(needs.contains("run mcp.wiki.create_page title=\"…\" body=\"…\""), "\(needs)")
        // The built-in tools keep their own requests.
        #expect(try await plan("add a note: search the wiki") == .call(tool: "notes.add", arguments: ["text": "search the wiki"]))
        guard case .call("notes.search", _) = try await plan("find my notes about the wiki") else { Issue.record("a notes search"); return }
        guard case .call(let tool, _) = try await plan("remind me tomorrow at 9 to call bob") else { Issue.record("a call"); return }
        #expect(tool == "reminders.add")
    }
}
