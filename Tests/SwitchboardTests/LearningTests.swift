// Preferences that learn, replayed: four simulated weeks of three people (Fixtures/learning,
// written for this by make_replay.py) go through the real engine, gate, intent engine and
// learner, once with learning on and once off. The last week shows what learning saves
// (clarifying questions and confirmations), and the profiles show what it must never do.

import Foundation
import Logging
@testable import SwitchboardApp
import SwitchboardEngine
import SwitchboardIntent
import SwitchboardModel
import SwitchboardSQLite
import SwitchboardStorage
import SwitchboardTesting
import Testing

@Suite("Preferences that learn")
struct LearningTests {
    static let alice: PersonID = "@alice:example.org"
    static let ben: PersonID = "@ben:example.org"
    static let carol: PersonID = "@carol:example.org"
    /// Monday 2 November 2026, 00:00 UTC: day 0 of the replay.
    static let start = Date(timeIntervalSince1970: 1_793_577_600)

    struct Line {
        var day: Int
        var minutes: Int
        var person: PersonID
        var text: String
        var ifAsked: String?
    }

    static func lines() throws -> [Line] {
        let text = try String(contentsOfFile: packageRoot + "/Tests/SwitchboardTests/Fixtures/learning/replay.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { raw in
            let line = try JSONValue.parse(String(raw))
            let time = (line["time"]?.stringValue ?? "00:00").split(separator: ":").compactMap { Int($0) }
            return Line(
                day: Int(line["day"]?.intValue ?? 0), minutes: time[0] * 60 + time[1], person: PersonID(line["person"]?.stringValue ?? ""),
                text: line["text"]?.stringValue ?? "", ifAsked: line["if_asked"]?.stringValue
            )
        }
    }

    /// A harness with every built-in tool, the intent engine with the person's learned habits,
    /// and alice's mail address linked to her.
    static func harness(learning: Bool, configure: (inout LearningPolicy) -> Void = { _ in }) async throws -> (EngineHarness, Learner) {
        let clock = ManualClock(start)
        var policy = LearningPolicy()
        policy.enabled = learning
        configure(&policy)
        let settled = policy
        let tools = BuiltinTools.all.filter { !$0.descriptor.name.hasPrefix("notes.") }
        let harness = try EngineHarness(extraTools: tools, sending: true, clock: clock, configure: { $0.learning = policy }, plannerOver: { store, clock in
            IntentPlanner(
                engine: { BuiltinTools.intentEngine }, tools: BuiltinTools.all.map(\.descriptor), clock: clock,
                zoneOf: { _ in TimeZone(identifier: "UTC") },
                priorsOf: { person in
                    let preferences = try? await store.read { try $0.preferences(of: $0.linkedPerson(for: person) ?? person) }
                    return LearnedProfile(preferences ?? [], policy: settled).toolShares(settled)
                }
            )
        })
        try await harness.store.write { try $0.linkIdentity("email:alice@example.org", to: alice, at: start) }
        var logger = Logger(label: "learner")
        logger.logLevel = .critical
        return (harness, Learner(store: harness.store, policy: policy, clock: clock, logger: logger, batch: 50))
    }

    struct Outcome {
        var questions = 0
        var confirmations = 0
        var offers: [String] = []
        var replies: [(Line, String)] = []
    }

    /// Sends one message and what follows from the reply: "yes" to a confirmation request, the
    /// offered words to a standing-approval offer, the clearer request to a question.
    static func exchange(_ line: Line, harness: EngineHarness, outcome: inout Outcome, counting: Bool) async throws {
        let before = try await harness.store.read { try $0.auditHead()?.sequence ?? 0 }
        let reply = try await harness.say(line.person, line.text)
        outcome.replies.append((line, reply))
        // Acted: a tool ran or waits for a yes. A tool that could not act ("Who is bob?") is
        // a question as much as the intent engine's own.
        let acted = try await harness.store.read { try $0.auditRecords(AuditQuery(afterSequence: before)) }.contains { [.executed, .awaitingConfirmation].contains($0.entry.status) }
        if !acted, let clearer = line.ifAsked {
            if counting { outcome.questions += 1 }
            var again = line
            again.text = clearer
            again.ifAsked = nil
            try await exchange(again, harness: harness, outcome: &outcome, counting: counting)
            return
        }
        if harness.channel.delivered.last?.kind == .confirmationRequest {
            if counting { outcome.confirmations += 1 }
            let answer = try await harness.say(line.person, "yes")
            outcome.replies.append((line, answer))
            if let range = answer.range(of: #"Say "always allow [^"]+""#, options: .regularExpression) {
                outcome.offers.append(String(answer[range]))
                let words = answer[range].dropFirst("Say \"".count).dropLast()
                outcome.replies.append((line, try await harness.say(line.person, String(words))))
            }
        }
    }

    /// Replays the whole log; the learner reads the history every simulated half hour.
    static func replay(_ harness: EngineHarness, _ learner: Learner) async throws -> Outcome {
        var outcome = Outcome()
        var lastLearned = start
        for line in try lines() {
            let at = start.addingTimeInterval(TimeInterval(line.day * 86400 + line.minutes * 60))
            let wait = at.timeIntervalSince(harness.clock.now())
            if wait > 0 { harness.clock.advance(by: wait) }
            if harness.clock.now().timeIntervalSince(lastLearned) >= 1800 {
                try await learner.catchUp()
                lastLearned = harness.clock.now()
            }
            try await exchange(line, harness: harness, outcome: &outcome, counting: line.day >= 21)
        }
        try await learner.catchUp()
        return outcome
    }

    static func profile(_ harness: EngineHarness, _ person: PersonID, _ policy: LearningPolicy = LearningPolicy()) async throws -> LearnedProfile {
        LearnedProfile(try await harness.store.read { try $0.preferences(of: person) }, policy: policy)
    }

    @Test("Over four simulated weeks, learning asks fewer questions and fewer confirmations, per person, without mixing people up")
    func replayOnAndOff() async throws {
        #expect(try Self.lines().count >= 300)
        let (on, onLearner) = try await Self.harness(learning: true)
        let learned = try await Self.replay(on, onLearner)
        let (off, offLearner) = try await Self.harness(learning: false)
        let plain = try await Self.replay(off, offLearner)
        print("learning replay, last week: clarifying questions \(plain.questions) without learning, \(learned.questions) with; confirmations requested \(plain.confirmations) without, \(learned.confirmations) with")
        #expect(learned.questions < plain.questions, "questions: \(learned.questions) with learning, \(plain.questions) without")
        #expect(learned.confirmations < plain.confirmations, "confirmations: \(learned.confirmations) with learning, \(plain.confirmations) without")

        // The offer came once the threshold was passed, and only with learning on.
        #expect(learned.offers == ["Say \"always allow emails to bob@example.org\""], "\(learned.offers)")
        #expect(plain.offers.isEmpty)
        // The approval is scoped: the one email to carol in the last week still asked.
        let carolMail = learned.replies.first { $0.0.text.contains("carol@example.org") }
        #expect(carolMail?.1.contains("Send an email to carol@example.org") == true, "\(carolMail?.1 ?? "no reply")")

        // alice: 45 minutes, learned from the first week, used (and said) afterwards; "bob"
        // resolved; her mail from the linked address counted in the same profile.
        let alice = try await Self.profile(on, Self.alice)
        #expect(alice.value(LearnedKey.meetingMinutes, policy: LearningPolicy())?.value == "45")
        #expect(alice.value(LearnedKey.recipient("bob"), policy: LearningPolicy())?.value == "bob@example.org")
        #expect(try await Self.profile(on, "email:alice@example.org").evidence.isEmpty, "the linked address has no profile of its own")
        let booked = learned.replies.filter { $0.0.person == Self.alice && $0.0.day >= 7 && $0.0.text.hasPrefix("book") }
        #expect(booked.first?.1.contains("For 45 minutes, as usual") == true, "\(booked.first?.1 ?? "")")
        #expect(booked.last?.1.contains("as usual") == false, "said only the first times: \(booked.last?.1 ?? "")")
        let lastMeeting = try await on.store.read { try $0.records.list(owner: Self.alice, kind: "event", statuses: nil, from: nil, to: nil) }.last
        #expect(lastMeeting.flatMap { event in event.at.flatMap { start in event.endAt.map { ($0.timeIntervalSince(start) / 60).rounded() } } } == 45)
        let plainMeeting = try await off.store.read { try $0.records.list(owner: Self.alice, kind: "event", statuses: nil, from: nil, to: nil) }.last
        #expect(plainMeeting.flatMap { event in event.at.flatMap { start in event.endAt.map { ($0.timeIntervalSince(start) / 60).rounded() } } } == 60, "without learning, the tool's hour")

        // ben's habit (tasks) decided his "add milk"; nobody else's defaults changed.
        let ben = try await Self.profile(on, Self.ben)
        let shares = ben.toolShares(LearningPolicy())
        #expect((shares["tasks.add"] ?? 0) > 3 * (shares["notes.add"] ?? 0), "\(shares)")
        let milk = learned.replies.filter { $0.0.person == Self.ben && $0.0.day >= 21 && !$0.0.text.hasPrefix("add task") && $0.0.text.hasPrefix("add ") }
        #expect(!milk.isEmpty && milk.allSatisfy { $0.1.hasPrefix("Added task") }, "\(milk.map(\.1))")
        #expect(ben.value(LearnedKey.meetingMinutes, policy: LearningPolicy()) == nil)
        // carol: half 30, half 60 and a burst of twenty 15-minute syncs teach nothing.
        let carol = try await Self.profile(on, Self.carol)
        #expect(carol.value(LearnedKey.meetingMinutes, policy: LearningPolicy()) == nil, "\(carol.evidence[LearnedKey.meetingMinutes]?.json.canonicalText ?? "")")
        #expect((carol.evidence[LearnedKey.meetingMinutes]?.observations ?? 0) <= 11, "the burst counted once: \(carol.evidence[LearnedKey.meetingMinutes]?.json.canonicalText ?? "")")
        let carolLast = try await on.store.read { try $0.records.list(owner: Self.carol, kind: "event", statuses: nil, from: nil, to: nil) }.last
        #expect(carolLast.flatMap { event in event.at.flatMap { start in event.endAt.map { ($0.timeIntervalSince(start) / 60).rounded() } } } == 60)

        // With learning off, nothing was learned at all.
        for person in [Self.alice, Self.ben, Self.carol] {
            #expect(try await off.store.read { try $0.preferences(of: person) }.allSatisfy { !$0.key.hasPrefix(LearnedKey.prefix) })
        }
    }

    @Test("Shown with evidence, corrected, forgotten one by one and all at once; learning off learns nothing new")
    func visibleAndReversible() async throws {
        let (harness, learner) = try await Self.harness(learning: true)
        for day in 0..<4 {
            harness.clock.advance(by: 86400)
            try await harness.say(Self.alice, "book a meeting with dana on 20 December at \(10 + day) for 45 minutes")
            try await harness.say(Self.alice, "email bob@example.org that the slides are ready")
            try await harness.say(Self.alice, "yes")
        }
        try await learner.catchUp()
        let shown = try await harness.say(Self.alice, "what do you know about me")
        #expect(shown.contains("your meetings usually last 45 minutes (4 of your last 4, 100%)"), "\(shown)")
        #expect(shown.contains("\"Bob\" in an email means bob@example.org"), "\(shown)")

        // A stated preference beats the learned one.
        #expect(try await harness.say(Self.alice, "no, my meetings are usually 30 minutes").contains("30 minutes"))
        #expect(try await harness.say(Self.alice, "book a meeting with eli on 21 December at 10").contains("10:00–10:30"))

        // Forget one thing, then everything.
        #expect(try await harness.say(Self.alice, "forget what you learned about bob").hasPrefix("Forgotten"))
        #expect(try await Self.profile(harness, Self.alice).evidence[LearnedKey.recipient("bob")] == nil)
        // Undo puts the same evidence back; forgetting again removes it.
        #expect(try await harness.say(Self.alice, "undo").contains("remembered what I had learned again"))
        #expect(try await Self.profile(harness, Self.alice).value(LearnedKey.recipient("bob"), policy: LearningPolicy())?.value == "bob@example.org")
        #expect(try await harness.say(Self.alice, "forget what you learned about bob").hasPrefix("Forgotten"))
        #expect(try await harness.say(Self.alice, "email bob that hi").contains("Who is bob?"))
        #expect(try await harness.say(Self.alice, "forget what you learned").hasPrefix("Forgotten: everything"))
        try await learner.catchUp()
        let rows = try await harness.store.read { try $0.preferences(of: Self.alice) }
        #expect(!rows.contains { $0.key.hasPrefix(LearnedKey.prefix) }, "\(rows.map(\.key))")

        // Off: nothing new is learned.
        #expect(try await harness.say(Self.alice, "stop learning about me").contains("Learning about you: off"))
        for day in 0..<4 {
            harness.clock.advance(by: 86400)
            try await harness.say(Self.alice, "book a meeting with fay on 22 December at \(10 + day) for 20 minutes")
        }
        try await learner.catchUp()
        #expect(try await harness.store.read { try $0.preferences(of: Self.alice) }.allSatisfy { !$0.key.hasPrefix(LearnedKey.prefix) })
    }

    @Test("A standing approval runs only its scope, is audited, expires, and is never offered where policy says always ask")
    func standingApprovals() async throws {
        let (harness, learner) = try await Self.harness(learning: true)
        var offer = ""
        for n in 0..<3 {
            harness.clock.advance(by: 3600)
            let asked = try await harness.say(Self.alice, "email bob@example.org that the slides are ready (\(n))")
            try await learner.catchUp()
            offer = try await harness.say(Self.alice, "yes")
            #expect(asked.contains("Send an email to bob@example.org"), "\(asked)")
        }
        #expect(offer.contains("You have confirmed emails to bob@example.org 3 times this week. Say \"always allow emails to bob@example.org\" to stop asking, for 30 days."), "\(offer)")
        let allowed = try await harness.say(Self.alice, "always allow emails to bob@example.org")
        #expect(allowed.contains("stop asking before emails to bob@example.org"), "\(allowed)")
        // Runs at once for bob, audited as confirmed by the standing approval; carol still asks.
        #expect(try await harness.say(Self.alice, "email bob@example.org that no question") == "Sending your email to bob@example.org.")
        let records = try await harness.audit().filter { $0.entry.tool == "email.send" && $0.entry.status == .confirmed }
        #expect(records.last?.entry.summary.hasPrefix("standing approval until") == true)
        #expect(try await harness.say(Self.alice, "email carol@example.org that hi").contains("Send an email to carol@example.org"))
        _ = try await harness.say(Self.alice, "no")
        // ben has no approval of alice's.
        #expect(try await harness.say(Self.ben, "email bob@example.org that hi").contains("Send an email to bob@example.org"))
        _ = try await harness.say(Self.ben, "no")
        // Listed, and expired after 30 days.
        #expect(try await harness.say(Self.alice, "what do you know about me").contains("You allowed emails to bob@example.org without asking"))
        harness.clock.advance(by: 31 * 86400)
        #expect(try await harness.say(Self.alice, "email bob@example.org that later").contains("Send an email to bob@example.org"))
        _ = try await harness.say(Self.alice, "no")

        // Policy: never for email.send.
        let (strict, strictLearner) = try await Self.harness(learning: true) { $0.neverStanding = ["email"] }
        var last = ""
        for n in 0..<4 {
            strict.clock.advance(by: 3600)
            try await strict.say(Self.alice, "email bob@example.org that the slides are ready (\(n))")
            try await strictLearner.catchUp()
            last = try await strict.say(Self.alice, "yes")
        }
        #expect(!last.contains("always allow"), "\(last)")
        #expect(try await strict.say(Self.alice, "always allow emails to bob@example.org").contains("always ask"))
    }

    @Test("\"In the morning\" comes to mean the time a person gives then, said when used; stated beats learned, others keep 9:00, quiet hours are avoided")
    func partsOfTheDay() async throws {
        let (harness, learner) = try await Self.harness(learning: true)
        // Alice gives 7:30 for her morning reminders, one a day; Ben half 7:30 and half 8:30.
        for day in 0..<4 {
            harness.clock.advance(by: 86400)
            #expect(try await harness.say(Self.alice, "remind me tomorrow at 7:30 to stretch (\(day))").contains("07:30"))
            #expect(try await harness.say(Self.ben, "remind me tomorrow at \(day % 2 == 0 ? "7:30" : "8:30") to run (\(day))").contains(day % 2 == 0 ? "07:30" : "08:30"))
        }
        try await learner.catchUp()
        #expect(try await Self.profile(harness, Self.alice).value(LearnedKey.time(.morning), policy: LearningPolicy())?.value == "07:30")
        // Contradictory habits teach nothing.
        #expect(try await Self.profile(harness, Self.ben).value(LearnedKey.time(.morning), policy: LearningPolicy()) == nil)

        let used = try await harness.say(Self.alice, "remind me tomorrow morning to water the plants")
        #expect(used.contains("07:30") && used.contains("your usual morning"), "\(used)")
        // A day without a time is the morning too; a clock time said is kept.
        #expect(try await harness.say(Self.alice, "remind me on Friday to pay the rent").contains("07:30"))
        #expect(try await harness.say(Self.alice, "remind me tomorrow at 9 to call the bank").contains("09:00"))
        let meeting = try await harness.say(Self.alice, "book a meeting with dana tomorrow morning")
        #expect(meeting.contains("07:30–"), "\(meeting)")
        // Nothing of Alice's reaches Ben or Carol.
        #expect(try await harness.say(Self.ben, "remind me tomorrow morning to water the plants").contains("09:00"))
        #expect(try await harness.say(Self.carol, "remind me tomorrow morning to water the plants").contains("09:00"))

        let shown = try await harness.say(Self.alice, "what do you know about me")
        #expect(shown.contains("by \"morning\" you mean 07:30"), "\(shown)")

        // Stated beats learned; a time outside the morning is refused, saying why.
        #expect(try await harness.say(Self.alice, "no, by morning I mean 8").contains("08:00"))
        #expect(try await harness.say(Self.alice, "remind me tomorrow morning to call mum").contains("08:00"))
        #expect(try await harness.say(Self.alice, "by morning I mean 3pm").contains("isn't a time in the morning"))
        #expect(try await harness.say(Self.alice, "by evening I mean 8").contains("20:00"))
        #expect(try await harness.say(Self.alice, "remind me tonight to lock up").contains("20:00"))

        // Forgotten, it is gone.
        #expect(try await harness.say(Self.alice, "forget what you learned about mornings").hasPrefix("Forgotten"))
        #expect(try await Self.profile(harness, Self.alice).evidence[LearnedKey.time(.morning)] == nil)

        // Carol is active 10:00–22:00 only: a reminder for a day is not set for 9:00, in her quiet hours.
        for day in 0..<4 {
            harness.clock.advance(by: 86400 - harness.clock.now().timeIntervalSince(Self.start).truncatingRemainder(dividingBy: 86400))
            for hour in [10, 14, 18, 21] {
                harness.clock.advance(by: TimeInterval(hour * 3600) - harness.clock.now().timeIntervalSince(Self.start).truncatingRemainder(dividingBy: 86400))
                try await harness.say(Self.carol, "add task chore \(day)-\(hour)")
            }
        }
        try await learner.catchUp()
        let quiet = try await harness.say(Self.carol, "remind me on the 30th of December to renew the lease")
        #expect(quiet.contains("10:00") && quiet.contains("when you're usually around"), "\(quiet)")
    }
}

@Suite("Learned habits in a language model's context", .serialized)
struct LearnedContextTests {
    @Test("The model sees one short learned line, never the evidence rows, and the habitual tools are among those described")
    func learnedLine() async throws {
        let server = try await ScriptedModelServer(path: "/v1/chat/completions")
        defer { Task { await server.stop() } }
        server.enqueue(OpenAIScript.text("Sure."))
        let llm = try LLMHarness([LLMHarness.openAI(server)])
        var meetings = LearnedEvidence()
        var tools = LearnedEvidence()
        let policy = LearningPolicy()
        for day in 0..<5 {
            let at = Date(timeIntervalSince1970: 1_800_000_000 + Double(day) * 86400)
            meetings.observe("45", at: at, policy: policy)
            tools.observe("notes.search", at: at, policy: policy)
        }
        let rows = [(LearnedKey.meetingMinutes, meetings.json), (LearnedKey.tools, tools.json)]
        try await llm.engine.store.write { tx in
            for (key, value) in rows { try tx.setPreference(llm.sam, key: LearnedKey.prefix + key, value: value, at: Date()) }
            try tx.setPreference(llm.sam, key: "timezone", value: "Europe/Berlin", at: Date())
        }
        _ = try await llm.say("what should I focus on this afternoon, roughly")
        let request = try #require(server.requests.first)
        let system = request["messages"]?.arrayValue?.first { $0["role"]?.stringValue == "system" }?["content"]?.stringValue ?? ""
        #expect(system.contains("The person's preferences: timezone: Europe/Berlin"), "\(system)")
        #expect(system.contains("What the person usually does (learned from their history; what they say wins): meetings usually 45 minutes; uses mostly notes.search"), "\(system)")
        #expect(!system.contains("weights") && !system.contains("learned:"), "evidence rows stay out: \(system)")
        let offered = request["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue } ?? []
        #expect(offered.contains("notes_search"), "\(offered)")
    }
}

@Suite("Learning switched off in configuration")
struct LearningOffTests {
    @Test("With learning.enabled false the gateway runs and answers as before, and learns nothing")
    func offInConfiguration() throws {
        let dir = try TemporaryDirectory()
        let session = try Binary.chat("sam", [
            "book a meeting with dana on 12 March at 10 for 45 minutes",
            "book a meeting with eli on 13 March at 10 for 45 minutes",
            "what do you know about me",
        ], dataDir: dir.path, environment: ["SWITCHBOARD_LEARNING_ENABLED": "false"])
        #expect(session.status == 0, "stderr: \(session.stderr)")
        #expect(session.stdout.contains("10:00–10:45 meeting with dana"), "\(session.stdout)")
        #expect(session.stdout.contains("10:00–10:45 meeting with eli"), "\(session.stdout)")
        #expect(!session.stdout.contains("Learned:"), "\(session.stdout)")
    }
}
