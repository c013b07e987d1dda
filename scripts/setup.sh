#!/usr/bin/env bash
# Installs what the tests need on Debian 12 (bookworm). Idempotent; fast when nothing is missing.
#   - Debian's chromium: /usr/bin/chromium for the browser tests, and SwiftShader's Vulkan driver
#     (no shader-f16) for the GPU tests;
#   - Mesa lavapipe >= 25 from bookworm-backports (shader-f16, subgroups): Dawn refuses bookworm's 22.3;
#   - npm packages: `npm ci` here, `npm ci --omit=optional` in peers/ (node-llama-cpp without its GPU builds),
#     checked against the lockfiles (scripts/check-lock.mjs); then dist/ is built;
#   - .venv/ with train/requirements.txt (train/setup.sh): the training pipeline's tests run in the suite.
# Installing system packages needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEBIAN_FRONTEND=noninteractive
SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
LAVAPIPE_ICD=/usr/share/vulkan/icd.d/lvp_icd.json
MESA_MIN=25
BACKPORTS_LINE='deb http://deb.debian.org/debian bookworm-backports main'

have_chromium() {
  [[ -x /usr/bin/chromium && -f $SWIFTSHADER_ICD ]]
}

have_lavapipe() {
  local status version
  read -r status version < <(dpkg-query -W -f='${db:Status-Status} ${Version}\n' mesa-vulkan-drivers 2>/dev/null) ||
    return 1
  [[ $status == installed && -f $LAVAPIPE_ICD ]] && dpkg --compare-versions "$version" ge "$MESA_MIN"
}

have_backports_suite() {
  grep -qsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources
}

if ! have_chromium || ! have_lavapipe; then
  if [[ $EUID -ne 0 ]]; then
    echo "setup: chromium or Mesa lavapipe >= $MESA_MIN is missing; run this script as root to install them" >&2
    exit 1
  fi
  if ! have_backports_suite; then
    echo "$BACKPORTS_LINE" >/etc/apt/sources.list.d/bookworm-backports.list
  fi
  apt-get update
  if ! have_chromium; then apt-get install -y chromium; fi
  if ! have_lavapipe; then apt-get install -y -t bookworm-backports mesa-vulkan-drivers; fi
  if ! have_chromium || ! have_lavapipe; then
    echo 'setup: chromium or Mesa lavapipe is still missing after apt-get install' >&2
    exit 1
  fi
fi

command -v npm >/dev/null || {
  echo 'setup: Node.js 20 with npm is required' >&2
  exit 1
}

scripts/install-locked.sh .
scripts/install-locked.sh peers --omit=optional
# .venv/: PyTorch (CPU) and transformers for train/ and the tests that check it against ccmem.
train/setup.sh
# dist/ (the CLI, the package's exports): built here, not in an install script, so consumers of the
# package never run a build.
npm run build
