#!/usr/bin/env bash
# Runs tests under a sanitizer, in a build folder of its own.
#
#   scripts/sanitize.sh thread|address [swift test arguments...]
#
# Builds everything (the switchboard binary the system tests start included) with
# `--sanitize=thread` or `--sanitize=address` into .build-tsan/ or .build-asan/, then runs the
# tests with it: by default the engine, storage, Matrix and email suites
# (--filter 'Engine|Storage|Tool|Matrix|Email|SQLite|Postgres'); pass your own --filter to choose.
# Needs what scripts/test.sh installs (run it once first). A report fails the run:
# TSAN_OPTIONS/ASAN_OPTIONS set halt_on_error, so the first race or memory error ends the test
# process with its report on stderr. Slow: a fresh build takes about ten minutes on two cores,
# and the tests run several times slower than without a sanitizer.
#
# ThreadSanitizer cannot see the standard library's Synchronization.Mutex on Linux (Swift 6.3.1:
# its futex lock is not instrumented), so it reports every access made under one as a race; a
# counter incremented under a Mutex by four threads is enough to show it, the same under NSLock
# is clean. The code's locks are `Locked` (SwitchboardModel), which `thread` builds with
# -D SWITCHBOARD_TSAN turn into pthread mutexes; see docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
case $kind in
    thread) scratch=.build-tsan; export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" ;;
    address) scratch=.build-asan; export ASAN_OPTIONS="halt_on_error=1 detect_leaks=0 ${ASAN_OPTIONS:-}" ;;
    *) sed -n '2,19s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
shift
source scripts/install-deps.sh
arguments=("$@")
if [[ ${#arguments[@]} -eq 0 ]]; then arguments=(--filter 'Engine|Storage|Tool|Matrix|Email|SQLite|Postgres'); fi

# Under --sanitize=thread, Swift 6.3 rejects a capture in swift-otel 1.6.0 that it accepts
# without it ("sending 'logger' risks causing data races"); the Swift 5 language mode makes that
# compile-time check a warning and changes nothing at run time, which is what a sanitizer sees
# (bare /regex/ literals, on by default in Swift 6, are turned on again).
flags=()
if [[ $kind == thread ]]; then flags=(-Xswiftc -swift-version -Xswiftc 5 -Xswiftc -enable-bare-slash-regex -Xswiftc -DSWITCHBOARD_TSAN); fi
echo "== build ($kind sanitizer, $scratch)" >&2
swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" ${flags[@]+"${flags[@]}"}

# Short: PostgreSQL's socket path under it must stay within 107 bytes.
run_dir="$(mktemp -d -t sb-san.XXXXXX)"
chmod 755 "$run_dir"
cleanup() {
    for dir in "$run_dir"/*/; do
        if [[ -f $dir/homeserver.yaml ]]; then bash scripts/test-servers/synapse.sh stop "$dir" >/dev/null 2>&1 || true; fi
        if [[ -f $dir/dovecot.conf ]]; then bash scripts/test-servers/mail.sh stop "$dir" >/dev/null 2>&1 || true; fi
        if [[ -f $dir/data/PG_VERSION ]]; then bash scripts/test-servers/postgres.sh stop "$dir" >/dev/null 2>&1 || true; fi
    done
    rm -rf "$run_dir"
}
trap cleanup EXIT

echo "== test ($kind sanitizer)" >&2
export TMPDIR="$run_dir"
export SWITCHBOARD_BINARY="$PWD/$scratch/debug/switchboard"
swift test --skip-build --sanitize="$kind" --scratch-path "$scratch" ${flags[@]+"${flags[@]}"} --disable-xctest "${arguments[@]}"
