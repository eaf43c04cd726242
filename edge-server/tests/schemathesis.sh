#!/usr/bin/env bash
# Property-based API test: runs schemathesis (installed from PyPI into a private venv) against
# a real `periodic-edge` on a loopback port, using the server's own /v1/openapi.json.
# Bounded: a fixed number of examples per operation and a time budget. Fails on any 5xx,
# any response that breaks the documented schema, status code, content type or headers, and
# any schema-violating request the server accepts.
#
# Environment: CARGO_TARGET_DIR (where to build), PERIODIC_EDGE_BIN (use this binary instead
# of building), SCHEMATHESIS_EXAMPLES (default 40), SCHEMATHESIS_MAX_TIME (default 180 s),
# SCHEMATHESIS_VENV (default ~/.cache/periodic/schemathesis-venv).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
examples="${SCHEMATHESIS_EXAMPLES:-40}"
max_time="${SCHEMATHESIS_MAX_TIME:-180}"
venv="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/periodic/schemathesis-venv}"

if [[ ! -x "$venv/bin/schemathesis" ]]; then
    echo "installing schemathesis into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4.32,<5"
fi

if [[ -n "${PERIODIC_EDGE_BIN:-}" ]]; then
    binary="$PERIODIC_EDGE_BIN"
else
    target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
    (cd "$repo_root" && cargo build --quiet -p periodic-edge --bin periodic-edge)
    binary="$target_dir/debug/periodic-edge"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

token="$("$binary" token create --tokens "$work/tokens.json" --tenant fuzz --role admin)"
"$binary" --listen 127.0.0.1:0 --data "$work/data" --tokens "$work/tokens.json" --addr-file "$work/addr" \
    --shards 2 --sync normal --rate-limit 100000 --rate-burst 100000 \
    2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
    [[ -s "$work/addr" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.1
done
[[ -s "$work/addr" ]] || { echo "server did not start" >&2; exit 1; }
base="http://$(cat "$work/addr")"

set +e
"$venv/bin/schemathesis" run "$base/v1/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
    --max-examples "$examples" \
    --max-time "$max_time" \
    --phases examples,coverage,fuzzing \
    --workers 2 \
    --request-timeout 10 \
    --generation-database none \
    --seed "${SCHEMATHESIS_SEED:-20240607}" \
    --no-color
status=$?
set -e
if grep -q "panicked" "$work/server.log"; then
    echo "the server panicked during the run:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    status=1
fi
if [[ $status -eq 0 ]]; then
    echo "schemathesis: 1 passed, 0 failed"
else
    echo "schemathesis: 0 passed, 1 failed"
fi
exit $status
