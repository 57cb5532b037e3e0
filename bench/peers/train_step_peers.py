#!/usr/bin/env python3
"""Times one training step of hone's zoo models in PyTorch (eager, torch.compile, one CUDA graph)
beside `hone bench MODEL --train`, in one run on one machine, and prints hone/peer ratios.

What a step is, on both sides: forward in train() mode, the loss, backward, an AdamW step
(lr 1e-4) and zero_grad(set_to_none=True). Loss: cross-entropy against random class ids for the
classifiers (mlp, cnn, mobilenet, transformer), MSE against random targets for the forecasters
(lstm, attention), and `output.float().pow(2).mean()` for minilm (a stand-in hone uses too).
Weights and inputs are random (Fashion-MNIST-shaped images, GoldSilver-shaped windows, token ids
in [1000, 30522)): the numbers are timings only, never accuracy.

How it is timed (as bench/peers/run_peers.py and the anchors): per peer and batch size a fresh
seeded model and optimizer, `--warmup` untimed steps, a device synchronization, then
`--iterations` timed steps, each one wall time (time.perf_counter) on the CPU or a pair of CUDA
events around the step on the GPU; p50/p90/p99 by numpy's linear percentile, samples/s = batch /
mean step time, and on CUDA the peak allocated memory of the timed steps. The first step of a
torch.compile peer (Dynamo + Inductor, forward and backward) and the capture of a CUDA graph are
timed apart ("prep s"). `--repeats R` interleaves hone and the peers (hone run 1, peers run 1,
hone run 2, ...) and reports the median over runs of each statistic. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402  (beside this file)
from run_peers import cpu_model, find_hone, first_line, log, parse_batches, parse_list, write_json  # noqa: E402

SCHEMA = "hone-train-peers/1"
HONE_SCHEMA = "hone-bench-train/1"
STAT_KEYS = ("p50", "p90", "p99", "mean", "min", "max")
LEARNING_RATE = 1e-4
CUDA_GRAPH_WARMUP_STEPS = 3  # eager steps on a side stream before capture (AdamW state, cuBLAS workspaces)
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HONE = REPO_ROOT / "build" / "tools" / "hone" / "hone"

EXAMPLES = """examples:
  # CPU: eager and torch.compile beside hone, one thread everywhere:
  python bench/peers/train_step_peers.py --model cnn,minilm --device cpu --batch 8,128 --threads 1 \\
      --warmup 5 --iterations 20 --repeats 3 --json train-peers-cpu.json
  # GPU machine: every peer, hone plain and with its graphed step:
  /opt/torch/.venv/bin/python bench/peers/train_step_peers.py --model cnn,minilm --device cuda \\
      --batch 128 --hone-variants hone,hone-graphs --repeats 3 --json train-peers-cuda.json
"""


@dataclass(frozen=True)
class PeerSpec:
    """One way PyTorch runs the step. `precision` is also the --precision hone is compared at."""

    precision: str  # fp32 (TF32 off), tf32, bf16 (autocast)
    compiled: bool = False  # torch.compile(model)
    fused: bool = False  # AdamW(fused=True)
    cuda_graph: bool = False  # the whole step captured once, replayed
    cuda_only: bool = False
    channels_last: bool = False  # model.to(memory_format=torch.channels_last) and NHWC inputs


PEERS: dict[str, PeerSpec] = {
    "eager-fp32": PeerSpec("fp32"),
    "eager-tf32": PeerSpec("tf32", cuda_only=True),
    "eager-bf16": PeerSpec("bf16"),
    "eager-bf16-fused": PeerSpec("bf16", fused=True),
    "eager-fp32-cl": PeerSpec("fp32", channels_last=True),
    "eager-bf16-cl": PeerSpec("bf16", channels_last=True),
    "compile-fp32": PeerSpec("fp32", compiled=True, fused=True),
    "compile-bf16": PeerSpec("bf16", compiled=True, fused=True),
    "cuda-graph-bf16": PeerSpec("bf16", cuda_graph=True, cuda_only=True),
}
DEFAULT_PEERS = {"cpu": "eager-fp32,compile-fp32", "cuda": ",".join(PEERS)}
# hone variant -> the extra `hone bench` flag and the JSON field that must then be true.
HONE_VARIANTS = {"hone": (None, None), "hone-graphs": ("--cuda-graphs", "cuda_graphs"),
                 "hone-ckpt": ("--checkpoint-activations", "checkpoint_activations"),
                 "hone-cl": ("--channels-last", "channels_last")}
FORECASTERS = ("lstm", "attention")  # the rest of the zoo: classifiers, except minilm (an encoder)


# --- what runs where ----------------------------------------------------------------------------


def cpu_has_bf16() -> bool:
    with contextlib.suppress(OSError):
        flags = Path("/proc/cpuinfo").read_text().split()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    return False


def peer_skip_reason(spec: PeerSpec, device: torch.device) -> str | None:
    if device.type == "cuda":
        return None
    if spec.cuda_only:
        return "CUDA only (this run is --device cpu)"
    if spec.precision == "bf16" and not cpu_has_bf16():
        return "this CPU has neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo (bf16 would be emulated)"
    return None


def loss_kind(model: str) -> str:
    if model == "minilm":
        return "output.float().pow(2).mean()"
    return "mse" if model in FORECASTERS else "cross_entropy"


def make_batch(model: str, batch: int, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A random input batch and a random target for it (None for minilm): timing only."""
    generator = torch.Generator().manual_seed(batch)
    entry = zoo.ZOO[model]
    if entry.input_kind == "token_ids":
        low, high = zoo.MINILM_TOKEN_RANGE
        x = torch.randint(low, high, (batch, seq_len), generator=generator)
        return x.to(device), None
    x = zoo.make_input(model, batch, device, seed=batch)
    kind = loss_kind(model)
    if kind == "mse":
        target = torch.randn(batch, zoo.GOLDSILVER_OUTPUTS, generator=generator)
    else:
        target = torch.randint(0, zoo.FASHION_MNIST_CLASSES, (batch,), generator=generator)
    return x, target.to(device)


def compute_loss(kind: str, output: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    output = output.float()
    if kind == "mse":
        return F.mse_loss(output, target)
    if kind == "cross_entropy":
        return F.cross_entropy(output, target)
    return output.pow(2).mean()


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 matmuls and convolutions on or off for one peer (restored after)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# --- one peer's step ----------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_step(spec: PeerSpec, model_name: str, batch: int, args: argparse.Namespace) -> tuple[Callable[[], None], dict]:
    """A fresh seeded model and AdamW, and the step to time; prep info (first compiled step, capture)."""
    device = args.torch_device
    model = zoo.build(model_name).to(device).train()
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, fused=spec.fused or None,
                                  capturable=spec.cuda_graph)
    forward = torch.compile(model, dynamic=False) if spec.compiled else model
    x, target = make_batch(model_name, batch, args.seq_len, device)
    if spec.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    kind = loss_kind(model_name)

    def forward_backward_update() -> None:
        # No autocast weight cache inside a CUDA graph: the cast copies must be made by the replay.
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec.precision == "bf16",
                            cache_enabled=not spec.cuda_graph):
            output = forward(x)
        compute_loss(kind, output, target).backward()
        optimizer.step()

    def step() -> None:
        forward_backward_update()
        optimizer.zero_grad(set_to_none=True)

    if spec.cuda_graph:
        return capture_step(forward_backward_update, optimizer, device)
    if spec.compiled:
        start = time.perf_counter()
        step()
        sync(device)
        return step, {"first_step_s": time.perf_counter() - start}
    return step, {}


def capture_step(update: Callable[[], None], optimizer: torch.optim.Optimizer,
                 device: torch.device) -> tuple[Callable[[], None], dict]:
    """The whole step in one CUDA graph, as the anchor: eager warm-up on a side stream, grads set to
    None so that the captured backward writes them afresh on every replay, then capture."""
    start = time.perf_counter()
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(CUDA_GRAPH_WARMUP_STEPS):
            optimizer.zero_grad(set_to_none=True)
            update()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        update()
    sync(device)
    return graph.replay, {"capture_s": time.perf_counter() - start}


def time_steps(step: Callable[[], None], warmup: int, iterations: int, device: torch.device) -> tuple[list[float], int]:
    """Warm-up steps, then one sample (ms) per step; and the CUDA peak allocated bytes (-1 on the CPU)."""
    for _ in range(warmup):
        step()
    sync(device)
    if device.type != "cuda":
        samples = []
        for _ in range(iterations):
            start = time.perf_counter()
            step()
            samples.append((time.perf_counter() - start) * 1e3)
        return samples, -1
    torch.cuda.reset_peak_memory_stats(device)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(iterations):
        begin.record()
        step()
        end.record()
        end.synchronize()
        samples.append(begin.elapsed_time(end))
    return samples, torch.cuda.max_memory_allocated(device)


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """The statistics of hone's step_ms, under its names."""
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99], method="linear")
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()),
            "min": float(a.min()), "max": float(a.max()), "samples": int(a.size)}


def median_of_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each statistic's median over repeated runs (p50 = median of the per-run p50s)."""
    return {key: float(np.median([run[key] for run in runs])) for key in STAT_KEYS} | {"samples": runs[0].get("samples", runs[0].get("count"))}


# --- hone ---------------------------------------------------------------------------------------


def hone_command(hone: Path, model: str, variant: str, precision: str, args: argparse.Namespace) -> list[str]:
    command = [str(hone), "bench", model, "--train", "--device", args.device, "--batch", args.batch,
               "--precision", precision, "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--json"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if zoo.ZOO[model].input_kind == "token_ids":
        command += ["--seq-len", str(args.seq_len)]
    flag = HONE_VARIANTS[variant][0]
    return command + ([flag] if flag else [])


def parse_hone_report(text: str) -> tuple[dict | None, str]:
    """hone's `bench --train --json` output: (the report, "") or (None, why it is not one)."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"hone printed no JSON ({error}); stdout began {text[:200]!r}"
    if not isinstance(report, dict) or report.get("schema") != HONE_SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        return None, f"hone's JSON is not schema {HONE_SCHEMA} (found {found!r}): no --train support in this binary?"
    results = report.get("results")
    needed = set(STAT_KEYS)
    # hone's runtime::Summary names the sample count "count"; the peers' summaries "samples".
    if not results or not all({"batch", "step_ms", "samples_per_second"} <= set(row) and needed <= set(row["step_ms"])
                              and ({"count", "samples"} & set(row["step_ms"])) for row in results):
        return None, (f"hone's JSON has no results with batch, samples_per_second and step_ms "
                      f"{{{', '.join(sorted(needed))}, count}}")
    return report, ""


def same_work_problems(report: dict, expected: dict[str, Any]) -> list[str]:
    """Why hone's report is not the step the peers timed (empty: it is)."""
    problems = []
    if report.get("parameters") != expected["parameters"]:
        problems.append(f"hone has {report.get('parameters')} parameters, the peer {expected['parameters']}")
    if report.get("precision") != expected["precision"]:
        problems.append(f"hone ran precision {report.get('precision')!r}, asked {expected['precision']!r}")
    if str(report.get("device", "")).split(":")[0] != expected["device_type"]:
        problems.append(f"hone ran on {report.get('device')!r}, the peers on {expected['device_type']}")
    if "adamw" not in str(report.get("optimizer", "")).lower():
        problems.append(f"hone's optimizer is {report.get('optimizer')!r}, the peers' AdamW")
    for field in ("cuda_graphs", "checkpoint_activations", "channels_last"):
        if bool(report.get(field)) != (field == expected["variant_field"]):
            problems.append(f"hone reports {field}={report.get(field)} for this variant")
    return problems


def run_hone(hone: Path, model: str, variant: str, precision: str, args: argparse.Namespace) -> tuple[dict | None, str]:
    command = hone_command(hone, model, variant, precision, args)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"`{' '.join(command[1:4])} ... --precision {precision}` failed (exit {done.returncode}): " \
                     f"{first_line(done)}"
    return parse_hone_report(done.stdout)


def hone_by_batch(runs: list[dict]) -> dict[int, dict[str, Any]]:
    """Per batch: the median over hone's runs of step_ms and samples/s, and the last peak memory."""
    out: dict[int, dict[str, Any]] = {}
    for row in runs[0]["results"]:
        rows = [next(r for r in run["results"] if r["batch"] == row["batch"]) for run in runs]
        out[row["batch"]] = {"step_ms": median_of_runs([r["step_ms"] for r in rows]),
                             "samples_per_second": float(np.median([r["samples_per_second"] for r in rows])),
                             "peak_memory_bytes": rows[-1].get("peak_memory_bytes", -1)}
    return out


# --- one model ----------------------------------------------------------------------------------


def new_model_report(name: str, args: argparse.Namespace, hone: Path | None) -> dict[str, Any]:
    entry = zoo.ZOO[name]
    shape = [args.seq_len] if entry.input_kind == "token_ids" else list(entry.input_shape)
    report: dict[str, Any] = {"model": name, "parameters": zoo.count_parameters(zoo.build(name)),
                              "input": {"kind": entry.input_kind, "shape": shape}, "loss": loss_kind(name),
                              "hone": {}, "peers": {}}
    for peer in args.peers:
        reason = peer_skip_reason(PEERS[peer], args.torch_device)
        report["peers"][peer] = {"precision": PEERS[peer].precision, "status": "skipped" if reason else "ok",
                                 "error": reason or "", "batches": {b: {"runs": []} for b in args.batches}}
        if reason:
            log(f"[{name}] {peer}: skipped: {reason}")
    precisions = sorted({p["precision"] for p in report["peers"].values() if p["status"] == "ok"})
    for variant in args.hone_variants if hone is not None else []:
        skip = "CUDA only (this run is --device cpu)" if variant == "hone-graphs" and args.torch_device.type != "cuda" else ""
        report["hone"][variant] = {p: {"status": "skipped" if skip else "ok", "note": skip, "runs": []}
                                   for p in precisions}
    return report


def run_hone_variants(report: dict[str, Any], hone: Path, args: argparse.Namespace, tag: str) -> None:
    for variant, by_precision in report["hone"].items():
        for precision, state in by_precision.items():
            if state["status"] != "ok":
                continue
            result, why = run_hone(hone, report["model"], variant, precision, args)
            if result is None:
                state.update(status="failed", note=why)
                log(f"{tag} {variant} {precision}: {why}; no ratio")
                continue
            state["runs"].append(result)
            log(f"{tag} {variant} {precision}: p50 " + ", ".join(
                f"{r['step_ms']['p50']:.3f} ms (batch {r['batch']})" for r in result["results"]))


def measure(spec: PeerSpec, model_name: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """One peer's run at one batch size; its model, optimizer and graph are freed on return."""
    with tf32(spec.precision == "tf32"):
        step, prep = build_step(spec, model_name, batch, args)
        samples, peak = time_steps(step, args.warmup, args.iterations, args.torch_device)
    return summarize(samples) | prep | {"peak_memory_bytes": peak}


def run_peer(report: dict[str, Any], peer: str, batch: int, args: argparse.Namespace, tag: str) -> None:
    row = report["peers"][peer]["batches"][batch]
    try:
        row["runs"].append(measure(PEERS[peer], report["model"], batch, args))
        log(f"{tag} {peer} batch {batch}: p50 {row['runs'][-1]['p50']:.3f} ms"
            + "".join(f", {key} {value:.1f} s" for key, value in row["runs"][-1].items() if key.endswith("_s")))
    except Exception as error:  # noqa: BLE001  (one peer failing must not stop the others)
        row["error"] = f"{type(error).__name__}: {str(error).strip()}"[:4000]
        log(f"{tag} {peer} batch {batch}: FAILED: {row['error'].splitlines()[0][:300]}")
        if args.verbose:
            traceback.print_exc()
    gc.collect()
    if args.torch_device.type == "cuda":
        torch.cuda.empty_cache()


def bench_model(name: str, args: argparse.Namespace, hone: Path | None) -> dict[str, Any]:
    report = new_model_report(name, args, hone)
    for repeat in range(args.repeats):
        tag = f"[{name}] run {repeat + 1}/{args.repeats}"
        if hone is not None:
            run_hone_variants(report, hone, args, tag)
        for peer, state in report["peers"].items():
            for batch in args.batches if state["status"] == "ok" else []:
                run_peer(report, peer, batch, args, tag)
    finish_model(report, args.torch_device.type)
    return report


def finish_model(report: dict[str, Any], device_type: str) -> None:
    """Medians over runs for hone and the peers, and hone p50 / peer p50 at the same precision."""
    hone: dict[str, dict[str, dict[int, Any]]] = {}
    for variant, by_precision in report["hone"].items():
        hone[variant] = {}
        for precision, state in by_precision.items():
            if not state["runs"]:
                continue
            state["by_batch"] = hone_by_batch(state["runs"])
            expected = {"parameters": report["parameters"], "precision": precision, "device_type": device_type,
                        "variant_field": HONE_VARIANTS[variant][1]}
            problems = same_work_problems(state["runs"][0], expected)
            if problems:
                state["note"] = "; ".join(problems + ["no ratios"])
            else:
                hone[variant][precision] = state["by_batch"]
    for state in report["peers"].values():
        for batch, row in state["batches"].items():
            if not row["runs"]:
                continue
            row["step_ms"] = median_of_runs(row["runs"])
            row["samples_per_second"] = float(np.median([batch / (r["mean"] / 1e3) for r in row["runs"]]))
            row["peak_memory_bytes"] = row["runs"][-1]["peak_memory_bytes"]
            row["hone_over_peer"] = {
                variant: by_batch[batch]["step_ms"]["p50"] / row["step_ms"]["p50"]
                for variant, by_precision in hone.items()
                if (by_batch := by_precision.get(state["precision"])) and batch in by_batch}


# --- output -------------------------------------------------------------------------------------


def memory_text(peak: int | None) -> str:
    return f"{peak / 2**20:.0f}" if peak is not None and peak >= 0 else "-"


def model_table(report: dict[str, Any], variants: list[str]) -> list[str]:
    lines = [f"\n{report['model']}: input {report['input']['kind']} {report['input']['shape']}, loss "
             f"{report['loss']}, {report['parameters']:,} parameters (random weights and inputs: timing only)"]
    for variant, by_precision in report["hone"].items():
        lines += [f"  {variant} {precision}: {state['note']}" for precision, state in by_precision.items()
                  if state["note"]]
    lines += [f"  {peer}: {state['status']}: {state['error']}" for peer, state in report["peers"].items()
              if state["status"] != "ok"]
    lines.append(f"{'batch':>6}  {'step':<22}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'samples/s':>12}"
                 f"{'peak MiB':>10}{'prep s':>8}" + "".join(f"{v + '/peer':>18}" for v in variants))
    batches = sorted({b for state in report["peers"].values() for b in state["batches"]})
    for batch in batches:
        for variant, by_precision in report["hone"].items():
            for precision, state in by_precision.items():
                if batch in state.get("by_batch", {}):
                    lines.append(step_line(batch, f"{variant} {precision}", state["by_batch"][batch], {}, variants))
        for peer, state in report["peers"].items():
            row = state["batches"].get(batch, {})
            if "step_ms" in row:
                lines.append(step_line(batch, peer, row, row["hone_over_peer"], variants))
            elif "error" in row:
                lines.append(f"{batch:>6}  {peer:<22}FAILED: {row['error'].splitlines()[0][:100]}")
    return lines


def step_line(batch: int, name: str, row: dict[str, Any], ratios: dict[str, float], variants: list[str]) -> str:
    stats = row["step_ms"]
    prep = sum(value for key, value in row["runs"][0].items() if key.endswith("_s")) if "runs" in row else 0.0
    ratio_text = "".join(f"{ratios[v]:>18.2f}" if v in ratios else f"{'-':>18}" for v in variants)
    return (f"{batch:>6}  {name:<22}{stats['p50']:>10.3f}{stats['p90']:>10.3f}{stats['p99']:>10.3f}"
            f"{row['samples_per_second']:>12.1f}{memory_text(row.get('peak_memory_bytes')):>10}"
            f"{(f'{prep:.1f}' if prep else '-'):>8}" + ratio_text)


def format_report(machine: dict[str, Any], settings: dict[str, Any], models: list[dict[str, Any]]) -> str:
    lines = [f"date {machine['date']}  cpu {machine['cpu']}  gpu {machine['gpu'] or '-'}  torch {machine['torch']}"
             f"  threads {machine['torch_threads']}  load {machine['load_average']}",
             f"device {settings['device']}  batch {settings['batches']}  warmup {settings['warmup']}  iterations "
             f"{settings['iterations']}  repeats {settings['repeats']}  AdamW lr {LEARNING_RATE:g}"]
    for report in models:
        lines += model_table(report, settings["hone_variants"])
    lines.append("\nVARIANT/peer = that hone variant's p50 / the peer's p50 at the same precision: below 1 hone is "
                 "faster. prep s = first compiled step or CUDA graph capture (run 1). Medians over repeats.")
    return "\n".join(lines)


def machine_info(args: argparse.Namespace, hone: Path | None) -> dict[str, Any]:
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "gpu": torch.cuda.get_device_name(args.torch_device) if args.torch_device.type == "cuda" else None,
            "torch": torch.__version__, "torch_cuda": torch.version.cuda, "torch_threads": torch.get_num_threads(),
            "cpu_bf16": cpu_has_bf16(), "hone": str(hone) if hone else None}


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn", help=f"zoo models, comma-separated: {', '.join(zoo.ZOO)}")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch", default="128", help="batch sizes, comma-separated (default 128)")
    parser.add_argument("--seq-len", type=int, default=zoo.MINILM_SEQUENCE, help="tokens per sample for minilm")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per peer and batch (default 10)")
    parser.add_argument("--iterations", type=int, default=50, help="timed steps per peer and batch (default 50)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved runs of hone and the peers; medians")
    parser.add_argument("--peers", help=f"comma-separated: {', '.join(PEERS)} (default cpu: "
                                        f"{DEFAULT_PEERS['cpu']}; cuda: all)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads and hone --threads (0: each one's default)")
    parser.add_argument("--hone", default=str(DEFAULT_HONE), help="hone binary ('' to skip; default "
                                                                  "build/tools/hone/hone)")
    parser.add_argument("--hone-variants", default="hone", help=f"comma-separated: {', '.join(HONE_VARIANTS)}")
    parser.add_argument("--json", metavar="OUT", help=f"write every run, medians and ratios (schema {SCHEMA})")
    parser.add_argument("--verbose", action="store_true", help="full tracebacks of failing peers")
    args = parser.parse_args(argv)
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        parser.error(f"--device must be cpu, cuda or cuda:N, got '{args.device}'")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    args.torch_device = torch.device(args.device)
    try:
        args.models = parse_list(args.model, tuple(zoo.ZOO), "model")
        args.peers = parse_list(args.peers or DEFAULT_PEERS[args.torch_device.type], tuple(PEERS), "peer")
        args.hone_variants = parse_list(args.hone_variants, tuple(HONE_VARIANTS), "hone variant")
        args.batches = parse_batches(args.batch)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.warmup < 0 or args.iterations < 1 or args.repeats < 1 or args.threads < 0 or args.seq_len < 1:
        parser.error("need --warmup >= 0, --iterations >= 1, --repeats >= 1, --threads >= 0, --seq-len >= 1")
    args.batch = ",".join(str(b) for b in args.batches)
    return args


def locate_hone(path_text: str) -> Path | None:
    hone = find_hone(path_text)  # says why when the binary is missing
    if hone is None and path_text:
        log("(build hone, or pass --hone PATH; --hone '' times the peers only)")
    return hone


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # A fresh model per peer, batch and repeat: well above Dynamo's default recompile limit of 8.
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 1024
    hone = locate_hone(args.hone)
    machine = machine_info(args, hone)
    settings = {key: getattr(args, key) for key in ("device", "models", "batches", "seq_len", "warmup", "iterations",
                                                   "repeats", "threads", "peers", "hone_variants")}
    settings |= {"optimizer": f"AdamW lr {LEARNING_RATE:g}", "inputs": "random (timing only)"}
    models = [bench_model(name, args, hone) for name in args.models]
    print(format_report(machine, settings, models))
    if args.json:
        write_json(Path(args.json), {"schema": SCHEMA, "machine": machine, "settings": settings, "models": models})
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
