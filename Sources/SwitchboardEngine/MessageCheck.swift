import SwitchboardModel

// Bad input gets a clear answer and never reaches a tool: empty messages, messages over the
// size limit, text that was not valid UTF-8 (adapters decode with U+FFFD replacement). Control
// characters are removed (they could rewrite someone's terminal when a note is shown), keeping
// newlines and tabs.

/// Checks and cleans a message's text before planning.
public enum MessageCheck {
    /// The outcome.
    public enum Outcome: Hashable, Sendable {
        /// Plan this cleaned text.
        case ok(String)
        /// Answer with this sentence instead.
        case refuse(String)
    }

    /// Checks a text.
    public static func check(_ text: String, maxBytes: Int) -> Outcome {
        let size = text.utf8.count
        if size > maxBytes {
            return .refuse("Your message is \(size) bytes long; I read messages up to \(maxBytes) bytes. Please send something shorter.")
        }
        if text.unicodeScalars.contains("\u{FFFD}") {
            return .refuse("Part of your message wasn't valid text (not UTF-8), so I didn't act on it. Please send it again.")
        }
        var clean = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let value = scalar.value
            let isControl = (value < 0x20 && scalar != "\n" && scalar != "\t") || (0x7F...0x9F).contains(value)
            if !isControl { clean.append(scalar) }
        }
        let cleaned = String(clean).trimmingWhitespace()
        if cleaned.isEmpty {
            return .refuse("I got an empty message. Say \"help\" to see what I can do.")
        }
        return .ok(cleaned)
    }
}
