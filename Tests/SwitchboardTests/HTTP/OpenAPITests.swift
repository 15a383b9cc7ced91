import Foundation
import Logging
import Prometheus
import SwitchboardChannels
import SwitchboardHTTP
import SwitchboardModel
import SwitchboardSQLite
import Testing

@Suite("OpenAPI document")
struct OpenAPITests {
    /// Operations the routes need but this check never calls.
    struct NoOperations: GatewayOperations {
        var tools: [ToolSummary] { [] }
        func redacted(_ arguments: JSONValue, tool: String) -> JSONValue { arguments }
        func decide(_ callID: ToolCallID, approve: Bool, operator: APIPrincipal) async throws -> OperatorDecision {
            throw OperatorDecisionError.notFound
        }
        func forgetPreferences(of person: PersonID, operator: APIPrincipal) async throws -> Int { 0 }
    }

    @Test("Every route the server has is in /openapi.json, and every documented operation is a route")
    func routesMatchDocument() throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(path: directory.path + "/openapi.sqlite")
        let logger = Logger(label: "test")
        let api = APIChannel(store: store, callbackSecret: nil, logger: logger)
        let server = HTTPServer(
            configuration: HTTPConfiguration(), store: store, inbox: InboxWriter(store: store, signal: WorkSignal()), api: api,
            channels: [api], operations: NoOperations(), registry: PrometheusCollectorRegistry(), logger: logger
        )
        // Hummingbird writes parameters as ":id"; OpenAPI as "{id}".
        let routes = Set(server.routeList().map { route in
            let path = route.path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "\(route.method.uppercased()) /\(path)"
        })
        let document = try JSONValue.parse(server.openAPIDocument)
        #expect(document["openapi"] == "3.1.0")
        var documented = Set<String>()
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for method in (item.objectValue ?? [:]).keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(routes.count == 15, "\(routes.sorted())")
        #expect(routes.subtracting(documented).isEmpty, "routes missing from the document: \(routes.subtracting(documented).sorted())")
        #expect(documented.subtracting(routes).isEmpty, "documented operations with no route: \(documented.subtracting(routes).sorted())")

        // Every $ref points at something the document defines.
        var refs: [String] = []
        func collect(_ value: JSONValue) {
            switch value {
            case .object(let object):
                if let ref = object["$ref"]?.stringValue { refs.append(ref) }
                object.values.forEach(collect)
            case .array(let items): items.forEach(collect)
            default: break
            }
        }
        collect(document)
        for ref in Set(refs) {
            let parts = ref.dropFirst(2).split(separator: "/").map(String.init)
            var node: JSONValue? = document
            for part in parts { node = node?[part] }
            #expect(node != nil, "\(ref) is not defined")
        }
    }
}
