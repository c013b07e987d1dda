#!/usr/bin/env bash
# Usage: scripts/install-locked.sh DIR [npm arguments]
# Installs the locked tree in DIR (npm arguments follow) unless what is installed there already matches
# the lockfile (scripts/check-lock.mjs). npm ci refuses a lockfile that leaves out optional platform
# builds the registry serves, and also one that names builds it does not serve (npm/cli#9846: which of
# Biome's and node-llama-cpp's builds it serves changes from day to day). On that refusal only,
# `npm install --no-save` installs the same tree without touching the lockfile, and the check then fails
# only if an installed version differs from the locked one.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$1"
shift
check=(node "$here/check-lock.mjs" . "$@")
if [[ -e node_modules/.package-lock.json ]] && "${check[@]}" 2>/dev/null; then
  echo "setup: $PWD/node_modules is up to date"
  exit 0
fi
if out=$(npm ci --no-audit --no-fund --ignore-scripts "$@" 2>&1); then
  printf '%s\n' "$out"
elif [[ $out == *'package-lock.json or npm-shrinkwrap.json are in sync'* ]]; then
  printf '%s\n' "$out" | grep -E 'Missing|Invalid' | head -4 >&2 || true
  echo "setup: npm ci refused $PWD/package-lock.json (npm/cli#9846); installing it with npm install --no-save" >&2
  npm install --no-save --no-audit --no-fund --ignore-scripts "$@"
else
  printf '%s\n' "$out" >&2
  exit 1
fi
"${check[@]}"
echo "setup: $PWD/node_modules matches package-lock.json"
