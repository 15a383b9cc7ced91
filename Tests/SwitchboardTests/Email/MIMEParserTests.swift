import Foundation
import SwitchboardEmail
import SwitchboardModel
import Testing

@Suite("Email: MIME parsing")
struct MIMEParserTests {
    static func parse(_ text: String, limits: MIMELimits = MIMELimits()) throws -> EmailMessage {
        try MIMEParser.parse(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8), limits: limits)
    }

    @Test("A reply: threading headers, encoded words, quoted history and signature removed")
    func reply() throws {
        let message = try Self.parse("""
            Return-Path: <sam@example.org>
            From: =?UTF-8?Q?Sam_M=C3=BCller?= <sam@example.org>
            To: Switchboard <bot@example.net>, "Doe, Jane" <jane@example.net>
            Subject: =?ISO-8859-1?B?UmU6IHJhcHBvcnQgZOl0YWlsbOk=?=
             =?UTF-8?Q?_=E2=9C=93?=
            Message-ID: <abc123@example.org>
            In-Reply-To: <reply-1@example.net>
            References: <req-0@example.org>
             <reply-1@example.net>
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: quoted-printable

            yes, and also add a note: caf=C3=A9 at 9

            On Tue, 3 Mar 2026 at 10:00, Switchboard <bot@example.net> wrote:
            > This will delete 3 notes.
            > Reply yes to confirm.
            --\u{20}
            Sam
            """)
        #expect(message.from == [HeaderLists.Mailbox(name: "Sam Müller", address: "sam@example.org")])
        #expect(message.to.map(\.address) == ["bot@example.net", "jane@example.net"])
        #expect(message.to.last?.name == "Doe, Jane")
        #expect(message.subject == "Re: rapport détaillé ✓")
        #expect(message.messageID == "abc123@example.org")
        #expect(message.inReplyTo == ["reply-1@example.net"])
        #expect(message.references == ["req-0@example.org", "reply-1@example.net"])
        #expect(message.text == "yes, and also add a note: café at 9")
        #expect(message.problems.isEmpty, "\(message.problems)")
    }

    @Test("Nested multipart: the plain alternative wins, attachments are listed by name and size, RFC 2231 names decoded")
    func multipart() throws {
        let message = try Self.parse("""
            From: sam@example.org
            Subject: report
            Content-Type: multipart/mixed; boundary="outer"

            preamble
            --outer
            Content-Type: multipart/alternative; boundary=inner

            --inner
            Content-Type: text/plain; charset=iso-8859-15
            Content-Transfer-Encoding: quoted-printable

            Price: 5 =A4, please add it
            --inner
            Content-Type: text/html

            <p>Price: 5 &euro;</p>
            --inner--
            --outer
            Content-Type: application/pdf
            Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf
            Content-Transfer-Encoding: base64

            AAECAwQFBgcICQ==
            --outer--
            epilogue
            """)
        #expect(message.text == "Price: 5 €, please add it")
        #expect(message.attachments == [.init(name: "résumé.pdf", contentType: "application/pdf", size: 10)])
        #expect(message.problems.isEmpty, "\(message.problems)")
    }

    @Test("HTML-only mail becomes readable text")
    func htmlOnly() throws {
        let message = try Self.parse("""
            From: sam@example.org
            Content-Type: text/html; charset=windows-1252

            <html><head><style>p{color:red}</style></head><body><p>Remind me tomorrow&nbsp;at 9 to call <b>Bob</b></p>
            <ul><li>one</li><li>two</li></ul><blockquote>old text</blockquote><script>alert(1)</script></body></html>
            """)
        #expect(message.text.hasPrefix("Remind me tomorrow at 9 to call Bob\n\n• one\n• two"), "\(message.text)")
        #expect(!message.text.contains("alert") && !message.text.contains("color"))
        #expect(!message.text.contains("old text"), "quoted HTML is history: \(message.text)")
    }

    @Test("An empty body makes the subject the request")
    func subjectOnly() throws {
        let message = try Self.parse("From: sam@example.org\nSubject: Re: Fwd: list my notes\n\n\n")
        #expect(message.text == "list my notes")
    }

    @Test("Bad input: malformed headers, missing boundaries, truncated base64, unknown charsets, NUL bytes, header injection")
    func badInput() throws {
        let broken = try Self.parse("""
            From: sam@example.org
            this line is not a header
            Subject: =?UTF-8?B?SGVsbG8NCkJjYzogZXZpbEBleGFtcGxlLm9yZw==?=
            Content-Type: multipart/mixed

            just text\u{0} with a NUL
            """)
        #expect(broken.subject == "Hello Bcc: evil@example.org", "a CR/LF in a decoded subject becomes a space")
        #expect(broken.text == "just text with a NUL")
        #expect(broken.problems.contains { $0.contains("malformed header") })
        #expect(broken.problems.contains { $0.contains("without a boundary") })

        let unclosed = try Self.parse("""
            From: sam@example.org
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain; charset=x-klingon

            Qapla
            --b
            Content-Type: text/plain
            Content-Transfer-Encoding: base64

            aGVsbG8gd29ybG
            """)
        #expect(unclosed.text.contains("[text in the character set \"x-klingon\", which I can't read]"))
        #expect(unclosed.text.contains("hello wor"))
        #expect(unclosed.problems.contains("multipart not closed"))
        #expect(unclosed.problems.contains("base64 text cut short"))
    }

    @Test("Base64 with padding inside (each line encoded on its own) is decoded whole, not cut at the first =")
    func base64AfterPadding() throws {
        // "please add a note: " and "call the plumber", each encoded with its own padding.
        let lines = ["please add a note: ", "call the plumber"].map { Data($0.utf8).base64EncodedString() }
        #expect(lines[0].hasSuffix("="), "the first line ends in padding: \(lines[0])")
        let message = try Self.parse("""
            From: sam@example.org
            Content-Type: text/plain; charset=utf-8
            Content-Transfer-Encoding: base64

            \(lines.joined(separator: "\n"))
            """)
        #expect(message.text == "please add a note: call the plumber", "\(message.text)")
        #expect(!message.problems.contains("base64 text cut short"), "\(message.problems)")
        // The decoder alone: runs after padding, a single stray character, and a cut end.
        #expect(TransferEncodings.base64(Array("SGk=SGk=".utf8)) == (Array("HiHi".utf8), false))
        #expect(TransferEncodings.base64(Array("SGVsbG8=\r\nV29ybGQ=".utf8)).bytes == Array("HelloWorld".utf8))
        #expect(TransferEncodings.base64(Array("SGk=S".utf8)).truncated)
        #expect(TransferEncodings.base64(Array("SGVsbG".utf8)) == (Array("Hell".utf8), true))
    }

    @Test("50 levels of nested multipart, 1,000 parts and a 25 MB attachment stay within limits")
    func limits() throws {
        var deep = "From: sam@example.org\nContent-Type: multipart/mixed; boundary=b0\n\n"
        for level in 1..<50 { deep += "--b\(level - 1)\nContent-Type: multipart/mixed; boundary=b\(level)\n\n" }
        deep += "--b49\nContent-Type: text/plain\n\nhi\n"
        let nested = try Self.parse(deep)
        #expect(nested.problems.contains { $0.contains("nested deeper") })

        var many = "From: sam@example.org\nContent-Type: multipart/mixed; boundary=b\n\n"
        for index in 0..<1000 { many += "--b\nContent-Type: text/plain\n\npart \(index)\n" }
        many += "--b--\n"
        let wide = try Self.parse(many)
        #expect(wide.problems.contains { $0.contains("more than 200 parts") })

        let payload = String(repeating: "QUFB", count: 25 * 1024 * 1024 / 3)
        let big = try Self.parse("""
            From: sam@example.org
            Content-Type: multipart/mixed; boundary=b

            --b
            Content-Type: text/plain

            see attached
            --b
            Content-Type: application/octet-stream; name=big.bin
            Content-Transfer-Encoding: base64

            \(payload)
            --b--
            """)
        #expect(big.text == "see attached")
        #expect(big.attachments.first?.name == "big.bin" && (big.attachments.first?.size ?? 0) >= 25 * 1024 * 1024 - 3)

        #expect(throws: MIMEParser.TooLarge.self) { try Self.parse(String(repeating: "x", count: 2000), limits: MIMELimits(maxBytes: 1000)) }
    }

    @Test("`switchboard inspect-email` prints the normalised message as JSON")
    func inspectEmail() throws {
        try Binary.requireBuilt()
        let dir = try TemporaryDirectory()
        let file = dir.path + "/mail.eml"
        try Data("From: Sam <sam@example.org>\r\nTo: bot@example.net\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n\r\nlist my notes\r\n".utf8).write(to: URL(fileURLWithPath: file))
        let result = try Binary.run(["inspect-email", file])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONValue.parse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(json["from"]?.arrayValue?.first?["address"] == "sam@example.org")
        #expect(json["message_id"] == "m1@example.org" && json["text"] == "list my notes" && json["authenticated"] == false)
        for key in ["to", "subject", "in_reply_to", "references", "attachments"] { #expect(json[key] != nil, "\(key)") }
        let signed = dir.path + "/signed.eml"
        try Data("Authentication-Results: mx.example.net; dmarc=pass header.from=example.org\r\nFrom: sam@example.org\r\nAuto-Submitted: auto-replied\r\n\r\nhi\r\n".utf8).write(to: URL(fileURLWithPath: signed))
        let checked = try JSONValue.parse(try Binary.run(["inspect-email", signed, "--trusted-authserv-id", "mx.example.net"]).stdout)
        #expect(checked["authenticated"] == true && checked["no_reply"] == "auto_submitted")
        let missing = try Binary.run(["inspect-email", dir.path + "/nope.eml"])
        #expect(missing.status == 1 && missing.stderr.contains("Can't read"))
    }
}

@Suite("Email: no-reply rules and sender authentication")
struct EmailCheckTests {
    static func parse(_ text: String) throws -> EmailMessage {
        try MIMEParser.parse(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    @Test("Auto-replies, bulk and list mail, bounces and our own mail get no answer")
    func noReply() throws {
        let own = "bot@example.net"
        let cases: [(String, NoReplyReason?)] = [
            ("From: sam@example.org\nAuto-Submitted: auto-replied\n\nout of office", .autoSubmitted),
            ("From: sam@example.org\nAuto-Submitted: no\n\nhello", nil),
            ("From: sam@example.org\nPrecedence: bulk\n\nnews", .bulk),
            ("From: sam@example.org\nList-Id: <dev.lists.example.org>\n\nlist", .mailingList),
            ("Return-Path: <>\nFrom: MAILER-DAEMON@example.org\n\nbounce", .bounce),
            ("From: postmaster@example.org\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nfailed\n--b--\n", .bounce),
            ("From: Switchboard <BOT@example.net>\n\nloop", .ownAddress),
            ("From: sam@example.org\n\nlist my notes", nil),
        ]
        for (text, expected) in cases {
            #expect(NoReplyReason.check(try Self.parse(text), ownAddress: own) == expected, "\(text)")
        }
    }

    @Test("Only trusted Authentication-Results at the top count, and only when aligned with From")
    func authentication() throws {
        let trusted = "mx.example.net"
        func mail(_ top: String, from: String = "sam@example.org", lower: String = "") throws -> EmailMessage {
            try Self.parse("Return-Path: <sam@example.org>\n\(top)\nReceived: from a by b\nFrom: \(from)\nSubject: x\n\(lower)\nhello")
        }
        let dmarc = "Authentication-Results: mx.example.net; dmarc=pass (p=none) header.from=example.org; spf=fail smtp.mailfrom=x@evil.example"
        #expect(SenderAuthentication.isAuthenticated(try mail(dmarc), trustedAuthservID: trusted))
        #expect(!SenderAuthentication.isAuthenticated(try mail(dmarc), trustedAuthservID: nil), "no trusted id: nobody is authenticated")
        #expect(!SenderAuthentication.isAuthenticated(try mail(dmarc), trustedAuthservID: "other.example"))
        let dkim = "Authentication-Results: MX.example.net 1; dkim=pass header.d=mail.example.org header.s=s1"
        #expect(SenderAuthentication.isAuthenticated(try mail(dkim), trustedAuthservID: trusted), "aligned subdomain, id in any case, with a version")
        let unaligned = "Authentication-Results: mx.example.net; dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=bounce@evil.example"
        #expect(!SenderAuthentication.isAuthenticated(try mail(unaligned), trustedAuthservID: trusted))
        let suffix = "Authentication-Results: mx.example.net; dkim=pass header.d=co.uk"
        #expect(!SenderAuthentication.isAuthenticated(try mail(suffix, from: "sam@bank.co.uk"), trustedAuthservID: trusted), "a bare suffix aligns with nothing")
        let spf = "Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=sam@example.org"
        #expect(SenderAuthentication.isAuthenticated(try mail(spf), trustedAuthservID: trusted))
        let failed = "Authentication-Results: mx.example.net; dmarc=fail header.from=example.org"
        #expect(!SenderAuthentication.isAuthenticated(try mail(failed), trustedAuthservID: trusted))
        // A forged field below the trace block, in the sender's own headers, never counts.
        let forged = try mail("X-Spam: no", lower: dmarc + "\n")
        #expect(!SenderAuthentication.isAuthenticated(forged, trustedAuthservID: trusted))
        let two = try mail(dmarc, from: "a@example.org, b@example.org")
        #expect(!SenderAuthentication.isAuthenticated(two, trustedAuthservID: trusted), "several From addresses: no single sender")
    }
}

@Suite("Email: hostile input found in review")
struct EmailHostileInputTests {
    static func parse(_ text: String) throws -> EmailMessage {
        try MIMEParser.parse(Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    @Test("No forged or smuggled Authentication-Results authenticates a sender")
    func forgeries() throws {
        let trusted = "mx.bank.example"
        func authenticated(_ text: String) throws -> Bool {
            SenderAuthentication.isAuthenticated(try Self.parse(text), trustedAuthservID: trusted)
        }
        // The genuine case, to show the others fail for their trick and not for their shape.
        #expect(try authenticated("Authentication-Results: mx.bank.example; dmarc=pass header.from=example.org\nFrom: ceo@example.org\n\nhi"))
        // A quoted local part in the envelope sender cannot add a property.
        #expect(!(try authenticated("Authentication-Results: mx.bank.example; spf=pass smtp.mailfrom=\"a smtp.mailfrom=example.org b\"@evil.example\nFrom: ceo@example.org\n\nhi")))
        #expect(!(try authenticated("Authentication-Results: mx.bank.example; dkim=pass header.i=\"a header.d=example.org b\"@evil.example\nFrom: ceo@example.org\n\nhi")))
        // Unicode case folding (KELVIN SIGN) does not make another id match.
        #expect(!(try authenticated("Authentication-Results: mx.ban\u{212A}.example; dmarc=pass header.from=example.org\nFrom: ceo@example.org\n\nhi")))
        // A NUL inside a field name makes the line malformed, and it ends the trace block.
        #expect(!(try authenticated("Authen\u{0}tication-Results: mx.bank.example; dmarc=pass header.from=example.org\nFrom: ceo@example.org\n\nhi")))
        #expect(!(try authenticated("Authentication-Results: mx.bank.exa\u{0}mple; dmarc=pass header.from=example.org\nFrom: ceo@example.org\n\nhi")))
        // A second From put above a signed message's own.
        #expect(!(try authenticated("Authentication-Results: mx.bank.example; dkim=pass header.d=example.org\nFrom: ceo@example.org\nFrom: intern@example.org\n\nhi")))
    }

    @Test("No CR or LF survives into an address or a message id")
    func injection() throws {
        let message = try Self.parse("From: <sam@x.org\rBcc: e@v.example>\nMessage-ID: <a\rb@x.org>\n\nhi")
        #expect(message.from.isEmpty && message.messageID == nil)
    }

    @Test("The sender's own text is kept: 'On Monday … wrote:' and a From: line without a reply header block")
    func ownText() throws {
        #expect(Quotes.newText("On Monday remind me to answer\nwhat Sam wrote:") == "On Monday remind me to answer\nwhat Sam wrote:")
        #expect(Quotes.newText("Book a train:\nFrom: Berlin\nDate: 4 May") == "Book a train:\nFrom: Berlin\nDate: 4 May")
        #expect(Quotes.newText("yes\n\nOn Mon, 3 Mar 2026, Bot <b@example.net> wrote:\n> delete 3 notes?") == "yes")
        #expect(Quotes.newText("ok\nFrom: Bot\nSent: Monday\nTo: Sam\nSubject: notes\nold text") == "ok")
    }

    @Test("Encoded words after a stray '=?', a lone '<' in HTML, and hostile sizes that stay linear")
    func oddities() throws {
        #expect(EncodedWords.decode("2+2=? =?UTF-8?Q?caf=C3=A9?=") == "2+2=? café")
        #expect(HTMLText.text("<p>if a < b then</p><p>done</p>") == "if a < b then\n\ndone")
        let quotes = String(repeating: "<blockquote>", count: 20_000) + String(repeating: "<br>", count: 20_000)
        #expect(HTMLText.text(quotes).count <= quotes.count * 4, "the text grows with the input, no faster")
        let subject = String(repeating: "Re: ", count: 200_000) + "list my notes"
        #expect(Quotes.subjectRequest(subject) == "list my notes")
        let words = String(repeating: "=?a?Q?b?= ", count: 50_000)
        // An unknown charset in each word: a placeholder each, in linear time.
        #expect(EncodedWords.decode(words).count < 60 * 50_000)
        #expect(EncodedWords.decode("=?UTF-8?Q?a?= =?UTF-8?Q?b?=") == "ab", "space between encoded words is dropped")
    }
}

@Suite("Email: the benchmark corpus")
struct MIMEBenchmarkCorpusTests {
    @Test("Every benchmark message parses cleanly into the request it carries")
    func corpus() throws {
        let parsed = try MIMEBenchmark.corpus().map { try MIMEParser.parse($0) }
        #expect(parsed.allSatisfy { $0.problems.isEmpty }, "\(parsed.map(\.problems))")
        #expect(parsed.map(\.text).prefix(2) == ["add a note: call the plumber about the boiler", "yes"])
        #expect(parsed[2].text.hasPrefix("Paragraph 1: news & a link (https://example.org/1) — more text here."), "\(parsed[2].text.prefix(120))")
        #expect(parsed[3].text == "please file the attached report under finance" && parsed[3].attachments.first?.name == "report.pdf")
        #expect(parsed[4].text == "D'accord pour la réunion de lundi à 10h, ajoute-la au calendrier. Merci!" && parsed[4].subject == "Re: réunion")
    }
}
