#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, and runs every test. Arguments go to
# `swift test` (for example --filter Engine).
#
# Real servers and tools: Synapse and schemathesis are installed into venvs here
# (scripts/test-servers/synapse.sh install, schemathesis.sh install), Dovecot from Debian and
# aiosmtpd into the venv (mail.sh install), PostgreSQL from Debian (postgres.sh install), the
# Compose specification's schema and jsonschema for the deployment files (compose-schema.sh), the
# MCP Python SDK for the MCP servers the remote-tool tests start (mcp.sh), Radicale, Xandikos
# and the caldav/vobject/icalendar clients for the calendar tests (dav.sh); the
# Matrix tests start their own homeservers, the email tests their own Dovecot and SMTP server,
# the storage tests their own PostgreSQL, and the API tests their own `switchboard serve`, on
# free 127.0.0.1 ports in temporary directories. Everything they leave running is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

echo "== test servers" >&2
bash scripts/test-servers/synapse.sh install >&2
bash scripts/test-servers/schemathesis.sh install >&2
bash scripts/test-servers/mail.sh install >&2
bash scripts/test-servers/postgres.sh install >&2
bash scripts/test-servers/compose-schema.sh install >&2
bash scripts/test-servers/mcp.sh install >&2
bash scripts/test-servers/dav.sh install >&2

echo "== build" >&2
swift build --build-tests

# Temporary files (and the homeservers in them) of this run live under one directory.
run_dir="$(mktemp -d -t switchboard-tests.XXXXXX)"
# Dovecot reads mail as Debian's `mail` user, who must be able to reach the test folders.
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

echo "== test" >&2
export TMPDIR="$run_dir"
export SWITCHBOARD_BINARY="$PWD/.build/debug/switchboard"
# Every test's files stay until the end, and the secrets the tests make up are listed, so that
# what the whole run left behind can be searched for them.
export SWITCHBOARD_TEST_KEEP_FILES=1
export SWITCHBOARD_TEST_SECRETS_FILE="$run_dir.secrets"
trap 'cleanup; rm -f "$run_dir.secrets"' EXIT
# The suite is Swift Testing only; without XCTest there is no empty "Executed 0 tests" summary.
swift test --skip-build --disable-xctest "$@"

echo "== secret scan" >&2
if [[ $# -eq 0 ]]; then
    bash scripts/test-secrets-scan.sh "$run_dir" "$SWITCHBOARD_TEST_SECRETS_FILE"
else
    # A filtered run may make up no secret at all; scan only what it listed.
    if [[ -s $SWITCHBOARD_TEST_SECRETS_FILE ]]; then bash scripts/test-secrets-scan.sh "$run_dir" "$SWITCHBOARD_TEST_SECRETS_FILE"; fi
fi
