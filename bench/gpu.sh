#!/usr/bin/env bash
# The benchmarks on a machine with a real GPU: ccmem in Node (Dawn on the NVIDIA Vulkan driver) and the
# PyTorch eager Hugging Face peer on the same weights. That machine may lack Node, the Vulkan loader and the
# network, so `pack` prepares everything here, into ignored folders the device tool carries (.gl, .tmp/gpu,
# .tmp/bench); the other commands run there. See "GPU machine" in bench/README.md.
#
#   bench/gpu.sh pack            here: compile the benchmarks, fetch the Vulkan loader .debs, bundle Node
#   bench/gpu.sh run             there: bench:kernels, then the peers benchmark (Llama shapes, ccmem vs torch)
#   bench/gpu.sh kernels [opts]  there: bench:kernels only, with its options
#   bench/gpu.sh peers [opts]    there: the peers benchmark only, with its options (they follow the defaults)
#
# Results go to $OUT (the device tool's folder; .tmp/gpu-out elsewhere): BENCHMARKS.md (a copy of the
# repository's, with the measured sections replaced), kernels.json, peers.json, env.txt and gpu.log.
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=.tmp/gpu/runtime.tar.xz
FIXTURES=../shared/fixtures
PEERS_DEFAULTS=(--models 'smollm2-135m,llama-3.2-1b' --engines 'ccmem-node,torch')

pack() {
  npm run gen
  npx tsc -p bench/tsconfig.json
  if ! compgen -G '.gl/*.deb' >/dev/null; then
    # The recipe of the device tool's README: the Vulkan loader and glvnd, which NVIDIA's ICD library needs.
    mkdir -p .gl /tmp/amd64/partial
    local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update
    (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  # Node itself (this machine's binary), the packages the compiled benchmarks import at run time (Dawn for
  # Linux x64 only) and the fixtures they read; rebuilt only when missing or made by another Node.
  if [[ -f $BUNDLE && $(cat .tmp/gpu/node-version 2>/dev/null) == "$(node --version)" ]]; then return; fi
  local stage=.tmp/gpu/stage
  rm -rf "$stage" && mkdir -p "$stage/.tmp/gpu/bin" "$stage/node_modules/webgpu/dist" "$stage/.tmp/gpu/fixtures"
  cp "$(readlink -f "$(node -p process.execPath)")" "$stage/.tmp/gpu/bin/node"
  cp -r node_modules/webgpu/{package.json,index.js} "$stage/node_modules/webgpu"
  cp -r node_modules/webgpu/dist/linux-x64 "$stage/node_modules/webgpu/dist"
  cp -r node_modules/@huggingface node_modules/playwright-core "$stage/node_modules"
  cp -r "$FIXTURES/stories260K" "$stage/.tmp/gpu/fixtures"
  for f in "$FIXTURES"/*/config.json; do install -D "$f" "$stage/.tmp/gpu/fixtures/${f#"$FIXTURES"/}"; done
  XZ_OPT='-6 -T0' tar -cJf "$BUNDLE" -C "$stage" .
  rm -rf "$stage"
  node --version >.tmp/gpu/node-version
  ls -l "$BUNDLE"
}

setup() {
  [[ -f $BUNDLE ]] || { echo "gpu.sh: $BUNDLE is missing: run bench/gpu.sh pack first and carry .tmp/gpu" >&2; exit 2; }
  [[ -f .tmp/bench/bench/peers.js ]] || { echo "gpu.sh: .tmp/bench is missing: carry it" >&2; exit 2; }
  if ! grep -q 'libvulkan\.so\.1' <(ldconfig -p); then # not a pipe: grep -q would SIGPIPE ldconfig under pipefail
    compgen -G '.gl/*.deb' >/dev/null || { echo "gpu.sh: no Vulkan loader and no .gl/*.deb to install" >&2; exit 2; }
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  # python3's tarfile, not tar: that machine may have no xz
  python3 -c "import tarfile; tarfile.open('$BUNDLE').extractall('.', filter='data')"
  if [[ ! -d $FIXTURES ]]; then mkdir -p "$(dirname "$FIXTURES")" && cp -r .tmp/gpu/fixtures "$FIXTURES"; fi
  local icd=${VK_ICD_FILENAMES:-}
  if [[ -z $icd ]]; then
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json \
      /etc/vulkan/icd.d/nvidia_icd.json ''; do [[ -f $icd ]] && break; done
  fi
  [[ -n $icd ]] || { echo "gpu.sh: no nvidia_icd.json found (set VK_ICD_FILENAMES)" >&2; exit 2; }
  export VK_ICD_FILENAMES=$icd VK_DRIVER_FILES=$icd
  NODE=node
  if ! command -v node >/dev/null || (($(node -p 'process.versions.node.split(".")[0]') < 20)); then
    NODE=$PWD/.tmp/gpu/bin/node
  fi
  OUT=${OUT:-$PWD/.tmp/gpu-out}
  mkdir -p "$OUT"
  [[ -f $OUT/BENCHMARKS.md ]] || cp BENCHMARKS.md "$OUT/BENCHMARKS.md"
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv || true
    echo "node $("$NODE" --version), VK_ICD_FILENAMES=$icd"
    "${BENCH_PYTHON:-python3}" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' ||
      true
  } >>"$OUT/env.txt" 2>&1
}

# One benchmark, its log appended to gpu.log; a failure is recorded and the next benchmark still runs.
bench() {
  local name=$1
  shift
  echo "== $name $*" | tee -a "$OUT/gpu.log"
  "$NODE" ".tmp/bench/bench/$name.js" --out "$OUT/BENCHMARKS.md" --json "$@" >"$OUT/$name.json" \
    2> >(tee -a "$OUT/gpu.log" >&2) || { echo "== $name FAILED" | tee -a "$OUT/gpu.log"; status=1; }
}

status=0
case ${1:-} in
  pack) pack ;;
  run)
    setup
    bench kernels
    bench peers "${PEERS_DEFAULTS[@]}"
    ;;
  kernels)
    setup
    bench kernels "${@:2}"
    ;;
  peers)
    setup
    bench peers "${PEERS_DEFAULTS[@]}" "${@:2}"
    ;;
  *)
    sed -n '7,10p' "$0" | sed 's/^# *//' >&2
    exit 2
    ;;
esac
exit $status
