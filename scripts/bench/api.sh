#!/usr/bin/env bash
# The HTTP API benchmark: POST /v1/messages?wait=5 under load from wrk on loopback, with the
# intent engine answering every message before its response goes out. Prints wrk's report and
# one RESULT line: requests per second, p50/p90/p99 latency, and how many were answered in time.
#
#   scripts/bench/api.sh [--binary PATH] [--connections N] [--duration SECONDS] [--threads N]
#                        [--wait SECONDS] [--synchronous normal|full]
#
# --wait 0 measures intake alone: each message is stored and answered 202 at once (the engine
# answers it in the background, still under the same load).
#
# Needs a release binary (swift build -c release --product switchboard) and wrk (Debian's
# wrk package; installed here when missing). Uses a fresh temporary database and a free port.
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=.build/release/switchboard
connections=64
duration=30
threads=2
synchronous=normal
wait=5
while [[ $# -gt 0 ]]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --synchronous) synchronous=$2; shift 2 ;;
        --wait) wait=$2; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ -x $binary ]] || { echo "no binary at $binary; build one: swift build -c release --product switchboard" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get install -y -q wrk >/dev/null
fi

data="$(mktemp -d -t switchboard-api-bench.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cleanup() {
    [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$data"
}
trap cleanup EXIT

key="$("$binary" keys create --data-dir "$data" --scope send --any-sender --name bench | tail -1)"
SWITCHBOARD_HTTP_ENABLED=true SWITCHBOARD_HTTP_PORT="$port" SWITCHBOARD_LOG_LEVEL=warning \
    SWITCHBOARD_DATABASE_SYNCHRONOUS="$synchronous" SWITCHBOARD_RATE_LIMITS_DEFAULT_PER_MINUTE=1000000 \
    SWITCHBOARD_RATE_LIMITS_DEFAULT_BURST=1000000 \
    "$binary" serve --data-dir "$data" >"$data/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# A short warm-up, then the measured run.
BENCH_WAIT="$wait" BENCH_KEY="$key" BENCH_RUN=warm wrk -t "$threads" -c "$connections" -d 3s -s scripts/bench/api.lua \
    "http://127.0.0.1:$port" >/dev/null
BENCH_WAIT="$wait" BENCH_KEY="$key" BENCH_RUN=run wrk -t "$threads" -c "$connections" -d "${duration}s" --latency -s scripts/bench/api.lua \
    "http://127.0.0.1:$port"
echo "database: $(du -sh "$data" | cut -f1), synchronous=$synchronous"
