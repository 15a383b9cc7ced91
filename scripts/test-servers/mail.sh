#!/usr/bin/env bash
# Runs throwaway mail servers for the email tests, on 127.0.0.1 only: Dovecot (IMAP, and LMTP
# for delivery) and a small aiosmtpd SMTP server that delivers through Dovecot's LMTP.
#
#   mail.sh install                      Debian's dovecot-imapd and dovecot-lmtpd, and aiosmtpd
#                                        in the test venv (fast when present)
#   mail.sh init DIR IMAP LMTP SMTP      fresh servers in DIR on those ports; with
#                                        MAIL_IMAP_CAPABILITY set, Dovecot announces that list
#                                        after login instead of its own (a server without MOVE)
#   mail.sh adduser DIR USER PASSWORD    a mailbox (any domain delivers to USER)
#   mail.sh start DIR                    both servers in the background; returns once they answer
#   mail.sh stop DIR                     both; fine if not running
#   mail.sh start-smtp DIR | stop-smtp DIR
#                                        only the SMTP server (to test delivery while it is down)
#
# The SMTP server stamps `Authentication-Results: mx.switchboard.test; spf=pass|fail` (pass when
# the envelope sender's domain is listed in DIR/spf_pass) and fails on purpose with the reply
# written in DIR/smtp_fail; see smtp-relay.py. Mail lives in DIR/mail/USER/Maildir, owned by
# Debian's `mail` user (Dovecot refuses to touch mail as root); DIR and its parents must be
# traversable by that user. The venv lives in $SWITCHBOARD_TEST_VENV (default <repo>/.build-venv).
set -euo pipefail

AIOSMTPD_VERSION="1.4.6"
AUTHSERV_ID="mx.switchboard.test"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SWITCHBOARD_TEST_VENV:-$REPO/.build-venv}"
PY="$VENV/bin/python"
MARKER="$VENV/.aiosmtpd-version"
DOVECOT=/usr/sbin/dovecot

die() { echo "mail.sh: $*" >&2; exit 1; }
usage() { sed -n '2,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }

require_installed() {
    [[ -x $DOVECOT && -f /usr/lib/dovecot/lmtp ]] || die "Dovecot is not installed; run: $0 install"
    [[ -x $PY && $(cat "$MARKER" 2>/dev/null) == "$AIOSMTPD_VERSION" ]] || die "aiosmtpd is not installed in $VENV; run: $0 install"
}

require_dir() {
    [[ -f $1/dovecot.conf && -f $1/ports ]] || die "$1 has no mail servers; run: $0 init $1 IMAP LMTP SMTP"
}

# True if DIR/NAME.pid names a live (not zombie) process.
running() {
    local pid state
    pid="$(cat "$1/$2.pid" 2>/dev/null)" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n $state && $state != Z ]]
}

cmd_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    if [[ ! -x $DOVECOT || ! -f /usr/lib/dovecot/lmtp ]]; then
        echo "Installing dovecot-imapd and dovecot-lmtpd" >&2
        # Keep the package scripts from starting the distribution's Dovecot on all interfaces.
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
            $sudo chmod +x /usr/sbin/policy-rc.d
        fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends dovecot-imapd dovecot-lmtpd >/dev/null
    fi
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if [[ -x $PY && $(cat "$MARKER" 2>/dev/null) == "$AIOSMTPD_VERSION" ]]; then
        echo "Dovecot $($DOVECOT --version | cut -d' ' -f1) and aiosmtpd $AIOSMTPD_VERSION installed"
        return
    fi
    if [[ ! -x $PY ]] || ! "$PY" -c 'import sys' 2>/dev/null; then
        python3 -c 'import venv, ensurepip' 2>/dev/null || {
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        }
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$PY" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
    echo "$AIOSMTPD_VERSION" >"$MARKER"
    echo "Dovecot $($DOVECOT --version | cut -d' ' -f1) and aiosmtpd $AIOSMTPD_VERSION installed"
}

cmd_init() {
    local dir="$1" imap="$2" lmtp="$3" smtp="$4" port
    for port in "$imap" "$lmtp" "$smtp"; do [[ $port =~ ^[0-9]+$ ]] || die "ports must be numbers: $port"; done
    require_installed
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    chmod 755 "$dir"
    setpriv --reuid=8 --regid=8 --clear-groups test -x "$dir" \
        || die "$dir is not reachable by the mail user (uid 8): make its parent directories traversable (chmod o+x)"
    echo "$imap $lmtp $smtp" >"$dir/ports"
    install -d -o mail -g mail "$dir/mail"
    mkdir -p "$dir/state"
    local old
    old="$(cat "$dir/base_dir" 2>/dev/null || true)"
    if [[ $old == /tmp/sb-dovecot.* ]]; then rm -rf "$old"; fi
    # Dovecot's sockets live in base_dir, and a Unix socket's path holds at most 107 bytes: a
    # test's folder can be deeper than that allows, so the sockets go in a short folder of their own.
    local run
    run="$(mktemp -d /tmp/sb-dovecot.XXXXXX)"
    chmod 755 "$run"
    echo "$run" >"$dir/base_dir"
    : >"$dir/passwd"
    chmod 644 "$dir/passwd"
    : >"$dir/spf_pass"
    : >"$dir/smtp_fail"
    cat >"$dir/dovecot.conf" <<CONF
# Throwaway Dovecot for Switchboard's email tests: loopback only, plain-text passwords.
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
first_valid_uid = 8
first_valid_gid = 8
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Ln $dir/passwd
}
userdb {
  driver = static
  args = uid=8 gid=8 home=$dir/mail/%Ln
}
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
}
service anvil {
  chroot =
}
protocol imap {
  mail_max_userip_connections = 100
}
CONF
    if [[ -n ${MAIL_IMAP_CAPABILITY:-} ]]; then
        printf 'imap_capability = %s\n' "$MAIL_IMAP_CAPABILITY" >>"$dir/dovecot.conf"
    fi
    echo "Mail servers initialised in $dir (IMAP $imap, LMTP $lmtp, SMTP $smtp)"
}

cmd_adduser() {
    local dir="$1" user="$2" password="$3"
    require_dir "$dir"
    [[ $user =~ ^[a-z0-9._-]+$ ]] || die "user names are lower-case letters, digits, '.', '_' and '-': $user"
    [[ $password != *:* ]] || die "passwords cannot contain ':'"
    echo "$user:{PLAIN}$password" >>"$dir/passwd"
    install -d -o mail -g mail "$dir/mail/$user"
}

# Polls until something accepts TCP connections on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local port="$1" what="$2" i
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "mail.sh: $what did not answer on 127.0.0.1:$port within 10 s" >&2
    return 1
}

# Prints the last lines of each log given, for a server that failed to start.
show_logs() {
    local log
    for log in "$@"; do
        [[ -s $log ]] || continue
        echo "--- last 20 lines of $log" >&2
        tail -n 20 "$log" >&2
    done
}

# Runs a command in a new session with every inherited descriptor closed, recording its pid.
# The caller's blocked or ignored signals are reset first: a test process that blocks SIGTERM
# for its own handling would otherwise pass that on, and `stop` would wait for nothing.
spawn() {
    local pidfile="$1" log="$2"
    shift 2
    setsid bash -c '
        for fd in /proc/$$/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        echo $$ >"$1"
        shift
        exec "$@"
    ' _ "$pidfile" "$PY" -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(number, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])
' "$@" </dev/null >>"$log" 2>&1 &
}

cmd_start_smtp() {
    local dir="$1" imap lmtp smtp
    require_installed
    dir="$(cd "$dir" && pwd)"
    require_dir "$dir"
    read -r imap lmtp smtp <"$dir/ports"
    if ! running "$dir" smtp; then
        spawn "$dir/smtp.pid" "$dir/smtp.log" "$PY" "$REPO/scripts/test-servers/smtp-relay.py" "$dir" "$smtp" "$lmtp" "$AUTHSERV_ID"
    fi
    wait_port "$smtp" "the SMTP server" || { show_logs "$dir/smtp.log"; exit 1; }
}

cmd_start() {
    local dir="$1" imap lmtp smtp run
    require_installed
    dir="$(cd "$dir" && pwd)"
    require_dir "$dir"
    read -r imap lmtp smtp <"$dir/ports"
    [[ -f $dir/base_dir ]] || die "$dir was set up by an older mail.sh; run: $0 init $dir IMAP LMTP SMTP"
    run="$(cat "$dir/base_dir")"
    if [[ ! -d $run || -L $run || ! -O $run ]]; then
        # Gone (a stop removes it), or not ours: a new folder, never a name someone could take.
        run="$(mktemp -d /tmp/sb-dovecot.XXXXXX)"
        chmod 755 "$run"
        sed -i "s|^base_dir = .*|base_dir = $run|" "$dir/dovecot.conf"
        echo "$run" >"$dir/base_dir"
    fi
    if ! running "$dir" dovecot; then
        spawn "$dir/dovecot.pid" "$dir/dovecot.stdout" "$DOVECOT" -F -c "$dir/dovecot.conf"
    fi
    if ! wait_port "$imap" "Dovecot IMAP" || ! wait_port "$lmtp" "Dovecot LMTP"; then
        show_logs "$dir/dovecot.log" "$dir/dovecot.stdout"
        exit 1
    fi
    cmd_start_smtp "$dir"
    echo "Mail servers ready: IMAP 127.0.0.1:$imap, SMTP 127.0.0.1:$smtp"
}

stop_one() {
    local dir="$1" name="$2" pid i
    running "$dir" "$name" || { rm -f "$dir/$name.pid"; return 0; }
    pid="$(cat "$dir/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        running "$dir" "$name" || break
        sleep 0.1
    done
    if running "$dir" "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$dir/$name.pid"
}

cmd_stop() {
    local dir="$1" run
    stop_one "$dir" smtp
    stop_one "$dir" dovecot
    run="$(cat "$dir/base_dir" 2>/dev/null || true)"
    if [[ $run == /tmp/sb-dovecot.* ]]; then rm -rf "$run"; fi
    echo "Mail servers in $dir stopped"
}

case "${1:-}" in
    install) (($# == 1)) || usage; cmd_install ;;
    init) (($# == 5)) || usage; cmd_init "$2" "$3" "$4" "$5" ;;
    adduser) (($# == 4)) || usage; cmd_adduser "$2" "$3" "$4" ;;
    start) (($# == 2)) || usage; cmd_start "$2" ;;
    stop) (($# == 2)) || usage; cmd_stop "$2" ;;
    start-smtp) (($# == 2)) || usage; cmd_start_smtp "$2" ;;
    stop-smtp) (($# == 2)) || usage; stop_one "$2" smtp ;;
    *) usage ;;
esac
