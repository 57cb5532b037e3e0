"""Summarizes serve_cnn_cpu.sh's loadgen JSON: per config the knee (highest rate with p99 within the
budget, every request answered 200, none unsent) and a markdown table of the sweep."""
import glob, json, os, re, sys

out, budget, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]

def runs(label):
    rows = []
    for path in glob.glob(os.path.join(out, f"{label}-rate*.json")):
        r = json.load(open(path))
        rows.append((float(re.search(r"rate(\d+)", path).group(1)), r))
    return sorted(rows, key=lambda x: x[0])

def ok(r):
    codes = r["status_counts"]
    return r["latency_ms"]["p99"] <= budget and r["unsent"] == 0 and r["errors"] == 0 and list(codes) == ["200"]

def knee(label):
    good = [(rate, r) for rate, r in runs(label) if ok(r)]
    return max(good, key=lambda x: x[1]["throughput_per_second"]) if good else (0, None)

if mode == "knee":  # the budget knee, or (none within budget) the highest rate answered all 200
    rate = knee(sys.argv[4])[0]
    if not rate:
        answered = [rate for rate, r in runs(sys.argv[4]) if list(r["status_counts"]) == ["200"] and r["unsent"] == 0]
        rate = max(answered, default=100)
    print(int(rate))
    sys.exit()
print(f"| config | rate req/s | throughput resp/s | p50 ms | p90 ms | p99 ms | p99.9 ms | codes | unsent |")
print("|---|---|---|---|---|---|---|---|---|")
for label in ("single", "dynamic"):
    for rate, r in runs(label):
        l = r["latency_ms"]
        print(f"| {label} | {rate:.0f} | {r['throughput_per_second']:.1f} | {l['p50']:.2f} | {l['p90']:.2f} | {l['p99']:.2f} | "
              f"{l['p99.9']:.2f} | {r['status_counts']} | {r['unsent']} |")
ks, kd = knee("single"), knee("dynamic")
ts = ks[1]["throughput_per_second"] if ks[1] else 0
td = kd[1]["throughput_per_second"] if kd[1] else 0
print(f"\nknee (p99 <= {budget:g} ms, all 200): --max-batch 1 {ks[0]:.0f} req/s ({ts:.1f} resp/s); "
      f"dynamic {kd[0]:.0f} req/s ({td:.1f} resp/s); ratio {td / ts if ts else float('nan'):.2f}x")
sat = os.path.join(out, "saturation.json")
if os.path.exists(sat):
    r = json.load(open(sat))
    l = r["latency_ms"]
    print(f"saturation: target {r['target_rate_per_second']:.0f} req/s, throughput {r['throughput_per_second']:.1f} resp/s, codes "
          f"{r['status_counts']}, unsent {r['unsent']}, transport errors {r['errors']}, p99 {l['p99']:.1f} ms, "
          f"2xx p99 {r['latency_ok_ms']['p99']:.1f} ms")
