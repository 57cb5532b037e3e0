"""Turns hone_sketched_linear_grid's JSON lines into docs/BENCHMARKS.md's tables and an SVG plot
of the landscape (forward and forward+backward speed-up over the dense layer, per in = out).
No plotting library needed: the SVG is written directly.

Usage: python bench/sketch_landscape.py GRID.jsonl [--svg docs/images/sketch_landscape.svg] [--title T]
"""
import argparse
import json
import math
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def default_graph_ms(r):
    """The op's default CUDA path is cuBLAS (the tensor-core kernels are opt-in)."""
    return r["cublas_forward_graph_ms"] if r.get("cublas_forward_graph_ms", -1) > 0 else r.get("forward_graph_ms", -1)


def default_eager_ms(r):
    return r["cublas_forward_ms"] if r.get("cublas_forward_ms", -1) > 0 else r["forward_ms"]


def with_speedups(rows):
    dense = {r["in"]: r for r in rows if r["layer"] == "dense"}
    for r in rows:
        if r["layer"] == "sketched":
            d = dense[r["in"]]
            r["graph_speedup"] = d["forward_graph_ms"] / default_graph_ms(r)
            r["eager_speedup"] = d["forward_ms"] / default_eager_ms(r)
    return rows


def tables(rows):
    out = []
    dense = {r["in"]: r for r in rows if r["layer"] == "dense"}
    sketched = [r for r in rows if r["layer"] == "sketched"]
    terms = sorted({r["terms"] for r in sketched})
    ranks = sorted({r["rank"] for r in sketched})
    for size in sorted(dense):
        d = dense[size]
        out.append(f"\n**in = out = {size}**, batch {d['batch']}, {d['dtype']}: dense forward "
                   f"{d['forward_ms'] * 1000:.1f} µs eager, {d.get('forward_graph_ms', -1) * 1000:.1f} µs graphed; "
                   f"forward+backward {d['forward_backward_ms'] * 1000:.1f} µs; "
                   f"{d['parameters'] / 1e6:.2f} M parameters, peak {d['peak_bytes'] / 2**20:.1f} MiB. Cells: "
                   f"forward graphed, cuBLAS path µs (speed-up) · tensor-core kernels graphed µs · eager speed-up · "
                   f"forward+backward speed-up · parameters + buffers · peak\n")
        out.append("| L \\ k | " + " | ".join(str(k) for k in ranks) + " |")
        out.append("|---|" + "---|" * len(ranks))
        for L in terms:
            cells = []
            for k in ranks:
                r = next((r for r in sketched if r["in"] == size and r["terms"] == L and r["rank"] == k), None)
                if r is None:
                    cells.append("–")
                    continue
                cells.append(f"{default_graph_ms(r) * 1000:.1f} µs **{r['graph_speedup']:.2f}×** · "
                             f"{r.get('tensor_cores_forward_graph_ms', -1) * 1000:.1f} µs · "
                             f"{r['eager_speedup']:.2f}× · {r['forward_backward_speedup']:.2f}× · "
                             f"{r['parameters'] / 1e6:.2f} M + {r['buffers'] / 1e6:.2f} M · "
                             f"{r['peak_bytes'] / 2**20:.1f} MiB")
            out.append(f"| {L} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def svg(rows, title):
    sketched = [r for r in rows if r["layer"] == "sketched"]
    sizes = sorted({r["in"] for r in sketched})
    terms = sorted({r["terms"] for r in sketched})
    ranks = sorted({r["rank"] for r in sketched})
    cell, gap, left, top = 46, 40, 60, 60
    panel = cell * len(ranks)
    width = left + 3 * len(sizes) * (panel + gap) + 20
    height = top + cell * len(terms) + 80
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="20" font-size="14">{title}</text>']

    def color(speedup):  # red < 1 (slower than dense) … white 1 … green > 1 (log scale, ±8×)
        t = max(-1.0, min(1.0, math.log(speedup) / math.log(8)))
        if t >= 0:
            return f"rgb({int(255 * (1 - t))},{int(255 - 90 * t)},{int(255 * (1 - t))})"
        return f"rgb(255,{int(255 * (1 + t))},{int(255 * (1 + t))})"

    x0 = left
    for metric, label in (("graph_speedup", "forward (graph)"), ("eager_speedup", "forward (eager)"),
                          ("forward_backward_speedup", "fwd+bwd (eager)")):
        for size in sizes:
            parts.append(f'<text x="{x0}" y="{top - 22}">{label}, {size}²</text>')
            for j, k in enumerate(ranks):
                parts.append(f'<text x="{x0 + j * cell + cell / 2}" y="{top - 6}" text-anchor="middle">k={k}</text>')
            for i, L in enumerate(terms):
                if x0 == left:
                    parts.append(f'<text x="{left - 8}" y="{top + i * cell + cell / 2 + 4}" '
                                 f'text-anchor="end">L={L}</text>')
                for j, k in enumerate(ranks):
                    r = next((r for r in sketched if r["in"] == size and r["terms"] == L and r["rank"] == k), None)
                    if r is None:
                        continue
                    s = r[metric]
                    parts.append(f'<rect x="{x0 + j * cell}" y="{top + i * cell}" width="{cell - 2}" '
                                 f'height="{cell - 2}" fill="{color(s)}"/>')
                    parts.append(f'<text x="{x0 + j * cell + cell / 2 - 1}" y="{top + i * cell + cell / 2 + 4}" '
                                 f'text-anchor="middle">{s:.2f}×</text>')
            x0 += panel + gap
    parts.append(f'<text x="{left}" y="{height - 30}">speed-up over the dense layer (cuBLAS) at the same batch and '
                 f'dtype; green: sketched faster, red: slower. Random tensors, timings only.</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("grid")
    parser.add_argument("--svg")
    parser.add_argument("--title", default="SKLinear vs dense Linear")
    args = parser.parse_args()
    rows = with_speedups(load(args.grid))
    if not rows:
        sys.exit(f"{args.grid}: no hone-sketch-grid/1 lines")
    print(tables(rows))
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(rows, args.title))


if __name__ == "__main__":
    main()
