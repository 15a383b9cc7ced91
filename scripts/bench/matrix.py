#!/usr/bin/env python3
"""The Matrix benchmark: the Switchboard bot against a real Synapse, next to a no-op client.

What it measures
    Two runs, each on its own fresh Synapse (scripts/test-servers/synapse.sh, a temporary
    directory, a free 127.0.0.1 port):

    baseline  a no-op client (this file, `noop-client`, in its own process) logged in as the
              bot user. It does the least any bot must do: join rooms it is invited to,
              long-poll /sync with a filter, and for every human message PUT an m.notice
              reply with `m.relates_to.m.in_reply_to`. It keeps one sender per room (replies
              in order within a room, rooms in parallel). This is the homeserver's own limit.
              With --baseline-sequential it sends one reply at a time over all rooms instead.
    bot       the real binary (`switchboard serve`) logged in with a password, same rooms.

    Setup per run: USERS humans spread round-robin over ROOMS rooms (defaults: 10 users, 5
    rooms, so 2 humans per room), each room also holding the responder and an observer user.
    The first human of a room creates it and invites the others; the responder joins on the
    invitation, and nothing is sent until it has joined every room.

    Load: "send everything, measure until everything is answered". All humans start together;
    each sends its share of MESSAGES (`!sb add a note: bench N`; the prefix addresses the bot in
    any room) one after the other, the next as soon as the server accepted the previous one
    (a closed loop, one message in flight per human).

    Observation: the observer long-polls /sync for the responder's messages and records when
    each reply arrives, matched to its request by `m.in_reply_to`. Latency is from just before
    the human's PUT /send to the observer seeing the reply; everything uses this process's
    monotonic clock.

    Reported per run: messages, answered, total time (first send to last reply), replies per
    second, p50 / p99 / max latency; then the bot's overhead over the baseline (total time and
    p50). The target is less than 20% on total time. Warnings and errors in the bot's log are
    counted and the first few are shown.

How to run
    scripts/bench/matrix.sh [options]        (installs Synapse into the venv when missing)
    .build-venv/bin/python scripts/bench/matrix.py [options]

    --binary PATH     the switchboard binary (default .build/release/switchboard)
    --messages N      total messages (500)     --users N   humans (10)    --rooms N  rooms (5)
    --only RUN        just `bot` or `baseline`
    --json            print the results as JSON instead of a table
    --keep            keep the temporary directories (Synapse logs, the bot's log and database)
    --timeout S       give up when no reply arrived for S seconds (60)
    --settle S        wait S seconds after the joins before sending (2)
    --baseline-sequential
                      the no-op client sends one reply at a time, not one per room at a time

    Progress goes to stderr, results to stdout. Everything started (Synapse, the bot, the no-op
    client) is stopped on exit, including on Ctrl-C and errors. Python 3 standard library only.
"""

import argparse
import http.client
import json
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SYNAPSE_SH = os.path.join(REPO, "scripts", "test-servers", "synapse.sh")
SERVER_NAME = "localhost"
BOT_LOCALPART = "bot"
BOT_PASSWORD = "bench-bot-password"
PREFIX = "!sb "


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# MARK: A minimal Matrix client


class MatrixError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Matrix:
    """A client-server API client on one keep-alive connection; one per thread."""

    def __init__(self, base_url, token=None):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.token = token
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, query=None, timeout=60.0):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.conn.timeout = timeout
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(timeout)
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                text = response.read().decode("utf-8", errors="replace")
            except (OSError, http.client.HTTPException):
                # Usually a keep-alive connection the server closed while idle: reconnect.
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.status == 429:
                # Synapse's limits are relaxed by synapse.sh; honour one anyway.
                wait = json.loads(text or "{}").get("retry_after_ms", 500) / 1000
                time.sleep(wait)
                continue
            if response.status >= 400:
                raise MatrixError(response.status, text)
            return json.loads(text) if text else {}
        raise MatrixError(429, "still rate limited")

    def sync(self, since, filter_json, timeout_ms):
        query = {"filter": filter_json, "timeout": str(timeout_ms)}
        if since:
            query["since"] = since
        return self.request("GET", "/_matrix/client/v3/sync", query=query, timeout=timeout_ms / 1000 + 30)

    def send(self, room_id, txn_id, content):
        path = f"/_matrix/client/v3/rooms/{seg(room_id)}/send/m.room.message/{seg(txn_id)}"
        return self.request("PUT", path, body=content)["event_id"]

    def join(self, room_id):
        return self.request("POST", f"/_matrix/client/v3/join/{seg(room_id)}", body={})

    def login(self, user_id, password):
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": "bench no-op client",
        }
        self.token = self.request("POST", "/_matrix/client/v3/login", body=body)["access_token"]


def seg(text):
    return urllib.parse.quote(text, safe="")


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def in_reply_to(event):
    relates = (event.get("content") or {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


# MARK: The no-op client (baseline responder), run as `matrix.py noop-client ...`


def noop_client(argv):
    parser = argparse.ArgumentParser(prog="matrix.py noop-client")
    parser.add_argument("--homeserver", required=True)
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--sync-timeout-ms", type=int, default=30000)
    parser.add_argument("--sequential", action="store_true", help="one reply at a time over all rooms")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    client = Matrix(args.homeserver)
    client.login(args.user_id, args.password)
    me = args.user_id
    sync_filter = compact({
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": 100, "types": ["m.room.message"]},
            "state": {"types": []},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    })

    # One sender thread per room: replies in order within a room, rooms in parallel; or a
    # single sender for everything with --sequential.
    queues = {}
    sent = [0]
    counter_lock = threading.Lock()

    def sender(work):
        conn = Matrix(args.homeserver, client.token)
        while True:
            room_id, event_id = work.get()
            with counter_lock:
                sent[0] += 1
                txn = f"noop-{sent[0]}"
            content = {"msgtype": "m.notice", "body": "ok", "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}
            for attempt in range(5):
                try:
                    conn.send(room_id, txn, content)
                    break
                except (OSError, MatrixError) as error:
                    print(f"noop-client: send failed ({error}); retrying", file=sys.stderr, flush=True)
                    time.sleep(0.5 * (attempt + 1))

    def reply(room_id, event_id):
        key = "all" if args.sequential else room_id
        if key not in queues:
            queues[key] = queue.Queue()
            threading.Thread(target=sender, args=(queues[key],), daemon=True).start()
        queues[key].put((room_id, event_id))

    since = None
    known_rooms = set()  # a room's first timeline after the join is limited, harmlessly
    while True:
        try:
            response = client.sync(since, sync_filter, 0 if since is None else args.sync_timeout_ms)
        except (OSError, MatrixError) as error:
            print(f"noop-client: sync failed ({error}); retrying", file=sys.stderr, flush=True)
            time.sleep(1)
            continue
        rooms = response.get("rooms") or {}
        for room_id in (rooms.get("invite") or {}):
            try:
                client.join(room_id)
                print(f"noop-client: joined {room_id}", file=sys.stderr, flush=True)
            except (OSError, MatrixError) as error:
                print(f"noop-client: join {room_id} failed ({error})", file=sys.stderr, flush=True)
        if since is not None:  # The first sync is history: nothing in it is answered.
            for room_id, room in (rooms.get("join") or {}).items():
                timeline = room.get("timeline") or {}
                if timeline.get("limited") and room_id in known_rooms:
                    print(f"noop-client: limited timeline in {room_id}; some messages missed", file=sys.stderr, flush=True)
                known_rooms.add(room_id)
                for event in timeline.get("events") or []:
                    content = event.get("content") or {}
                    if event.get("sender") != me and content.get("msgtype") == "m.text":
                        reply(room_id, event["event_id"])
        since = response["next_batch"]


# MARK: Running one benchmark


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class Resources:
    """Everything started, so that it can all be stopped whatever happens."""

    def __init__(self, keep):
        self.keep = keep
        self.processes = []
        self.synapse_dirs = []
        self.temp_dirs = []

    def cleanup(self):
        for proc in self.processes:
            stop_process(proc)
        for directory in self.synapse_dirs:
            subprocess.run(["bash", SYNAPSE_SH, "stop", directory], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for directory in self.temp_dirs:
            if self.keep:
                log(f"kept {directory}")
            else:
                shutil.rmtree(directory, ignore_errors=True)


def stop_process(proc, grace=10.0):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def synapse(*args):
    result = subprocess.run(["bash", SYNAPSE_SH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"synapse.sh {' '.join(args[:1])} failed:\n{result.stderr.strip()}")
    return result.stdout


class Run:
    """One run: a fresh Synapse, a responder (`bot` or `baseline`), humans and an observer."""

    def __init__(self, kind, options, resources):
        self.kind = kind
        self.options = options
        self.resources = resources
        self.dir = tempfile.mkdtemp(prefix=f"switchboard-bench-{kind}-")
        resources.temp_dirs.append(self.dir)
        self.port = free_port()
        self.homeserver = f"http://127.0.0.1:{self.port}"
        self.bot_id = f"@{BOT_LOCALPART}:{SERVER_NAME}"
        self.responder = None
        self.responder_log = os.path.join(self.dir, f"{kind}.log")
        self.arrivals = {}  # request event id -> monotonic time the reply was seen
        self.unexpected = []  # reply bodies that are not the expected answer
        self.limited = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread_errors = []  # exceptions raised in sender and observer threads

    def tag(self, message):
        log(f"[{self.kind}] {message}")

    # Setup

    def start_synapse(self):
        server = os.path.join(self.dir, "synapse")
        synapse("init", server, str(self.port))
        self.resources.synapse_dirs.append(server)
        synapse("start", server)
        self.server = server
        self.tag(f"Synapse on {self.homeserver} ({server})")

    def register(self, localpart, password):
        response = json.loads(synapse("register", self.server, localpart, password))
        return response["user_id"], response["access_token"]

    def start_responder(self, humans):
        if self.kind == "bot":
            env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
            env.update({
                "SWITCHBOARD_MATRIX_HOMESERVER": self.homeserver,
                "SWITCHBOARD_MATRIX_USER_ID": self.bot_id,
                "SWITCHBOARD_MATRIX_PASSWORD": BOT_PASSWORD,
                "SWITCHBOARD_MATRIX_ALLOWED_USERS": ",".join(humans),
                "SWITCHBOARD_MATRIX_SYNC_TIMEOUT_MS": "30000",
                # The engine's per-person limits would otherwise answer "slow down".
                "SWITCHBOARD_RATE_LIMITS_DEFAULT_PER_MINUTE": "1000000",
                "SWITCHBOARD_RATE_LIMITS_DEFAULT_BURST": "1000000",
            })
            data_dir = os.path.join(self.dir, "bot-data")
            command = [self.options.binary, "serve", "--data-dir", data_dir]
        else:
            env = dict(os.environ)
            command = [sys.executable, os.path.abspath(__file__), "noop-client",
                       "--homeserver", self.homeserver, "--user-id", self.bot_id, "--password", BOT_PASSWORD]
            if self.options.baseline_sequential:
                command.append("--sequential")
        with open(self.responder_log, "wb") as out:
            # Its own session: a Ctrl-C reaches only us, and we stop it in order.
            self.responder = subprocess.Popen(command, cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.resources.processes.append(self.responder)
        self.tag(f"responder started (pid {self.responder.pid}, log {self.responder_log})")

    def check_responder(self):
        if self.responder.poll() is not None:
            raise RuntimeError(f"the {self.kind} responder exited with status {self.responder.returncode}; "
                               f"last lines of {self.responder_log}:\n{tail(self.responder_log, 30)}")

    def create_rooms(self, humans, observer):
        """Room r holds humans r, r+ROOMS, ...; the first creates it and invites everyone."""
        rooms = []
        for r in range(self.options.rooms):
            members = [h for i, h in enumerate(humans) if i % self.options.rooms == r]
            creator = members[0]
            body = {"preset": "private_chat", "name": f"bench {r + 1}",
                    "invite": [m["user_id"] for m in members[1:]] + [self.bot_id, observer["user_id"]]}
            room_id = creator["client"].request("POST", "/_matrix/client/v3/createRoom", body=body)["room_id"]
            for member in members[1:] + [observer]:
                member["client"].join(room_id)
            for member in members:
                member["room"] = room_id
            rooms.append({"room_id": room_id, "creator": creator})
        return rooms

    def wait_for_joins(self, rooms, timeout=120.0):
        deadline = time.monotonic() + timeout
        waiting = list(rooms)
        while waiting:
            self.check_responder()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {self.kind} responder did not join {len(waiting)} room(s) within {timeout:.0f} s")
            room = waiting[0]
            path = f"/_matrix/client/v3/rooms/{seg(room['room_id'])}/joined_members"
            joined = room["creator"]["client"].request("GET", path)["joined"]
            if self.bot_id in joined:
                waiting.pop(0)
            else:
                time.sleep(0.2)

    # Observing replies

    def observe(self, observer, first_batch):
        client = Matrix(self.homeserver, observer["token"])
        sync_filter = compact({
            "presence": {"types": []},
            "account_data": {"types": []},
            "room": {
                "timeline": {"limit": 1000, "types": ["m.room.message"], "senders": [self.bot_id]},
                "state": {"types": []},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
        })
        since = first_batch
        while not self.stop.is_set():
            try:
                response = client.sync(since, sync_filter, 2000)
            except (OSError, MatrixError) as error:
                self.tag(f"observer sync failed ({error}); retrying")
                time.sleep(0.5)
                continue
            seen = time.monotonic()
            for room in ((response.get("rooms") or {}).get("join") or {}).values():
                timeline = room.get("timeline") or {}
                if timeline.get("limited"):
                    with self.lock:
                        self.limited += 1
                for event in timeline.get("events") or []:
                    target = in_reply_to(event)
                    body = (event.get("content") or {}).get("body", "")
                    with self.lock:
                        if target and target not in self.arrivals:
                            self.arrivals[target] = seen
                        if not (body.startswith("Added note") or body == "ok"):
                            self.unexpected.append(body)
            since = response["next_batch"]
        client.close()

    # Sending

    def send_all(self, humans, go, sends):
        def human(person, count, start_index):
            client = person["client"]
            go.wait()
            for k in range(count):
                if self.stop.is_set():
                    return
                n = start_index + k
                content = {"msgtype": "m.text", "body": f"{PREFIX}add a note: bench {n}"}
                started = time.monotonic()
                event_id = client.send(person["room"], f"bench-{n}", content)
                accepted = time.monotonic()
                with self.lock:
                    sends.append((event_id, started, accepted))

        total, users = self.options.messages, len(humans)
        threads, index = [], 0
        for i, person in enumerate(humans):
            count = total // users + (1 if i < total % users else 0)
            thread = threading.Thread(target=self.guard(human), args=(person, count, index), daemon=True)
            threads.append(thread)
            index += count
        for thread in threads:
            thread.start()
        return threads

    def guard(self, function):
        """Runs a thread body, recording its exception for the main thread."""
        def run(*args):
            try:
                function(*args)
            except Exception as error:  # noqa: BLE001 - reported by the main thread
                with self.lock:
                    self.thread_errors.append(error)
        return run

    # The whole run

    def execute(self):
        """Runs the benchmark; stops the responder and Synapse before computing the results."""
        try:
            sends = self.measure()
        finally:
            self.stop.set()
            if self.responder is not None:
                stop_process(self.responder)
            if getattr(self, "server", None):
                synapse("stop", self.server)
        return self.results(sends)

    def measure(self):
        options = self.options
        self.start_synapse()
        humans_ids = []
        humans = []
        for i in range(options.users):
            user_id, token = self.register(f"bench-user-{i + 1:02d}", "bench-user-password")
            humans.append({"user_id": user_id, "token": token, "client": Matrix(self.homeserver, token)})
            humans_ids.append(user_id)
        obs_id, obs_token = self.register("bench-observer", "bench-observer-password")
        observer = {"user_id": obs_id, "token": obs_token, "client": Matrix(self.homeserver, obs_token)}
        self.register(BOT_LOCALPART, BOT_PASSWORD)
        self.tag(f"registered {options.users} humans, an observer and {self.bot_id}")

        self.start_responder(humans_ids)
        rooms = self.create_rooms(humans, observer)
        self.tag(f"created {len(rooms)} rooms; waiting for the responder to join")
        joined_from = time.monotonic()
        self.wait_for_joins(rooms)
        self.tag(f"responder joined all rooms in {time.monotonic() - joined_from:.1f} s; settling {options.settle:g} s")
        time.sleep(options.settle)
        self.check_responder()

        first = observer["client"].sync(None, compact({"room": {"timeline": {"limit": 1}}}), 0)["next_batch"]
        observer_thread = threading.Thread(target=self.guard(self.observe), args=(observer, first), daemon=True)
        observer_thread.start()

        go = threading.Event()
        sends = []
        senders = self.send_all(humans, go, sends)
        self.tag(f"sending {options.messages} messages from {options.users} humans in {options.rooms} rooms")
        go.set()

        # Wait until every request is answered, or nothing new arrived for --timeout seconds.
        last_progress, last_count, last_report = time.monotonic(), -1, time.monotonic()
        while True:
            time.sleep(0.05)
            with self.lock:
                errors = list(self.thread_errors)
                done_sending = len(sends) == options.messages
                answered = sum(1 for event_id, _, _ in sends if event_id in self.arrivals)
            if errors:
                raise RuntimeError(f"a benchmark thread failed: {errors[0]!r}")
            self.check_responder()
            now = time.monotonic()
            if answered != last_count:
                last_progress, last_count = now, answered
            if done_sending and answered == options.messages:
                break
            if now - last_progress > options.timeout:
                self.tag(f"no reply for {options.timeout:g} s; giving up with {answered}/{options.messages} answered")
                break
            if now - last_report >= 5:
                last_report = now
                self.tag(f"sent {len(sends)}, answered {answered}")
        self.stop.set()
        for thread in senders:
            thread.join(1)
        observer_thread.join(5)
        for person in humans + [observer]:
            person["client"].close()
        with self.lock:
            return list(sends)

    def results(self, sends):
        with self.lock:
            arrivals = dict(self.arrivals)
        latencies = sorted(arrivals[e] - started for e, started, _ in sends if e in arrivals)
        first_send = min((started for _, started, _ in sends), default=0.0)
        last_accept = max((accepted for _, _, accepted in sends), default=first_send)
        answered_at = [arrivals[e] for e, _, _ in sends if e in arrivals]
        total = (max(answered_at) - first_send) if answered_at else None

        def ms(value):
            return None if value is None else round(value * 1000, 1)
        result = {
            "run": self.kind,
            "messages": self.options.messages,
            "answered": len(latencies),
            "send_seconds": round(last_accept - first_send, 3),
            "total_seconds": None if total is None else round(total, 3),
            "replies_per_second": round(len(latencies) / total, 1) if total else None,
            "p50_ms": ms(percentile(latencies, 50)),
            "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(latencies[-1] if latencies else None),
            "unexpected_replies": len(self.unexpected),
            "limited_syncs": self.limited,
        }
        if self.unexpected:
            self.tag(f"{len(self.unexpected)} replies were not the expected answer, e.g. {self.unexpected[0]!r}")
        if self.limited:
            self.tag(f"the observer saw {self.limited} limited timelines: some replies may be missing")
        if self.kind == "bot":
            result["bot_log"] = scan_log(self.responder_log)
        self.tag(f"answered {result['answered']}/{result['messages']} in {result['total_seconds']} s")
        return result


def tail(path, lines):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def scan_log(path, keep=10):
    """Counts the bot's log lines that mention warnings or errors; keeps the first few."""
    found = {"warning_or_error_lines": 0, "examples": []}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                lower = line.lower()
                if "error" in lower or "warning" in lower:
                    found["warning_or_error_lines"] += 1
                    if len(found["examples"]) < keep:
                        found["examples"].append(line.rstrip()[:400])
    except OSError:
        pass
    return found


# MARK: Reporting


def overhead(bot, baseline, key):
    if not bot or not baseline or not bot.get(key) or not baseline.get(key):
        return None
    return round(bot[key] / baseline[key] - 1, 3)


def table(results, comparison):
    columns = [("run", "run", "{}"), ("messages", "messages", "{}"), ("answered", "answered", "{}"),
               ("send_seconds", "sending s", "{:.2f}"), ("total_seconds", "total s", "{:.2f}"),
               ("replies_per_second", "replies/s", "{:.1f}"), ("p50_ms", "p50 ms", "{:.0f}"),
               ("p99_ms", "p99 ms", "{:.0f}"), ("max_ms", "max ms", "{:.0f}")]
    rows = [[title for _, title, _ in columns]]
    for result in results:
        rows.append(["-" if result.get(key) is None else fmt.format(result[key]) for key, _, fmt in columns])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if comparison:
        def pct(value):
            return "-" if value is None else f"{value * 100:+.1f}%"
        lines.append("")
        lines.append(f"bot over baseline: total time {pct(comparison['total'])}, p50 {pct(comparison['p50'])}, "
                     f"p99 {pct(comparison['p99'])}")
        if comparison["total"] is not None:
            verdict = "met" if comparison["target_met"] else "NOT met"
            lines.append(f"target (bot adds < 20% to total time): {verdict}")
    for result in results:
        if "bot_log" in result:
            count = result["bot_log"]["warning_or_error_lines"]
            lines.append(f"bot log: {count} line(s) mention a warning or an error")
    return "\n".join(lines)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "noop-client":
        noop_client(sys.argv[2:])
        return 0

    parser = argparse.ArgumentParser(description="Benchmark the Matrix bot against a real Synapse and a no-op client.")
    parser.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "switchboard"))
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--only", choices=["bot", "baseline"])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds without a reply")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait after the joins before sending")
    parser.add_argument("--baseline-sequential", action="store_true",
                        help="the no-op client sends one reply at a time (default: one per room at a time)")
    options = parser.parse_args()
    if options.users < 1 or options.rooms < 1 or options.messages < 1:
        parser.error("--messages, --users and --rooms must be positive")
    if options.users < options.rooms:
        parser.error("every room needs a human: --users must be at least --rooms")
    options.binary = os.path.abspath(options.binary)
    kinds = [options.only] if options.only else ["baseline", "bot"]
    if "bot" in kinds and not os.access(options.binary, os.X_OK):
        parser.error(f"no executable at {options.binary}; build it (swift build -c release --product switchboard) "
                     "or pass --binary")

    started = time.monotonic()
    resources = Resources(options.keep)

    def terminate(signum, _frame):
        log(f"stopping on {signal.Signals(signum).name}")
        raise SystemExit(128 + signum)
    # Ctrl-C raises KeyboardInterrupt even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    results = []
    try:
        for kind in kinds:
            results.append(Run(kind, options, resources).execute())
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (RuntimeError, OSError, MatrixError) as error:
        log(f"failed: {error}")
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        resources.cleanup()

    by_kind = {r["run"]: r for r in results}
    comparison = None
    if "bot" in by_kind and "baseline" in by_kind:
        bot, baseline = by_kind["bot"], by_kind["baseline"]
        total = overhead(bot, baseline, "total_seconds")
        complete = bot["answered"] == bot["messages"] and baseline["answered"] == baseline["messages"]
        comparison = {"total": total, "p50": overhead(bot, baseline, "p50_ms"), "p99": overhead(bot, baseline, "p99_ms"),
                      "target": 0.2, "target_met": complete and total is not None and total < 0.2}
    elapsed = time.monotonic() - started
    if options.json:
        print(json.dumps({"messages": options.messages, "users": options.users, "rooms": options.rooms,
                          "binary": options.binary, "baseline_sequential": options.baseline_sequential, "runs": results, "overhead": comparison,
                          "script_seconds": round(elapsed, 1)}, indent=2))
    else:
        print(table(results, comparison))
    for result in results:
        for line in result.get("bot_log", {}).get("examples", []):
            log(f"bot log: {line}")
    log(f"done in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
