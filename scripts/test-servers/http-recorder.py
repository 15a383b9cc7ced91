#!/usr/bin/env python3
"""A tiny HTTP receiver for the tests: records every POST and answers with scripted statuses.

    http-recorder.py PORT FILE [STATUS ...]

Listens on 127.0.0.1:PORT. Each POST is appended to FILE as one JSON line:
{"path": ..., "headers": {lower-case name: value}, "body": text}. The Nth request is answered
with the Nth STATUS (200 once they run out) and an empty JSON object. It runs in its own
process, so a test process busy with other work cannot stall it.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, path = int(sys.argv[1]), sys.argv[2]
statuses = [int(s) for s in sys.argv[3:]]
count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        status = statuses[count] if count < len(statuses) else 200
        count += 1
        reply = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
