#!/usr/bin/env bash
# Real CalDAV/CardDAV servers for the DAV tests, and an independent client to check what they
# hold: Radicale and Xandikos (two implementations; the same tests run against both), PyPI's
# caldav, vobject and icalendar.
#
#   dav.sh install                       venv with the pinned packages (fast when present)
#   dav.sh start radicale|xandikos DIR PORT USER PASSWORD
#                                        a server on 127.0.0.1:PORT with one user, data in DIR;
#                                        returns once it answers (its pid in DIR/server.pid)
#   dav.sh stop DIR                      stops the server started in DIR
#   dav.sh python                        print the venv's python (for the checking client)
#
# The venv lives in $SWITCHBOARD_DAV_VENV (default: <repo>/.build-venv-dav), apart from the
# other test venvs so none pins another's dependencies.
set -euo pipefail

RADICALE_VERSION="3.9.0"
XANDIKOS_VERSION="0.4.10"
CALDAV_VERSION="3.6.0"
VOBJECT_VERSION="0.9.9"
ICALENDAR_VERSION="7.3.2"
PINS="radicale==$RADICALE_VERSION xandikos==$XANDIKOS_VERSION caldav==$CALDAV_VERSION vobject==$VOBJECT_VERSION icalendar==$ICALENDAR_VERSION"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SWITCHBOARD_DAV_VENV:-$REPO/.build-venv-dav}"
MARKER="$VENV/.dav-versions"

die() { echo "dav.sh: $*" >&2; exit 1; }

# Starts a server in the background with no descriptor but 0-2 from this script. A caller that
# watches for this script's end by a descriptor it handed down (Foundation's Process does) would
# otherwise wait for the server too.
detach() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid "$@"
    ) </dev/null &
}

installed() { [[ -x $VENV/bin/python && $(cat "$MARKER" 2>/dev/null) == "$PINS" ]]; }

cmd_install() {
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if installed; then
        echo "DAV test servers already installed in $VENV"
        return
    fi
    command -v python3 >/dev/null || die "python3 is not on PATH"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a venv; install python3-venv"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
    echo "$PINS" >"$MARKER"
    echo "DAV test servers ($PINS) installed in $VENV"
}

cmd_start() {
    [[ $# -eq 5 ]] || die "usage: dav.sh start radicale|xandikos DIR PORT USER PASSWORD"
    local kind=$1 dir=$2 port=$3 user=$4 password=$5
    installed || die "the DAV servers are not installed in $VENV; run: scripts/test-servers/dav.sh install"
    mkdir -p "$dir"
    case "$kind" in
    radicale)
        # Plain-text users (htpasswd with the password as written): the test's own, never a real one.
        printf '%s:%s\n' "$user" "$password" >"$dir/users"
        cat >"$dir/config" <<EOF
[server]
hosts = 127.0.0.1:$port
max_content_length = 20000000
[auth]
type = htpasswd
htpasswd_filename = $dir/users
htpasswd_encryption = plain
delay = 0
[storage]
filesystem_folder = $dir/collections
[rights]
type = owner_only
[logging]
level = warning
EOF
        detach "$VENV/bin/python" -m radicale --config "$dir/config" >"$dir/server.log" 2>&1
        ;;
    xandikos)
        # Xandikos leaves accounts to a proxy in front of it (Basic auth over plain HTTP it
        # refuses); the tests run it open, with the one principal, and check logins on Radicale.
        detach "$VENV/bin/python" -m xandikos.web --defaults -d "$dir/collections" --state-dir "$dir/state" \
            -l 127.0.0.1 -p "$port" --current-user-principal "/$user/" >"$dir/server.log" 2>&1
        ;;
    *) die "unknown server $kind (radicale or xandikos)" ;;
    esac
    echo $! >"$dir/server.pid"
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null -u "$user:$password" -X PROPFIND -H "Depth: 0" "http://127.0.0.1:$port/"; then
            code=$(curl -s -o /dev/null -w '%{http_code}' -u "$user:$password" -X PROPFIND -H "Depth: 0" "http://127.0.0.1:$port/")
            [[ $code == 207 ]] && return 0
        fi
        if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
            die "$kind exited while starting:
$(tail -20 "$dir/server.log")"
        fi
        sleep 0.1
    done
    die "$kind did not answer on port $port within 30 s:
$(tail -20 "$dir/server.log")"
}

cmd_stop() {
    [[ $# -eq 1 ]] || die "usage: dav.sh stop DIR"
    [[ -f $1/server.pid ]] || return 0
    local pid
    pid=$(cat "$1/server.pid")
    kill "$pid" 2>/dev/null || return 0
    # A caller that ignores SIGTERM (a test runner may) hands that on to the server, and a
    # signal ignored at start stays ignored: after a moment, it is killed outright.
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

cmd_python() {
    installed || die "the DAV servers are not installed in $VENV; run: scripts/test-servers/dav.sh install"
    echo "$VENV/bin/python"
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    python) shift; cmd_python "$@" ;;
    *) sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
