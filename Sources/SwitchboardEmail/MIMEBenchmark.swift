// A corpus of realistic message shapes, and the parser's throughput over it, for
// `switchboard inspect-email --benchmark`.

import Foundation

/// Times the MIME reader.
public enum MIMEBenchmark {
    /// Five kinds of mail people send an assistant: a short plain request, a reply with quoted
    /// history and a signature, an HTML-only newsletter-like message in Windows-1252, a
    /// multipart/alternative message with a 200 KB PDF attached, and a quoted-printable Latin-1
    /// reply with encoded-word headers.
    public static func corpus() -> [[UInt8]] {
        let crlf = { (text: String) in Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }
        let quoted = (1...40).map { "> line \($0) of the earlier message, with some ordinary words in it" }.joined(separator: "\n")
        let html = (1...60).map { "<p>Paragraph \($0): <b>news</b> &amp; <a href=\"https://example.org/\($0)\">a link</a> &mdash; more text here.</p>" }.joined(separator: "\n")
        let pdf = String(repeating: "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+CnN0cmVhbQp4nCtUMlAw\n", count: 2700)
        return [
            crlf("From: Sam <sam@example.org>\nTo: bot@example.net\nSubject: notes\nMessage-ID: <1@example.org>\nDate: Mon, 30 Nov 2026 09:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\nadd a note: call the plumber about the boiler\n"),
            crlf("From: Sam <sam@example.org>\nTo: bot@example.net\nSubject: Re: notes\nMessage-ID: <2@example.org>\nIn-Reply-To: <r1@example.net>\nReferences: <1@example.org> <r1@example.net>\nContent-Type: text/plain; charset=utf-8\n\nyes\n\nOn Mon, 30 Nov 2026 at 09:00, Switchboard <bot@example.net> wrote:\n\(quoted)\n-- \nSam\nExample Ltd\n"),
            crlf("From: news@example.org\nTo: bot@example.net\nSubject: Weekly\nContent-Type: text/html; charset=windows-1252\n\n<html><head><style>p { margin: 0 }</style></head><body>\(html)</body></html>\n"),
            crlf("From: Sam <sam@example.org>\nTo: bot@example.net\nSubject: report\nContent-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n--inner\nContent-Type: text/plain; charset=utf-8\n\nplease file the attached report under finance\n--inner\nContent-Type: text/html; charset=utf-8\n\n<p>please file the attached report under finance</p>\n--inner--\n--outer\nContent-Type: application/pdf; name=report.pdf\nContent-Disposition: attachment; filename=report.pdf\nContent-Transfer-Encoding: base64\n\n\(pdf)--outer--\n"),
            crlf("From: =?ISO-8859-1?Q?Ren=E9_Dupr=E9?= <rene@example.fr>\nTo: bot@example.net\nSubject: =?ISO-8859-1?Q?Re:_r=E9union?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nD'accord pour la r=E9union de lundi =E0 10h, ajoute-la au calendrier.=\n Merci!\n\nLe lundi 30 novembre, Switchboard a =E9crit :\n> Quelle heure ?\n"),
        ]
    }

    /// Parses the corpus `rounds` times: megabytes and messages per second.
    public static func run(rounds: Int) throws -> String {
        let corpus = corpus()
        let bytes = corpus.reduce(0) { $0 + $1.count }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<rounds {
            for message in corpus { _ = try MIMEParser.parse(message) }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let megabytes = Double(bytes * rounds) / 1_048_576
        return String(
            format: "%d messages (%.1f KB per round of %d) in %.2f s: %.1f MB/s, %.0f messages/s",
            corpus.count * rounds, Double(bytes) / 1024, corpus.count, seconds, megabytes / seconds, Double(corpus.count * rounds) / seconds
        )
    }
}
