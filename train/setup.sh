#!/usr/bin/env bash
# Creates .venv/ at the repository root with the training dependencies (CPU torch).
# Idempotent: a second run only checks that the pinned versions are installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
req="$root/train/requirements.txt"
stamp="$venv/.requirements.sha256"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "train/setup.sh: .venv is up to date"
  exit 0
fi
# --retries 0: where the default index cannot be reached at all, pip moves on to the configured local
# indexes at once instead of backing off five times per package (minutes).
"$venv/bin/python" -m pip install --quiet --retries 0 -r "$req"
echo "$want" > "$stamp"
echo "train/setup.sh: installed train/requirements.txt into .venv"
