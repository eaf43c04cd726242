#!/usr/bin/env bash
# Drives the real `periodic mcp` binary with the official MCP Python SDK over stdio.
#   PERIODIC_BIN       the binary (default: <repo>/target/debug/periodic)
#   PERIODIC_EDGE_BIN  the edge server for the team test (default: next to PERIODIC_BIN)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
"$here/setup.sh"
export PERIODIC_BIN="${PERIODIC_BIN:-$repo/target/debug/periodic}"
export PERIODIC_EDGE_BIN="${PERIODIC_EDGE_BIN:-$(dirname "$PERIODIC_BIN")/periodic-edge}"
cd "$here"
exec timeout 600 "$here/.venv/bin/python" -m unittest -v test_mcp
