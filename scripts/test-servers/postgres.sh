#!/usr/bin/env bash
# Runs a throwaway PostgreSQL server for the tests, on 127.0.0.1 only, with password logins
# over TCP (so a wrong password is refused, as in production).
#
#   postgres.sh install                 Debian's postgresql server (fast when present)
#   postgres.sh init DIR PORT PASSWORD  a fresh cluster in DIR/data; superuser `switchboard`;
#                                       fsync off unless POSTGRES_DURABLE=1
#   postgres.sh start DIR               in the background; returns once it accepts connections
#   postgres.sh stop DIR                fine if not running
#   postgres.sh url DIR [DATABASE]      prints postgres://switchboard:PASSWORD@127.0.0.1:PORT/DATABASE
#   postgres.sh createdb DIR NAME       a new, empty database
#
# As root, the server runs as Debian's `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }
usage() { sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }

bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x $dir/pg_ctl && -x $dir/initdb ]]; then echo "$dir"; return 0; fi
    done
    return 1
}

# Runs a command as the server's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

require_installed() {
    bindir >/dev/null || die "PostgreSQL is not installed; run: $0 install"
}

require_dir() {
    [[ -f $1/data/PG_VERSION && -f $1/port ]] || die "$1 has no PostgreSQL cluster; run: $0 init $1 PORT PASSWORD"
}

cmd_install() {
    if bindir >/dev/null; then return 0; fi
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "Installing postgresql" >&2
    # Keep the package scripts from creating and starting the distribution's own cluster.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
    fi
    $sudo mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/switchboard-tests.conf >/dev/null
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir >/dev/null || die "postgresql installed, but no server binaries in /usr/lib/postgresql/*/bin"
}

cmd_init() {
    local dir=$1 port=$2 password=$3
    require_installed
    mkdir -p "$dir"
    chmod 755 "$dir"
    rm -rf "$dir/data"
    mkdir "$dir/data" "$dir/socket"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir/data" "$dir/socket"; fi
    printf '%s\n' "$password" >"$dir/password"
    chmod 644 "$dir/password"
    echo "$port" >"$dir/port"
    as_owner "$(bindir)/initdb" -D "$dir/data" -U switchboard --pwfile="$dir/password" \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/socket'
max_connections = 200
CONF
    # Throwaway data: durability is not what the tests measure. Benchmarks keep it
    # (POSTGRES_DURABLE=1), so their figures include every commit's flush.
    if [[ ${POSTGRES_DURABLE:-0} != 1 ]]; then
        printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >>"$dir/data/postgresql.conf"
    fi
}

cmd_start() {
    local dir=$1
    require_installed
    require_dir "$dir"
    # The server inherits pg_ctl's descriptors: keep it off the caller's pipes (any descriptor,
    # not only output), or a caller that reads them to the end waits for the server to exit.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        as_owner "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 start </dev/null >/dev/null 2>&1
    ) || { tail -20 "$dir/data/server.log" >&2 2>/dev/null; die "the server did not start"; }
}

cmd_stop() {
    local dir=$1
    [[ -f $dir/data/postmaster.pid ]] || return 0
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

cmd_url() {
    local dir=$1 database=${2:-postgres}
    require_dir "$dir"
    echo "postgres://switchboard:$(cat "$dir/password")@127.0.0.1:$(cat "$dir/port")/$database?sslmode=disable"
}

cmd_createdb() {
    local dir=$1 name=$2
    require_dir "$dir"
    [[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || die "database names here are lower-case letters, digits and _"
    as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$(cat "$dir/port")" -U switchboard -d postgres \
        -c "CREATE DATABASE $name" >/dev/null
}

case "${1:-}" in
    install) cmd_install ;;
    init) [[ $# -eq 4 ]] || usage; cmd_init "$2" "$3" "$4" ;;
    start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    url) [[ $# -ge 2 ]] || usage; cmd_url "$2" "${3:-}" ;;
    createdb) [[ $# -eq 3 ]] || usage; cmd_createdb "$2" "$3" ;;
    *) usage ;;
esac
