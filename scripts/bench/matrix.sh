#!/usr/bin/env bash
# The Matrix benchmark: the bot against a real Synapse, next to a no-op client that only syncs
# and sends (the homeserver's own limit). See scripts/bench/matrix.py for what it measures.
# Arguments go to matrix.py, for example --binary .build/debug/switchboard --json.
#
# Needs a built binary: swift build -c release --product switchboard
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/test-servers/synapse.sh install >&2
python="${SWITCHBOARD_TEST_VENV:-$PWD/.build-venv}/bin/python"
[[ -x $python ]] || python="python3"
exec "$python" scripts/bench/matrix.py "$@"
