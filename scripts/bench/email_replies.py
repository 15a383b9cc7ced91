"""Time from submitting N mails over SMTP to N replies delivered.

Starts fresh mail servers (scripts/test-servers/mail.sh) and `switchboard serve` as the bot on
free ports in a temporary directory, lets the bot make its first look at the empty mailbox,
then submits N requests ("add a note: benchmark i") from one person as fast as the SMTP server
takes them, over one SMTP connection. The clock stops when the Nth reply is in the person's
Maildir. Each reply is matched to its request by In-Reply-To, for per-message latency (from the
end of its submission to its reply file appearing).
"""
import argparse
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from email.parser import BytesHeaderParser

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAIL = os.path.join(REPO, "scripts", "test-servers", "mail.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def replies(maildir):
    found = {}
    for sub in ("new", "cur"):
        folder = os.path.join(maildir, sub)
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                headers = BytesHeaderParser().parse(f)
            parent = (headers.get("In-Reply-To") or "").strip().strip("<>")
            found[parent] = os.stat(path).st_mtime
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "switchboard"))
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # Stopped from outside (timeout, Ctrl-C): still stop the servers and the bot.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} is not built: swift build -c release --product switchboard")

    root = tempfile.mkdtemp(prefix="switchboard-email-bench-")
    os.chmod(root, 0o755)
    servers = os.path.join(root, "mail")
    bot = None
    try:
        imap, lmtp, smtp = free_port(), free_port(), free_port()
        subprocess.run(["bash", MAIL, "init", servers, str(imap), str(lmtp), str(smtp)], check=True, stdout=subprocess.DEVNULL)
        for user in ("bot", "alice"):
            subprocess.run(["bash", MAIL, "adduser", servers, user, "pw-" + user], check=True)
        subprocess.run(["bash", MAIL, "start", servers], check=True, stdout=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        env.update({
            "SWITCHBOARD_EMAIL_IMAP_URL": f"imap://127.0.0.1:{imap}",
            "SWITCHBOARD_EMAIL_SMTP_URL": f"smtp://127.0.0.1:{smtp}",
            "SWITCHBOARD_EMAIL_USERNAME": "bot",
            "SWITCHBOARD_EMAIL_PASSWORD": "pw-bot",
            "SWITCHBOARD_EMAIL_ADDRESS": "bot@example.test",
            "SWITCHBOARD_EMAIL_ALLOWED_SENDERS": "*@example.test",
            # One person sends them all: lift the per-sender loop guard and the notes rate limit.
            "SWITCHBOARD_EMAIL_MAX_PER_SENDER_PER_HOUR": "10000",
            "SWITCHBOARD_RATE_LIMITS_NOTES_PER_MINUTE": "100000",
            "SWITCHBOARD_RATE_LIMITS_NOTES_BURST": "100000",
            "SWITCHBOARD_HTTP_ENABLED": "false",
        })
        log = open(os.path.join(root, "serve.log"), "w")
        bot = subprocess.Popen([args.binary, "serve", "--data-dir", os.path.join(root, "data")], env=env, stdout=log, stderr=log)
        deadline = time.time() + 30
        while "first look at the mailbox" not in open(os.path.join(root, "serve.log")).read():
            if time.time() > deadline or bot.poll() is not None:
                sys.exit("the bot did not start; see " + os.path.join(root, "serve.log"))
            time.sleep(0.05)
        submitted = {}
        start = time.time()
        with smtplib.SMTP("127.0.0.1", smtp) as client:
            for i in range(args.messages):
                message_id = f"{uuid.uuid4()}@example.test"
                body = (f"From: Alice <alice@example.test>\r\nTo: bot@example.test\r\nSubject: Benchmark {i}\r\n"
                        f"Message-ID: <{message_id}>\r\n\r\nadd a note: benchmark {i}\r\n")
                client.sendmail("alice@example.test", ["bot@example.test"], body.encode())
                submitted[message_id] = time.time()
        submit_seconds = time.time() - start
        maildir = os.path.join(servers, "mail", "alice", "Maildir")
        deadline = start + args.timeout
        while True:
            got = replies(maildir)
            if len(got) >= args.messages:
                break
            if time.time() > deadline:
                sys.exit(f"only {len(got)} of {args.messages} replies within {args.timeout} s; see {root}/serve.log")
            time.sleep(0.05)
        total = max(got.values()) - start
        latencies = [got[m] - t for m, t in submitted.items() if m in got]
        result = {
            "messages": args.messages,
            "submit_seconds": round(submit_seconds, 3),
            "total_seconds": round(total, 3),
            "replies_per_second": round(args.messages / total, 1),
            "latency_p50_seconds": round(percentile(latencies, 50), 3),
            "latency_p99_seconds": round(percentile(latencies, 99), 3),
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{args.messages} mails submitted in {submit_seconds:.2f} s; all {args.messages} replies delivered "
                  f"{total:.2f} s after the first submission ({result['replies_per_second']} replies/s); "
                  f"per mail p50 {result['latency_p50_seconds']} s, p99 {result['latency_p99_seconds']} s")
    finally:
        # A second TERM (timeout -k) must not cut the cleanup short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bot is not None:
            bot.terminate()
            try:
                bot.wait(timeout=15)
            except subprocess.TimeoutExpired:
                bot.kill()
        subprocess.run(["bash", MAIL, "stop", servers], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
