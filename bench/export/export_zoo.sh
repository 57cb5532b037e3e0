#!/usr/bin/env bash
# hone export + onnxruntime verification for every zoo model (random weights, each on its default
# dataset's real test split; minilm on random token ids) and for the runs given as arguments; one
# JSON report per export in OUT, and a markdown table of the figures (docs/BENCHMARKS.md, "Export").
#
#   bench/export/export_zoo.sh build/tools/hone/hone OUT [RUN_DIR...]
set -euo pipefail
hone=$1
out=$2
shift 2
mkdir -p "$out"
targets=(mlp cnn mobilenet transformer lstm attention minilm "$@")
for target in "${targets[@]}"; do
  if [[ -d "$target" ]]; then name=run-$(basename "$target"); else name=$target; fi
  start=$(date +%s.%N)
  if "$hone" export "$target" -o "$out/$name.onnx" --json >"$out/$name.json" 2>"$out/$name.err"; then status=ok; else status=failed; fi
  end=$(date +%s.%N)
  echo "$target: $status, $(echo "$end - $start" | bc) s wall" | tee -a "$out/wall.txt"
done
python3 - "$out" "${targets[@]}" <<'PY'
import json, os, sys
out, targets = sys.argv[1], sys.argv[2:]
print("| target | verified on | nodes | max rel error (all cases) | metric | hone | onnxruntime | seconds |")
print("|---|---|---|---|---|---|---|---|")
for t in targets:
    path = os.path.join(out, ("run-" + os.path.basename(t) if os.path.isdir(t) else t) + ".json")
    try:
        r = json.load(open(path))
    except Exception:
        print(f"| {t} | failed: {open(path[:-5] + '.err').read().strip()[:120]} |||||||")
        continue
    rel = max(c["max_rel_error"] for c in r["checks"])
    print(f"| {t} | {r['verification_inputs']} | {r['nodes']} | {rel:.2e} | {r['metric']} | "
          f"{r['metric_hone']:.7g} | {r['metric_onnxruntime']:.7g} | {r['seconds']:.1f} |")
PY
