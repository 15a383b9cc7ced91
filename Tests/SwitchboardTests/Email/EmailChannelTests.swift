// The email channel against real servers: Dovecot for IMAP, aiosmtpd delivering through
// Dovecot's LMTP for SMTP, and the built `switchboard serve` binary as the bot. People send
// with curl and read their Maildirs. scripts/test.sh installs the servers; each test starts
// its own on free ports.

import Foundation
import GRDB
import NIOHTTP1
import SwitchboardEmail
import SwitchboardModel
import Testing

@Suite("Email channel (real Dovecot and SMTP)", .serialized)
struct EmailChannelTests {
    @Test("a mail is answered in its thread, with the headers a mail program threads by")
    func repliesInThread() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        // A subject in an encoded word, a signature to strip.
        let first = mail(subject: "=?utf-8?Q?Caf=C3=A9_=E2=98=95_plans?=", body: "add a note: buy milk\n\n-- \nAlice\nSent from a phone")
        try cast.servers.send(first.text, from: "alice@example.test")
        let reply = try #require(try await cast.servers.waitForMessages(of: "alice", count: 1).first)
        #expect(reply.parsed.subject == "Re: Café ☕ plans")
        #expect(reply.parsed.inReplyTo == [first.id])
        #expect(reply.parsed.references == [first.id])
        #expect(reply.header("Auto-Submitted") == "auto-replied")
        #expect(reply.parsed.from.first?.address == "bot@example.test")
        #expect(reply.parsed.to.first?.address == "alice@example.test")
        let replyID = try #require(reply.parsed.messageID)
        #expect(replyID.hasSuffix("@example.test"))
        #expect(reply.header("Content-Type")?.lowercased().contains("charset=utf-8") == true)
        #expect(reply.parsed.text.contains("buy milk"))
        #expect(!reply.parsed.text.contains("Sent from a phone"))
        // Headers as sent: 7-bit, no line over 998 characters.
        for line in reply.sentHeaderLines {
            #expect(line.utf8.allSatisfy { $0 < 0x80 }, "a header line is not ASCII: \(line)")
            #expect(line.utf8.count <= 998)
        }

        // Alice answers the reply in the same thread, quoting it.
        let second = mail(
            subject: "Re: Café plans", inReplyTo: replyID, references: [first.id, replyID],
            body: "list my notes\n\nOn Sun, 29 Nov 2026 at 10:00, Switchboard <bot@example.test> wrote:\n> Added note 1: buy milk"
        )
        try cast.servers.send(second.text, from: "alice@example.test")
        let replies = try await cast.servers.waitForMessages(of: "alice", count: 2)
        let answer = replies[1]
        #expect(answer.parsed.inReplyTo == [second.id])
        #expect(answer.parsed.references == [first.id, replyID, second.id])
        #expect(answer.parsed.text.contains("buy milk"))
        #expect(answer.parsed.messageID != replyID)

        // Both requests are one conversation, named by the thread's first message; the quoted
        // history did not reach the request.
        let rows = try cast.database().read { db in
            try Row.fetchAll(db, sql: "SELECT conversation, text, sender, authenticated FROM inbox ORDER BY id")
        }
        #expect(rows.count == 2)
        #expect(Set(rows.map { $0["conversation"] as String }) == ["<\(first.id)>"])
        #expect(rows.map { $0["text"] as String } == ["add a note: buy milk", "list my notes"])
        #expect(rows.allSatisfy { ($0["sender"] as String) == "email:alice@example.test" })
        #expect(rows.allSatisfy { ($0["authenticated"] as Bool) })
        // Handled mail is marked seen on the server.
        #expect(cast.servers.messages(of: "bot").allSatisfy { $0.isSeen })
    }

    @Test("a risky request by mail runs only after a yes from the same authenticated sender")
    func confirmationByMail() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let request = try cast.aliceSays("email carol@example.test that the report is ready", subject: "Report")
        let ask = try #require(try await cast.servers.waitForMessages(of: "alice", count: 1).first)
        #expect(ask.parsed.text.contains("Reply yes"))
        let askID = try #require(ask.parsed.messageID)

        // Mallory (allowed and authenticated, but not the requester) says yes in the thread.
        let mallory = mail(from: "Mallory <mallory@example.test>", subject: "Re: Report", inReplyTo: askID, references: [request, askID], body: "yes")
        try cast.servers.send(mallory.text, from: "mallory@example.test")
        let refused = try await cast.servers.waitForMessages(of: "mallory", count: 1)
        #expect(refused[0].parsed.text.contains("Only email:alice@example.test can answer"))

        // A forged "yes" as Alice: From says alice, but the envelope is another domain, so the
        // receiving server's check fails; a fake Authentication-Results on top is removed by it.
        let forged = mail(
            subject: "Re: Report", inReplyTo: askID, references: [request, askID],
            extraHeaders: ["Authentication-Results: \(MailServers.authservID); dmarc=pass header.from=example.test"], body: "yes"
        )
        try cast.servers.send(forged.text, from: "alice@evil.test")
        let answers = try await cast.servers.waitForMessages(of: "alice", count: 2)
        #expect(answers[1].parsed.text.contains("can't accept a confirmation from an unverified message"))
        #expect(cast.servers.messages(of: "carol").isEmpty)

        // The real yes: first line of a reply that quotes the question and ends with a signature.
        let yes = mail(
            subject: "Re: Report", inReplyTo: askID, references: [request, askID],
            body: "Yes\n\nThanks!\n\nOn Sun, 29 Nov 2026, Switchboard <bot@example.test> wrote:\n> Send an email to carol@example.test\n> Reply yes to confirm\n\n-- \nAlice"
        )
        try cast.servers.send(yes.text, from: "alice@example.test")
        let sent = try await cast.servers.waitForMessages(of: "carol", count: 1)
        #expect(sent[0].parsed.text.contains("the report is ready"))
        #expect(sent[0].parsed.from.first?.address == "bot@example.test")
        // Mail a person asked the bot to write is not marked automatic.
        #expect(sent[0].header("Auto-Submitted") == nil)
        let done = try await cast.servers.waitForMessages(of: "alice", count: 3)
        #expect(done[2].parsed.inReplyTo == [yes.id])
        let statuses = try await cast.database().read { db in
            try String.fetchAll(db, sql: "SELECT status FROM audit WHERE tool = 'email.send' ORDER BY seq")
        }
        #expect(statuses.contains("awaiting_confirmation"))
        #expect(statuses.contains("answer_ignored"))
        #expect(statuses.last == "executed")
        #expect(cast.servers.messages(of: "carol").count == 1)
    }

    @Test("auto-replies, list mail, bounces, the bot's own mail and strangers get no answer")
    func noAnswerToAutomaticMail() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let servers = cast.servers
        try servers.send(mail(subject: "Out of office", extraHeaders: ["Auto-Submitted: auto-replied"], body: "I am away").text, from: "alice@example.test")
        try servers.send(mail(subject: "[list] news", extraHeaders: ["List-Id: <news.example.test>"], body: "add a note: from a list").text, from: "alice@example.test")
        try servers.send(mail(subject: "Digest", extraHeaders: ["Precedence: bulk"], body: "add a note: bulk").text, from: "alice@example.test")
        let bounce = """
            From: Mail Delivery System <mailer-daemon@example.test>\r
            To: bot@example.test\r
            Subject: Undelivered Mail Returned to Sender\r
            Message-ID: <bounce-1@example.test>\r
            MIME-Version: 1.0\r
            Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r
            \r
            --b1\r
            Content-Type: text/plain\r
            \r
            add a note: from a bounce\r
            --b1\r
            Content-Type: message/delivery-status\r
            \r
            Action: failed\r
            --b1--\r

            """
        try servers.send(bounce, from: "")
        try servers.send(mail(from: "Switchboard <bot@example.test>", subject: "Loop", body: "add a note: from myself").text, from: "bot@example.test")
        try servers.send(mail(from: "Stranger <someone@elsewhere.test>", subject: "Hi", body: "add a note: stranger").text, from: "someone@elsewhere.test")
        // A normal request last: once it is answered, everything before it was handled.
        try cast.aliceSays("what time is it in UTC")
        let replies = try await servers.waitForMessages(of: "alice", count: 1)
        #expect(replies.count == 1)
        let counts = try await cast.database().read { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbox") ?? -1, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? -1)
        }
        #expect(counts.0 == 1, "only the normal request reached the inbox")
        #expect(counts.1 == 1, "only one reply was written")
        #expect(servers.messages(of: "bot").count == 7)
        #expect(servers.messages(of: "bot").allSatisfy { $0.isSeen })
        let log = bot.log
        for reason in ["auto_submitted", "mailing_list", "bulk", "bounce", "own_address", "sender not allowed"] {
            #expect(log.contains(reason), "no log line for \(reason)")
        }
    }

    @Test("a link code goes out by email; once linked, mail from that address is the person from the other channel")
    func linkByEmail() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot(extra: ["SWITCHBOARD_HTTP_ENABLED": "true"])
        defer { try? bot.stop() }
        let base = "http://127.0.0.1:\(bot.httpPort)"
        let deadline = ContinuousClock.now + .seconds(20)
        while (try? await APIClient.send(.GET, base + "/healthz"))?.status != 200 {
            if ContinuousClock.now > deadline { throw HarnessError(description: "the HTTP API did not come up:\n\(bot.log)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let key = try APIServer.makeKey(dataDir: cast.data.path, scopes: ["send"])
        // Bob talks to the bot over the HTTP API.
        func bob(_ text: String) async throws -> String {
            // 30 s: a sanitizer build answers much more slowly than this test otherwise needs.
            let response = try await APIClient.send(.POST, base + "/v1/messages?wait=30", key: key, body: Data(message(text).canonicalText.utf8))
            return try response.json["replies"]?[0]?["text"]?.stringValue ?? "(no reply: \(response.status) \(response.text))"
        }
        #expect(try await bob("call me Bobby").contains("Bobby"))
        let asked = try await bob("link my email alice@example.test")
        #expect(asked.contains("6-digit code"), "\(asked)")
        let codeMail = try #require(try await cast.servers.waitForMessages(of: "alice", count: 1).first)
        #expect(codeMail.parsed.subject == "Your Switchboard link code")
        // The gateway's own mail: marked automatic, so no vacation responder answers it.
        #expect(codeMail.header("Auto-Submitted") == "auto-generated")
        let code = try #require(codeMail.parsed.text.firstMatch(of: /link code (\d{6})/)?.1)
        #expect(!bot.log.contains("link code \(code)"), "the code reached the log")
        _ = try await bob("link code \(code)")
        // Mail from the linked address is Bob: his preferences answer it.
        try cast.aliceSays("what do you know about me")
        let replies = try await cast.servers.waitForMessages(of: "alice", count: 2)
        #expect(replies[1].parsed.text.contains("Bobby"), "\(replies[1].parsed.text)")
    }

    @Test("killed between fetching a mail and answering it, the bot answers it exactly once after a restart")
    func crashBetweenFetchAndReply() async throws {
        let cast = try EmailCast()
        for (index, point) in ["email_after_fetch", "after_inbox_commit"].enumerated() {
            let crashing = try cast.startBot(extra: ["SWITCHBOARD_TEST_CRASH_AT": point])
            try cast.aliceSays("add a note: survive \(point)", subject: "Crash \(index)")
            try await waitForExit(crashing)
            #expect(crashing.process.terminationReason == .uncaughtSignal, "\(point) was not reached")
            let bot = try cast.startBot()
            _ = try await cast.servers.waitForMessages(of: "alice", count: index + 1)
            try bot.stop()
        }
        // Nothing was answered twice, and each note was added once.
        let replies = cast.servers.messages(of: "alice")
        #expect(replies.count == 2)
        #expect(Set(replies.compactMap(\.parsed.messageID)).count == 2)
        let notes = try await cast.database().read { db in
            try String.fetchAll(db, sql: "SELECT text FROM notes ORDER BY id")
        }
        #expect(notes == ["survive email_after_fetch", "survive after_inbox_commit"])
    }

    @Test("a first start answers only unseen mail; a replaced mailbox (new UIDVALIDITY) re-answers nothing")
    func firstLookAndUIDValidity() async throws {
        let cast = try EmailCast()
        let servers = cast.servers
        // 120 mails wait before the bot ever starts: several batches, and more lines than one
        // IMAP answer may hold through libcurl (it failed at 150). One was read already.
        var ids: [String] = []
        for index in 0..<120 {
            let message = mail(subject: "Backlog \(index)", body: "add a note: backlog \(index)")
            try servers.send(message.text, from: "alice@example.test")
            ids.append(message.id)
        }
        try runCommand("/usr/bin/curl", [
            "-sS", "--url", "imap://127.0.0.1:\(servers.imapPort)/INBOX", "-u", "bot:pw-bot", "-X", "UID STORE 1 +FLAGS (\\Seen)",
        ])
        let busy = [
            "SWITCHBOARD_RATE_LIMITS_NOTES_PER_MINUTE": "1000", "SWITCHBOARD_RATE_LIMITS_NOTES_BURST": "1000",
            "SWITCHBOARD_EMAIL_MAX_PER_SENDER_PER_HOUR": "1000",
        ]
        var bot = try cast.startBot(extra: busy)
        let first = try await servers.waitForMessages(of: "alice", count: 119, timeout: .seconds(90))
        #expect(Set(first.flatMap(\.parsed.inReplyTo)) == Set(ids.dropFirst()), "the mail read before the start is history")
        try bot.stop()

        // The mailbox is rebuilt (its UID list lost: new UIDs, new UIDVALIDITY); one answered
        // mail is unseen again, and one new mail arrives.
        let maildir = servers.directory.path + "/mail/bot/Maildir"
        for name in try FileManager.default.contentsOfDirectory(atPath: maildir) where name == "dovecot-uidlist" || name.hasPrefix("dovecot.index") {
            try FileManager.default.removeItem(atPath: maildir + "/" + name)
        }
        let current = try FileManager.default.contentsOfDirectory(atPath: maildir + "/cur").sorted()
        // An answered one: its reply is in alice's mailbox already.
        let again = try #require(current.first { name in
            let text = (try? String(contentsOfFile: maildir + "/cur/" + name, encoding: .utf8)) ?? ""
            return name.hasSuffix(",S") && text.contains("<\(ids[5])>")
        })
        try FileManager.default.moveItem(atPath: maildir + "/cur/" + again, toPath: maildir + "/cur/" + String(again.dropLast()))
        let late = mail(subject: "After the rebuild", body: "add a note: after the rebuild")
        try servers.send(late.text, from: "alice@example.test")
        bot = try cast.startBot(extra: busy)
        defer { try? bot.stop() }
        let all = try await servers.waitForMessages(of: "alice", count: 120)
        #expect(all.last?.parsed.inReplyTo == [late.id])
        try await Task.sleep(for: .seconds(1))
        #expect(servers.messages(of: "alice").count == 120, "an answered mail was answered again")
        #expect(bot.log.contains("the mailbox was replaced"))
        let notes = try await cast.database().read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM notes") }
        #expect(notes == 120)
    }

    @Test("with the SMTP server down or deferring, replies wait in the outbox and go out once it is back")
    func smtpOutageWaits() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot(extra: ["SWITCHBOARD_OUTBOX_RETRY_BASE_MS": "100", "SWITCHBOARD_OUTBOX_RETRY_CAP_SECONDS": "1"])
        defer { try? bot.stop() }
        let database = try cast.database()
        func attempts() throws -> Int {
            // A slow start (a sanitizer build) may not have made its tables yet.
            try database.read { db in
                guard try db.tableExists("outbox") else { return 0 }
                return try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(attempts), 0) FROM outbox WHERE status = 'pending'") ?? 0
            }
        }
        func waitForAttempts(_ count: Int) async throws {
            // 90 s: under ThreadSanitizer the bot starts and retries several times slower.
            let deadline = ContinuousClock.now + .seconds(90)
            while try attempts() < count {
                if ContinuousClock.now > deadline { throw HarnessError(description: "the outbox never tried \(count) times") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        // Down: the request comes in straight through LMTP; the answer waits.
        try cast.servers.stopSMTP()
        try cast.servers.deliverDirectly(mail(subject: "While down", body: "add a note: smtp was down").text, from: "alice@example.test")
        try await waitForAttempts(2)
        #expect(cast.servers.messages(of: "alice").isEmpty)
        try cast.servers.startSMTP()
        let first = try await cast.servers.waitForMessages(of: "alice", count: 1)
        #expect(first[0].parsed.text.contains("smtp was down"))

        // Deferring (4xx): retried until accepted.
        try cast.servers.failSMTP(with: "451 4.3.0 Try again later")
        try cast.servers.deliverDirectly(mail(subject: "Deferred", body: "add a note: deferred").text, from: "alice@example.test")
        try await waitForAttempts(2)
        try cast.servers.failSMTP(with: nil)
        let second = try await cast.servers.waitForMessages(of: "alice", count: 2)
        #expect(second[1].parsed.text.contains("deferred"))
        // Each reply went out once.
        #expect(Set(second.compactMap(\.parsed.messageID)).count == 2)
    }

    @Test("SMTP that does not answer opens its circuit: shown in /readyz and the metrics, no submission tried while open, closed again once it answers")
    func smtpCircuit() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot(extra: [
            "SWITCHBOARD_OUTBOX_RETRY_BASE_MS": "100", "SWITCHBOARD_OUTBOX_RETRY_CAP_SECONDS": "1",
            "SWITCHBOARD_EMAIL_SMTP_CIRCUIT_FAILURES": "2", "SWITCHBOARD_EMAIL_SMTP_CIRCUIT_COOLDOWN_SECONDS": "3",
        ])
        defer { try? bot.stop() }
        let base = "http://127.0.0.1:\(bot.httpPort)"
        func smtpState() async throws -> String? {
            let ready = try await APIClient.send(.GET, base + "/readyz")
            return try ready.json["checks"]?["channels"]?["email"]?["circuits"]?["smtp"]?.stringValue
        }
        func waitFor(_ state: String) async throws -> String? {
            var seen = try? await smtpState()
            for _ in 0..<150 where seen != state {
                try await Task.sleep(for: .milliseconds(100))
                seen = try? await smtpState()
            }
            return seen
        }
        #expect(try await waitFor("closed") == "closed")

        try cast.servers.stopSMTP()
        try cast.servers.deliverDirectly(mail(subject: "While down", body: "add a note: circuit").text, from: "alice@example.test")
        #expect(try await waitFor("open") == "open", "\(bot.log)")
        let metrics = try await APIClient.send(.GET, base + "/metrics").text
        #expect(metrics.contains(#"switchboard_email_circuit_open{dependency="smtp"} 1"#), "\(metrics.split(separator: "\n").filter { $0.contains("circuit") })")
        // While open, the outbox is told when to come back instead of each try waiting out SMTP.
        var lastError: String?
        for _ in 0..<50 where lastError?.contains("not answering") != true {
            lastError = try? await cast.database().read { try String.fetchOne($0, sql: "SELECT last_error FROM outbox WHERE status = 'pending'") }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(lastError?.contains("the mail server (SMTP) is not answering; the next try is in") == true, "\(lastError ?? "none")")

        try cast.servers.startSMTP()
        let replies = try await cast.servers.waitForMessages(of: "alice", count: 1)
        #expect(replies[0].parsed.text.contains("circuit"))
        #expect(try await waitFor("closed") == "closed")
        #expect(try await APIClient.send(.GET, base + "/metrics").text.contains(#"switchboard_email_circuit_open{dependency="smtp"} 0"#))
    }

    @Test("the per-sender hourly limit holds across a restart: it is counted from the stored mail")
    func hourlyLimitSurvivesRestart() async throws {
        let cast = try EmailCast()
        let limit = ["SWITCHBOARD_EMAIL_MAX_PER_SENDER_PER_HOUR": "2"]
        let first = try cast.startBot(extra: limit)
        try cast.aliceSays("add a note: one", subject: "One")
        try cast.aliceSays("add a note: two", subject: "Two")
        let replies = try await cast.servers.waitForMessages(of: "alice", count: 2)
        #expect(replies.count == 2)
        try first.stop()

        let second = try cast.startBot(extra: limit)
        defer { try? second.stop() }
        try cast.aliceSays("add a note: three", subject: "Three")
        // Bob is not limited by Alice's mail.
        try cast.servers.send(mail(from: "Bob <bob@example.test>", subject: "Mine", body: "add a note: bob's").text, from: "bob@example.test")
        _ = try await cast.servers.waitForMessages(of: "bob", count: 1)
        var told = false
        for _ in 0..<100 where !told {
            told = second.log.contains("more than the hourly limit")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(told, "the third mail within the hour was over the limit after the restart: \(second.log)")
        #expect(cast.servers.messages(of: "alice").count == 2, "no third reply")
    }

    @Test("a reply the SMTP server refuses for good is given up, audited and logged")
    func permanentRefusal() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        try cast.servers.failSMTP(with: "554 5.7.1 Message refused by policy")
        try cast.servers.deliverDirectly(mail(subject: "Refused", body: "add a note: refused reply").text, from: "alice@example.test")
        let database = try cast.database()
        let deadline = ContinuousClock.now + .seconds(30)
        var row: Row?
        while row == nil {
            // Until the bot has created its tables, the query fails: that is "not yet" too.
            row = (try? database.read { try Row.fetchOne($0, sql: "SELECT status, attempts, last_error FROM outbox WHERE status = 'failed'") }) ?? nil
            if row == nil {
                if ContinuousClock.now > deadline { throw HarnessError(description: "the refused reply was never given up") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(row?["attempts"] == 1)
        #expect((row?["last_error"] as String?)?.contains("554") == true)
        let audit = try database.read { db in
            try Row.fetchOne(db, sql: "SELECT status, summary FROM audit WHERE tool = 'outbox.deliver'")
        }
        #expect(audit?["status"] == "failed")
        #expect((audit?["summary"] as String?)?.contains("554") == true)
        #expect(bot.log.contains("delivery refused for good"))
        #expect(!bot.log.contains("pw-bot"), "the password reached the log")
    }

    @Test("hostile mail is answered sensibly or quarantined, replies carry no injected headers, and the loop goes on")
    func hostileMail() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot()
        defer { try? bot.stop() }
        let servers = cast.servers
        var sent = 0
        func send(_ text: String) throws {
            try servers.send(text, from: "alice@example.test")
            sent += 1
        }
        // Header injection through encoded words in the subject and the display name.
        try send(mail(
            from: "=?utf-8?B?\(Data("Alice\r\nBcc: victim@example.test".utf8).base64EncodedString())?= <alice@example.test>",
            subject: "=?utf-8?B?\(Data("Hello\r\nBcc: victim@example.test\r\nX-Injected: 1".utf8).base64EncodedString())?=",
            body: "what time is it in UTC"
        ).text)
        // Malformed header lines, a NUL byte, an unknown charset.
        try send("From: Alice <alice@example.test>\r\nTo: bot@example.test\r\nSubject: broken\r\nthis is not a header\r\n: neither\r\nMessage-ID: <bad-headers@example.test>\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nadd a note: odd\u{0}charset\r\n")
        // A multipart without its boundary, and truncated base64.
        try send("From: Alice <alice@example.test>\r\nTo: bot@example.test\r\nSubject: no boundary\r\nMessage-ID: <no-boundary@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nadd a note: no boundary\r\n")
        try send("From: Alice <alice@example.test>\r\nTo: bot@example.test\r\nSubject: truncated\r\nMessage-ID: <truncated@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\(Data("add a note: truncated base64".utf8).base64EncodedString().dropLast(3))\r\n")
        // Fifty levels of nested multipart.
        var nested = "add a note: deep"
        for level in 0..<50 {
            nested = "Content-Type: multipart/mixed; boundary=\"b\(level)\"\r\n\r\n--b\(level)\r\n\(level == 0 ? "Content-Type: text/plain\r\n\r\n" : "")\(nested)\r\n--b\(level)--"
        }
        try send("From: Alice <alice@example.test>\r\nTo: bot@example.test\r\nSubject: deep\r\nMessage-ID: <deep@example.test>\r\nMIME-Version: 1.0\r\n\(nested)\r\n")
        // A 25 MB attachment.
        let attachment = Data(repeating: 0x41, count: 25 << 20).base64EncodedString(options: .lineLength76Characters)
        try send("From: Alice <alice@example.test>\r\nTo: bot@example.test\r\nSubject: big\r\nMessage-ID: <big@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n\r\n--big\r\nContent-Type: text/plain\r\n\r\nadd a note: with a big file\r\n--big\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\r\n\(attachment)\r\n--big--\r\n")
        // No sender at all: set aside.
        try send("To: bot@example.test\r\nSubject: who am I\r\nMessage-ID: <no-from@example.test>\r\n\r\nadd a note: anonymous\r\n")
        // And the loop still answers an ordinary request afterwards.
        try send(mail(subject: "Last", body: "add a note: still working").text)

        // Mail is read in order, the 25 MB one before the anonymous one: under a sanitizer that
        // takes a while, so the quarantine is given as long as the replies.
        let quarantined = try await servers.waitForMessages(of: "bot", count: 1, folder: "Quarantine", timeout: .seconds(90))
        #expect(quarantined.count == 1)
        let replies = try await servers.waitForMessages(of: "alice", count: sent - 1, timeout: .seconds(90))
        #expect(replies.count == sent - 1)
        #expect(replies.contains { $0.parsed.text.contains("still working") })
        for reply in replies {
            #expect(reply.header("Bcc") == nil && reply.header("X-Injected") == nil)
            for line in reply.sentHeaderLines {
                #expect(line.utf8.allSatisfy { $0 < 0x80 } && line.utf8.count <= 998)
            }
        }
        let injected = try #require(replies.first { $0.parsed.subject.hasPrefix("Re: Hello") })
        #expect(injected.parsed.subject == "Re: Hello Bcc: victim@example.test X-Injected: 1")
        let big = try #require(replies.first { $0.parsed.text.contains("big file") })
        #expect(big.parsed.inReplyTo == ["big@example.test"])
        #expect(bot.log.contains("big.bin"))
        #expect(bot.log.contains("quarantine"))
        #expect(bot.process.isRunning)
    }

    @Test("On a server without MOVE, handled mail is filed with UID COPY, \\Deleted and UID EXPUNGE: in the folder once, gone from the inbox")
    func fileWithoutMove() async throws {
        // Dovecot's own list without MOVE (and with UIDPLUS, for UID EXPUNGE).
        let cast = try EmailCast(imapCapability: "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UIDPLUS AUTH=PLAIN AUTH=LOGIN")
        let bot = try cast.startBot(extra: ["SWITCHBOARD_EMAIL_PROCESSED_MAILBOX": "Done"])
        defer { try? bot.stop() }
        try cast.aliceSays("add a note: filed without move", subject: "One")
        let replies = try await cast.servers.waitForMessages(of: "alice", count: 1)
        #expect(replies[0].parsed.text.contains("filed without move"))
        let filed = try await cast.servers.waitForMessages(of: "bot", count: 1, folder: "Done")
        #expect(filed.count == 1 && filed[0].parsed.subject == "One")
        // Gone from the inbox (expunged, not just flagged).
        var left = cast.servers.messages(of: "bot", folder: nil)
        for _ in 0..<50 where !left.isEmpty {
            try await Task.sleep(for: .milliseconds(100))
            left = cast.servers.messages(of: "bot", folder: nil)
        }
        #expect(left.isEmpty, "\(left.map(\.parsed.subject))")
        #expect(bot.log.contains("copy_and_expunge"), "the fallback was used: \(bot.log)")

        // A second mail goes the same way (the capabilities are remembered, nothing breaks).
        try cast.aliceSays("add a note: second", subject: "Two")
        _ = try await cast.servers.waitForMessages(of: "alice", count: 2)
        let both = try await cast.servers.waitForMessages(of: "bot", count: 2, folder: "Done")
        #expect(both.map(\.parsed.subject).sorted() == ["One", "Two"])
    }

    @Test("mail over the size limit is set aside without being downloaded")
    func oversizedMail() async throws {
        let cast = try EmailCast()
        let bot = try cast.startBot(extra: ["SWITCHBOARD_EMAIL_MAX_MESSAGE_BYTES": "65536"])
        defer { try? bot.stop() }
        try cast.aliceSays("add a note: big\n" + String(repeating: String(repeating: "x", count: 70) + "\n", count: 1500))
        try cast.aliceSays("add a note: small")
        _ = try await cast.servers.waitForMessages(of: "bot", count: 1, folder: "Quarantine")
        let replies = try await cast.servers.waitForMessages(of: "alice", count: 1)
        #expect(replies.count == 1)
        #expect(replies[0].parsed.text.contains("small"))
        #expect(bot.log.contains("over the limit"))
    }
}
