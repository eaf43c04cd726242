#!/usr/bin/env bash
# Tests scripts/release end to end: builds the archive (PERIODIC_RELEASE_PROFILE=dev by default,
# reusing the debug build), checks both SHA256SUMS, unpacks it into an empty folder and, with
# nothing but that folder on PATH and an empty environment, runs `periodic --version`, `periodic
# scan` on a fixture with two copies, `periodic-edge --version`, and checks the completions, the
# manual page, the Neovim plugin and the server inside the .vsix. Exits non-zero on the first failure.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "release test: $*" >&2; exit 1; }

PERIODIC_RELEASE_PROFILE="${PERIODIC_RELEASE_PROFILE:-dev}" "$repo/scripts/release" "$work/out"
archives=("$work"/out/periodic-*-linux-*.tar.gz)
[[ ${#archives[@]} -eq 1 && -f "${archives[0]}" ]] || fail "expected one archive in $work/out: $(ls "$work/out")"
archive="${archives[0]}"
(cd "$work/out" && sha256sum --check --quiet SHA256SUMS) || fail "OUT_DIR/SHA256SUMS does not match the archive"

mkdir "$work/unpacked"
tar -C "$work/unpacked" -xzf "$archive"
folders=("$work"/unpacked/*)
[[ ${#folders[@]} -eq 1 && -d "${folders[0]}" ]] || fail "the archive does not unpack into one folder"
folder="${folders[0]}"
[[ "$(basename "$folder")" == "$(basename "$archive" .tar.gz)" ]] || fail "folder $(basename "$folder") is not named after the archive"
for file in periodic periodic-edge periodic.vsix README.md LICENSE SHA256SUMS man/periodic.1 \
  completions/periodic.bash completions/_periodic completions/periodic.fish completions/_periodic.ps1 \
  neovim/lua/periodic/init.lua neovim/doc/periodic.txt docs/editors.md; do
  [[ -s "$folder/$file" ]] || fail "$file is missing or empty"
done
(cd "$folder" && sha256sum --check --quiet SHA256SUMS) || fail "the archive's SHA256SUMS does not match its files"
grep -q "Apache License" "$folder/LICENSE" || fail "LICENSE is not the Apache License"

# Nothing but the unpacked folder on PATH, no inherited environment.
run() { env -i HOME="$work/home" PATH="$folder" "$@"; }
mkdir -p "$work/home"
version="$(run periodic --version)"
[[ "$version" =~ ^periodic\ [0-9]+\.[0-9]+\.[0-9]+\ \(([0-9a-f]{7,}|unknown\ commit)\)$ ]] || fail "periodic --version printed: $version"
edge_version="$(run periodic-edge --version)"
[[ "$edge_version" == "periodic-edge ${version#periodic }" ]] || fail "periodic-edge --version printed: $edge_version (periodic: $version)"

mkdir -p "$work/project"
cp "$repo/editors/neovim/tests/fixtures/dup/pkg/orders.py" "$repo/editors/neovim/tests/fixtures/dup/pkg/invoices.py" "$work/project/"
report="$(cd "$work/project" && run periodic scan --format json --no-index .)"
grep -q '"orders.py"' <<<"$report" && grep -q '"invoices.py"' <<<"$report" || fail "the scan did not report the two copies: $report"

grep -q "periodic" "$folder/completions/periodic.bash" && grep -q "complete" "$folder/completions/periodic.bash" || fail "bash completions look wrong"
grep -q '^\.TH periodic 1' "$folder/man/periodic.1" || fail "the manual page has no .TH header"
grep -q 'completions' "$folder/man/periodic.1" || fail "the manual page does not list the subcommands"

# The .vsix (a zip) carries the same server binary the archive does.
python3 - "$folder/periodic.vsix" "$folder/periodic" <<'PY' || fail "periodic.vsix does not carry the server"
import sys, zipfile, hashlib
vsix, binary = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(vsix) as archive:
    inside = archive.read("extension/server/periodic")
    mode = archive.getinfo("extension/server/periodic").external_attr >> 16
assert hashlib.sha256(inside).digest() == hashlib.sha256(open(binary, "rb").read()).digest(), "a different binary"
assert mode & 0o111, f"the server in the .vsix is not executable (mode {mode:o})"
PY
echo "release archive ok: $(basename "$archive") ($(du -k "$archive" | cut -f1) KB), $version"
