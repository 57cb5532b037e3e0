#!/usr/bin/env bash
# Prepares .gpu-deps/: the Debian packages hone builds against (header-only CLI11 and nlohmann-json,
# GoogleTest, zlib, utf8proc, the gloo/ headers) unpacked into a folder that travels to the lent GPU machine, which has
# torch, CUDA, CMake and ninja but no package registry. Run here, once; `make gpu-test` uses it there.
#   scripts/gpu_deps.sh            the packages (~5 MB)
#   scripts/gpu_deps.sh --minilm   also .gpu-deps/minilm-bf16/: all-MiniLM-L6-v2 with its weights in
#                                  bf16 (45 MB; the fp32 file is over the 64 MiB a call may carry).
#                                  Point HONE_MINILM_DIR there on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu-deps
# cpp-httplib (hone serve) is a compiled library: its runtime dependencies (OpenSSL 3, brotli) come
# along, found through LD_LIBRARY_PATH=.gpu-deps/usr/lib/x86_64-linux-gnu where the machine lacks them.
packages=(libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev googletest zlib1g-dev zlib1g
  libutf8proc-dev libutf8proc2 libgloo-dev libcpp-httplib-dev libcpp-httplib0.11 libssl3 libbrotli1)
if [[ -f $out/.done && "$(cat "$out/.done")" == "${packages[*]}" ]]; then
  echo "[gpu-deps] $out ready"
else
  rm -rf "$out/usr" "$out/lib" "$out/debs" && mkdir -p "$out/debs"
  (cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null)
  for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out"; done
  rm -rf "$out/debs" "$out/usr/share/doc" "$out/usr/src"
  echo "${packages[*]}" >"$out/.done"
  echo "[gpu-deps] unpacked ${packages[*]} into $out ($(du -sh "$out" | cut -f1))"
fi

if [[ "${1:-}" == --minilm && ! -f $out/minilm-bf16/model.safetensors ]]; then
  src="${HONE_MINILM_DIR:-${HONE_DATA_DIR:-$HOME/.cache/hone/data}/all-MiniLM-L6-v2}"
  python="${HONE_VENV:-$HOME/.cache/hone/venv-torch-2.11.0}/bin/python"
  mkdir -p "$out/minilm-bf16/1_Pooling"
  for f in config.json vocab.txt sentence_bert_config.json modules.json 1_Pooling/config.json; do
    cp "$src/$f" "$out/minilm-bf16/$f"
  done
  "$python" - "$src/model.safetensors" "$out/minilm-bf16/model.safetensors" <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
tensors = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in load_file(sys.argv[1]).items()}
save_file(tensors, sys.argv[2] + ".tmp", metadata={"format": "pt", "note": "bf16 copy for the GPU machine"})
import os; os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
  echo "[gpu-deps] wrote $out/minilm-bf16 ($(du -sh "$out/minilm-bf16" | cut -f1))"
fi
