import Foundation
import SwitchboardEngine
import SwitchboardIntent
import SwitchboardModel
import Testing

@testable import SwitchboardApp

@Suite("Intent engine evaluation")
struct IntentEvaluationTests {
    struct Labelled {
        var text: String
        var intent: String
    }

    static func heldOut() throws -> [Labelled] {
        let path = try #require(Bundle.module.path(forResource: "heldout", ofType: "jsonl", inDirectory: "Fixtures/intents"))
        return try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).map { line in
            let value = try JSONValue.parse(String(line))
            return Labelled(text: try #require(value["text"]?.stringValue), intent: try #require(value["intent"]?.stringValue))
        }
    }

    @Test("The held-out set is never part of training, and covers every intent")
    func heldOutIsSeparate() throws {
        let examples = try Self.heldOut()
        #expect(examples.count >= 400)
        let training = Set(BuiltinTools.all.flatMap(\.descriptor.examples).map { $0.lowercased() } + OutOfScopeExamples.all)
        let leaked = examples.filter { training.contains($0.text.lowercased()) }
        #expect(leaked.isEmpty, "held-out utterances found in the training examples: \(leaked.map(\.text))")
        let engine = BuiltinTools.intentEngine
        let labels = Set(examples.map(\.intent))
        // Every intent the acceptance names is measured; tools added since (identity linking) may
        // not be, but nothing in the set is an intent the engine lacks.
        let named: Set<String> = [
            "notes.add", "notes.list", "notes.search", "notes.delete", "tasks.add", "tasks.list", "tasks.complete", "tasks.reopen",
            "tasks.delete", "reminders.add", "reminders.list", "reminders.cancel", "calendar.create", "calendar.list", "calendar.move",
            "calendar.cancel", "calendar.export", "contacts.add", "contacts.find", "contacts.update", "contacts.delete", "contacts.log",
            "email.send", "matrix.post", "time.now", "math.calc", "help", "history", "undo", "preferences.set", "preferences.show",
            "preferences.forget", "none",
        ]
        #expect(named.isSubset(of: labels), "not measured: \(named.subtracting(labels))")
        #expect(labels.isSubset(of: Set(engine.intents)), "labels the engine lacks: \(labels.subtracting(engine.intents))")
    }

    @Test("At least 90% of the held-out utterances are classified right")
    func accuracy() throws {
        let examples = try Self.heldOut()
        let engine = BuiltinTools.intentEngine
        let zone = TimeZone(identifier: "Europe/London")!
        let now = Date(timeIntervalSince1970: 1_796_000_000)
        var truePositive: [String: Int] = [:]
        var predicted: [String: Int] = [:]
        var actual: [String: Int] = [:]
        var wrong: [String] = []
        for example in examples {
            let guess = engine.analyse(example.text, zone: zone, now: now).intent
            predicted[guess, default: 0] += 1
            actual[example.intent, default: 0] += 1
            if guess == example.intent {
                truePositive[guess, default: 0] += 1
            } else {
                wrong.append("\(example.intent) → \(guess): \(example.text)")
            }
        }
        let correct = truePositive.values.reduce(0, +)
        let accuracy = Double(correct) / Double(examples.count)
        var report = String(format: "held-out accuracy %.1f%% (%d of %d)\n", accuracy * 100, correct, examples.count)
        report += "intent                 precision  recall  n\n"
        for intent in actual.keys.sorted() {
            let tp = Double(truePositive[intent] ?? 0)
            let precision = predicted[intent].map { tp / Double($0) } ?? 0
            let recall = tp / Double(actual[intent]!)
            report += intent.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: " %8.2f  %6.2f  %d\n", precision, recall, actual[intent]!)
        }
        report += "misclassified:\n" + wrong.joined(separator: "\n")
        print(report)
        #expect(accuracy >= 0.90, "\(report)")
    }
}
