#!/usr/bin/env bash
# The official MCP Python SDK, which runs mcp_server.py as the real MCP peer in tests, and
# the reference time server (PyPI mcp-server-time) that the README's worked example uses.
#
#   mcp.sh install            venv with a pinned mcp and mcp-server-time (fast when present)
#   mcp.sh python             print the path of the venv's python, to run mcp_server.py with
#
# The venv lives in $SWITCHBOARD_MCP_VENV (default: <repo>/.build-venv-mcp), apart from the
# other test venvs so none pins another's dependencies.
set -euo pipefail

MCP_VERSION="2.3.0"
TIME_VERSION="2026.10.19"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SWITCHBOARD_MCP_VENV:-$REPO/.build-venv-mcp}"
MARKER="$VENV/.mcp-version"

die() { echo "mcp.sh: $*" >&2; exit 1; }

installed() { [[ -x $VENV/bin/python && $(cat "$MARKER" 2>/dev/null) == "$MCP_VERSION $TIME_VERSION" ]]; }

cmd_install() {
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if installed; then
        echo "mcp $MCP_VERSION and mcp-server-time $TIME_VERSION already installed in $VENV"
        return
    fi
    command -v python3 >/dev/null || die "python3 is not on PATH"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "cannot create a venv; install python3-venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_VERSION" "mcp-server-time==$TIME_VERSION"
    echo "$MCP_VERSION $TIME_VERSION" >"$MARKER"
    echo "mcp $MCP_VERSION and mcp-server-time $TIME_VERSION installed in $VENV"
}

cmd_python() {
    installed || die "mcp $MCP_VERSION is not installed in $VENV; run: scripts/test-servers/mcp.sh install"
    echo "$VENV/bin/python"
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    python) shift; cmd_python "$@" ;;
    *) sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
