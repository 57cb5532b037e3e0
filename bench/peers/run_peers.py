#!/usr/bin/env python3
"""Times hone's zoo models in its peers (PyTorch eager, torch.compile, onnxruntime) the way
`hone bench` times them, on the same machine, batch sizes and dtype, and prints hone/peer ratios.

Method (as src/bench/model_bench.cpp): eval mode, no gradients; per batch size `--warmup` untimed
calls, a device synchronization, then `--iterations` timed calls, each one the wall time of the
forward plus torch.cuda.synchronize() on CUDA; p50/p90/p99 by numpy's linear percentile, mean,
sample standard deviation, samples/s = batch / mean. `--repeats R` runs everything (hone too) R
times, interleaved, and reports the median over runs of each statistic. Inputs and weights are
random: timing only. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402  (beside this file)

SCHEMA = "hone-peers/1"
PEERS = ("eager", "compile", "compile-max-autotune", "compile-max-autotune-no-cudagraphs", "onnxruntime")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Compiled or exported graphs reorder float math (and CUDA convs may use TF32): a few 1e-4 in fp32.
ERROR_VS_EAGER_WARN = {"fp32": 1e-3, "fp16": 2e-2, "bf16": 5e-2}
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HONE = REPO_ROOT / "build" / "tools" / "hone" / "hone"

EXAMPLES = """examples:
  # CPU, every zoo model, all peers, hone beside them (2 threads everywhere):
  python bench/peers/run_peers.py --model mlp,cnn,mobilenet,transformer,lstm,attention,minilm \\
      --device cpu --batch 1,8,64 --threads 2 --warmup 10 --iterations 50 --repeats 3 --json peers-cpu.json
  # GPU machine (onnx/onnxruntime are optional; the onnxruntime peer is CPU-only, skipped on cuda):
  /opt/torch/.venv/bin/python bench/peers/run_peers.py --model cnn,minilm --device cuda --dtype bf16 \\
      --batch 1,8,64,256 --peers eager,compile,compile-max-autotune --json peers-cuda.json
"""


class Skip(Exception):
    """A peer that cannot run in this setting (missing package, wrong device): said, not a failure."""


# --- statistics and timing (as src/bench/statistics.cpp and model_bench.cpp) ---------------------


def summarize(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99], method="linear")
    return {"count": int(a.size), "mean": float(a.mean()), "stddev": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def median_of_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each statistic's median over repeated runs (one run: the run itself)."""
    return {key: float(np.median([run[key] for run in runs])) for key in ("mean", "stddev", "min", "max", "p50",
                                                                         "p90", "p99")} | {"count": runs[0]["count"]}


def relative_error(output: Any, reference: torch.Tensor) -> float:
    """max |output - reference| / max |reference|: a peer that computes something else is no peer."""
    if isinstance(output, (list, tuple)):  # onnxruntime: a list of numpy arrays
        output = output[0]
    output = torch.as_tensor(output).float().cpu()
    return float((output - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


def make_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_calls(call: Callable[[], Any], warmup: int, iterations: int, device: torch.device) -> tuple[list[float], int]:
    """Warm-up calls, then one wall-time sample per call (synchronized); and CUDA peak memory (-1 on CPU)."""
    sync = make_sync(device)
    for _ in range(warmup):
        call()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        sync()
        samples.append((time.perf_counter() - start) * 1e3)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else -1
    return samples, peak


# --- the peers ----------------------------------------------------------------------------------


class EagerPeer:
    name = "eager"

    def __init__(self, model: torch.nn.Module, args: argparse.Namespace):
        self.model = model

    def prepare(self, batch: int, x: torch.Tensor) -> tuple[Callable[[], Any], dict[str, Any]]:
        return (lambda: self.model(x)), {}


class CompilePeer:
    """torch.compile(dynamic=False): one graph specialized per batch size, compiled by its first call
    (timed apart as compile_s: Dynamo + Inductor + that one run), then the usual warm-up."""

    def __init__(self, model: torch.nn.Module, args: argparse.Namespace, mode: str | None):
        self.name = "compile" if mode is None else f"compile-{mode}"
        self.device = torch.device(args.device)
        self.compiled = torch.compile(model, mode=mode, dynamic=False)
        self.compiled_batches: set[int] = set()

    def prepare(self, batch: int, x: torch.Tensor) -> tuple[Callable[[], Any], dict[str, Any]]:
        info: dict[str, Any] = {}
        if batch not in self.compiled_batches:
            graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
            start = time.perf_counter()
            self.compiled(x)
            make_sync(self.device)()
            info["compile_s"] = time.perf_counter() - start
            # 0: Dynamo captured nothing and the model runs eager (nn.LSTM without --compile-allow-rnn).
            info["graphs"] = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before
            self.compiled_batches.add(batch)
        return (lambda: self.compiled(x)), info


class OnnxRuntimePeer:
    """torch.onnx.export (dynamo=True, falling back to the TorchScript exporter) with the batch fixed,
    one InferenceSession per batch size on the CPU execution provider, all graph optimizations."""

    name = "onnxruntime"

    def __init__(self, model: torch.nn.Module, args: argparse.Namespace):
        if args.device != "cpu":
            raise Skip("onnxruntime peer runs on the CPU only (this run is --device cuda)")
        if args.dtype != "fp32":
            raise Skip(f"onnxruntime peer is fp32 only (its CPU provider lacks most {args.dtype} kernels)")
        try:
            import onnxruntime  # noqa: PLC0415  (lazy: the GPU machine has no onnxruntime)
        except ImportError as error:
            raise Skip(f"onnxruntime is not installed in this Python ({sys.executable}): {error}") from None
        for package in ("onnx", "onnxscript"):
            try:
                __import__(package)
            except ImportError:
                pass  # the TorchScript exporter may still work without onnxscript; export says if not
        self.ort = onnxruntime
        self.model = model
        self.threads = args.threads
        self.sessions: dict[int, Callable[[], Any]] = {}
        self.workdir = tempfile.TemporaryDirectory(prefix="hone-peers-onnx-")

    def _export(self, x: torch.Tensor, path: Path) -> dict[str, Any]:
        info: dict[str, Any] = {}
        captured = io.StringIO()
        # The dynamo exporter logs a warning per missing torchvision op: noise for these models.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                torch.onnx.export(self.model, (x,), str(path), dynamo=True, external_data=False,
                                  input_names=["input"], output_names=["output"])
            info["exporter"] = "dynamo"
        except Exception as error:  # noqa: BLE001  (any exporter failure: try the other one)
            info["dynamo_error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
            with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
                torch.onnx.export(self.model, (x,), str(path), dynamo=False, input_names=["input"],
                                  output_names=["output"], opset_version=17)
            info["exporter"] = "torchscript"
        info["export_s"] = time.perf_counter() - start
        return info

    def prepare(self, batch: int, x: torch.Tensor) -> tuple[Callable[[], Any], dict[str, Any]]:
        info: dict[str, Any] = {}
        if batch not in self.sessions:
            path = Path(self.workdir.name) / f"model-b{batch}.onnx"
            info = self._export(x, path)
            options = self.ort.SessionOptions()
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            if self.threads:
                options.intra_op_num_threads = self.threads
            start = time.perf_counter()
            session = self.ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            info["session_s"] = time.perf_counter() - start
            feeds = {session.get_inputs()[0].name: x.cpu().numpy()}
            self.sessions[batch] = lambda: session.run(None, feeds)
        return self.sessions[batch], info


def make_peer(name: str, model: torch.nn.Module, args: argparse.Namespace):
    if name == "eager":
        return EagerPeer(model, args)
    if name == "compile":
        return CompilePeer(model, args, None)
    if name.startswith("compile-"):  # the mode's name follows: max-autotune (with CUDA graphs on CUDA), ...
        return CompilePeer(model, args, name.removeprefix("compile-"))
    return OnnxRuntimePeer(model, args)


# --- hone itself --------------------------------------------------------------------------------


def run_hone(hone: Path, model: str, args: argparse.Namespace) -> tuple[dict | None, str]:
    """One `hone bench ... --json` run: (its report, a note) or (None, why there is none)."""
    command = [str(hone), "bench", model, "--device", args.device, "--batch", args.batch, "--warmup",
               str(args.warmup), "--iterations", str(args.iterations), "--dtype", args.dtype, "--json"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    command += shlex.split(args.hone_args)
    note = ""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 and "--dtype" in done.stderr:
        if args.dtype != "fp32":
            return None, f"hone has no --dtype flag yet, so it cannot time {args.dtype} ({first_line(done)})"
        # hone without --dtype times fp32 only, so the comparison stands without the flag.
        command = [part for i, part in enumerate(command) if part != "--dtype" and command[i - 1] != "--dtype"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        note = "hone has no --dtype flag yet; ran without it (fp32, its only dtype)"
    if done.returncode != 0:
        return None, f"`hone {' '.join(command[1:3])}` failed (exit {done.returncode}): {first_line(done)}"
    try:
        return json.loads(done.stdout), note
    except json.JSONDecodeError as error:
        return None, f"hone printed no JSON ({error}); stdout began {done.stdout[:200]!r}"


def first_line(done: subprocess.CompletedProcess) -> str:
    text = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
    return text.splitlines()[0]


def hone_by_batch(runs: list[dict]) -> dict[int, dict[str, Any]]:
    """Per batch: the median over hone's runs of its latency statistics and samples/s."""
    out: dict[int, dict[str, Any]] = {}
    for row in runs[0]["results"]:
        batch = row["batch"]
        rows = [next(r for r in run["results"] if r["batch"] == batch) for run in runs]
        out[batch] = {"latency_ms": median_of_runs([r["latency_ms"] for r in rows]),
                      "samples_per_second": float(np.median([r["samples_per_second"] for r in rows])),
                      "peak_memory_bytes": rows[-1]["peak_memory_bytes"],
                      "runs": [r["latency_ms"] for r in rows]}
    return out


# --- the machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(args: argparse.Namespace, hone: Path | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "os": platform.platform(), "python": platform.python_version(),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__, "torch_cuda": torch.version.cuda, "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "gpu": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None,
    }
    if "onnxruntime" in args.peers:
        try:
            import onnxruntime  # noqa: PLC0415

            info["onnxruntime"] = onnxruntime.__version__
        except ImportError:
            info["onnxruntime"] = None
    if hone is not None:
        done = subprocess.run([str(hone), "--version"], capture_output=True, text=True, check=False)
        info["hone"] = {"path": str(hone), "version": done.stdout.strip() or done.stderr.strip()}
    return info


# --- one model ----------------------------------------------------------------------------------


def bench_model(name: str, args: argparse.Namespace, hone: Path | None, batches: list[int]) -> dict[str, Any]:
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    model = zoo.build(name)
    entry = zoo.ZOO[name]
    report: dict[str, Any] = {
        "model": name, "input": {"shape": list(entry.input_shape), "kind": entry.input_kind},
        "parameters": zoo.count_parameters(model), "buffer_elements": zoo.count_buffer_elements(model),
        "expected_hone_parameters": entry.hone_parameters, "hone": {"note": "", "runs": []}, "peers": {},
    }
    model = model.to(device=device, dtype=dtype)
    inputs = {b: zoo.make_input(name, b, device, dtype) for b in batches}
    grad_mode = torch.inference_mode if args.grad_mode == "inference_mode" else torch.no_grad

    references: dict[int, torch.Tensor] = {}
    if any(p != "eager" for p in args.peers):  # each other peer's first output is checked against eager
        with grad_mode():
            references = {b: model(x).float().cpu() for b, x in inputs.items()}

    peers: dict[str, Any] = {}
    for peer_name in args.peers:
        state: dict[str, Any] = {"status": "ok", "error": "", "batches": {b: {"runs": []} for b in batches}}
        report["peers"][peer_name] = state
        try:
            peers[peer_name] = make_peer(peer_name, model, args)
        except Skip as why:
            state.update(status="skipped", error=str(why))
            log(f"[{name}] {peer_name}: skipped: {why}")

    for repeat in range(args.repeats):
        tag = f"[{name}] run {repeat + 1}/{args.repeats}"
        if hone is not None and (repeat == 0 or report["hone"]["runs"]):
            result, note = run_hone(hone, name, args)
            report["hone"]["note"] = note
            if result is None:
                log(f"{tag} hone: {note}; no hone/peer ratio")
            else:
                report["hone"]["runs"].append(result)
                log(f"{tag} hone: done" + (f" ({note})" if note else ""))
        for peer_name, peer in peers.items():
            state = report["peers"][peer_name]
            if state["status"] != "ok":
                continue
            for batch in batches:
                try:
                    with grad_mode():
                        call, info = peer.prepare(batch, inputs[batch])
                        if repeat == 0 and batch in references and peer_name != "eager":
                            info["error_vs_eager"] = relative_error(call(), references[batch])
                        samples, peak = time_calls(call, args.warmup, args.iterations, device)
                except Exception as error:  # noqa: BLE001  (one peer failing must not stop the others)
                    message = f"{type(error).__name__}: {str(error).strip()}"
                    state.update(status="failed", error=message[:4000])
                    log(f"{tag} {peer_name} batch {batch}: FAILED: {message.splitlines()[0][:300]}")
                    if args.verbose:
                        traceback.print_exc()
                    break
                row = state["batches"][batch]
                row.update(info)
                row["runs"].append(summarize(samples))
                row["peak_memory_bytes"] = peak
                log(f"{tag} {peer_name} batch {batch}: p50 {row['runs'][-1]['p50']:.3f} ms"
                    + "".join(f", {k} {v:.1f} s" for k, v in info.items() if k.endswith("_s"))
                    + (f", {info['graphs']} graph(s)" if "graphs" in info else ""))
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()

    finish_model(report, batches, args.dtype)
    if any(p.startswith("compile") for p in peers):
        torch._dynamo.reset()  # frees the compiled graphs of this model before the next one
    for peer in peers.values():
        if isinstance(peer, OnnxRuntimePeer):
            peer.workdir.cleanup()
    return report


def finish_model(report: dict[str, Any], batches: list[int], dtype_name: str) -> None:
    """Medians over runs, hone's numbers beside each peer's, and the parameter check."""
    hone_runs = report["hone"]["runs"]
    hone = hone_by_batch(hone_runs) if hone_runs else {}
    report["hone"]["by_batch"] = hone
    if hone_runs:
        first = hone_runs[0]
        report["hone"]["parameters"] = first["parameters"]
        report["hone"]["threads"] = first["threads"]
        report["parameters_match"] = first["parameters"] == report["parameters"]
        # A ratio only means something for the same work: the same input shape and dtype.
        problems = []
        report["input_shape_match"] = first["input"]["shape"] == report["input"]["shape"]
        if not report["input_shape_match"]:
            problems.append(f"hone's input shape {first['input']['shape']} is not the peers' {report['input']['shape']}")
        if first.get("dtype", "fp32") != dtype_name:
            problems.append(f"hone ran {first.get('dtype', 'fp32')}, the peers {dtype_name}")
        if first.get("amp"):
            problems.append("hone autocast matmuls/convolutions to bf16 (--amp), the peers did not")
        if not report["parameters_match"]:
            problems.append(f"hone has {first['parameters']:,} parameters, the peer {report['parameters']:,}")
        if problems:
            problems.append("no hone/peer ratios")
            report["hone"]["note"] = "; ".join(problems + ([report["hone"]["note"]] if report["hone"]["note"] else []))
            hone = {}
        report["same_work"] = not problems
    else:
        report["parameters_match"] = report["parameters"] == report["expected_hone_parameters"]
        report["same_work"] = report["parameters_match"]
    for state in report["peers"].values():
        for batch in batches:
            row = state["batches"][batch]
            if not row["runs"]:
                continue
            row["latency_ms"] = median_of_runs(row["runs"])
            row["samples_per_second"] = float(np.median([batch / (r["mean"] / 1e3) for r in row["runs"]]))
            if batch in hone:
                row["hone_p50_ms"] = hone[batch]["latency_ms"]["p50"]
                row["hone_over_peer"] = row["hone_p50_ms"] / row["latency_ms"]["p50"]


# --- output -------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_report(machine: dict[str, Any], settings: dict[str, Any], models: list[dict[str, Any]]) -> None:
    print(f"date {machine['date']}  host {machine['host']}  load {machine['load_average']}")
    print(f"cpu  {machine['cpu']} ({machine['cpu_count']} logical)  gpu {machine['gpu'] or '-'}")
    versions = f"torch {machine['torch']} (CUDA {machine['torch_cuda']})  numpy {machine['numpy']}"
    if "onnxruntime" in machine:
        versions += f"  onnxruntime {machine['onnxruntime'] or 'not installed'}"
    if "hone" in machine:
        versions += f"  hone {machine['hone']['version']}"
    print(versions)
    print(f"device {settings['device']}  dtype {settings['dtype']}  torch threads {machine['torch_threads']}  "
          f"warmup {settings['warmup']}  iterations {settings['iterations']}  repeats {settings['repeats']}  "
          f"grad mode {settings['grad_mode']}  (random weights and inputs: timing only)")
    header = (f"{'model':<12}{'batch':>6}  {'peer':<35}{'p50 ms':>10}{'p90 ms':>10}{'samples/s':>12}"
              f"{'hone p50':>10}{'hone/peer':>10}{'prep s':>8}")
    for report in models:
        hone = report["hone"]
        hone_params = hone.get("parameters", "-")
        check = "ok" if report["parameters_match"] else "MISMATCH"
        print(f"\n{report['model']}: input {report['input']['kind']} {report['input']['shape']}; parameters peer "
              f"{report['parameters']:,}, hone {hone_params if isinstance(hone_params, str) else f'{hone_params:,}'}"
              f" (expected {report['expected_hone_parameters']:,}): {check}"
              + (f"; hone threads {hone['threads']}" if "threads" in hone else ""))
        if hone["note"]:
            print(f"  hone: {hone['note']}")
        print(header)
        for batch in sorted({b for s in report["peers"].values() for b in s["batches"]} | set(hone["by_batch"])):
            if batch in hone["by_batch"]:
                h = hone["by_batch"][batch]
                print(f"{report['model']:<12}{batch:>6}  {'hone':<35}{h['latency_ms']['p50']:>10.3f}"
                      f"{h['latency_ms']['p90']:>10.3f}{h['samples_per_second']:>12.1f}{'':>10}{'':>10}{'':>8}")
            for peer_name, state in report["peers"].items():
                row = state["batches"].get(batch, {})
                if "latency_ms" not in row:
                    continue
                prep = sum(v for k, v in row.items() if k.endswith("_s"))
                hone_p50 = f"{row['hone_p50_ms']:.3f}" if "hone_p50_ms" in row else "-"
                ratio = f"{row['hone_over_peer']:.2f}" if "hone_over_peer" in row else "-"
                print(f"{report['model']:<12}{batch:>6}  {peer_name:<35}{row['latency_ms']['p50']:>10.3f}"
                      f"{row['latency_ms']['p90']:>10.3f}{row['samples_per_second']:>12.1f}{hone_p50:>10}"
                      f"{ratio:>10}{(f'{prep:.1f}' if prep else '-'):>8}")
        for peer_name, state in report["peers"].items():
            exporters = {row.get("exporter") for row in state["batches"].values()} - {None}
            if exporters:
                print(f"  {peer_name}: exported with {', '.join(sorted(exporters))}")
            worst = max((row["error_vs_eager"] for row in state["batches"].values() if "error_vs_eager" in row),
                        default=None)
            if worst is not None and worst > ERROR_VS_EAGER_WARN[settings["dtype"]]:
                print(f"  {peer_name}: WARNING: output differs from eager by {worst:.1e} (relative to its largest "
                      f"value; above {ERROR_VS_EAGER_WARN[settings['dtype']]:g})")
            if any(row.get("graphs") == 0 for row in state["batches"].values()):
                print(f"  {peer_name}: Dynamo captured no graph, so this row is eager plus Dynamo's overhead"
                      + ("" if settings["compile_allow_rnn"] else " (nn.LSTM: try --compile-allow-rnn)"))
            dynamo_errors = {row["dynamo_error"] for row in state["batches"].values() if "dynamo_error" in row}
            for error in dynamo_errors:
                print(f"  {peer_name}: dynamo export failed, fell back to TorchScript: {error}")
            if state["status"] != "ok":
                print(f"  {peer_name}: {state['status']}: {state['error'].splitlines()[0][:300]}")
    print("\nhone/peer = hone p50 / peer p50: above 1 hone is slower, below 1 hone is faster. "
          "prep s = compile (first call) or ONNX export + session time.")


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Atomically: a temp file beside the target, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name + ".", suffix=".tmp", delete=False) as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    os.replace(f.name, path)


# --- command line -------------------------------------------------------------------------------


def parse_list(text: str, allowed: tuple[str, ...] | None, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty {what} list")
    if allowed is not None:
        bad = [item for item in items if item not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad)}; valid: {', '.join(allowed)}")
    return items


def parse_batches(text: str) -> list[int]:
    try:
        batches = [int(item) for item in text.split(",")]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise argparse.ArgumentTypeError(f"bad batch list '{text}': expected positive integers, e.g. 1,8,64")
    return batches


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn", help=f"zoo models, comma-separated: {', '.join(zoo.ZOO)}")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch", default="1,8,64", help="batch sizes, comma-separated")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES), help="weights and float inputs")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls per batch size (default 10)")
    parser.add_argument("--iterations", type=int, default=50, help="timed calls per batch size (default 50)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the whole measurement R times (interleaved with hone), report medians")
    parser.add_argument("--peers", default="eager,compile,onnxruntime", help=f"comma-separated: {', '.join(PEERS)}")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads: torch.set_num_threads, ORT intra-op threads, hone --threads "
                             "(0: each one's default)")
    parser.add_argument("--hone", default=str(DEFAULT_HONE),
                        help="hone binary to time beside the peers ('' to skip; default build/tools/hone/hone)")
    parser.add_argument("--hone-args", default="",
                        help="more flags for `hone bench`, written with '=': --hone-args=--cuda-graphs (to set "
                             "beside compile-max-autotune, which uses CUDA graphs on CUDA)")
    parser.add_argument("--grad-mode", default="no_grad", choices=["no_grad", "inference_mode"],
                        help="no_grad matches hone's NoGradGuard (default)")
    parser.add_argument("--compile-allow-rnn", action="store_true",
                        help="let Dynamo trace nn.LSTM (torch._dynamo.config.allow_rnn); without it torch.compile "
                             "leaves lstm/attention eager")
    parser.add_argument("--json", metavar="OUT", help="write every result (schema hone-peers/1) to OUT")
    parser.add_argument("--verbose", action="store_true", help="print full tracebacks of failing peers")
    args = parser.parse_args(argv)
    try:
        args.models = parse_list(args.model, tuple(zoo.ZOO), "model")
        args.peers = parse_list(args.peers, PEERS, "peer")
        args.batches = parse_batches(args.batch)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.warmup < 0 or args.iterations < 1 or args.repeats < 1 or args.threads < 0:
        parser.error("need --warmup >= 0, --iterations >= 1, --repeats >= 1, --threads >= 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        parser.error(f"--device must be cpu, cuda or cuda:N, got '{args.device}'")
    args.batch = ",".join(str(b) for b in args.batches)
    return args


def find_hone(path_text: str) -> Path | None:
    if not path_text:
        return None
    path = Path(path_text)
    if not path.is_file():
        found = shutil.which(path_text)
        if found is None:
            log(f"hone binary not found at {path_text}: timing the peers only, no hone/peer ratios")
            return None
        path = Path(found)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if any(p.startswith("compile") for p in args.peers):
        # One specialized graph per (model, batch, mode): well above Dynamo's default limit of 8.
        torch._dynamo.config.recompile_limit = 64
        torch._dynamo.config.accumulated_recompile_limit = 1024
        torch._dynamo.config.allow_rnn = args.compile_allow_rnn
    hone = find_hone(args.hone)
    machine = machine_info(args, hone)
    settings = {key: getattr(args, key) for key in ("device", "dtype", "warmup", "iterations", "repeats", "threads",
                                                   "grad_mode", "compile_allow_rnn", "hone_args", "peers", "models", "batches")}
    models = [bench_model(name, args, hone, args.batches) for name in args.models]
    print_report(machine, settings, models)
    if args.json:
        write_json(Path(args.json), {"schema": SCHEMA, "machine": machine, "settings": settings, "models": models})
        log(f"wrote {args.json}")
    # A peer that is not hone's model is a bug (exit 1); a setting that differs (--amp) only drops the ratios.
    mismatched = [m["model"] for m in models if not (m["parameters_match"] and m.get("input_shape_match", True))]
    if mismatched:
        log(f"the peers do not match hone's parameter count or input shape for: {', '.join(mismatched)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
