#!/usr/bin/env bash
# Schemathesis, the property-based API tester, for the HTTP API fuzz test.
#
#   schemathesis.sh install            venv with a pinned schemathesis (fast when present)
#   schemathesis.sh run URL KEY [ARGS] fuzz the API described at URL/openapi.json with an
#                                      API key; extra ARGS go to `schemathesis run`
#
# The venv lives in $SWITCHBOARD_FUZZ_VENV (default: <repo>/.build-venv-fuzz), apart from
# Synapse's so neither pins the other's dependencies.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SWITCHBOARD_FUZZ_VENV:-$REPO/.build-venv-fuzz}"
MARKER="$VENV/.schemathesis-version"

die() { echo "schemathesis.sh: $*" >&2; exit 1; }

cmd_install() {
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if [[ -x $VENV/bin/schemathesis && $(cat "$MARKER" 2>/dev/null) == "$SCHEMATHESIS_VERSION" ]]; then
        echo "schemathesis $SCHEMATHESIS_VERSION already installed in $VENV"
        return
    fi
    command -v python3 >/dev/null || die "python3 is not on PATH"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a venv; install python3-venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    echo "$SCHEMATHESIS_VERSION" >"$MARKER"
    echo "schemathesis $SCHEMATHESIS_VERSION installed in $VENV"
}

cmd_run() {
    [[ $# -ge 2 ]] || die "usage: $0 run URL KEY [ARGS...]"
    local url=$1 key=$2
    shift 2
    [[ -x $VENV/bin/schemathesis && $(cat "$MARKER" 2>/dev/null) == "$SCHEMATHESIS_VERSION" ]] \
        || die "schemathesis $SCHEMATHESIS_VERSION is not installed in $VENV; run: $0 install"
    # No colours, no telemetry: the output goes into test logs.
    NO_COLOR=1 SCHEMATHESIS_TELEMETRY=false exec "$VENV/bin/schemathesis" run "$url/openapi.json" \
        --header "Authorization: Bearer $key" "$@"
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    run) shift; cmd_run "$@" ;;
    *) sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
