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
npx --no-install vsce package --no-dependencies --skip-license --allow-missing-repository --out periodic.vsix
# The package must carry the compiled entry point and the manifest, and no tests or sources.
listing="$(npx --no-install vsce ls --no-dependencies)"
for required in package.json README.md dist/extension.js; do
  grep -qx "$required" <<<"$listing" || { echo "periodic.vsix is missing $required" >&2; exit 1; }
done
if grep -Eq '^(src/|out/|node_modules/)' <<<"$listing"; then
  echo "periodic.vsix contains sources, tests or unbundled modules" >&2
  exit 1
fi
# The bundle may load only VS Code's API and Node's built-in modules at run time.
external="$(grep -oE 'require\("[^"]+"\)' dist/extension.js | sort -u | grep -vE 'require\("(vscode|node:[a-z_/]+|assert|buffer|child_process|crypto|events|fs|net|os|path|stream|url|util|tty)"\)' || true)"
if [[ -n "$external" ]]; then
  echo "dist/extension.js requires modules that are not bundled: $external" >&2
  exit 1
fi
echo "periodic.vsix: $(du -k periodic.vsix | cut -f1) KB"
