#!/usr/bin/env bash
# Build Switchboard and start it on embedded defaults: the gateway with whatever channels are
# configured, and a conversation in this terminal when none is.
# Extra arguments go to `switchboard serve` (for example --config FILE or --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
swift build -c release --product switchboard
exec .build/release/switchboard serve "$@"
