#!/usr/bin/env bash
# The engine benchmark on PostgreSQL with 1, 2 and 4 instances sharing the work: starts a
# throwaway PostgreSQL (scripts/test-servers/postgres.sh) on a free port, runs
# `switchboard bench --database-url … --instances N` on a fresh database for each N, and prints
# one JSON line per run. Build the release binary first:
#
#   swift build -c release --product switchboard
#   scripts/bench/postgres.sh [--messages 5000] [--people 50] [--instances "1 2 4"] [--binary PATH]
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BINARY="$REPO/.build/release/switchboard"
MESSAGES=5000
PEOPLE=50
INSTANCES="1 2 4"
while (($#)); do
    case $1 in
        --messages) MESSAGES=$2; shift 2 ;;
        --people) PEOPLE=$2; shift 2 ;;
        --instances) INSTANCES=$2; shift 2 ;;
        --binary) BINARY=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[[ -x $BINARY ]] || { echo "no binary at $BINARY; build it: swift build -c release --product switchboard" >&2; exit 1; }

bash "$REPO/scripts/test-servers/postgres.sh" install >&2
dir="$(mktemp -d -t switchboard-bench-pg.XXXXXX)"
chmod 755 "$dir"
trap 'bash "$REPO/scripts/test-servers/postgres.sh" stop "$dir/pg" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# A durable server (fsync on, synchronous commits), as in production.
POSTGRES_DURABLE=1 bash "$REPO/scripts/test-servers/postgres.sh" init "$dir/pg" "$port" "bench-$RANDOM$RANDOM" >&2
bash "$REPO/scripts/test-servers/postgres.sh" start "$dir/pg" >&2
for n in $INSTANCES; do
    bash "$REPO/scripts/test-servers/postgres.sh" createdb "$dir/pg" "bench_$n"
    url="$(bash "$REPO/scripts/test-servers/postgres.sh" url "$dir/pg" "bench_$n")"
    env -u SWITCHBOARD_BINARY "$BINARY" bench --json --messages "$MESSAGES" --people "$PEOPLE" --database-url "$url" --instances "$n"
done
