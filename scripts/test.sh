#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, starts every server the tests need,
# and runs every test. Arguments go to `swift test` (for example --filter Engine).
#
# Today's tests need only SQLite (linked from the system). The Matrix, email and PostgreSQL
# work adds its servers here (Synapse in a venv, Dovecot with an SMTP server, PostgreSQL),
# each started on 127.0.0.1 with free ports and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

echo "== build" >&2
swift build --build-tests

echo "== test" >&2
export SWITCHBOARD_BINARY="$PWD/.build/debug/switchboard"
# The suite is Swift Testing only; without XCTest there is no empty "Executed 0 tests" summary.
swift test --skip-build --disable-xctest "$@"
