#!/usr/bin/env bash
# make fuzz / make test-sanitize (docs/reliability.md): a separate build tree compiled by clang with
# AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer's coverage instrumentation, so the
# normal build is untouched.
#
#   scripts/fuzz.sh fuzz       builds the fuzz_<harness> programs and runs each for FUZZ_SECONDS
#                              (default 60), FUZZ_JOBS at a time (default: the cores), on a working
#                              corpus seeded from tests/fuzz/corpus/<harness>; prints executions,
#                              coverage and corpus size, writes $FUZZ_OUT/summary.json, and fails if
#                              any harness found a crash or a sanitizer report (the input is in
#                              $FUZZ_OUT/<harness>/findings/: fix the reader, then check it in as
#                              tests/fuzz/regressions/<harness>/NAME so ctest replays it for ever).
#   scripts/fuzz.sh sanitize   builds everything in the same tree and runs the CPU test suite (ctest
#                              -LE cuda) under the sanitizers; every report fails its test.
#
# Environment: FUZZ_BUILD (build-sanitize), FUZZ_SECONDS, FUZZ_JOBS, FUZZ_HARNESSES ("gzip csv"; default
# all), FUZZ_OUT ($FUZZ_BUILD/fuzz-runs), HONE_PYTHON (the venv's python, for cmake and the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-fuzz}"
BUILD="${FUZZ_BUILD:-build-sanitize}"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-$(nproc)}"
OUT="${FUZZ_OUT:-$BUILD/fuzz-runs}"
ALL_HARNESSES="gzip idx csv safetensors run_config recipe wordpiece onnx infer_request"
HARNESSES="${FUZZ_HARNESSES:-$ALL_HARNESSES}"
PYTHON="${HONE_PYTHON:-${XDG_CACHE_HOME:-$HOME/.cache}/hone/venv-torch-2.11.0/bin/python}"

log() { printf '[fuzz] %s\n' "$*" >&2; }

# Reports are fatal at run time (the build keeps them recoverable); leaks are not checked, since
# LibTorch keeps process-lifetime allocations that LeakSanitizer would report at every exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1:detect_odr_violation=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# clang and its libFuzzer/sanitizer runtimes, from Debian, when missing (not part of `make test`'s set-up).
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  log "installing clang and libclang-rt-14-dev"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi

if [[ ! -f "$BUILD/build.ninja" ]]; then
  log "configuring $BUILD (clang, ASan + UBSan, libFuzzer instrumentation, CPU only)"
  # -O1 with line tables: readable sanitizer stacks at a fraction of full debug info's build time.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" \
    -DHONE_PYTHON="$PYTHON" -DHONE_CUDA=OFF -DHONE_SANITIZE=ON -DHONE_FUZZ=ON >&2
fi

if [[ "$mode" == sanitize ]]; then
  cmake --build "$BUILD" -j "$(nproc)"
  started=$(date +%s)
  # The two Python op tests load libhone_kernels.so into an uninstrumented python, which the ASan
  # runtime refuses (it must be the first library loaded); the C++ op tests cover those kernels.
  (cd "$BUILD" && ctest --output-on-failure -j "$(nproc)" --timeout 2700 -LE cuda \
     -E '^python\.(sketched_linear_op|add_layer_norm_op)$')
  log "sanitized CPU suite passed in $(( $(date +%s) - started )) s"
  exit 0
fi
[[ "$mode" == fuzz ]] || { log "usage: scripts/fuzz.sh [fuzz|sanitize]"; exit 2; }

targets=()
for h in $HARNESSES; do targets+=("fuzz_$h"); done
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}"

run_one() {
  local h="$1" dir="$OUT/$1"
  mkdir -p "$dir/corpus" "$dir/findings"
  local seeds=(tests/fuzz/corpus/"$h")
  [[ -d tests/fuzz/regressions/"$h" ]] && seeds+=(tests/fuzz/regressions/"$h")
  "$BUILD/tests/fuzz/fuzz_$h" "$dir/corpus" "${seeds[@]}" -max_total_time="$SECONDS_EACH" \
    -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 -artifact_prefix="$dir/findings/" \
    >"$dir/log.txt" 2>&1 && echo 0 >"$dir/status" || echo $? >"$dir/status"
}

log "running ${HARNESSES} for ${SECONDS_EACH} s each, ${JOBS} at a time"
running=0
for h in $HARNESSES; do
  run_one "$h" &
  running=$((running + 1))
  if ((running >= JOBS)); then wait -n || true; running=$((running - 1)); fi
done
wait || true

failed=0
summary="$OUT/summary.json"
echo "[" >"$summary"
first=1
printf '%-14s %10s %8s %8s %9s %8s %s\n' harness seconds execs cov features corpus findings
for h in $HARNESSES; do
  dir="$OUT/$h"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$dir/log.txt" | grep -o '[0-9]*$' || echo 0)
  last=$(grep -E '^#[0-9]+' "$dir/log.txt" | tail -1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last"); cov=${cov:-0}
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last"); ft=${ft:-0}
  corpus=$(find "$dir/corpus" -type f | wc -l)
  findings=$(find "$dir/findings" -type f | wc -l)
  status=$(cat "$dir/status")
  [[ "$status" != 0 || "$findings" != 0 ]] && failed=1
  printf '%-14s %10s %8s %8s %9s %8s %s\n' "$h" "$SECONDS_EACH" "$execs" "$cov" "$ft" "$corpus" "$findings"
  ((first)) || echo "," >>"$summary"
  first=0
  printf '  {"harness": "%s", "seconds": %s, "executions": %s, "coverage_edges": %s, "features": %s, "corpus": %s, "findings": %s, "exit": %s}' \
    "$h" "$SECONDS_EACH" "$execs" "$cov" "$ft" "$corpus" "$findings" "$status" >>"$summary"
done
printf '\n]\n' >>"$summary"
log "summary: $summary"
if ((failed)); then
  log "FINDINGS: see $OUT/<harness>/log.txt and findings/; fix, then add each input to tests/fuzz/regressions/<harness>/"
  exit 1
fi
