#!/usr/bin/env bash
# Issue 18's GPU serving target: the pretrained all-MiniLM-L6-v2 in bf16 behind `hone serve`, real
# fine-food reviews of at most 128 tokens sent to TEI's POST /embed over loopback by the open-loop
# load generator; the knee is the highest rate whose p99 is within BUDGET_MS (50) with every answer
# 200 (`hone serve --bench`, which plans the batching from the same budget). Run on the GPU machine,
# after `make gpu-test` built hone with the serve module and with the reviews and weights carried:
#   HONE_DATA_DIR=$PWD/.gpu-deps/data HONE_MINILM_DIR=$PWD/.gpu-deps/minilm-bf16 \
#     bench/serve/serve_minilm_gpu.sh build-gpu/tools/hone/hone bench/results/serve-minilm-gpu
# Two body shapes: one review per request (requests/s = sentences/s; many connections, Little's
# law: in flight = rate x latency), and 8 reviews per request (sentences/s = 8 x requests/s).
set -euo pipefail
HONE=$1 OUT=$2
BUDGET_MS=${BUDGET_MS:-50} DUR=${DUR:-10} MAX_RATES=${MAX_RATES:-12}
mkdir -p "$OUT"
{ date -u +%Y-%m-%dT%H:%M:%SZ; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; uptime; } \
  > "$OUT/machine.txt"
"$HONE" serve minilm --device cuda --dtype bf16 --bench --p99-budget-ms "$BUDGET_MS" --seq-len 128 \
  --requests 4096 --texts-per-request 1 --rate 1000 --duration "$DUR" --max-rates "$MAX_RATES" --connections 256 \
  --json > "$OUT/knee-1-per-request.json" 2> "$OUT/knee-1-per-request.log"
"$HONE" serve minilm --device cuda --dtype bf16 --bench --p99-budget-ms "$BUDGET_MS" --seq-len 128 \
  --requests 512 --texts-per-request 8 --rate 250 --duration "$DUR" --max-rates "$MAX_RATES" --connections 64 \
  --json > "$OUT/knee-8-per-request.json" 2> "$OUT/knee-8-per-request.log"
python3 - "$OUT" <<'PY'
import json, sys, pathlib
for f in sorted(pathlib.Path(sys.argv[1]).glob("knee-*.json")):
    r = json.loads(f.read_text())
    for m in r["models"]:
        k = m["knee"]
        if k is None:
            print(f"{f.name}: {m['target']}: no rate met p99 <= {r['p99_budget_ms']} ms")
            continue
        print(f"{f.name}: {m['target']} {r['device']} {r['dtype']}: knee {m['knee_rate']:.0f} req/s, "
              f"{m['knee_items_per_second']:.0f} sentences/s, p99 {k['latency_ms']['p99']:.1f} ms, "
              f"max batch {m['max_batch']}, delay {m['max_queue_delay_us']} us")
PY
