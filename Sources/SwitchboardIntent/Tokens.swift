import Foundation

/// A word of the message with where it is, so spans can be cut out of the original text.
struct Token: Sendable {
    /// The word as written, without surrounding punctuation.
    var text: String
    /// Lowercased.
    var lower: String
    /// Where it is in the original text.
    var range: Range<String.Index>
}

enum Tokenizer {
    /// Splits on white space and trims surrounding punctuation, keeping what lives inside a word
    /// (`15:30`, `3/4`, `alice@example.com`, `e-mail`).
    static func tokens(_ text: String) -> [Token] {
        var tokens: [Token] = []
        var index = text.startIndex
        let trim: Set<Character> = [",", ".", "!", "?", ";", ":", "(", ")", "\"", "'", "“", "”", "‘", "’", "[", "]", "{", "}", "…"]
        while index < text.endIndex {
            while index < text.endIndex, text[index].isWhitespace { index = text.index(after: index) }
            guard index < text.endIndex else { break }
            var end = index
            while end < text.endIndex, !text[end].isWhitespace { end = text.index(after: end) }
            var start = index
            var stop = end
            // A leading "!" or "#" is part of a room id ("!abc:example.org", "#ops").
            while start < stop, trim.contains(text[start]), text[start] != "!" { start = text.index(after: start) }
            while stop > start, trim.contains(text[text.index(before: stop)]) { stop = text.index(before: stop) }
            if start < stop {
                let word = String(text[start..<stop])
                tokens.append(Token(text: word, lower: word.lowercased(), range: start..<stop))
            }
            index = end
        }
        return tokens
    }
}
