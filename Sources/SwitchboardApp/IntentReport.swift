public import Foundation
import SwitchboardIntent
import SwitchboardModel
import SwitchboardSQLite
import SwitchboardStorage

/// `switchboard intent`: what the intent engine makes of a message, for debugging, and a
/// benchmark of its speed.
public enum IntentReport {
    /// The analysis of one message as one JSON object: `{"intent", "confidence", "arguments"}`,
    /// plus `question` and `alternative` when there are any.
    public static func json(_ text: String, zone: TimeZone, now: Date = Date()) -> String {
        let result = BuiltinTools.intentEngine.analyse(text, zone: zone, now: now)
        var object: [String: JSONValue] = [
            "intent": .string(result.intent),
            "confidence": .double((result.confidence * 1000).rounded() / 1000),
            "arguments": result.arguments,
        ]
        if let question = result.question { object["question"] = .string(question) }
        if let alternative = result.alternative {
            object["alternative"] = ["intent": .string(alternative.intent), "confidence": .double((alternative.confidence * 1000).rounded() / 1000)]
        }
        return JSONValue.object(object).canonicalText
    }

    /// The time zone a person set, from the store, if any.
    public static func zone(of person: String, gateway: Gateway) async throws -> TimeZone? {
        let name = try await gateway.store.read { try $0.preferences(of: PersonID(person)).first { $0.key == "timezone" }?.value.stringValue }
        return name.flatMap(TimeZone.init(identifier:))
    }

    /// Classifies every message `rounds` times and reports the time per message: p50, p99, max,
    /// in microseconds, with the number of tools loaded.
    public static func benchmark(_ messages: [String], rounds: Int) -> String {
        let engine = BuiltinTools.intentEngine
        let zone = TimeZone(identifier: "UTC")!
        let now = Date()
        var samples: [Double] = []
        samples.reserveCapacity(messages.count * rounds)
        var perMessage = [Double](repeating: 0, count: messages.count)
        let clock = ContinuousClock()
        for _ in 0..<rounds {
            for (index, message) in messages.enumerated() {
                let start = clock.now
                _ = engine.analyse(message, zone: zone, now: now)
                let elapsed = clock.now - start
                let micros = Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6
                samples.append(micros)
                perMessage[index] += micros / Double(rounds)
            }
        }
        samples.sort()
        let slowest = perMessage.indices.max { perMessage[$0] < perMessage[$1] }.map { (messages[$0], perMessage[$0]) }
        func percentile(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
        var report = String(
            format: "%d messages × %d rounds, %d tools, %d intents: p50 %.1f µs, p99 %.1f µs, max %.1f µs",
            messages.count, rounds, BuiltinTools.all.count, engine.intents.count, percentile(0.5), percentile(0.99), samples.last ?? 0
        )
        if let (message, micros) = slowest { report += String(format: "\nslowest on average (%.1f µs): ", micros) + message }
        return report
    }
}
