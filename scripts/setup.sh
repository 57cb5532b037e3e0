#!/usr/bin/env bash
# One-time, idempotent set-up for hone on a fresh Debian 12 machine:
#   1. Debian packages (build tools, libraries, real datasets)  — skipped when all present
#   2. a Python virtual environment with torch==2.11.0         — reused across clones
#   3. the GoldSilver daily price series exported to CSV       — once
# Environment:
#   HONE_VENV      where the venv lives   (default ~/.cache/hone/venv-torch-2.11.0)
#   HONE_DATA_DIR  exported datasets      (default ~/.cache/hone/data)
#   HONE_SKIP_APT=1  skip the Debian step (e.g. on the GPU machine, which has no registry)
set -euo pipefail

TORCH_VERSION=2.11.0
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/hone"
HONE_VENV="${HONE_VENV:-$CACHE_ROOT/venv-torch-$TORCH_VERSION}"
HONE_DATA_DIR="${HONE_DATA_DIR:-$CACHE_ROOT/data}"

log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(
  cmake ninja-build g++ make ccache pkg-config clang-format clang-tidy
  python3 python3-venv
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  dataset-fashion-mnist python3-sklearn r-cran-aer
)

install_apt() {
  if [[ "${HONE_SKIP_APT:-0}" == 1 ]]; then log "apt: skipped (HONE_SKIP_APT=1)"; return; fi
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then log "apt: all ${#APT_PACKAGES[@]} packages present"; return; fi
  log "apt: installing ${missing[*]}"
  local sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_venv() {
  local py="$HONE_VENV/bin/python"
  if [[ -x "$py" ]] && "$py" -c "import torch, numpy, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    log "venv: $HONE_VENV has torch $TORCH_VERSION"; return
  fi
  log "venv: creating $HONE_VENV with torch==$TORCH_VERSION (a few GB, once)"
  mkdir -p "$(dirname "$HONE_VENV")"
  [[ -x "$py" ]] || python3 -m venv "$HONE_VENV"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q "torch==$TORCH_VERSION" numpy
}

export_goldsilver() {
  local out="$HONE_DATA_DIR/goldsilver.csv"
  if [[ -s "$out" ]]; then log "data: $out present"; return; fi
  if ! command -v Rscript >/dev/null; then log "data: Rscript missing (install r-cran-aer); GoldSilver not exported"; return 1; fi
  mkdir -p "$HONE_DATA_DIR"
  local tmp="$out.tmp.$$"
  Rscript -e 'suppressMessages(library(zoo)); data(GoldSilver, package="AER");
    x <- data.frame(date=as.character(index(GoldSilver)), coredata(GoldSilver));
    write.csv(x, commandArgs(TRUE)[1], row.names=FALSE, quote=FALSE)' "$tmp"
  mv "$tmp" "$out"
  log "data: exported $(($(wc -l <"$out") - 1)) GoldSilver rows to $out"
}

install_apt
install_venv
if [[ "${HONE_SKIP_APT:-0}" != 1 ]]; then export_goldsilver; fi
log "done"
