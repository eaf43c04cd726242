#!/usr/bin/env bash
# Creates tests/mcp/.venv with the official MCP Python SDK (the client the MCP tests drive
# `periodic mcp` with). Idempotent; run by scripts/test-setup and by test.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="2.3.0"
venv="$here/.venv"
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$version')" 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mcp==$version"
