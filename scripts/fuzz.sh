#!/usr/bin/env bash
# Fuzzes every parser of outside input with libFuzzer and AddressSanitizer.
#
#   scripts/fuzz.sh [--seconds N] [--target NAME]... [--jobs N]
#
# Builds switchboard-fuzz with `-sanitize=fuzzer,address` into .build-fuzz/ (a build folder of
# its own: the sanitizer flags apply to every module), then runs each target for N seconds
# (default 60) starting from its seed corpus in Fuzz/corpus/TARGET. New inputs that reach new
# code go to a scratch corpus under .build-fuzz/corpus/TARGET, never into the repository; a
# crash, a sanitizer report or a broken invariant stops the target and its input is saved as
# Fuzz/crashes/TARGET-crash-HASH. Copy such a file into Fuzz/regressions/TARGET/ once fixed:
# the test suite replays those and the seeds on every run (FuzzCorpusTests).
#
# Targets: json mime imap matrix intent config api mcp (see Sources/SwitchboardFuzzing).
# Exit status: 0 when every target ran its time without a finding, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --target) targets+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [[ ${#targets[@]} -eq 0 ]]; then targets=(json mime imap matrix intent config api mcp); fi
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz.sh: --seconds takes a whole number above 0" >&2; exit 2; }

echo "== fuzz build (sanitizers: fuzzer, address)" >&2
swift build --product switchboard-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library >&2
binary=.build-fuzz/debug/switchboard-fuzz

mkdir -p Fuzz/crashes
failed=()
for target in "${targets[@]}"; do
    [[ -d Fuzz/corpus/$target ]] || { echo "fuzz.sh: no seed corpus Fuzz/corpus/$target" >&2; exit 2; }
    scratch=.build-fuzz/corpus/$target
    mkdir -p "$scratch"
    echo "== fuzz $target for ${seconds}s" >&2
    # -rss_limit_mb: a parser that needs more than this for one input is a finding too.
    if SWITCHBOARD_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=0 "$binary" \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="Fuzz/crashes/$target-" -print_final_stats=1 \
        "$scratch" "Fuzz/corpus/$target" 2>".build-fuzz/$target.log"; then
        grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)" ".build-fuzz/$target.log" >&2 || true
    else
        tail -40 ".build-fuzz/$target.log" >&2
        failed+=("$target")
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: findings in: ${failed[*]} (inputs in Fuzz/crashes/; replay one with: swift run switchboard-fuzz TARGET FILE)" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no finding" >&2
