#!/usr/bin/env bash
# Serving throughput of a trained run on this machine: `hone serve` with dynamic batching against
# --max-batch 1, swept over open-loop request rates with real test images as bodies; the knee is
# the highest rate whose p99 stays within the budget with every request answered 200; then a
# saturation run at 2x the dynamic knee (small queue: the excess must get 429, never a 5xx).
#   bench/serve/serve_cnn_cpu.sh build/tools/hone/hone runs/cnn bench/results/serve-cpu
set -euo pipefail
HONE=$1 RUN=$2 OUT=$3
PORT=${PORT:-18090} DUR=${DUR:-5} SAT_DUR=${SAT_DUR:-60} BUDGET_MS=${BUDGET_MS:-20} THREADS=${THREADS:-1}
RATES_SINGLE=${RATES_SINGLE:-"50 100 150 200 250 300 400"}
RATES_DYNAMIC=${RATES_DYNAMIC:-"100 200 300 400 500 600 800"}
mkdir -p "$OUT"
NAME=$(basename "$RUN")
URL=http://127.0.0.1:$PORT
{ date -u +%Y-%m-%dT%H:%M:%SZ; lscpu | grep 'Model name'; nproc; uptime; } > "$OUT/machine.txt"
"$HONE" serve "$RUN" --write-requests "$OUT/bodies.jsonl" --requests 256 2> "$OUT/write-requests.log"

SERVER=
trap '[ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null || true' EXIT
start_server() {  # label, extra flags...
  local label=$1; shift
  if curl -s -o /dev/null "$URL/v2/health/live"; then echo "something already listens on $URL" >&2; exit 1; fi
  "$HONE" serve "$RUN" --port "$PORT" --threads "$THREADS" --http-threads 80 "$@" 2> "$OUT/serve-$label.log" &
  SERVER=$!
  for _ in $(seq 1 120); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' $URL/v2/health/ready)" = 200 ] && return 0
    sleep 0.5
  done
  echo "server $label never became ready" >&2; exit 1
}
stop_server() { kill -TERM "$SERVER"; wait "$SERVER"; echo "exit code $?" >> "$OUT/serve-$1.log"; SERVER=; }

sweep() {  # label, rates, flags...
  local label=$1 rates=$2; shift 2
  start_server "$label" "$@"
  for rate in $rates; do
    "$HONE" loadgen "$URL/v2/models/$NAME/infer" --body "$OUT/bodies.jsonl" --rate "$rate" --duration "$DUR" \
      --connections 32 --json > "$OUT/$label-rate$rate.json"
  done
  curl -s $URL/metrics > "$OUT/metrics-$label.txt"
  stop_server "$label"
}

sweep single "$RATES_SINGLE" --max-batch 1
sweep dynamic "$RATES_DYNAMIC" --max-batch 32
KNEE=$(python3 "$(dirname "$0")/summarize.py" "$OUT" "$BUDGET_MS" knee dynamic)
SAT_RATE=${SAT_RATE:-$((2 * KNEE))}
echo "saturation at ${SAT_RATE} req/s (knee ${KNEE})" > "$OUT/saturation.txt"
start_server saturation --max-batch 32 --max-queue 16
grep VmRSS /proc/$SERVER/status | sed 's/^/before /' >> "$OUT/saturation.txt"
( for _ in $(seq 1 $((SAT_DUR / 5))); do
    sleep 5
    curl -s -o /dev/null -m 2 -w 'live %{http_code} %{time_total}s\n' $URL/v2/health/live
  done ) >> "$OUT/saturation.txt" &
PROBE=$!
"$HONE" loadgen "$URL/v2/models/$NAME/infer" --body "$OUT/bodies.jsonl" --rate "$SAT_RATE" --duration "$SAT_DUR" \
  --connections 96 --json > "$OUT/saturation.json"
wait $PROBE
grep VmRSS /proc/$SERVER/status | sed 's/^/after /' >> "$OUT/saturation.txt"
curl -s $URL/metrics > "$OUT/metrics-saturation.txt"
stop_server saturation
python3 "$(dirname "$0")/summarize.py" "$OUT" "$BUDGET_MS" table | tee "$OUT/summary.md"
