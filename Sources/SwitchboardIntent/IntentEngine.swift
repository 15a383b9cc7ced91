public import Foundation
public import SwitchboardEngine
public import SwitchboardModel

/// What the intent engine made of a message.
public struct IntentResult: Sendable {
    /// The best intent: a tool name, `help`, `history`, `undo`, or `none`.
    public var intent: String
    /// Its probability.
    public var confidence: Double
    /// The runner-up, for a clarifying question.
    public var alternative: (intent: String, confidence: Double)?
    /// The arguments read from the message, for the tool's schema.
    public var arguments: JSONValue
    /// A question to ask instead, when the message is missing something or is ambiguous
    /// ("When should I remind you?", "Do you mean 3 April or 4 March?").
    public var question: String?
}

/// The local intent engine: classifies a message into a tool chain and reads its arguments.
/// No network; trained at start-up from the examples each tool declares.
public struct IntentEngine: Sendable {
    /// The intent for messages no tool serves.
    public static let none = "none"

    private let classifier: IntentClassifier
    private let speller: SpellingCorrector
    /// Per intent, the literal words of its examples: the "carrier" phrase around the content.
    private let carriers: [String: Set<String>]
    /// Below this, ask rather than act.
    public var threshold: Double

    /// Trains on the tools' examples, plus examples for intents that are not tools (`help`,
    /// `history`, `undo`) and for `none`.
    public init(tools: [ToolDescriptor], extraIntents: [String: [String]], outOfScope: [String] = OutOfScopeExamples.all, threshold: Double = 0.45) {
        var templates: [(String, String)] = []
        for tool in tools {
            for example in tool.examples { templates.append((tool.name, example)) }
        }
        for (intent, examples) in extraIntents.sorted(by: { $0.key < $1.key }) {
            for example in examples { templates.append((intent, example)) }
        }
        var examples: [IntentClassifier.Example] = []
        var carriers: [String: Set<String>] = [:]
        var random = SplitMix64(seed: 42)
        let parser = DateParser(zone: TimeZone(identifier: "UTC")!, now: Date(timeIntervalSince1970: 1_800_000_000))
        for (intent, template) in templates {
            // Only templates with slots say which words are wording: in a concrete example
            // ("remind me tomorrow at 9 to call bob") every word could be content.
            if template.contains("{") { carriers[intent, default: []].formUnion(Self.literalWords(template)) }
            // Each template five times, with different sample values in its slots.
            for _ in 0..<5 {
                let filled = SlotFiller.fill(template, using: &random)
                examples.append(.init(words: Self.normalise(filled, parser: parser).words, intent: intent))
            }
        }
        for text in outOfScope {
            examples.append(.init(words: Self.normalise(text, parser: parser).words, intent: Self.none))
        }
        self.speller = SpellingCorrector(words: Set(examples.flatMap(\.words).filter { !$0.hasPrefix("<") }))
        self.classifier = IntentClassifier(examples: examples)
        self.carriers = carriers
        self.threshold = threshold
    }

    /// The intents it knows.
    public var intents: [String] { classifier.intents }

    /// Classifies a message and reads its arguments, in the person's zone at `now`.
    ///
    /// `priors` are the person's learned shares of tool use: when the message is torn between
    /// two intents that together are likely enough, and the person uses one of them far more
    /// ("add milk": the list they always use), that one is taken instead of asking.
    public func analyse(_ text: String, zone: TimeZone, now: Date, priors: [String: Double] = [:]) -> IntentResult {
        let parser = DateParser(zone: zone, now: now)
        let normal = Self.normalise(text, parser: parser)
        var ranked = classifier.classify(normal.words.map(speller.correct))
        if let preferred = Self.preferred(ranked, priors: priors, threshold: threshold) {
            let combined = ranked[0].probability + ranked[1].probability
            ranked.removeAll { $0.intent == preferred }
            ranked.insert((preferred, combined), at: 0)
        }
        let best = ranked[0]
        var result = IntentResult(
            intent: best.intent, confidence: best.probability,
            alternative: ranked.count > 1 ? (ranked[1].intent, ranked[1].probability) : nil,
            arguments: [:], question: nil
        )
        guard best.intent != Self.none else { return result }
        let reading = ArgumentReader(text: text, tokens: normal.tokens, dates: normal.dates, duration: normal.duration, carriers: carriers[best.intent] ?? [], zone: zone, now: now)
        switch reading.arguments(for: best.intent) {
        case .arguments(let arguments): result.arguments = arguments
        case .question(let question): result.question = question
        }
        return result
    }

    /// The intent of the two most likely that the person's habits decide for, if they do.
    static func preferred(_ ranked: [(intent: String, probability: Double)], priors: [String: Double], threshold: Double) -> String? {
        guard !priors.isEmpty, ranked.count > 1, ranked[0].probability < threshold,
              ranked[0].intent != none, ranked[1].intent != none,
              ranked[0].probability + ranked[1].probability >= threshold else { return nil }
        let first = priors[ranked[0].intent] ?? 0
        let second = priors[ranked[1].intent] ?? 0
        guard max(first, second) >= 0.15, max(first, second) / (first + second) >= 0.75 else { return nil }
        return first >= second ? ranked[0].intent : ranked[1].intent
    }

    /// Every intent's probability for a message, best first: what a language-model planner
    /// uses to route the message and to pick the tool descriptions it sends.
    public func rank(_ text: String, zone: TimeZone, now: Date) -> [(intent: String, probability: Double)] {
        let normal = Self.normalise(text, parser: DateParser(zone: zone, now: now))
        return classifier.classify(normal.words.map(speller.correct))
    }

    struct Normalised {
        var words: [String]
        var tokens: [Token]
        var dates: DateScan
        var duration: (seconds: Int, tokens: [Int])?
    }

    /// Words with dates, durations, emails, numbers and rooms replaced by placeholders.
    static func normalise(_ text: String, parser: DateParser) -> Normalised {
        let tokens = Tokenizer.tokens(text)
        var words = tokens.map(\.lower)
        let duration = DurationParser.scan(tokens)
        if let duration {
            for (n, index) in duration.tokens.enumerated() { words[index] = n == 0 ? "<duration>" : "" }
        }
        let dates = parser.scan(tokens)
        if case .found(let mention) = dates {
            for (n, index) in mention.tokens.enumerated() where words[index] != "" && !words[index].hasPrefix("<") {
                words[index] = n == 0 ? "<when>" : ""
            }
        }
        for index in words.indices where !words[index].isEmpty && !words[index].hasPrefix("<") {
            let word = words[index]
            if word.contains("@" as Character), word.contains("." as Character) {
                words[index] = "<email>"
            } else if word.first == "!" || (word.first == "#" && word.count > 1) {
                words[index] = "<room>"
            } else if word.first?.isNumber == true || (word.first == "+" && word.count > 1) {
                words[index] = word.allSatisfy({ $0.isNumber }) ? "<num>" : (word.contains(where: \.isLetter) ? word : "<num>")
            }
        }
        // Ambiguous dates still look like dates to the classifier.
        if case .ambiguous(let phrase, _) = dates {
            let parts = Set(phrase.lowercased().split(separator: " ").map(String.init))
            for index in words.indices where parts.contains(words[index]) { words[index] = "<when>" }
        }
        return Normalised(words: Self.withoutCourtesy(words.filter { !$0.isEmpty }), tokens: tokens, dates: dates, duration: duration)
    }

    static let courtesyBefore: Set<String> = [
        "please", "pls", "plz", "kindly", "hey", "hi", "hello", "ok", "okay", "so", "could", "can", "would", "you", "u", "mind",
        "just", "quickly", "assistant", "switchboard",
    ]
    static let courtesyAfter: Set<String> = ["please", "pls", "plz", "thanks", "thank", "you", "thx", "ty", "cheers", "mate"]

    /// The request without the courtesy around it ("could you please …, thanks"): it says
    /// nothing about which tool is meant. A message that is nothing but courtesy keeps it.
    static func withoutCourtesy(_ words: [String]) -> [String] {
        var start = 0
        var end = words.count
        while end - start > 1, courtesyBefore.contains(words[start]) { start += 1 }
        while end - start > 1, courtesyAfter.contains(words[end - 1]) { end -= 1 }
        return Array(words[start..<end])
    }

    static func literalWords(_ template: String) -> Set<String> {
        var words = Set<String>()
        for token in Tokenizer.tokens(template) where !token.lower.hasPrefix("{") {
            words.insert(token.lower)
        }
        return words
    }
}

/// Sample values for the `{slot}` markers of example requests.
enum SlotFiller {
    static let samples: [String: [String]] = [
        "text": ["buy milk", "call the bank about the loan", "the wifi password is on the fridge", "renew my passport", "water the plants", "book the venue", "send the invoice to acme", "pick up the kids", "the meeting went well"],
        "query": ["milk", "passport", "invoice", "dentist", "wifi", "bob"],
        "when": ["tomorrow at 9", "next friday", "on 12 march", "at noon", "tonight", "in 2 hours", "monday at 3pm", "on the 5th of june at 10:30"],
        "duration": ["2 hours", "30 minutes", "an hour", "45 minutes"],
        "email": ["bob@example.com", "alice.smith@example.org", "team@example.net"],
        "name": ["alice", "bob smith", "carol", "dr jones", "sam"],
        "number": ["3", "12", "1", "7", "42"],
        "zone": ["tokyo", "europe/berlin", "new york", "utc", "london"],
        "expression": ["17% of 240", "12*7+3", "5 miles to km", "2^10", "100 divided by 8", "70 f in c"],
        "room": ["#ops", "#general", "!abc123:example.org", "the team room"],
        "phone": ["+44 20 7946 0000", "555-0100", "07700 900123"],
        "company": ["acme", "initech", "globex corp"],
    ]

    static func fill(_ template: String, using random: inout SplitMix64) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            let slot = String(rest[rest.index(after: open)..<close])
            let options = samples[slot] ?? ["something"]
            out += options[Int(random.next() % UInt64(options.count))]
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}
