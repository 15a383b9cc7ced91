public import SwitchboardEngine
public import SwitchboardModel
public import Foundation

/// Tools that keep no data: the time, a calculator.
public enum UtilityTools {
    /// All of them.
    public static var all: [any Tool] { [TimeNow(), MathCalc()] }

    /// A time zone from an IANA name ("Europe/Berlin"), an abbreviation ("UTC", "CET") or a
    /// well-known city ("Tokyo", "new york").
    public static func zone(named raw: String) -> TimeZone? {
        let name = raw.trimmingWhitespace()
        if let zone = TimeZone(identifier: name) { return zone }
        let key = name.lowercased().replacingOccurrences(of: " ", with: "_")
        if let match = TimeZone.knownTimeZoneIdentifiers.first(where: { $0.lowercased() == key || $0.lowercased().hasSuffix("/" + key) }) {
            return TimeZone(identifier: match)
        }
        if let extra = cityZones[name.lowercased()] { return TimeZone(identifier: extra) }
        if name.count <= 5, let zone = TimeZone(abbreviation: name.uppercased()) { return zone }
        return nil
    }

    /// Cities people ask about whose zone is not named after them.
    static let cityZones: [String: String] = [
        "san francisco": "America/Los_Angeles", "seattle": "America/Los_Angeles", "boston": "America/New_York",
        "washington": "America/New_York", "miami": "America/New_York", "beijing": "Asia/Shanghai", "mumbai": "Asia/Kolkata",
        "delhi": "Asia/Kolkata", "new delhi": "Asia/Kolkata", "bangalore": "Asia/Kolkata", "munich": "Europe/Berlin",
        "frankfurt": "Europe/Berlin", "hamburg": "Europe/Berlin", "barcelona": "Europe/Madrid", "milan": "Europe/Rome",
        "geneva": "Europe/Zurich", "edinburgh": "Europe/London", "manchester": "Europe/London", "montreal": "America/Toronto",
        "osaka": "Asia/Tokyo", "kyoto": "Asia/Tokyo", "melbourne": "Australia/Melbourne", "hawaii": "Pacific/Honolulu",
        "california": "America/Los_Angeles", "new york city": "America/New_York", "nyc": "America/New_York", "la": "America/Los_Angeles",
    ]
}

/// `time.now`: the date and time, in the person's zone or another.
public struct TimeNow: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "time.now",
        category: "time",
        summary: "Tell the date and time, anywhere",
        parameters: ["type": "object", "properties": ["zone": ["type": "string"]], "additionalProperties": false],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("time.now"),
        usage: ToolExamples.usage["time.now"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        if let name = try RecordTools.optionalText(arguments, "zone", maxLength: 100) {
            guard let zone = UtilityTools.zone(named: name) else {
                throw ToolFailure("I don't know the time zone \"\(name)\". Try a zone name such as Europe/Berlin or a big city.")
            }
            return PreparedCall(arguments: ["zone": .string(zone.identifier)], preview: "Tell the time in \(zone.identifier)", risk: .low)
        }
        return PreparedCall(arguments: [:], preview: "Tell the time", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let zone = call.arguments["zone"]?.stringValue.flatMap(TimeZone.init(identifier:)) ?? RecordTools.zone(context)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "EEEE d MMMM yyyy, HH:mm"
        let offset = zone.secondsFromGMT(for: context.now)
        let sign = offset < 0 ? "-" : "+"
        let utc = String(format: "UTC%@%02d:%02d", sign, abs(offset) / 3600, abs(offset) % 3600 / 60)
        return ToolOutput(reply: "It's \(formatter.string(from: context.now)) in \(zone.identifier) (\(utc)).", summary: "time in \(zone.identifier)")
    }
}

/// `math.calc`: arithmetic and unit conversion.
public struct MathCalc: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "math.calc",
        category: "math",
        summary: "Do arithmetic and convert units",
        parameters: [
            "type": "object",
            "properties": ["expression": ["type": "string", "minLength": 1, "maxLength": 300]],
            "required": ["expression"],
            "additionalProperties": false,
        ],
        baseRisk: .low,
        effect: .readOnly,
        examples: ToolExamples.examples("math.calc"),
        usage: ToolExamples.usage["math.calc"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        let expression = try RecordTools.text(arguments, "expression", required: "What should I calculate? Try: 17% of 240, or 5 miles to km", maxLength: 300)
        return PreparedCall(arguments: ["expression": .string(expression)], preview: "Calculate \(expression)", risk: .low)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let expression = call.arguments["expression"]?.stringValue ?? ""
        do {
            let result = try Calculator.evaluate(expression)
            return ToolOutput(reply: result.contains("=") ? result : "\(expression) = \(result)", summary: "calculated")
        } catch let failure as Calculator.Failure {
            throw ToolFailure(failure.message)
        }
    }
}

/// `email.send` and `matrix.post`: messages to someone else, through the outbox and the channel.
/// High risk and irreversible: they always wait for a yes.
public enum SendingTools {
    /// Both.
    public static var all: [any Tool] { [EmailSend(), MatrixPost()] }
}

/// `email.send`: sends an email.
public struct EmailSend: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "email.send",
        category: "email",
        summary: "Send an email (after you confirm)",
        parameters: [
            "type": "object",
            "properties": [
                "to": ["type": "string", "minLength": 2, "description": "an address, or the first name of someone the person has emailed before"],
                "subject": ["type": "string", "maxLength": 200],
                "body": ["type": "string", "minLength": 1, "maxLength": 20000],
            ],
            "required": ["to", "body"],
            "additionalProperties": false,
        ],
        baseRisk: .high,
        effect: .irreversible,
        examples: ToolExamples.examples("email.send"),
        usage: ToolExamples.usage["email.send"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard var to = arguments["to"]?.stringValue?.trimmingWhitespace().lowercased(), !to.isEmpty else {
            throw ToolFailure("Who should I email? Give an address, e.g. email bob@example.com that the report is ready.")
        }
        var usual = ""
        if !ContactsTools.isEmail(to) {
            // A first name: the address the person always means by it, once that is clear.
            guard let address = try context.usualAddress(for: to), ContactsTools.isEmail(address) else {
                throw ToolFailure("Who is \(to)? Give their address, e.g. email bob@example.com that the report is ready.")
            }
            usual = " (your usual \(to.capitalized))"
            to = address
        }
        let body = try RecordTools.text(arguments, "body", required: "What should the email say?", maxLength: 20000)
        // A subject flows into a mail header: no line breaks, whatever the caller sent.
        let subject = (try RecordTools.optionalText(arguments, "subject", maxLength: 200))?
            .components(separatedBy: .newlines).joined(separator: " ")
            ?? String(body.split(whereSeparator: \.isNewline).first?.prefix(60) ?? "")
        guard context.sendingChannels.contains("email") else {
            throw ToolFailure("I can't send email: no email account is configured for me.")
        }
        return PreparedCall(
            arguments: ["to": .string(to), "subject": .string(subject), "body": .string(body)],
            preview: "Send an email to \(to)\(usual)\nSubject: \(subject)\n\n\(body)", risk: .high
        )
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let to = call.arguments["to"]?.stringValue ?? ""
        try context.send(
            to: ConversationKey(channel: "email", conversation: ConversationID(to)), recipient: PersonID("email:\(to)"),
            subject: call.arguments["subject"]?.stringValue, text: call.arguments["body"]?.stringValue ?? "", relayed: true
        )
        return ToolOutput(reply: "Sending your email to \(to).", summary: "email queued to \(to)")
    }
}

/// `matrix.post`: posts a message to another Matrix room the assistant is in.
public struct MatrixPost: Tool {
    public init() {}

    public let descriptor = ToolDescriptor(
        name: "matrix.post",
        category: "matrix",
        summary: "Post a message in another Matrix room (after you confirm)",
        parameters: [
            "type": "object",
            "properties": [
                "room": ["type": "string", "minLength": 2, "description": "a room id such as !abc:example.org"],
                "text": ["type": "string", "minLength": 1, "maxLength": 20000],
            ],
            "required": ["room", "text"],
            "additionalProperties": false,
        ],
        baseRisk: .high,
        effect: .irreversible,
        examples: ToolExamples.examples("matrix.post"),
        usage: ToolExamples.usage["matrix.post"]
    )

    public func prepare(_ arguments: JSONValue, context: ToolContext) throws -> PreparedCall {
        guard let room = arguments["room"]?.stringValue?.trimmingWhitespace(), room.hasPrefix("!"), room.contains(":") else {
            throw ToolFailure("Which room? Give the room id (it starts with ! and has a colon, e.g. !abc:example.org); room aliases aren't supported yet.")
        }
        let text = try RecordTools.text(arguments, "text", required: "What should I post?", maxLength: 20000)
        guard context.sendingChannels.contains("matrix") else {
            throw ToolFailure("I can't post to Matrix rooms: no Matrix account is configured for me.")
        }
        return PreparedCall(arguments: ["room": .string(room), "text": .string(text)], preview: "Post in \(room): \(text)", risk: .high)
    }

    public func execute(_ call: PreparedCall, approval: Approval, context: ToolContext) throws -> ToolOutput {
        let room = call.arguments["room"]?.stringValue ?? ""
        try context.send(to: ConversationKey(channel: "matrix", conversation: ConversationID(room)), recipient: nil, subject: nil, text: call.arguments["text"]?.stringValue ?? "", relayed: true)
        return ToolOutput(reply: "Posting in \(room).", summary: "message queued to \(room)")
    }
}
