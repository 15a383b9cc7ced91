/// Corrects a word to a known one at one edit (a letter deleted, added, changed, or two
/// swapped), so "remnd", "notez", "calender" and "reopn" read as the words the examples use.
/// Symmetric-delete lookup: every known word is indexed under itself with each letter removed,
/// and an unknown word is looked up the same way, so a lookup costs a few hash probes.
struct SpellingCorrector: Sendable {
    private let known: Set<String>
    private let deletes: [String: String]

    init(words: Set<String>) {
        known = words
        var deletes: [String: String] = [:]
        for word in words.sorted() where word.count >= 4 && word.allSatisfy(\.isLetter) {
            for variant in Self.variants(word) where deletes[variant] == nil { deletes[variant] = word }
        }
        for word in words.sorted() where word.count >= 4 && word.allSatisfy(\.isLetter) { deletes[word] = deletes[word] ?? word }
        self.deletes = deletes
    }

    /// The word itself when known or too short to guess, else the nearest known word, else itself.
    func correct(_ word: String) -> String {
        guard word.count >= 4, !known.contains(word), word.allSatisfy(\.isLetter) else { return word }
        if let match = deletes[word] { return match }
        for variant in Self.variants(word) {
            if let match = deletes[variant] { return match }
        }
        return word
    }

    private static func variants(_ word: String) -> [String] {
        let letters = Array(word)
        return letters.indices.map { index in
            var copy = letters
            copy.remove(at: index)
            return String(copy)
        }
    }
}
