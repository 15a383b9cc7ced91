#!/usr/bin/env bash
# The email benchmark: the bot against a real Dovecot and SMTP server. See
# scripts/bench/email_replies.py for what it measures. Arguments go to email_replies.py, for example
# --messages 200 --binary .build/debug/switchboard --json.
#
# Needs a built binary: swift build -c release --product switchboard
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/test-servers/mail.sh install >&2
exec python3 scripts/bench/email_replies.py "$@"
