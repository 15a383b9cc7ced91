// A declared HTTP tool: one request template from the configuration, behind the same gate as
// every tool. Its answer is a third party's text (untrusted for the planner); a non-2xx status
// is an error in plain words; an answer over the size limit is cut; redirects are not
// followed (they would carry the tool's headers to another address); and a compensating
// request, when declared, is its undo.

public import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
public import SwitchboardEngine
public import SwitchboardModel

/// A tool that calls an HTTP API as the configuration declares it.
public struct HTTPTool: RemoteTool {
    public let descriptor: ToolDescriptor
    let configuration: HTTPToolConfiguration
    let client: HTTPClient

    /// Creates the tool.
    public init(_ configuration: HTTPToolConfiguration, client: HTTPClient) {
        self.configuration = configuration
        self.client = client
        descriptor = ToolDescriptor(
            name: configuration.name, category: configuration.category, summary: configuration.description,
            parameters: configuration.parameters, baseRisk: configuration.risk,
            effect: configuration.readOnly ? .readOnly : (configuration.undo != nil ? .reversible : .irreversible),
            secretArguments: configuration.secretArguments, origin: .http, returnsUntrustedContent: true
        )
    }

    /// The client for HTTP tools: no redirects, a 5-second connect timeout.
    public static let sharedClient = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(5))
        )
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let checked = try RemoteToolSupport.checked(arguments, descriptor: descriptor)
        let target = "\(configuration.request.method) \(HTTPTemplate.url(configuration.request.url, values: [:]).prefix(120))"
        return PreparedCall(
            arguments: checked, preview: RemoteToolSupport.preview(checked, descriptor: descriptor, target: target), risk: descriptor.baseRisk
        )
    }

    public func perform(_ call: PreparedCall, approval: Approval, context: RemoteCallContext) async throws -> ToolOutput {
        let values = call.arguments.objectValue ?? [:]
        let (status, body, cut) = try await send(configuration.request, values: values, idempotencyKey: context.idempotencyKey)
        guard (200..<300).contains(status.code) else {
            throw ToolFailure("\(descriptor.name) answered \(status.code) \(status.reasonPhrase), so it was not done.")
        }
        let text = String(decoding: body, as: UTF8.self)
        var reply = text.isEmpty ? "Done: \(descriptor.name) answered \(status.code) \(status.reasonPhrase)." : RemoteToolSupport.cut(text)
        if cut { reply += "\n(The answer was longer than \(configuration.maxResponseBytes) bytes; I kept the start.)" }
        var undo: JSONValue?
        if configuration.undo != nil {
            let response = (try? JSONValue.parse(text)) ?? .string(String(text.prefix(10_000)))
            undo = .object(["arguments": call.arguments, "response": response])
        }
        return ToolOutput(
            reply: reply, summary: RemoteToolSupport.digestSummary(body, prefix: "\(configuration.request.method) answered \(status.code)"),
            undo: undo
        )
    }

    public func revert(_ payload: JSONValue, approval: Approval, context: RemoteCallContext) async throws -> String {
        guard let template = configuration.undo else { throw ToolFailure("\(descriptor.name) cannot be undone.") }
        var values = payload.objectValue?["arguments"]?.objectValue ?? [:]
        values["response"] = payload.objectValue?["response"] ?? .null
        let (status, _, _) = try await send(template, values: values, idempotencyKey: context.idempotencyKey + "-undo")
        guard (200..<300).contains(status.code) else {
            throw ToolFailure("\(descriptor.name)'s undo request answered \(status.code) \(status.reasonPhrase), so it was not undone.")
        }
        return "reverted \(descriptor.name) (\(template.method) answered \(status.code))"
    }

    /// Sends one request; the body is cut at the size limit (`cut` says so).
    func send(_ template: HTTPRequestTemplate, values: [String: JSONValue], idempotencyKey: String) async throws -> (HTTPResponseStatus, [UInt8], Bool) {
        var request = HTTPClientRequest(url: HTTPTemplate.url(template.url, values: values))
        request.method = HTTPMethod(rawValue: template.method)
        for (name, value) in configuration.headers { request.headers.replaceOrAdd(name: name, value: value.revealed) }
        request.headers.replaceOrAdd(name: "Idempotency-Key", value: idempotencyKey)
        request.headers.replaceOrAdd(name: "User-Agent", value: "switchboard")
        if template.method != "GET" && template.method != "DELETE" || template.body != nil {
            let body = try template.body.map { try HTTPTemplate.body($0, values: values) } ?? JSONValue.object(values.filter { $0.key != "response" }).canonicalText
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(Int64(configuration.timeout)))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw ToolFailure("\(descriptor.name) did not answer within \(Int(configuration.timeout)) seconds; I don't know whether it acted.")
        } catch {
            throw ToolFailure("\(descriptor.name)'s service is unavailable right now (\(Self.describe(error))).")
        }
        if (300..<400).contains(response.status.code) {
            throw ToolFailure("\(descriptor.name) answered with a redirect (\(response.status.code)), which I don't follow, so it was not done.")
        }
        var collected: [UInt8] = []
        var cut = false
        for try await chunk in response.body {
            let room = configuration.maxResponseBytes - collected.count
            if chunk.readableBytes > room {
                collected += chunk.readableBytesView.prefix(max(0, room))
                cut = true
                break
            }
            collected += chunk.readableBytesView
        }
        return (response.status, collected, cut)
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("connectTimeout") { return "connect timeout" }
        return "connection failed"
    }
}
