#!/usr/bin/env bash
# Scans what a test run left behind for the secrets its tests made up.
#
#   scripts/test-secrets-scan.sh RUN_DIR SECRETS_FILE
#
# SECRETS_FILE lists one secret per line (TestSecrets.register in the tests). Searched: every
# log, SQLite database and its WAL, export (JSON Lines), command output (the out and err files
# of commands the tests ran, among them every `switchboard chat` reply), delivered mail
# (Maildirs) and PostgreSQL data file under RUN_DIR. Not searched: the files tests write to
# hand a secret over (configuration, secret files, password files), and Synapse's own database,
# which keeps the access tokens it issues. Exit status 1, with the files and the secrets'
# first four characters, when any secret is found.
set -euo pipefail
[[ $# -eq 2 ]] || { sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit 2; }
run_dir=$1
secrets=$2
if [[ ! -s $secrets ]]; then
    echo "secret scan: $secrets lists no secrets; the tests did not register any (SWITCHBOARD_TEST_SECRETS_FILE unset?)" >&2
    exit 1
fi
sort -u "$secrets" -o "$secrets"
files=$(mktemp)
trap 'rm -f "$files"' EXIT
find "$run_dir" -type f \( -name '*.log' -o -name '*.sqlite' -o -name '*.sqlite-wal' -o -name '*.jsonl' \
    -o -name out -o -name err -o -path '*/Maildir/*' -o -path '*/data/base/*' -o -path '*/data/pg_wal/*' \) \
    -not -name 'homeserver.db*' -print0 >"$files"
count=$(tr -cd '\0' <"$files" | wc -c)
hits=$(xargs -0 -r grep -l -F -a -f "$secrets" <"$files" || true)
if [[ -n $hits ]]; then
    echo "secret scan: test secrets found in $(wc -l <<<"$hits") of $count files:" >&2
    while read -r file; do
        found=$(grep -o -F -a -f "$secrets" "$file" | sort -u | cut -c1-4 | sed 's/$/…/' | paste -sd, -)
        echo "  $file: $found" >&2
    done <<<"$hits"
    exit 1
fi
echo "secret scan: $(wc -l <"$secrets") test secrets, $count files (logs, databases, exports, command output, mail), no hit" >&2
