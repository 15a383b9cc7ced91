#!/usr/bin/env bash
# Runs throwaway Synapse (Matrix) homeservers for the integration tests, on 127.0.0.1 only.
#
#   synapse.sh install                    venv with a pinned matrix-synapse, and matrix-nio with its
#                                         e2e extra for the encrypting test client (fast when present)
#   synapse.sh init DIR PORT              fresh server in DIR: homeserver.yaml, keys, shared_secret
#   synapse.sh start DIR                  run it in the background; returns once it answers
#   synapse.sh stop DIR                   SIGTERM, then SIGKILL after 10 s; fine if not running
#   synapse.sh register DIR USER PASS [admin]
#                                         shared-secret registration; prints the JSON response
#                                         ({user_id, access_token, device_id, ...}) on one line
#
# The venv lives in $SWITCHBOARD_TEST_VENV (default: <repo>/.build-venv). DIR is owned by the
# caller: init writes homeserver.yaml, port, shared_secret, the SQLite database, media and logs
# there; start adds pid and stdout.log. Test-only secrets: never expose these servers.
set -euo pipefail

SYNAPSE_VERSION="1.163.2"
# The scripted person with an end-to-end encrypting client (scripts/test-servers/encrypting_person.py).
NIO_VERSION="0.26.0"
# nio's end-to-end extra does its cryptography with vodozemac (a wheel on PyPI; pinned so a new
# release cannot change what the tests check against).
VODOZEMAC_VERSION="0.10.0"
INSTALLED="synapse-$SYNAPSE_VERSION nio-$NIO_VERSION vodozemac-$VODOZEMAC_VERSION"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SWITCHBOARD_TEST_VENV:-$REPO/.build-venv}"
PY="$VENV/bin/python"
MARKER="$VENV/.matrix-synapse-version"
SHARED_SECRET="switchboard-test-registration-secret"

die() { echo "synapse.sh: $*" >&2; exit 1; }
usage() { sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }

require_venv() {
    [[ -x $PY && $(cat "$MARKER" 2>/dev/null) == "$INSTALLED" ]] \
        || die "Synapse $SYNAPSE_VERSION is not installed in $VENV; run: $0 install"
}

require_dir() {
    [[ -f $1/homeserver.yaml && -f $1/port ]] || die "$1 has no server; run: $0 init $1 PORT"
}

# True if the pid in DIR/pid is a live (not zombie) Synapse process.
running() {
    local pid state
    pid="$(cat "$1/pid" 2>/dev/null)" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n $state && $state != Z ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q synapse.app.homeserver
}

cmd_install() {
    mkdir -p "$(dirname "$VENV")"
    # Serialise concurrent installs into the same venv.
    exec 9>"$VENV.lock"
    flock 9
    if [[ -x $PY && $(cat "$MARKER" 2>/dev/null) == "$INSTALLED" ]]; then
        echo "Synapse $SYNAPSE_VERSION and matrix-nio $NIO_VERSION already installed in $VENV"
        return
    fi
    command -v python3 >/dev/null || die "python3 is not on PATH"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        # Debian's python3 ships venv/ensurepip separately.
        if [[ $(command -v python3) == /usr/bin/python3 ]] && command -v apt-get >/dev/null; then
            echo "Installing python3-venv (python3 has no venv module)" >&2
            local sudo=""
            [[ $(id -u) -eq 0 ]] || sudo="sudo"
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        else
            die "$(command -v python3) has no working venv module (on Debian: apt-get install python3-venv)"
        fi
    fi
    if [[ ! -x $PY ]] || ! "$PY" -c 'import sys' 2>/dev/null; then
        rm -rf "$VENV"
        echo "Creating venv $VENV with $(command -v python3) ($(python3 --version 2>&1))" >&2
        python3 -m venv "$VENV"
    fi
    rm -f "$MARKER"
    echo "Installing matrix-synapse==$SYNAPSE_VERSION into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "matrix-synapse==$SYNAPSE_VERSION"
    echo "Installing matrix-nio[e2e]==$NIO_VERSION into $VENV" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "matrix-nio[e2e]==$NIO_VERSION" "vodozemac==$VODOZEMAC_VERSION"
    echo "$INSTALLED" >"$MARKER"
    echo "Synapse $SYNAPSE_VERSION and matrix-nio $NIO_VERSION installed in $VENV"
}

cmd_init() {
    local dir="$1" port="$2" rc
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number: $port"
    require_venv
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    echo "$port" >"$dir/port"
    echo "$SHARED_SECRET" >"$dir/shared_secret"

    cat >"$dir/log.yaml" <<EOF
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: $dir/homeserver.log
    encoding: utf8
loggers:
  synapse.storage.SQL:
    level: WARNING
root:
  level: INFO
  handlers: [file]
disable_existing_loggers: false
EOF

    # Rate limits high enough that no test ever sees a 429: every client-side rc_* key that
    # this version reads (it ignores unknown keys silently; there is no federation listener).
    rc="{per_second: 10000, burst_count: 10000}"
    cat >"$dir/homeserver.yaml" <<EOF
# Throwaway homeserver for Switchboard's integration tests. Test-only secrets.
server_name: localhost
public_baseurl: http://127.0.0.1:$port/
report_stats: false
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $dir/homeserver.db
log_config: $dir/log.yaml
media_store_path: $dir/media_store
signing_key_path: $dir/signing.key
registration_shared_secret: $SHARED_SECRET
macaroon_secret_key: switchboard-test-macaroon-secret
form_secret: switchboard-test-form-secret
enable_registration: false
federation_domain_whitelist: []
trusted_key_servers: []
suppress_key_server_warning: true
presence:
  enabled: false
rc_message: $rc
rc_registration: $rc
rc_registration_token_validity: $rc
rc_login:
  address: $rc
  account: $rc
  failed_attempts: $rc
rc_joins:
  local: $rc
  remote: $rc
rc_joins_per_room: $rc
rc_invites:
  per_room: $rc
  per_user: $rc
  per_issuer: $rc
rc_admin_redaction: $rc
rc_3pid_validation: $rc
rc_third_party_invite: $rc
rc_media_create: $rc
rc_presence:
  per_user: $rc
rc_delayed_event_mgmt: $rc
rc_reports: $rc
rc_room_creation: $rc
rc_key_requests: $rc
rc_user_directory: $rc
rc_profile: $rc
EOF

    "$PY" -m synapse.app.homeserver --config-path "$dir/homeserver.yaml" --generate-keys >/dev/null
    echo "Synapse initialised in $dir (port $port)"
}

cmd_start() {
    local dir="$1" port
    require_venv
    dir="$(cd "$dir" && pwd)"
    require_dir "$dir"
    port="$(cat "$dir/port")"
    if ! running "$dir"; then
        rm -f "$dir/pid"
        # New session, every fd redirected and the inherited ones closed, so that neither a
        # terminal nor a caller reading our stdout until EOF is tied to the server. The shell
        # records its own pid and then becomes Synapse, with the caller's blocked or ignored
        # signals reset (a test process blocking SIGTERM would pass that on, and stop would
        # wait 10 s for nothing).
        setsid bash -c '
            for fd in /proc/$$/fd/*; do
                fd=${fd##*/}
                if ((fd > 2)); then eval "exec $fd>&-"; fi
            done
            echo $$ >"$1/pid"
            exec "$2" -c "
import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(number, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
" "$2" -m synapse.app.homeserver --config-path "$1/homeserver.yaml"
        ' _ "$dir" "$PY" </dev/null >>"$dir/stdout.log" 2>&1 &
    fi
    # Poll /versions until it answers from our process, the process dies, or 60 s pass.
    if ! "$PY" - "$dir" "$port" <<'EOF'
import os, sys, time, urllib.request
d, port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
url = f"http://127.0.0.1:{port}/_matrix/client/versions"

def listens(pid):
    """True if pid holds the socket listening on 127.0.0.1:port (not some other process)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            pass
    return False

while time.monotonic() < deadline:
    try:
        pid = int(open(os.path.join(d, "pid")).read())
    except (OSError, ValueError):
        pid = None
    if pid is not None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    raise OSError
        except OSError:
            sys.exit("Synapse exited during startup")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and listens(pid):
                    sys.exit(0)
        except OSError:
            pass
    time.sleep(0.1)
sys.exit("Synapse did not answer within 60 s")
EOF
    then
        for log in stdout.log homeserver.log; do
            [[ -f $dir/$log ]] || continue
            echo "--- last 40 lines of $dir/$log" >&2
            tail -n 40 "$dir/$log" >&2
        done
        cmd_stop "$dir" >/dev/null 2>&1 || true
        die "Synapse in $dir failed to start"
    fi
    echo "Synapse ready on http://127.0.0.1:$port (pid $(cat "$dir/pid"))"
}

cmd_stop() {
    local dir="$1" pid i
    if running "$dir"; then
        pid="$(cat "$dir/pid")"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            running "$dir" || break
            sleep 0.1
        done
        if running "$dir"; then
            echo "synapse.sh: $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                running "$dir" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$dir/pid"
    echo "Synapse in $dir stopped"
}

cmd_register() {
    local dir="$1" user="$2" password="$3" admin="${4:-}"
    require_venv
    require_dir "$dir"
    [[ -z $admin || $admin == admin ]] || die "the fourth argument must be 'admin' or absent"
    "$PY" - "$(cat "$dir/port")" "$(cat "$dir/shared_secret")" "$user" "$password" "$admin" <<'EOF'
import hashlib, hmac, json, sys, urllib.error, urllib.request
port, secret, user, password, admin = sys.argv[1:6]
url = f"http://127.0.0.1:{port}/_synapse/admin/v1/register"
try:
    with urllib.request.urlopen(url, timeout=30) as r:
        nonce = json.load(r)["nonce"]
    parts = (nonce, user, password, "admin" if admin else "notadmin")
    mac = hmac.new(secret.encode(), "\0".join(parts).encode(), hashlib.sha1)
    body = json.dumps({"nonce": nonce, "username": user, "password": password,
                       "admin": bool(admin), "mac": mac.hexdigest()}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        print(json.dumps(json.load(r), separators=(",", ":")))
except urllib.error.HTTPError as e:
    sys.exit(f"synapse.sh: registering {user} failed: HTTP {e.code} {e.read().decode(errors='replace')}")
except OSError as e:
    sys.exit(f"synapse.sh: registering {user} failed: {e}")
EOF
}

case "${1:-}" in
    install) (($# == 1)) || usage; cmd_install ;;
    init) (($# == 3)) || usage; cmd_init "$2" "$3" ;;
    start) (($# == 2)) || usage; cmd_start "$2" ;;
    stop) (($# == 2)) || usage; cmd_stop "$2" ;;
    register) (($# == 4 || $# == 5)) || usage; cmd_register "${@:2}" ;;
    *) usage ;;
esac
