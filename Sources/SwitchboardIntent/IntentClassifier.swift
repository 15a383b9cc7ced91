// A softmax-regression (multinomial logistic) classifier over word, word-pair and character
// trigram features, trained at start-up from the example requests the tools declare.
//
// Character trigrams carry typos ("remnd" still shares "rem", "emi" … with "remind"); word
// pairs carry order ("delete note" vs "note that"). Dates, emails, numbers and room names are
// replaced by placeholders before features are taken, so "remind me tomorrow at 9" and
// "remind me on 12 march" look alike, and the examples' `{when}` slots mean the same thing.

import Foundation

/// Classifies a normalised message into one of the intents it was trained on.
public struct IntentClassifier: Sendable {
    /// The intents, in the order of the weight rows.
    public let intents: [String]
    private let vocabulary: [String: Int32]
    /// `weights[feature * intents.count + intent]`.
    private let weights: [Float]
    private let bias: [Float]

    /// One labelled example: placeholder-normalised words and the intent.
    public struct Example: Sendable {
        public var words: [String]
        public var intent: String

        public init(words: [String], intent: String) {
            self.words = words
            self.intent = intent
        }
    }

    /// Trains on labelled examples. Deterministic: the same examples give the same model.
    public init(examples: [Example], epochs: Int = 30) {
        let intents = Array(Set(examples.map(\.intent))).sorted()
        let intentIndex = Dictionary(uniqueKeysWithValues: intents.enumerated().map { ($1, $0) })
        var vocabulary: [String: Int32] = [:]
        var encoded: [(features: [Int32], value: Float, label: Int)] = []
        encoded.reserveCapacity(examples.count)
        for example in examples {
            let names = Self.features(example.words)
            var ids: [Int32] = []
            ids.reserveCapacity(names.count)
            for name in names {
                if let id = vocabulary[name] {
                    ids.append(id)
                } else {
                    let id = Int32(vocabulary.count)
                    vocabulary[name] = id
                    ids.append(id)
                }
            }
            let unique = Array(Set(ids))
            encoded.append((unique, 1 / Float(max(1, unique.count)).squareRoot(), intentIndex[example.intent]!))
        }
        let classes = intents.count
        var weights = [Float](repeating: 0, count: vocabulary.count * classes)
        var bias = [Float](repeating: 0, count: classes)
        var scores = [Float](repeating: 0, count: classes)
        var random = SplitMix64(seed: 0x5EED)
        var order = Array(encoded.indices)
        let l2: Float = 1e-5
        for epoch in 0..<epochs {
            // Fisher–Yates with a fixed seed: shuffled, but the same every run.
            for k in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(k, Int(random.next() % UInt64(k + 1)))
            }
            let rate: Float = 0.5 / (1 + Float(epoch) * 0.2)
            for index in order {
                let (features, value, label) = encoded[index]
                for c in 0..<classes { scores[c] = bias[c] }
                for f in features {
                    let row = Int(f) * classes
                    for c in 0..<classes { scores[c] += weights[row + c] * value }
                }
                Self.softmax(&scores)
                for c in 0..<classes {
                    let gradient = scores[c] - (c == label ? 1 : 0)
                    bias[c] -= rate * gradient
                    let step = rate * gradient * value
                    for f in features {
                        let slot = Int(f) * classes + c
                        weights[slot] -= step + rate * l2 * weights[slot]
                    }
                }
            }
        }
        self.intents = intents
        self.vocabulary = vocabulary
        self.weights = weights
        self.bias = bias
    }

    /// Every intent's probability for a normalised message, best first.
    public func classify(_ words: [String]) -> [(intent: String, probability: Double)] {
        let classes = intents.count
        var scores = bias
        var ids: [Int32] = []
        for name in Self.features(words) {
            if let id = vocabulary[name] { ids.append(id) }
        }
        let unique = Array(Set(ids))
        let value = 1 / Float(max(1, unique.count)).squareRoot()
        for f in unique {
            let row = Int(f) * classes
            for c in 0..<classes { scores[c] += weights[row + c] * value }
        }
        Self.softmax(&scores)
        return zip(intents, scores).map { ($0, Double($1)) }.sorted { $0.probability > $1.probability }
    }

    static func softmax(_ scores: inout [Float]) {
        let top = scores.max() ?? 0
        var sum: Float = 0
        for c in scores.indices {
            scores[c] = expf(scores[c] - top)
            sum += scores[c]
        }
        for c in scores.indices { scores[c] /= sum }
    }

    /// Feature names of a normalised message.
    static func features(_ words: [String]) -> [String] {
        var features: [String] = []
        features.reserveCapacity(words.count * 8)
        var previous = "<s>"
        for word in words {
            features.append("w:" + word)
            features.append("b:" + previous + " " + word)
            previous = word
            guard !word.hasPrefix("<"), word.count >= 3 else { continue }
            let padded = Array(" " + word + " ")
            for k in 0...(padded.count - 3) {
                features.append("c:" + String(padded[k..<(k + 3)]))
            }
        }
        features.append("b:" + previous + " </s>")
        return features
    }
}

/// A small, fast, seedable generator (SplitMix64), so training and example filling are repeatable.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
