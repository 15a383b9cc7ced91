"""A small SMTP server for the email tests: it accepts mail on 127.0.0.1 and hands each
message to Dovecot's LMTP port, before the SMTP transaction returns.

It plays the part of an organisation's receiving server: it removes any
Authentication-Results header that claims its own authserv-id (RFC 8601 section 5) and adds
its own on top, with an SPF-style verdict: pass when the envelope sender's domain is listed in
DIR/spf_pass, else fail. Tests make it fail on purpose by writing an SMTP reply (such as
"451 4.3.0 try later" or "554 5.7.1 refused") into DIR/smtp_fail; an empty or missing file means
normal service. Unknown recipients (not in DIR/passwd) are refused at RCPT with 550.

Usage: smtp-relay.py DIR SMTP_PORT LMTP_PORT AUTHSERV_ID
"""
import asyncio
import os
import re
import signal
import smtplib
import sys

from aiosmtpd.controller import Controller


class Relay:
    def __init__(self, directory, lmtp_port, authserv_id):
        self.directory = directory
        self.lmtp_port = lmtp_port
        self.authserv_id = authserv_id

    def _read(self, name):
        try:
            with open(os.path.join(self.directory, name)) as f:
                return f.read()
        except OSError:
            return ""

    def _users(self):
        return {line.split(":", 1)[0].lower() for line in self._read("passwd").splitlines() if ":" in line}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.rpartition("@")[0].lower() not in self._users():
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        failure = self._read("smtp_fail").strip()
        if failure:
            return failure
        data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = data.partition(b"\n\n")
        # Unfolded field by field: drop our own authserv-id's results, whatever their case.
        own = re.compile(rb"^authentication-results:\s*" + re.escape(self.authserv_id.encode()) + rb"\s*(;|$)", re.I)
        fields, current = [], b""
        for line in re.split(rb"\r?\n", head):
            if line[:1] in (b" ", b"\t") and current:
                current += b"\r\n" + line
            else:
                if current:
                    fields.append(current)
                current = line
        if current:
            fields.append(current)
        kept = [f for f in fields if not own.match(f)]
        mail_from = envelope.mail_from or ""
        domain = mail_from.rpartition("@")[2].lower()
        passing = {d.strip().lower() for d in self._read("spf_pass").split() if d.strip()}
        verdict = "pass" if domain and domain in passing else "fail"
        stamp = f"Authentication-Results: {self.authserv_id}; spf={verdict} smtp.mailfrom={mail_from or '<>'}".encode()
        message = b"\r\n".join([stamp] + kept) + b"\r\n\r\n" + body

        def deliver():
            with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
                lmtp.sendmail(mail_from, envelope.rcpt_tos, message)

        try:
            await asyncio.get_running_loop().run_in_executor(None, deliver)
        except smtplib.SMTPRecipientsRefused:
            return "550 5.1.1 Recipient refused by the mailbox server"
        except (smtplib.SMTPException, OSError) as error:
            return f"451 4.3.0 Mailbox server unavailable: {error}"
        return "250 Message accepted for delivery"


def main():
    directory, smtp_port, lmtp_port, authserv_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    controller = Controller(
        Relay(directory, lmtp_port, authserv_id), hostname="127.0.0.1", port=smtp_port,
        server_hostname="localhost", data_size_limit=64 * 1024 * 1024,
    )
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
