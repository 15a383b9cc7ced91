import Foundation
import SwitchboardChannels
import SwitchboardEngine
import SwitchboardModel
import SwitchboardStorage
import Testing

@Suite("Confirmation replies")
struct ConfirmationReplyTests {
    @Test(
        "Only a whole-message keyword is a confirmation",
        arguments: [
            ("yes", ConfirmationReply.yes(number: nil)),
            ("YES", .yes(number: nil)),
            ("  yes!  ", .yes(number: nil)),
            ("y", .yes(number: nil)),
            ("ok.", .yes(number: nil)),
            ("approve", .yes(number: nil)),
            ("confirm", .yes(number: nil)),
            ("no", .no(number: nil)),
            ("Cancel", .no(number: nil)),
            ("n", .no(number: nil)),
            ("deny", .no(number: nil)),
            ("yes 2", .yes(number: 2)),
            ("no 3.", .no(number: 3)),
            ("yes,", .yes(number: nil)),
            ("ok…", .yes(number: nil)),
        ] as [(String, ConfirmationReply)]
    )
    func keywords(text: String, expected: ConfirmationReply) {
        #expect(ConfirmationReply.parse(text) == expected)
    }

    @Test(
        "Sentences that merely contain a keyword are not confirmations",
        arguments: ["yesterday", "yes, but not the last one", "yes please delete", "no way", "nope", "", "yes 0", "yes -1", "yes two", "okay then", "y e s"]
    )
    func notConfirmations(text: String) {
        #expect(ConfirmationReply.parse(text) == nil)
    }

    @Test("Configured keywords replace the defaults")
    func customKeywords() {
        let keywords = ConfirmationKeywords(yes: ["ja", "Oui"], no: ["nein"])
        #expect(ConfirmationReply.parse("oui", keywords: keywords) == .yes(number: nil))
        #expect(ConfirmationReply.parse("nein", keywords: keywords) == .no(number: nil))
        #expect(ConfirmationReply.parse("yes", keywords: keywords) == nil)
    }

    @Test("With several pending, a bare yes is ambiguous and a number picks one by the number it was given")
    func selection() {
        // Numbers as given when asked: "a" was 1, "c" was 3 (2 was answered meanwhile).
        let pending = [("a", 1), ("c", 3)]
        let number: ((String, Int)) -> Int = { $0.1 }
        guard case .ambiguous(2) = ConfirmationReply.yes(number: nil).select(from: pending, number: number) else { Issue.record("expected ambiguous"); return }
        guard case .one(let c) = ConfirmationReply.yes(number: 3).select(from: pending, number: number), c.0 == "c" else { Issue.record("expected c"); return }
        guard case .noSuchNumber(2, count: 2) = ConfirmationReply.no(number: 2).select(from: pending, number: number) else { Issue.record("a number not given is not a position"); return }
        guard case .one(let a) = ConfirmationReply.yes(number: nil).select(from: [("a", 1)], number: number), a.0 == "a" else { Issue.record("expected the only one"); return }
        guard case .none = ConfirmationReply.yes(number: nil).select(from: [(String, Int)](), number: number) else { Issue.record("expected none"); return }
    }
}

@Suite("Token bucket")
struct TokenBucketTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)

    @Test("A full bucket allows a burst, then refuses with the time to the next token")
    func burstThenLimit() throws {
        let limit = RateLimit(perMinute: 6, burst: 2)
        guard case .allowed(let s1) = TokenBucket.take(nil, limit: limit, now: t0) else { Issue.record("first refused"); return }
        guard case .allowed(let s2) = TokenBucket.take(s1, limit: limit, now: t0) else { Issue.record("second refused"); return }
        guard case .limited(let wait) = TokenBucket.take(s2, limit: limit, now: t0) else { Issue.record("third allowed"); return }
        #expect(abs(wait - 10) < 1e-9)
        guard case .limited(let later) = TokenBucket.take(s2, limit: limit, now: t0.addingTimeInterval(4)) else { Issue.record("allowed too early"); return }
        #expect(abs(later - 6) < 1e-9)
        guard case .allowed = TokenBucket.take(s2, limit: limit, now: t0.addingTimeInterval(10)) else { Issue.record("refused after refill"); return }
    }

    @Test("Refill never exceeds the burst")
    func capped() {
        let limit = RateLimit(perMinute: 60, burst: 3)
        let old = RateBucketState(tokens: 0, updatedAt: t0)
        guard case .allowed(let state) = TokenBucket.take(old, limit: limit, now: t0.addingTimeInterval(3600)) else { Issue.record("refused"); return }
        #expect(state.tokens == 2)
    }

    @Test("A zero rate refuses once the burst is spent")
    func zeroRate() {
        let limit = RateLimit(perMinute: 0, burst: 1)
        guard case .limited(let wait) = TokenBucket.take(RateBucketState(tokens: 0, updatedAt: t0), limit: limit, now: t0) else { Issue.record("allowed"); return }
        #expect(wait == .infinity)
    }
}

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test("Backoff doubles up to the cap, with full jitter, and never gives up on a transient failure")
    func backoff() {
        let policy = RetryPolicy(base: 1, cap: 8)
        #expect(policy.delay(afterFailures: 1, retryAfter: nil, jitter: 1) == 1)
        #expect(policy.delay(afterFailures: 2, retryAfter: nil, jitter: 1) == 2)
        #expect(policy.delay(afterFailures: 3, retryAfter: nil, jitter: 0.5) == 2)
        #expect(policy.delay(afterFailures: 5, retryAfter: nil, jitter: 1) == 8)
        #expect(policy.delay(afterFailures: 5, retryAfter: nil, jitter: 0) == 0)
        #expect(policy.delay(afterFailures: 500, retryAfter: nil, jitter: 1) == 8)
    }

    @Test("Retry-After from the far end is a floor")
    func retryAfter() {
        let policy = RetryPolicy(base: 1, cap: 8)
        #expect(policy.delay(afterFailures: 1, retryAfter: 30, jitter: 0.1) == 30)
    }
}

@Suite("Risk and access")
struct RiskAndAccessTests {
    let write = ToolDescriptor(name: "notes.add", category: "notes", summary: "", parameters: [:], baseRisk: .medium, effect: .reversible)
    let read = ToolDescriptor(name: "notes.list", category: "notes", summary: "", parameters: [:], baseRisk: .low, effect: .readOnly)

    @Test("High risk needs confirmation; taint makes every write need it; reads never")
    func decisions() {
        let policy = RiskPolicy()
        let medium = PreparedCall(arguments: [:], preview: "", risk: .medium)
        let high = PreparedCall(arguments: [:], preview: "", risk: .high)
        let low = PreparedCall(arguments: [:], preview: "", risk: .low)
        #expect(policy.assess(medium, tool: write, tainted: false, senderAuthenticated: true) == .run(.medium))
        #expect(policy.assess(high, tool: write, tainted: false, senderAuthenticated: true) == .confirm(.high))
        #expect(policy.assess(medium, tool: write, tainted: true, senderAuthenticated: true) == .confirm(.medium))
        #expect(policy.assess(low, tool: read, tainted: true, senderAuthenticated: true) == .run(.low))
        guard case .refuse = policy.assess(high, tool: write, tainted: false, senderAuthenticated: false) else {
            Issue.record("an unauthenticated sender must not reach a confirmation")
            return
        }
    }

    @Test("Policy overrides risk by tool name before category")
    func overrides() {
        let policy = RiskPolicy(overrides: ["notes": .high, "notes.list": .low])
        let call = PreparedCall(arguments: [:], preview: "", risk: .medium)
        #expect(policy.risk(of: call, tool: write) == .high)
        let listing = PreparedCall(arguments: [:], preview: "", risk: .low)
        #expect(RiskPolicy(overrides: ["notes": .high, "notes.list": .medium]).risk(of: listing, tool: read) == .medium, "the tool's own override wins over its category's")
        let lowered = RiskPolicy(overrides: ["notes": .low])
        let bulk = PreparedCall(arguments: [:], preview: "", risk: .high)
        #expect(lowered.risk(of: bulk, tool: write) == .high, "a bulk delete stays high when the category is lowered")
    }

    @Test("Roles: reads are open to guests, writes need a user, configuration can demand more")
    func roles() {
        var access = AccessPolicy(roles: ["olga": .owner, "gus": .guest], defaultRole: .user)
        #expect(access.allows("gus", read))
        #expect(!access.allows("gus", write))
        #expect(access.allows("anyone", write))
        access.minimumRoles["notes.add"] = .owner
        #expect(!access.allows("anyone", write))
        #expect(access.allows("olga", write))
    }
}

@Suite("Input checks and redaction")
struct InputTests {
    @Test("Empty, oversized and invalid text is refused with a reason")
    func refusals() {
        guard case .refuse(let empty) = MessageCheck.check("  \n\t ", maxBytes: 100) else { Issue.record("empty accepted"); return }
        #expect(empty.contains("empty"))
        guard case .refuse(let long) = MessageCheck.check(String(repeating: "a", count: 101), maxBytes: 100) else { Issue.record("long accepted"); return }
        #expect(long.contains("101 bytes"))
        let invalid = String(decoding: [0x61, 0xFF, 0x62] as [UInt8], as: UTF8.self)
        guard case .refuse(let bad) = MessageCheck.check(invalid, maxBytes: 100) else { Issue.record("invalid accepted"); return }
        #expect(bad.contains("UTF-8"))
    }

    @Test("Control characters are removed, newlines and tabs kept")
    func controls() {
        #expect(MessageCheck.check("add a note: \u{1B}[2Jhi\u{07}\tthere\u{7F}", maxBytes: 100) == .ok("add a note: [2Jhi\tthere"))
    }

    @Test("Secret arguments never reach the audit trail")
    func redaction() {
        let arguments: JSONValue = ["to": "bob@example.org", "password": "hunter2", "nested": ["api_key": "k", "ok": 1], "pin": "1234"]
        let redacted = Redaction.redact(arguments, declared: ["pin"])
        #expect(redacted["password"] == .string("<redacted>"))
        #expect(redacted["nested"]?["api_key"] == .string("<redacted>"))
        #expect(redacted["pin"] == .string("<redacted>"))
        #expect(redacted["to"] == .string("bob@example.org"))
        #expect(!redacted.canonicalText.contains("hunter2"))
    }

    @Test("A Secret never prints its value")
    func secretType() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(secret.revealed == "hunter2")
    }
}

@Suite("Command planner")
struct CommandPlannerTests {
    @Test(
        "The foundation's sentences map to tools",
        arguments: [
            ("add a note: buy milk", Plan.call(tool: "notes.add", arguments: ["text": "buy milk"])),
            ("Please add a note: Call Bob at 5.", .call(tool: "notes.add", arguments: ["text": "Call Bob at 5"])),
            ("list my notes", .call(tool: "notes.list", arguments: [:])),
            ("List my notes!", .call(tool: "notes.list", arguments: [:])),
            ("search notes for milk", .call(tool: "notes.search", arguments: ["query": "milk"])),
            ("delete note 3", .call(tool: "notes.delete", arguments: ["ids": [3]])),
            ("delete notes 3, 4", .call(tool: "notes.delete", arguments: ["ids": [3, 4]])),
            ("delete all my notes", .call(tool: "notes.delete", arguments: ["all": true])),
            ("delete notes containing milk", .call(tool: "notes.delete", arguments: ["query": "milk"])),
            ("undo", .undo()),
            ("help", .help),
            ("what is the meaning of life", .notUnderstood),
            ("delete note banana", .notUnderstood),
        ] as [(String, Plan)]
    )
    func sentences(text: String, expected: Plan) {
        #expect(CommandPlanner.plan(text: text) == expected)
    }
}

@Suite("Audit chain")
struct AuditChainTests {
    func records(_ count: Int) -> [AuditRecord] {
        var previous = AuditChain.genesis
        return (1...count).map { sequence in
            let entry = AuditEntry(
                at: Date(timeIntervalSince1970: 1_800_000_000 + Double(sequence)), callID: ToolCallID("c\(sequence)"), person: "alice",
                conversation: ConversationKey(channel: "test", conversation: ConversationID("r")), tool: "notes.add",
                risk: .medium, status: .executed, arguments: ["text": .string("note \(sequence)")], summary: "ok", correlationID: nil
            )
            let hash = AuditChain.hash(previous: previous, sequence: Int64(sequence), entry: entry)
            defer { previous = hash }
            return AuditRecord(sequence: Int64(sequence), entry: entry, previousHash: previous, hash: hash)
        }
    }

    @Test("An untouched chain verifies")
    func intact() {
        let chain = records(5)
        #expect(AuditChain.verify(chain, head: (5, chain[4].hash)) == .intact(records: 5))
    }

    @Test("An edited record is detected")
    func edited() {
        var chain = records(5)
        chain[2].entry.summary = "nothing to see"
        guard case .broken(3, _) = AuditChain.verify(chain, head: (5, chain[4].hash)) else { Issue.record("edit not detected"); return }
    }

    @Test("A deleted record is detected, in the middle or at the end")
    func deleted() {
        var chain = records(5)
        let head = (Int64(5), chain[4].hash)
        var middle = chain
        middle.remove(at: 1)
        guard case .broken(2, _) = AuditChain.verify(middle, head: head) else { Issue.record("middle deletion not detected"); return }
        chain.removeLast()
        guard case .broken = AuditChain.verify(chain, head: head) else { Issue.record("tail deletion not detected"); return }
    }

    @Test("A recomputed forgery still breaks the link to the stored head")
    func forgedTail() {
        var chain = records(3)
        chain[2].entry.summary = "forged"
        chain[2].hash = AuditChain.hash(previous: chain[1].hash, sequence: 3, entry: chain[2].entry)
        let originalHead = records(3)[2].hash
        guard case .broken(3, _) = AuditChain.verify(chain, head: (3, originalHead)) else { Issue.record("forgery not detected"); return }
    }
}
