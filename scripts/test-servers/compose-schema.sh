#!/usr/bin/env bash
# Checks a Compose file against the Compose specification's JSON schema, with no Docker engine:
# the schema as shipped in PyPI's docker-compose 1.29.2 wheel (compose/config/compose_spec.json),
# validated with jsonschema.
#
#   compose-schema.sh install          venv with jsonschema and PyYAML, and the schema (fast when present)
#   compose-schema.sh validate FILE    exit 0 when FILE is valid; else the errors, one per line
#
# The venv lives in $SWITCHBOARD_COMPOSE_VENV (default: <repo>/.build-venv-compose).
set -euo pipefail

COMPOSE_VERSION="1.29.2"
JSONSCHEMA_VERSION="4.23.0"
PYYAML_VERSION="6.0.2"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SWITCHBOARD_COMPOSE_VENV:-$REPO/.build-venv-compose}"
STAMP="compose $COMPOSE_VERSION jsonschema $JSONSCHEMA_VERSION pyyaml $PYYAML_VERSION"
MARKER="$VENV/.versions"

die() { echo "compose-schema.sh: $*" >&2; exit 1; }

cmd_install() {
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if [[ -x $VENV/bin/python && -f $VENV/compose_spec.json && $(cat "$MARKER" 2>/dev/null) == "$STAMP" ]]; then
        echo "the Compose schema and jsonschema are already in $VENV"
        return
    fi
    command -v python3 >/dev/null || die "python3 is not on PATH"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a venv; install python3-venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "jsonschema==$JSONSCHEMA_VERSION" "PyYAML==$PYYAML_VERSION"
    local wheels
    wheels="$(mktemp -d)"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$wheels" "docker-compose==$COMPOSE_VERSION"
    "$VENV/bin/python" - "$wheels"/docker_compose-*.whl "$VENV/compose_spec.json" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[2], "wb") as out:
    out.write(wheel.read("compose/config/compose_spec.json"))
PY
    rm -rf "$wheels"
    echo "$STAMP" >"$MARKER"
    echo "the Compose schema (docker-compose $COMPOSE_VERSION) and jsonschema installed in $VENV"
}

cmd_validate() {
    local file=$1
    [[ -f $VENV/compose_spec.json && $(cat "$MARKER" 2>/dev/null) == "$STAMP" ]] \
        || die "the Compose schema is not installed in $VENV; run: $0 install"
    "$VENV/bin/python" - "$VENV/compose_spec.json" "$file" <<'PY'
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
document = yaml.safe_load(open(sys.argv[2]))
validator = jsonschema.Draft7Validator(schema)
errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
for error in errors:
    where = "/".join(str(part) for part in error.absolute_path) or "(top)"
    print(f"{where}: {error.message}")
sys.exit(1 if errors else 0)
PY
}

case "${1:-}" in
    install) cmd_install ;;
    validate) [[ $# -eq 2 ]] || die "usage: $0 validate FILE"; cmd_validate "$2" ;;
    *) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
