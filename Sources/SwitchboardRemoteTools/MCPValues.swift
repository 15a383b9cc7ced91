// The MCP SDK's `Value` and the gateway's `JSONValue` describe the same JSON; these convert
// between them without a round trip through text.

import Foundation
package import MCP
package import SwitchboardModel

extension JSONValue {
    /// The JSON an MCP value stands for; binary data becomes its base64 text.
    package init(_ value: MCP.Value) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(Int64(number))
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .data(mimeType: _, let data): self = .string(data.base64EncodedString())
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let members): self = .object(members.mapValues(JSONValue.init))
        }
    }
}

extension MCP.Value {
    /// The MCP value for a JSON value.
    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .int(let number): self = .int(Int(number))
        case .double(let number): self = .double(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(MCP.Value.init))
        case .object(let members): self = .object(members.mapValues(MCP.Value.init))
        }
    }
}
