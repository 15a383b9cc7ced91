import Foundation
import SwitchboardModel

/// Reads a tool's arguments out of a classified message: dates, durations, emails, numbers,
/// quoted text, names, and the free text left once the request's own wording is removed.
struct ArgumentReader {
    enum Reading {
        case arguments(JSONValue)
        case question(String)
    }

    let text: String
    let tokens: [Token]
    let dates: DateScan
    let duration: (seconds: Int, tokens: [Int])?
    /// The literal words of the intent's examples.
    let carriers: Set<String>
    let zone: TimeZone
    let now: Date
    /// A repeat read out of the message ("every Monday"), for the tools that take one.
    var recurrence: RecurrenceMention? = nil

    static let politeness: Set<String> = [
        "please", "pls", "plz", "kindly", "hey", "hi", "hello", "can", "could", "would", "will", "you", "u", "thanks", "thank",
        "thx", "ok", "okay", "so", "just", "mind", "assistant", "bot", "quickly", "now", "for", "me", "i", "want", "need", "like", "to",
        "a", "an", "my", "the", "that", "about", "saying", "and", "of", "with", "as",
    ]

    func arguments(for intent: String) -> Reading {
        switch intent {
        case "notes.add":
            guard let body = content() else { return .question("What should the note say? Try: add a note: buy milk") }
            return .arguments(["text": .string(body)])
        case "notes.list", "reminders.list", "preferences.show", "preferences.forget", "help", "history":
            return .arguments([:])
        case "notes.search":
            guard let query = quoted() ?? remainder() else { return .question("What should I search your notes for?") }
            return .arguments(["query": .string(query)])
        case "notes.delete":
            if !numbers.isEmpty { return .arguments(["ids": .array(numbers.map { .int(Int64($0)) })]) }
            if has("all") || has("every") || has("everything") { return .arguments(["all": true]) }
            guard let query = quoted() ?? remainder() else { return .question("Which note? Say: delete note 3") }
            return .arguments(["query": .string(query)])
        case "tasks.add":
            guard let title = content(excludingDates: true) else { return .question("What's the task? Try: add task renew passport") }
            var arguments: [String: JSONValue] = ["title": .string(title)]
            switch dates {
            case .found(let mention): arguments["due"] = .string(Self.iso(mention.hasTime ? mention.date : at(hour: 17, on: mention.date)))
            case .ambiguous(let phrase, let options): return .question(ambiguity(phrase, options))
            case .invalid(let phrase): return .question("\(phrase) isn't a date that exists; which day do you mean?")
            case .none: break
            }
            return .arguments(.object(arguments))
        case "tasks.list":
            if has("done") || has("completed") || has("finished") || has("complete") { return .arguments(["status": "done"]) }
            if has("all") { return .arguments(["status": "all"]) }
            return .arguments([:])
        case "calendar.cancel" where has("everything") || lowers.indices.contains(where: { i in
            // "cancel all my meetings", "every event on friday"; not "cancel all hands friday".
            ["all", "every"].contains(lowers[i]) && i + 1 < lowers.count
                && ["my", "the", "of", "events", "event", "meetings", "meeting", "appointments", "appointment", "calls"].contains(lowers[i + 1])
        }):
            // "cancel all my meetings tomorrow": every event of that day (or span).
            guard case .found(let mention) = dates else { return .question("Cancel everything on which day? Say: cancel all my meetings tomorrow") }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let from = mention.hasTime ? mention.date : calendar.startOfDay(for: mention.date)
            let to = mention.end ?? calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: mention.date))!
            return .arguments(["all": true, "from": .string(Self.iso(from)), "to": .string(Self.iso(to))])
        case "tasks.complete", "tasks.reopen", "reminders.cancel", "calendar.cancel", "contacts.delete":
            if let id = numbers.first { return .arguments(["id": .int(Int64(id))]) }
            guard let query = quoted() ?? remainder(excludingDates: true) else { return .question("Which one? Give its number.") }
            return .arguments(["query": .string(query)])
        case "tasks.delete":
            if let id = numbers.first { return .arguments(["id": .int(Int64(id))]) }
            if has("done") || has("finished") || has("completed") { return .arguments(["done": true]) }
            guard let query = quoted() ?? remainder() else { return .question("Which task? Say: delete task 3") }
            return .arguments(["query": .string(query)])
        case "reminders.add":
            // Set once, a "remind me every Monday" would be quietly half-done: say so instead.
            if RecurrenceReader.read(tokens, zone: zone, now: now) != nil {
                return .question("I can't repeat reminders yet; I can set one for the next time (say it without \"every\"), or put it in your calendar as a repeating event.")
            }
            let mention: DateMention
            switch dates {
            case .found(let found): mention = found
            case .ambiguous(let phrase, let options): return .question(ambiguity(phrase, options))
            case .invalid(let phrase): return .question("\(phrase) isn't a date that exists; when should I remind you?")
            case .none: return .question("When should I remind you? Try: remind me tomorrow at 9 to call Bob")
            }
            guard let body = content(excludingDates: true) else { return .question("What should I remind you of?") }
            // A day without a time is the morning of it, as the person means "morning".
            let when = mention.hasTime ? mention.date : at(hour: 9, on: mention.date)
            var arguments: [String: JSONValue] = ["text": .string(body), "at": .string(Self.iso(when))]
            if let part = mention.hasTime ? mention.dayPart : .morning { arguments["day_part"] = .string(part.rawValue) }
            return .arguments(.object(arguments))
        case "calendar.create":
            guard let recurrence = RecurrenceReader.read(tokens, zone: zone, now: now) else { return calendarCreate() }
            var reader = self
            reader.recurrence = recurrence
            return reader.repeatingCalendarCreate(recurrence)
        case "calendar.list", "calendar.export":
            switch dates {
            case .found(let mention):
                let from = mention.hasTime ? startOfDay(mention.date) : mention.date
                let to = mention.end ?? Calendar.gregorian(zone).date(byAdding: .day, value: 1, to: from)!
                return .arguments(["from": .string(Self.iso(from)), "to": .string(Self.iso(to))])
            case .ambiguous(let phrase, let options): return .question(ambiguity(phrase, options))
            case .invalid(let phrase): return .question("\(phrase) isn't a date that exists; which day do you mean?")
            case .none: return .arguments([:])
            }
        case "calendar.move":
            var arguments: [String: JSONValue] = [:]
            switch dates {
            case .found(let mention):
                guard mention.hasTime else { return .question("At what time on that day?") }
                arguments["start"] = .string(Self.iso(mention.date))
                if let until = mention.until { arguments["end"] = .string(Self.iso(until)) }
            case .ambiguous(let phrase, let options): return .question(ambiguity(phrase, options))
            case .invalid(let phrase): return .question("\(phrase) isn't a date that exists; when should it move to?")
            case .none: return .question("To when? Try: move event 3 to Friday at 10")
            }
            if let id = numbers.first { arguments["id"] = .int(Int64(id)) } else {
                guard let query = quoted() ?? remainder(excludingDates: true) else { return .question("Which event? Give its number.") }
                arguments["query"] = .string(query)
            }
            return .arguments(.object(arguments))
        case "contacts.add":
            return contactsAdd()
        case "contacts.find":
            if let email = emails.first { return .arguments(["query": .string(email)]) }
            if let name = possessive() { return .arguments(["query": .string(name)]) }
            let query = remainder(extra: ["email", "address", "phone", "number", "details", "contact", "contacts", "info", "who", "is", "what's", "whats", "at", "find", "look", "up", "works"])
            return .arguments(query.map { ["query": .string($0)] } ?? [:])
        case "contacts.update":
            return contactsUpdate()
        case "contacts.log":
            guard let name = afterWord("with") ?? possessive() else { return .question("With whom? Try: log call with Alice: discussed renewal") }
            let body = colonText() ?? quoted() ?? text.trimmingWhitespace()
            return .arguments(["name": .string(name), "text": .string(body)])
        case "identity.link":
            guard let email = emails.first else { return .question("Which address? Try: link my email sam@example.org") }
            return .arguments(["email": .string(email)])
        case "identity.verify":
            guard let code = tokens.map(\.text).first(where: { $0.count == 6 && $0.allSatisfy(\.isNumber) }) else {
                return .question("The code has 6 digits. Try: link code 123456")
            }
            return .arguments(["code": .string(code)])
        case "contacts.merge":
            if numbers.count >= 2 { return .arguments(["ids": [.int(Int64(numbers[0])), .int(Int64(numbers[1]))]]) }
            // "Bob Smith and Robert Smith are the same person": two capitalised names.
            let names = nameRuns()
            guard names.count >= 2 else { return .question("Which two contacts? Try: merge Bob Smith and Robert Smith (or: merge contacts 3 and 7)") }
            return .arguments(["names": [.string(names[0]), .string(names[1])]])
        case "email.send":
            // An address, or a first name the email tool may know ("email bob that …").
            guard let to = emails.first ?? recipientName() else { return .question("Who should I email? Give their address, e.g. email bob@example.com that the report is ready.") }
            guard let body = quoted() ?? colonText() ?? after(["saying", "that", "say", "telling", "tell", "asking", "message"]) else {
                return .question("What should the email to \(to) say?")
            }
            return .arguments(["to": .string(to), "body": .string(body)])
        case "matrix.post":
            guard let room = tokens.first(where: { $0.text.first == "!" || $0.text.first == "#" })?.text else {
                return .question("Which room? Give the room id, e.g. post in !abc:example.org: deploy done")
            }
            guard let body = quoted() ?? colonText() ?? after(["saying", "that", "say", "message"]) else { return .question("What should I post in \(room)?") }
            return .arguments(["room": .string(room), "text": .string(body)])
        case "time.now":
            if let zone = afterWord("in", all: true) ?? afterWord("for", all: true) { return .arguments(["zone": .string(zone)]) }
            return .arguments([:])
        case "math.calc":
            guard let expression = remainder(extra: ["what", "what's", "whats", "is", "calculate", "calc", "compute", "convert", "how", "much", "many", "work", "out", "tell", "equals", "equal"], useCarriers: false) else {
                return .question("What should I calculate? Try: 17% of 240")
            }
            return .arguments(["expression": .string(expression)])
        case "undo":
            // A count only where it is one: "undo 3", "undo the last 3", "undo 3 times". "Undo
            // deleting task 7" is one undo, not seven.
            for (index, token) in tokens.enumerated() {
                guard let count = Int(token.lower), count > 0 else { continue }
                let before = index > 0 ? tokens[index - 1].lower : ""
                let after = index + 1 < tokens.count ? tokens[index + 1].lower : ""
                if ["undo", "last", "revert"].contains(before) && index == tokens.count - 1 || ["times", "changes", "things", "actions", "steps"].contains(after) {
                    return .arguments(["nth": .int(Int64(count))])
                }
            }
            return .arguments([:])
        case "preferences.set":
            return preference()
        default:
            return .arguments([:])
        }
    }

    // MARK: Pieces

    /// The one-word name after "email"/"mail"/"write to" ("email bob that …" → "bob").
    private func recipientName() -> String? {
        guard let index = lowers.firstIndex(where: { ["email", "mail", "e-mail"].contains($0) }) else { return nil }
        var next = index + 1
        if next < tokens.count, lowers[next] == "to" { next += 1 }
        guard next < tokens.count else { return nil }
        let word = lowers[next]
        let stops: Set<String> = ["that", "saying", "say", "about", "the", "a", "an", "me", "my", "them", "him", "her", "and", "with"]
        guard word.count >= 2, word.allSatisfy(\.isLetter), !stops.contains(word) else { return nil }
        return word
    }

    private var lowers: [String] { tokens.map(\.lower) }

    private func has(_ word: String) -> Bool { lowers.contains(word) }

    /// Whole numbers written as digits, outside dates, durations, emails and phone numbers.
    private var numbers: [Int] {
        let excluded = excludedTokens(dates: true)
        return tokens.indices.filter { !excluded.contains($0) }.compactMap { index in
            let word = tokens[index].lower.hasPrefix("#") ? String(tokens[index].lower.dropFirst()) : tokens[index].lower
            guard word.allSatisfy(\.isNumber), word.count <= 9 else { return nil }
            return Int(word)
        }
    }

    private var emails: [String] {
        tokens.map(\.text).filter { $0.contains("@" as Character) && $0.contains("." as Character) && !$0.hasPrefix("!") }.map { $0.lowercased() }
    }

    private func excludedTokens(dates excludeDates: Bool) -> Set<Int> {
        var excluded = Set<Int>()
        if excludeDates, case .found(let mention) = dates { excluded.formUnion(mention.tokens) }
        if excludeDates, case .ambiguous(let phrase, _) = dates {
            let words = Set(phrase.lowercased().split(separator: " ").map(String.init))
            excluded.formUnion(tokens.indices.filter { words.contains(tokens[$0].lower) })
        }
        if let duration { excluded.formUnion(duration.tokens) }
        if excludeDates, let recurrence { excluded.formUnion(recurrence.tokens) }
        return excluded
    }

    /// Text in quotes, if any.
    private func quoted() -> String? {
        // Characters, not substrings: a search by string goes through Foundation and costs more
        // than the rest of the analysis.
        for (open, close) in [("\"", "\""), ("“", "”"), ("'", "'"), ("‘", "’")] as [(Character, Character)] {
            guard let start = text.firstIndex(of: open) else { continue }
            let afterOpen = text.index(after: start)
            guard let end = text[afterOpen...].firstIndex(of: close) else { continue }
            // An apostrophe in "what's" is not a quote: a quote starts the text or follows a space.
            if open == "'" && !(start == text.startIndex || text[text.index(before: start)].isWhitespace) { continue }
            let inside = String(text[afterOpen..<end]).trimmingWhitespace()
            if !inside.isEmpty { return inside }
        }
        return nil
    }

    /// What follows the first colon, if anything does.
    private func colonText() -> String? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        // "15:30" or "!room:server" is not a separator.
        let after = text.index(after: colon)
        if after < text.endIndex, !text[after].isWhitespace { return nil }
        let rest = String(text[after...]).trimmingWhitespace()
        return rest.isEmpty ? nil : rest
    }

    /// The content of a request: quoted, after a colon, or what is left once the wording is stripped.
    private func content(excludingDates: Bool = false) -> String? {
        if let quoted = quoted() { return quoted }
        if let afterColon = colonText() {
            if excludingDates, case .found(let mention) = dates, let first = mention.tokens.first, tokens[first].range.lowerBound > text.firstIndex(of: ":")! {
                return remainder(excludingDates: true, from: text.firstIndex(of: ":"), stripLeading: false)
            }
            return afterColon
        }
        return remainder(excludingDates: excludingDates)
    }

    /// The message without the request's wording at either end (and without dates and
    /// durations when asked), in its original case.
    private func remainder(
        excludingDates: Bool = false, extra: Set<String> = [], useCarriers: Bool = true, from start: String.Index? = nil, stripLeading: Bool = true
    ) -> String? {
        let excluded = excludedTokens(dates: excludingDates)
        var kept = tokens.indices.filter { !excluded.contains($0) && (start == nil || tokens[$0].range.lowerBound > start!) }
        let strip = (useCarriers ? carriers : []).union(Self.politeness).union(extra)
        if stripLeading { while let first = kept.first, strip.contains(tokens[first].lower) { kept.removeFirst() } }
        while let last = kept.last, strip.contains(tokens[last].lower) || Self.politeness.contains(tokens[last].lower) { kept.removeLast() }
        guard !kept.isEmpty else { return nil }
        let contiguous = zip(kept, kept.dropFirst()).allSatisfy { $1 == $0 + 1 }
        if contiguous {
            return String(text[tokens[kept.first!].range.lowerBound..<tokens[kept.last!].range.upperBound])
        }
        return kept.map { tokens[$0].text }.joined(separator: " ")
    }

    /// The words after the last of `markers`, to the end.
    private func after(_ markers: Set<String>) -> String? {
        guard let index = tokens.lastIndex(where: { markers.contains($0.lower) }), index + 1 < tokens.count else { return nil }
        let rest = String(text[tokens[index + 1].range.lowerBound...]).trimmingWhitespace()
        return rest.isEmpty ? nil : rest
    }

    /// The name after a word ("with Alice Smith", "in Tokyo"): following words up to a function
    /// word; with `all`, to the end of the message.
    private func afterWord(_ marker: String, all: Bool = false) -> String? {
        guard let index = lowers.lastIndex(of: marker), index + 1 < tokens.count else { return nil }
        let stops: Set<String> = ["about", "on", "at", "for", "to", "today", "yesterday", "and", "regarding", "re", "that", "please", "now", "right"]
        var words: [String] = []
        let dated = excludedTokens(dates: true)
        for (position, token) in tokens.enumerated().dropFirst(index + 1) {
            if dated.contains(position) { break }
            if !all && (stops.contains(token.lower) || words.count == 3) { break }
            if all && ["please", "right", "now"].contains(token.lower) { break }
            words.append(token.text)
            if text[token.range.upperBound...].first == ":" || text[token.range.upperBound...].first == "," { break }
        }
        return words.isEmpty ? nil : words.joined(separator: " ")
    }

    /// The runs of capitalised words ("Bob Smith", "Robert Smith"), apart from the words that
    /// say what to do; a possessive ends a run.
    private func nameRuns() -> [String] {
        let verbs: Set<String> = ["merge", "combine", "join", "fold", "dedupe", "contact", "contacts", "same", "person", "duplicate", "duplicates"]
        var runs: [String] = []
        var current: [String] = []
        func close() {
            if !current.isEmpty { runs.append(current.joined(separator: " ")) }
            current = []
        }
        for token in tokens {
            let word = token.text.trimmingCharacters(in: .punctuationCharacters)
            guard let first = word.first, first.isUppercase, !carriers.contains(token.lower), !Self.politeness.contains(token.lower), !verbs.contains(word.lowercased()), word.lowercased() != "i" else {
                close()
                continue
            }
            if word.hasSuffix("'s") || word.hasSuffix("’s") {
                current.append(String(word.dropLast(2)))
                close()
                continue
            }
            current.append(word)
            if let next = text[token.range.upperBound...].first, ",;".contains(next) { close() }
        }
        close()
        return runs
    }

    /// "Alice's" → "Alice".
    private func possessive() -> String? {
        let contractions: Set<String> = ["what", "that", "it", "who", "where", "when", "how", "there", "here", "let", "he", "she", "today", "week", "tomorrow"]
        for (index, token) in tokens.enumerated() where token.lower.hasSuffix("'s") || token.lower.hasSuffix("’s") {
            if contractions.contains(String(token.lower.dropLast(2))) { continue }
            var name = String(token.text.dropLast(2))
            if index > 0, tokens[index - 1].text.first?.isUppercase == true, !carriers.contains(tokens[index - 1].lower), !Self.politeness.contains(tokens[index - 1].lower) {
                name = tokens[index - 1].text + " " + name
            }
            return name
        }
        return nil
    }

    /// "put standup in my calendar every monday at 9": the first occurrence from now, the rule,
    /// and the title without the words of either.
    private func repeatingCalendarCreate(_ recurrence: RecurrenceMention) -> Reading {
        var time = recurrence.time
        if time == nil, case .found(let mention) = dates, mention.hasTime {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            time = (calendar.component(.hour, from: mention.date), calendar.component(.minute, from: mention.date))
        }
        guard let time else { return .question("At what time? Try: standup every Monday at 9") }
        guard let start = recurrence.first(hour: time.hour, minute: time.minute, zone: zone, now: now) else {
            return .question("I can't find a day that repeat falls on; say it another way, such as: every Monday at 9")
        }
        var arguments: [String: JSONValue] = ["start": .string(Self.iso(start)), "repeat": .string(recurrence.rule)]
        if let duration { arguments["duration_minutes"] = .int(Int64(max(1, duration.seconds / 60))) }
        var attendees: [String] = []
        if let with = afterWord("with") {
            attendees = with.components(separatedBy: " and ").flatMap { $0.components(separatedBy: ",") }.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
            arguments["attendees"] = .array(attendees.map(JSONValue.string))
        }
        let title = quoted() ?? colonText() ?? remainder(excludingDates: true, extra: ["schedule", "book", "add", "put", "create", "set", "up", "calendar", "in", "on", "new", "plan", "arrange", "organise", "organize", "pencil", "repeating", "recurring"], useCarriers: false)
        guard let finalTitle = title ?? (attendees.isEmpty ? nil : "Meeting with \(attendees.joined(separator: ", "))") else {
            return .question("What should I call the event?")
        }
        arguments["title"] = .string(finalTitle)
        return .arguments(.object(arguments))
    }

    private func calendarCreate() -> Reading {
        let mention: DateMention
        switch dates {
        case .found(let found): mention = found
        case .ambiguous(let phrase, let options): return .question(ambiguity(phrase, options))
        case .invalid(let phrase): return .question("\(phrase) isn't a date that exists; which day do you mean?")
        case .none: return .question("When is it? Try: meeting with Alice on Friday at 3pm")
        }
        guard mention.hasTime else { return .question("At what time? Try: … on \(describeDay(mention.date)) at 3pm") }
        var arguments: [String: JSONValue] = ["start": .string(Self.iso(mention.date))]
        if let part = mention.dayPart, mention.until == nil { arguments["day_part"] = .string(part.rawValue) }
        if let until = mention.until { arguments["end"] = .string(Self.iso(until)) }
        if let duration { arguments["duration_minutes"] = .int(Int64(max(1, duration.seconds / 60))) }
        var attendees: [String] = []
        if let with = afterWord("with") {
            attendees = with.components(separatedBy: " and ").flatMap { $0.components(separatedBy: ",") }.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
            arguments["attendees"] = .array(attendees.map(JSONValue.string))
        }
        var title = quoted() ?? colonText() ?? remainder(excludingDates: true, extra: ["schedule", "book", "add", "put", "create", "set", "up", "calendar", "in", "on", "new", "plan", "arrange", "organise", "organize", "pencil"], useCarriers: false)
        if let t = title, let at = t.range(of: " at ", options: .backwards) {
            arguments["location"] = .string(String(t[at.upperBound...]))
            title = String(t[..<at.lowerBound])
        }
        guard let finalTitle = title ?? (attendees.isEmpty ? nil : "Meeting with \(attendees.joined(separator: ", "))") else {
            return .question("What should I call the event?")
        }
        arguments["title"] = .string(finalTitle)
        return .arguments(.object(arguments))
    }

    private var phones: [String] {
        // Runs of tokens made of digits and + - ( ) with at least 6 digits in all.
        var found: [String] = []
        var current: [String] = []
        func flush() {
            let joined = current.joined(separator: " ")
            if joined.filter(\.isNumber).count >= 6 { found.append(joined) }
            current = []
        }
        for token in tokens {
            if !token.text.isEmpty, token.text.allSatisfy({ $0.isNumber || "+-().".contains($0) }), token.text.contains(where: \.isNumber) {
                current.append(token.text)
            } else {
                flush()
            }
        }
        flush()
        return found
    }

    private func contactsAdd() -> Reading {
        var arguments: [String: JSONValue] = [:]
        if !emails.isEmpty { arguments["emails"] = .array(emails.map(JSONValue.string)) }
        if let phone = phones.first { arguments["phone"] = .string(phone) }
        if let company = afterWord("at") ?? afterWord("from") { arguments["company"] = .string(company.trimmingCharacters(in: .punctuationCharacters)) }
        // The name: capitalised words, or what is left before the first comma.
        let skip = Set(emails).union(phones.flatMap { $0.split(separator: " ").map(String.init) })
        var nameWords: [String] = []
        var started = false
        for token in tokens {
            if skip.contains(token.lower) || skip.contains(token.text) { if started { break } else { continue } }
            let isCarrier = carriers.contains(token.lower) || Self.politeness.contains(token.lower) || ["contact", "person", "new", "called", "named", "name"].contains(token.lower)
            if !started && isCarrier { continue }
            if started && (isCarrier || ["works", "at", "from", "phone", "email", "is", "who"].contains(token.lower)) { break }
            started = true
            // "save Bob Smith's number …": the possessive ends the name.
            if token.lower.hasSuffix("'s") || token.lower.hasSuffix("’s") {
                nameWords.append(String(token.text.dropLast(2)))
                break
            }
            nameWords.append(token.text)
            if text[token.range.upperBound...].first == "," { break }
        }
        guard !nameWords.isEmpty else { return .question("What's their name? Try: add contact Alice Smith, alice@example.com") }
        arguments["name"] = .string(nameWords.joined(separator: " "))
        return .arguments(.object(arguments))
    }

    private func contactsUpdate() -> Reading {
        var arguments: [String: JSONValue] = [:]
        if let id = numbers.first, phones.isEmpty { arguments["id"] = .int(Int64(id)) }
        if let name = possessive() {
            arguments["query"] = .string(name)
        } else if arguments["id"] == nil, let first = tokens.first(where: { $0.text.first?.isUppercase == true && !carriers.contains($0.lower) && !Self.politeness.contains($0.lower) && !$0.text.contains("@" as Character) }) {
            arguments["query"] = .string(first.text)
        }
        if !emails.isEmpty { arguments["emails"] = .array(emails.map(JSONValue.string)) }
        if let phone = phones.first { arguments["phone"] = .string(phone) }
        if let company = afterWord("at") ?? afterWord("for") ?? (has("company") ? after(["to", "is"]) : nil) {
            arguments["company"] = .string(company.trimmingCharacters(in: .punctuationCharacters))
        }
        guard arguments["query"] != nil || arguments["id"] != nil else { return .question("Whose details should I change?") }
        guard arguments.count > 1 else { return .question("What should change? Try: update Alice's phone to +44 20 7946 0000") }
        return .arguments(.object(arguments))
    }

    private func preference() -> Reading {
        let lower = text.lowercased()
        if lower.contains("time zone") || lower.contains("timezone") || lower.contains("tz") || lower.contains("i live in") || lower.contains("i'm in") || lower.contains("i am in") {
            guard let zone = after(["is", "to", "in", "="]) else { return .question("Which time zone? Try: my timezone is Europe/Berlin") }
            return .arguments(["key": "timezone", "value": .string(zone.trimmingCharacters(in: .punctuationCharacters))])
        }
        if let name = after(["call", "name's", "name"]).map({ $0.hasPrefix("me ") ? String($0.dropFirst(3)) : $0 }).map({ $0.hasPrefix("is ") ? String($0.dropFirst(3)) : $0 }) {
            return .arguments(["key": "name", "value": .string(name.trimmingCharacters(in: .punctuationCharacters))])
        }
        if ["short", "shorter", "brief", "briefer", "concise", "terse"].contains(where: { has($0) }) { return .arguments(["key": "reply_length", "value": "short"]) }
        if ["longer", "detailed", "normal", "verbose"].contains(where: { has($0) }) { return .arguments(["key": "reply_length", "value": "normal"]) }
        let never = lower.contains("don't") || lower.contains("dont") || lower.contains("do not") || lower.contains("never") || lower.contains("stop") || lower.contains("no need")
        let always = lower.contains("always") || lower.contains("ask before") || lower.contains("check with me") || lower.contains("confirm before")
        if never || always {
            guard let target = Self.target(lower) else { return .question("Ask first for what? Name a tool or area, e.g. email or notes.") }
            return .arguments(["key": .string("confirm:\(target)"), "value": .string(never ? "never" : "always")])
        }
        return .question("What should I remember? I can keep your time zone, your name, short answers, and when to ask first.")
    }

    /// The tool or category a preference sentence is about.
    static func target(_ lower: String) -> String? {
        let table: [(String, String)] = [
            ("sending email", "email.send"), ("send email", "email.send"), ("emails", "email.send"), ("email", "email.send"), ("mail", "email.send"),
            ("posting", "matrix.post"), ("post", "matrix.post"), ("adding notes", "notes.add"), ("add notes", "notes.add"),
            ("adding a note", "notes.add"), ("deleting notes", "notes.delete"), ("notes", "notes"), ("note", "notes"),
            ("adding tasks", "tasks.add"), ("tasks", "tasks"), ("task", "tasks"), ("reminder", "reminders"), ("calendar", "calendar"),
            ("event", "calendar"), ("contact", "contacts"),
        ]
        return table.first { lower.contains($0.0) }?.1
    }

    // MARK: Times

    private func ambiguity(_ phrase: String, _ options: [Date]) -> String {
        let readings = options.map(describeDay)
        return "\"\(phrase)\" could mean \(readings.joined(separator: " or ")). Which one? Say the date with the month's name, e.g. \(readings[0])."
    }

    private func describeDay(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "EEEE d MMMM"
        return formatter.string(from: date)
    }

    private func startOfDay(_ date: Date) -> Date { Calendar.gregorian(zone).startOfDay(for: date) }

    private func at(hour: Int, on day: Date) -> Date {
        Calendar.gregorian(zone).date(bySettingHour: hour, minute: 0, second: 0, of: day) ?? day
    }

    static func iso(_ date: Date) -> String {
        date.formatted(isoStyle)
    }

    private static let isoStyle = Date.ISO8601FormatStyle()
}

extension Calendar {
    static func gregorian(_ zone: TimeZone) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }
}
