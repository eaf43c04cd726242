#!/usr/bin/env bash
# Checks the VS Code extension from a clean state: installs the pinned npm packages, lints,
# type-checks, runs the unit tests with node's test runner and packages the .vsix (which proves
# the manifest is valid). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")"

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "== eslint"
npx --no-install eslint src
echo "== tsc --noEmit"
npx --no-install tsc -p . --noEmit
echo "== unit tests"
rm -rf out
npx --no-install tsc -p .
node --test out/test/
echo "== package"
rm -f periodic.vsix
npx --no-install vsce package --skip-license --allow-missing-repository --out periodic.vsix
# The package must carry the compiled entry point and the manifest, and no tests or sources.
listing="$(npx --no-install vsce ls)"
for required in package.json out/extension.js node_modules/vscode-languageclient/package.json; do
  grep -qx "$required" <<<"$listing" || { echo "periodic.vsix is missing $required" >&2; exit 1; }
done
if grep -Eq '^(src/|out/test/)' <<<"$listing"; then
  echo "periodic.vsix contains sources or tests" >&2
  exit 1
fi
echo "periodic.vsix: $(du -k periodic.vsix | cut -f1) KB"
