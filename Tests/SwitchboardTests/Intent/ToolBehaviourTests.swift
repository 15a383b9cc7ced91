import Foundation
import Logging
import SwitchboardEngine
import SwitchboardIntent
import SwitchboardModel
import SwitchboardStorage
import SwitchboardTesting
import SwitchboardTools
import Testing

@testable import SwitchboardApp

/// The whole tool set behind the intent planner, on a manual clock in Europe/London.
struct ToolHarness {
    let harness: EngineHarness
    let sam: PersonID = "sam"

    init(sending: Bool = true, configure: (inout EngineConfiguration) -> Void = { _ in }) throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_796_029_200))  // Monday 30 Nov 2026, 09:00 UTC
        let tools = BuiltinTools.all.filter { !$0.descriptor.name.hasPrefix("notes.") }
        let planner = IntentPlanner(engine: { BuiltinTools.intentEngine }, tools: BuiltinTools.all.map(\.descriptor), clock: clock) { _ in
            TimeZone(identifier: "Europe/London")
        }
        harness = try EngineHarness(planner: planner, extraTools: tools, sending: sending, clock: clock, configure: configure)
    }

    @discardableResult
    func say(_ text: String, as person: PersonID = "sam") async throws -> String {
        try await harness.say(person, text)
    }
}

@Suite("Tools: bad input gets a clear answer and writes nothing")
struct ToolBadInputTests {
    @Test("Reminders in the past, ten years ahead, or on a day that does not exist are refused")
    func reminders() async throws {
        let tools = try ToolHarness()
        #expect(try await tools.say("remind me yesterday at 9 to call Bob").contains("has already passed"))
        #expect(try await tools.say("remind me on 12 March 2036 to renew the lease").contains("more than five years ahead"))
        #expect(try await tools.say("remind me on 31 February to pay rent").contains("isn't a date that exists"))
        #expect(try await tools.say("remind me 3/4 to call mum").contains("could mean"))
        #expect(try await tools.say("what reminders do I have") == "You have no upcoming reminders.")
    }

    @Test("Unknown time zones, events that end before they start, and merging a contact with itself")
    func others() async throws {
        let tools = try ToolHarness()
        #expect(try await tools.say("what time is it in Atlantis").contains("I don't know the time zone \"Atlantis\""))
        #expect(try await tools.say("my timezone is Mars/Olympus").contains("I don't know the time zone"))
        #expect(try await tools.say("schedule a meeting with Alice on Friday from 3pm to 2pm").contains("end before it starts"))
        #expect(try await tools.say("what's on my calendar on Friday").hasPrefix("Nothing in your calendar"))
        _ = try await tools.say("add contact Alice Smith, alice@example.com")
        #expect(try await tools.say("merge contacts 1 and 1").contains("the same contact"))
        let found = try await tools.say("what's Alice's email")
        #expect(found.contains("alice@example.com"), "\(found)")
    }

    @Test("\"next Friday\" said on a Friday is a question, not a guess")
    func nextFridayOnAFriday() {
        let friday = Date(timeIntervalSince1970: 1_796_382_000)  // Friday 4 Dec 2026, 11:00 UTC
        let parser = DateParser(zone: TimeZone(identifier: "UTC")!, now: friday)
        guard case .ambiguous(_, let options) = parser.scan("remind me next Friday to pay") else {
            Issue.record("next Friday on a Friday should be ambiguous")
            return
        }
        #expect(options.count == 2)
        guard case .found(let mention) = parser.scan("remind me on Friday at 3pm") else {
            Issue.record("Friday at 3pm on a Friday is today")
            return
        }
        #expect(mention.date == friday.addingTimeInterval(4 * 3600))
    }
}

@Suite("Dates: what the parser reads, and what it refuses")
struct DateParserTests {
    static let utc = TimeZone(identifier: "UTC")!
    // Monday 30 Nov 2026, 10:00 UTC.
    static let monday = Date(timeIntervalSince1970: 1_796_032_800)

    static func found(_ text: String, now: Date = monday) -> Date? {
        if case .found(let mention) = DateParser(zone: utc, now: now).scan(text) { return mention.date }
        return nil
    }

    @Test("A time from a part of the day is marked as such; a clock time, a relative one or a span is not")
    func partsOfTheDay() {
        func part(_ text: String) -> DayPart? {
            if case .found(let mention) = DateParser(zone: Self.utc, now: Self.monday).scan(text) { return mention.dayPart }
            return nil
        }
        #expect(part("remind me tomorrow morning to call") == .morning)
        #expect(part("call mum this afternoon") == .afternoon)
        #expect(part("in the evening") == .evening)
        #expect(part("remind me tonight to lock up") == .evening)
        #expect(part("tomorrow at 7:30") == nil)
        #expect(part("in 2 hours") == nil)
        #expect(part("on Friday") == nil)
        #expect(part("tomorrow at noon") == nil)
    }

    @Test("The time a person says for a part of the day is read in that part, or refused")
    func spokenTimes() {
        #expect(DayPart.morning.spokenTime("7:30").map { [$0.hour, $0.minute] } == [7, 30])
        #expect(DayPart.morning.spokenTime("at 8am").map { [$0.hour, $0.minute] } == [8, 0])
        #expect(DayPart.evening.spokenTime("8").map { [$0.hour, $0.minute] } == [20, 0])
        #expect(DayPart.afternoon.spokenTime("2:15 pm").map { [$0.hour, $0.minute] } == [14, 15])
        #expect(DayPart.evening.spokenTime("19:45").map { [$0.hour, $0.minute] } == [19, 45])
        for (part, text) in [(DayPart.morning, "3pm"), (.morning, "13:00"), (.evening, "7am"), (.morning, "7:5"), (.morning, "soon"), (.morning, "25:00"), (.afternoon, "")] {
            #expect(part.spokenTime(text) == nil, "\(part) \(text)")
        }
        #expect(DayPart.clock(hour: 7, minute: 5) == "07:05" && DayPart.parseClock(DayPart.clock(hour: 19, minute: 45)).map { [$0.hour, $0.minute] } == [19, 45])
    }

    @Test("A weekday said on that day means today, or next week once its time has passed")
    func sameWeekday() {
        #expect(Self.found("remind me Monday at 9 to call") == Self.monday.addingTimeInterval(7 * 86400 - 3600))
        #expect(Self.found("remind me Monday at 11 to call") == Self.monday.addingTimeInterval(3600))
        #expect(Self.found("this Monday at 9") == Self.monday.addingTimeInterval(-3600))
    }

    @Test("29 February is the next one that exists; 31 February never does")
    func leapDay() {
        let expected = Date(timeIntervalSince1970: 1_835_395_200)  // Tue 29 Feb 2028 00:00 UTC
        #expect(Self.found("on 29 February") == expected)
        guard case .invalid = DateParser(zone: Self.utc, now: Self.monday).scan("on 31 February") else {
            Issue.record("31 February should be invalid")
            return
        }
    }

    @Test("Huge numbers, short words and verbs are not dates, and nothing traps")
    func oddInput() {
        for text in ["meeting for 99999999999999weeks", "in 99999999999h", "in \(String(repeating: "9", count: 400))h", "I sat down", "we march on", "0/0", "99/99", "31/02", "at 25:99", ":", ""] {
            switch DateParser(zone: Self.utc, now: Self.monday).scan(text) {
            case .found(let mention): #expect(mention.date.timeIntervalSince(Self.monday) < 100 * 365 * 86400, "\(text)")
            default: break
            }
        }
        #expect(Self.found("I sat down") == nil)
        #expect(Self.found("we march on") == nil)
        #expect(Self.found("on sat at 10") == Self.monday.addingTimeInterval(5 * 86400))
    }

    @Test("\"in 2 days\" keeps the time of day across a daylight-saving change")
    func daylightSaving() {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let saturday = Date(timeIntervalSince1970: 1_806_134_400)  // Sat 27 Mar 2027 09:00 Berlin (CET); clocks go forward on the 28th
        guard case .found(let mention) = DateParser(zone: berlin, now: saturday).scan("in 2 days") else {
            Issue.record("in 2 days")
            return
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = berlin
        #expect(calendar.component(.hour, from: mention.date) == calendar.component(.hour, from: saturday))
    }

    @Test("\"undo\" takes a count only where it is one")
    func undoCount() {
        let engine = BuiltinTools.intentEngine
        func count(_ text: String) -> Int64? { engine.analyse(text, zone: Self.utc, now: Self.monday).arguments["nth"]?.intValue }
        #expect(count("undo 3") == 3)
        #expect(count("undo the last 2") == 2)
        #expect(count("undo") == nil)
        #expect(count("undo deleting task 7") == nil)
    }
}

@Suite("Tools: every writing tool can be undone")
struct ToolUndoTests {
    @Test("Tasks, reminders, calendar, contacts and preferences: do, undo, and the data is as before")
    func undoEach() async throws {
        let tools = try ToolHarness()
        let steps: [(String, String)] = [
            ("add task renew passport by Friday", "removed task 1"),
            ("add contact Alice Smith, alice@example.com, works at Acme", "removed contact 2"),
            ("add contact Alice Smith, alice@example.com, works at Acme", ""),
            ("update Alice's phone to +44 20 7946 0000", "put back contact 3"),
            ("log call with Alice: discussed renewal", "removed interaction 4"),
            ("remind me tomorrow at 9 to call Bob", "removed reminder 5"),
            ("meeting with Alice on Friday at 3pm for an hour", "removed event 6"),
            ("my timezone is Europe/Berlin", "forgot timezone"),
        ]
        for (request, undone) in steps {
            let done = try await tools.say(request)
            #expect(!done.contains("?"), "\(request) → \(done)")
            guard !undone.isEmpty else { continue }
            let reply = try await tools.say("undo")
            #expect(reply.contains(undone), "\(request) → \(done) → \(reply)")
        }
        // Changes of existing records come back as they were.
        _ = try await tools.say("add task book the venue")
        _ = try await tools.say("done with task 7")
        #expect(try await tools.say("undo").contains("put back task 7"))
        _ = try await tools.say("meeting with Bob on Monday at 10")
        _ = try await tools.say("move event 8 to Tuesday at 11")
        #expect(try await tools.say("undo").contains("put back event 8"))
        _ = try await tools.say("cancel event 8")
        #expect(try await tools.say("undo").contains("put back event 8"))
        #expect(try await tools.say("what's on my calendar on Monday").contains("Bob"))
        _ = try await tools.say("remind me tomorrow at 10 to water the plants")
        _ = try await tools.say("cancel reminder 9")
        #expect(try await tools.say("undo").contains("put back reminder 9"))
        _ = try await tools.say("add contact Bob Jones, bob@example.com")
        _ = try await tools.say("add contact Bobby Jones, bobby@example.org")
        let merged = try await tools.say("merge contacts 10 and 11")
        #expect(merged.contains("bobby@example.org"), "\(merged)")
        let undoMerge = try await tools.say("undo")
        #expect(undoMerge.contains("restored contact 11"), "\(undoMerge)")
        #expect(try await tools.say("find contact bobby").contains("bobby@example.org"))
        _ = try await tools.say("delete contact Bobby")
        #expect(try await tools.say("undo").contains("restored contact 11"))
        _ = try await tools.say("call me Sam")
        _ = try await tools.say("forget my preferences")
        #expect(try await tools.say("undo").contains("remembered your 1 preferences"))
        #expect(try await tools.say("what do you know about me").contains("I call you: Sam"))
    }

    @Test("\"undo 3\" reverts the last three changes, newest first")
    func undoThree() async throws {
        let tools = try ToolHarness()
        for title in ["one", "two", "three", "four"] { _ = try await tools.say("add task \(title)") }
        // Not for a message whose sender could not be verified.
        let forged = try await tools.harness.say(tools.sam, "undo 3", authenticated: false)
        #expect(forged.contains("couldn't verify who sent it"))
        let reply = try await tools.say("undo 3")
        #expect(reply.components(separatedBy: "Undone:").count == 4, "\(reply)")
        #expect(try await tools.say("list my tasks") == "You have 1 open task:\n1: one")
    }
}

@Suite("Tools: sending, preferences in the gate, reminders firing")
struct ToolEffectTests {
    @Test("email.send and matrix.post always wait for a yes, then go out through their channels")
    func sending() async throws {
        let tools = try ToolHarness()
        let ask = try await tools.say("email bob@example.com that the report is ready")
        #expect(ask.contains("Send an email to bob@example.com") && ask.contains("Reply yes"), "\(ask)")
        #expect(tools.harness.email.delivered.isEmpty)
        _ = try await tools.say("yes")
        try await tools.harness.drain()
        let mail = try #require(tools.harness.email.delivered.first)
        #expect(mail.conversation.conversation.rawValue == "bob@example.com" && mail.text == "the report is ready")
        #expect(mail.subject == "the report is ready")
        #expect(try await tools.say("undo").contains("can't be undone"))

        let post = try await tools.say("post in !ops:example.org that the deploy is done")
        #expect(post.contains("Post in !ops:example.org: the deploy is done"), "\(post)")
        _ = try await tools.say("yes")
        try await tools.harness.drain()
        #expect(tools.harness.matrix.delivered.map(\.text) == ["the deploy is done"])
    }

    @Test("Without the channel configured, sending is refused with a reason")
    func sendingUnconfigured() async throws {
        let tools = try ToolHarness(sending: false)
        #expect(try await tools.say("email bob@example.com that the report is ready").contains("no email account is configured"))
    }

    @Test("\"always ask\" makes a change wait; \"don't ask\" never lowers a high-risk tool")
    func confirmPreferences() async throws {
        let tools = try ToolHarness()
        _ = try await tools.say("always ask before adding tasks")
        #expect(try await tools.say("add task water the plants").contains("Reply yes"))
        _ = try await tools.say("yes")
        _ = try await tools.say("don't ask again for adding tasks")
        #expect(try await tools.say("add task feed the cat").hasPrefix("Added task"))
        let never = try await tools.say("don't ask before sending email")
        #expect(never.contains("high-risk, so I'll still ask"), "\(never)")
        #expect(try await tools.say("email bob@example.com that hello").contains("Reply yes"))
    }

    @Test("A reminder fires once, in its conversation; one missed while down says it is late")
    func reminderFiring() async throws {
        let tools = try ToolHarness()
        _ = try await tools.say("remind me in 10 minutes to stretch")
        _ = try await tools.say("remind me in 1 hour to drink water")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let scheduler = ReminderScheduler(store: tools.harness.store, clock: tools.harness.clock, outboxSignal: WorkSignal(), wake: WorkSignal(), logger: logger)
        #expect(try await scheduler.fireDue() == 0)
        tools.harness.clock.advance(by: 11 * 60)
        #expect(try await scheduler.fireDue() == 1)
        #expect(try await scheduler.fireDue() == 0)
        tools.harness.clock.advance(by: 3 * 3600)
        #expect(try await scheduler.fireDue() == 1)
        try await tools.harness.drain()
        let notices = tools.harness.channel.delivered.filter { $0.kind == .notice }.map(\.text)
        #expect(notices.count == 2)
        #expect(notices.first == "⏰ Reminder: stretch")
        #expect(notices.last?.hasPrefix("⏰ Reminder: drink water\n(This is late") == true, "\(notices)")
        #expect(tools.harness.channel.delivered.allSatisfy { $0.conversation == tools.harness.conversation })
    }

    @Test("The calendar exports as iCalendar text: CRLF, escaped, folded, in UTC")
    func icalendar() async throws {
        let tools = try ToolHarness()
        _ = try await tools.say("meeting with Alice; Bob, and Carol on Friday at 3pm for 90 minutes")
        let ics = try await tools.say("export this week's calendar")
        #expect(ics.hasPrefix("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"), "\(ics)")
        #expect(ics.contains("DTSTART:20261204T150000Z\r\nDTEND:20261204T163000Z\r\n"), "\(ics)")
        #expect(ics.contains("SUMMARY:meeting with Alice\\; Bob\\, and Carol"), "\(ics)")
        #expect(ics.hasSuffix("END:VEVENT\r\nEND:VCALENDAR\r\n"))
        for line in ics.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 75) }
        let long = ICalendar.fold("SUMMARY:" + String(repeating: "ü", count: 60))
        #expect(long.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 75 })
    }

    @Test("Arithmetic and units")
    func calculator() async throws {
        let tools = try ToolHarness()
        #expect(try await tools.say("what is 12*7+3") == "12*7+3 = 87")
        #expect(try await tools.say("what's 17% of 240").hasSuffix("= 40.8"))
        #expect(try await tools.say("convert 5 miles to km") == "5 mi = 8.04672 km")
        #expect(try await tools.say("convert 100 f to c") == "100 f = 37.777778 c")
        #expect(try await tools.say("calculate 1/0").contains("divides by zero"))
        #expect(try await tools.say("convert 5 kg to km").contains("can't convert"))
    }

    @Test("Linking an email address: a code goes to that address, a wrong code is refused, the right one links; preferences and confirmations follow the person")
    func linking() async throws {
        let tools = try ToolHarness()
        let sam: PersonID = "@sam:example.org"
        let mailbox = PersonID.email("Sam@Example.org")
        _ = try await tools.say("my timezone is Europe/Berlin", as: sam)
        #expect(try await tools.say("link my email Sam@Example.org", as: sam).contains("I've sent a 6-digit code to sam@example.org"))
        try await tools.harness.drain()
        let mail = try #require(tools.harness.email.delivered.last)
        #expect(mail.conversation.conversation.rawValue == "sam@example.org" && mail.subject == "Your Switchboard link code")
        let code = try #require(mail.text.split(separator: "\n").first { $0.hasPrefix("link code ") }).dropFirst("link code ".count)
        // Someone else cannot use the code, and a wrong code is counted.
        #expect(try await tools.say("link code \(code)", as: "@eve:example.org").contains("no link waiting"))
        let wrong = code == "000000" ? "111111" : "000000"
        #expect(try await tools.say("link code \(wrong)", as: sam).contains("doesn't match. 4 tries left"))
        #expect(try await tools.say("link code \(code)", as: sam).contains("Linked sam@example.org"))
        // The code is never in the audit trail.
        let audit = try await tools.harness.audit()
        #expect(!audit.contains { $0.entry.arguments.canonicalText.contains(String(code)) || $0.entry.summary.contains(String(code)) })
        // Mail from the address is now Sam: Sam's preferences and history.
        #expect(try await tools.say("what do you know about me", as: mailbox).contains("Your time zone: Europe/Berlin"))
        #expect(try await tools.say("what do you know about me", as: sam).contains("Linked addresses: sam@example.org"))
        #expect(try await tools.say("undo", as: sam).contains("unlinked sam@example.org"))
        #expect(try await tools.say("what do you know about me", as: mailbox).contains("I don't know anything about you yet"))
    }
}

@Suite("Repeats: what people say, as RRULEs, in words, and their occurrences")
struct RepeatTests {
    static let utc = TimeZone(identifier: "UTC")!
    // Monday 30 Nov 2026, 10:00 UTC.
    static let monday = Date(timeIntervalSince1970: 1_796_032_800)

    static func read(_ text: String) -> (rule: String?, start: String?, title: String?) {
        let result = BuiltinTools.intentEngine.analyse(text, zone: utc, now: monday)
        return (result.arguments["repeat"]?.stringValue, result.arguments["start"]?.stringValue, result.arguments["title"]?.stringValue)
    }

    @Test("The issue's phrases and their kin become the rule and the first occurrence from now, the title without them")
    func phrases() {
        var read = Self.read("put standup in my calendar every monday at 9")
        // 09:00 on this Monday has passed: the first is next Monday.
        #expect(read.rule == "FREQ=WEEKLY;BYDAY=MO" && read.start == "2026-12-07T09:00:00Z" && read.title == "standup", "\(read)")
        read = Self.read("schedule team sync every 2 weeks on friday at 3pm")
        #expect(read.rule == "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR" && read.start == "2026-12-04T15:00:00Z" && read.title == "team sync", "\(read)")
        read = Self.read("add rent review to the calendar on the last day of each month at 10am")
        #expect(read.rule == "FREQ=MONTHLY;BYMONTHDAY=-1" && read.start == "2026-12-31T10:00:00Z" && read.title == "rent review", "\(read)")
        read = Self.read("put gym in my calendar every weekday at 7am until 20 december")
        #expect(read.rule == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20261220T235959Z" && read.start == "2026-12-01T07:00:00Z" && read.title == "gym", "\(read)")
        read = Self.read("put piano in my calendar every tuesday and thursday at 5:30pm")
        #expect(read.rule == "FREQ=WEEKLY;BYDAY=TU,TH" && read.start == "2026-12-01T17:30:00Z" && read.title == "piano", "\(read)")
        read = Self.read("put payroll in my calendar on the 15th of every month at 9am")
        #expect(read.rule == "FREQ=MONTHLY;BYMONTHDAY=15" && read.start == "2026-12-15T09:00:00Z", "\(read)")
        read = Self.read("book yoga every other wednesday at 6pm for 10 times")
        #expect(read.rule == "FREQ=WEEKLY;INTERVAL=2;BYDAY=WE;COUNT=10" && read.title == "yoga", "\(read)")
        read = Self.read("put dentist in my calendar tomorrow at 10am")
        #expect(read.rule == nil && read.start == "2026-12-01T10:00:00Z", "\(read)")
        // A bare "at 3" is the afternoon, as for a single event.
        read = Self.read("put review in my calendar every friday at 3")
        #expect(read.rule == "FREQ=WEEKLY;BYDAY=FR" && read.start == "2026-12-04T15:00:00Z", "\(read)")
        // "weekly" as a name is no repeat; "all hands" is no bulk cancel.
        read = Self.read("schedule the weekly review tomorrow at 10")
        #expect(read.rule == nil && read.start == "2026-12-01T10:00:00Z", "\(read)")
        let allHands = BuiltinTools.intentEngine.analyse("cancel all hands", zone: Self.utc, now: Self.monday)
        #expect(allHands.arguments["all"] == nil, "\(allHands)")
    }

    @Test("A repeat without a time is asked for; a repeating reminder is said not to exist rather than set once")
    func questions() {
        let engine = BuiltinTools.intentEngine
        #expect(engine.analyse("put standup in my calendar every monday", zone: Self.utc, now: Self.monday).question?.contains("At what time?") == true)
        let reminder = engine.analyse("remind me every monday at 9 to water the plants", zone: Self.utc, now: Self.monday)
        #expect(reminder.question?.contains("can't repeat reminders yet") == true, "\(reminder)")
    }

    @Test("A rule reads back as written, in words, with its occurrences in a range; rules outside the set are refused with the reason")
    func rules() throws {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let weekly = try RepeatRule("FREQ=WEEKLY;INTERVAL=2;BYDAY=FR")
        #expect(weekly.text == "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR")
        #expect(weekly.describe(zone: berlin, now: Self.monday) == "every other week on Friday")
        #expect(try RepeatRule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20261220T225959Z").describe(zone: berlin, now: Self.monday) == "every weekday until Sun 20 Dec")
        #expect(try RepeatRule("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3").describe(zone: berlin, now: Self.monday) == "on the last day of each month, 3 times")
        #expect(try RepeatRule("freq=weekly;byday=tu,mo").text == "FREQ=WEEKLY;BYDAY=MO,TU")

        // Friday 4 Dec 2026 15:00 Berlin, every other Friday: 4 Dec, 18 Dec, 1 Jan (across the year and the week numbering).
        let start = Date(timeIntervalSince1970: 1_796_392_800)
        let found = weekly.occurrences(start: start, from: start, to: start.addingTimeInterval(30 * 86400), zone: berlin)
        #expect(found == [start, start.addingTimeInterval(14 * 86400), start.addingTimeInterval(28 * 86400)], "\(found)")
        // The last day of each month from 30 Nov: 30 Nov, 31 Dec, 31 Jan, 28 Feb, then COUNT stops it.
        let lastDays = try RepeatRule("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=4").occurrences(start: Self.monday, from: Self.monday, to: Self.monday.addingTimeInterval(200 * 86400), zone: Self.utc)
        let days = lastDays.map { Calendar(identifier: .gregorian).dateComponents(in: Self.utc, from: $0).day ?? 0 }
        #expect(days == [30, 31, 31, 28], "\(days)")
        // UNTIL is inclusive of its day; nothing after it.
        let weekdays = try RepeatRule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL=20261202T235959Z").occurrences(start: Self.monday, from: Self.monday, to: Self.monday.addingTimeInterval(10 * 86400), zone: Self.utc)
        #expect(weekdays.count == 3)

        for bad in ["FREQ=HOURLY", "FREQ=MONTHLY;BYDAY=2MO", "FREQ=WEEKLY;BYSETPOS=1", "BYDAY=MO", "FREQ=WEEKLY;COUNT=3;UNTIL=20261220T000000Z", "FREQ=DAILY;BYMONTHDAY=3", "FREQ=WEEKLY;INTERVAL=0", "nonsense"] {
            #expect(throws: ToolFailure.self, "\(bad)") { _ = try RepeatRule(bad) }
        }
    }
}
