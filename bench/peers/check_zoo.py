#!/usr/bin/env python3
"""Checks that the peers in zoo.py are hone's models, so that run_peers.py compares like with like.

Always: every peer's parameter and buffer count against hone's (`hone bench NAME --json`, when the
binary is there) and against the counts recorded in zoo.ZOO; for minilm, against the real
all-MiniLM-L6-v2 model.safetensors (its tensors less BERT's unused pooler), name by name.

With --parity (needs the hone binary and its datasets): for each of hone's models, `hone train`
writes a throwaway run (1 step, 64 samples) only to get a valid run directory; its weights are
compared name by name with the peer's state_dict (parameters and buffers, shapes, dtypes), then
replaced by the peer's own random weights (every tensor non-trivial: heads and BatchNorm statistics
included); `hone eval --json` and the peer then compute the loss on the same 64 test samples, which
must agree to a relative 1e-6. Same weights, same inputs, same loss: same function.

Example:
  python bench/peers/check_zoo.py --parity
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HONE = REPO_ROOT / "build" / "tools" / "hone" / "hone"
# Same LibTorch, same fp32 kernels: hone and the peers agree bit for bit here (rel diff 0). tanh-GELU
# in place of exact GELU in the transformer moves its loss by 1.1e-5, so 1e-6 leaves a 10x margin.
PARITY_RTOL = 1e-6
DATASET_OF = {"lstm": "goldsilver", "attention": "goldsilver"}  # others: fashion-mnist
SAFETENSORS_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16}


# --- a minimal safetensors reader / writer (the GPU machine has no safetensors module) ----------------


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)), 8 + length


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    header, start = read_safetensors_header(path)
    data = Path(path).read_bytes()[start:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, header.get("__metadata__", {})


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    names = {np.float32: "F32", np.float64: "F64", np.int64: "I64", np.float16: "F16"}
    header: dict = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, tensor in tensors.items():
        array = tensor.detach().cpu().contiguous().numpy()  # (np.ascontiguousarray would make 0-d arrays 1-d)
        blob = array.tobytes()
        header[name] = {"dtype": names[array.dtype.type], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    temp = path.with_suffix(".tmp")
    temp.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(temp, path)


# --- counts -----------------------------------------------------------------------------------


def hone_counts(hone: Path | None, name: str) -> tuple[int, int] | str:
    if hone is None:
        return "no hone binary"
    done = subprocess.run([str(hone), "bench", name, "--batch", "1", "--warmup", "0", "--iterations", "1", "--json"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return (done.stderr.strip() or f"exit {done.returncode}").splitlines()[0]
    report = json.loads(done.stdout)
    return report["parameters"], report["buffer_elements"]


def minilm_dir() -> Path:
    if os.environ.get("HONE_MINILM_DIR"):
        return Path(os.environ["HONE_MINILM_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("HONE_DATA_DIR") or base / "hone" / "data") / "all-MiniLM-L6-v2"


def check_minilm_layout(model: torch.nn.Module) -> tuple[bool, str]:
    """The real checkpoint's tensors (less pooler and position_ids) map one-to-one onto MiniLM's."""
    path = minilm_dir() / "model.safetensors"
    if not path.is_file():
        return True, f"skipped: {path} not found (set HONE_MINILM_DIR)"
    header, _ = read_safetensors_header(path)
    entries = {k: v for k, v in header.items() if k != "__metadata__"}
    everything = sum(math.prod(v["shape"]) for v in entries.values())
    pooler = sum(math.prod(v["shape"]) for k, v in entries.items() if k.startswith("pooler."))
    position_ids = math.prod(entries["embeddings.position_ids"]["shape"]) if "embeddings.position_ids" in entries else 0
    mapped = {zoo.hf_bert_to_peer_name(k): tuple(v["shape"]) for k, v in entries.items()}
    mapped.pop(None, None)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ok = mapped == ours
    detail = (f"checkpoint {everything:,} elements = {everything - position_ids:,} parameters (BertModel) "
              f"+ {position_ids} position_ids; less pooler {pooler:,} = {everything - position_ids - pooler:,}; "
              f"names/shapes {'map one-to-one' if ok else 'DIFFER'}")
    if not ok:
        detail += f"; only in checkpoint: {sorted(set(mapped) - set(ours))[:5]}, only in peer: " \
                  f"{sorted(set(ours) - set(mapped))[:5]}"
    return ok and everything - position_ids - pooler == zoo.count_parameters(model), detail


def check_counts(hone: Path | None) -> bool:
    print(f"{'model':<12}{'peer params':>14}{'zoo.py':>14}{'hone':>14}{'peer buffers':>14}{'hone buffers':>14}  result")
    all_ok = True
    for name, entry in zoo.ZOO.items():
        model = zoo.build(name)
        params, buffers = zoo.count_parameters(model), zoo.count_buffer_elements(model)
        live = hone_counts(hone, name)
        ok = params == entry.hone_parameters and buffers == entry.hone_buffer_elements
        notes = []
        if isinstance(live, tuple):
            ok = ok and live == (params, buffers)
            hone_params, hone_buffers = f"{live[0]:,}", f"{live[1]:,}"
        else:
            hone_params = hone_buffers = "-"
            notes.append(f"hone: {live}")
        if name == "minilm":
            layout_ok, detail = check_minilm_layout(model)
            ok = ok and layout_ok
            notes.append(detail)
        all_ok = all_ok and ok
        print(f"{name:<12}{params:>14,}{entry.hone_parameters:>14,}{hone_params:>14}{buffers:>14,}{hone_buffers:>14}"
              f"  {'ok' if ok else 'MISMATCH'}" + "".join(f"\n{'':<14}{note}" for note in notes))
    return all_ok


# --- parity: same weights, same data, same loss ----------------------------------------------------


def fashion_mnist_test(limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """As src/data/fashion_mnist.cpp: /255, normalized by the first 54,000 training images."""
    root = Path(os.environ.get("HONE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))

    def idx(name: str) -> torch.Tensor:
        raw = gzip.decompress((root / name).read_bytes())
        dims = raw[3]
        shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
        return torch.from_numpy(np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape).copy())

    train = idx("train-images-idx3-ubyte.gz").float().div_(255.0).unsqueeze(1)
    n_train = train.shape[0] - train.shape[0] // 10
    mean, std = train[:n_train].mean().item(), train[:n_train].std().item()
    x = idx("t10k-images-idx3-ubyte.gz").float().div_(255.0).unsqueeze(1).sub_(mean).div_(std)
    y = idx("t10k-labels-idx1-ubyte.gz").long()
    return x[:limit], y[:limit]


def goldsilver_test(limit: int, window: int = zoo.GOLDSILVER_WINDOW) -> tuple[torch.Tensor, torch.Tensor]:
    """As make_forecasting_data in src/data/commodity.cpp (the test split's first `limit` windows)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(os.environ.get("HONE_DATA_DIR") or base / "hone" / "data") / "goldsilver.csv"
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    p = torch.from_numpy(np.stack([table["gold"], table["silver"]], 1).astype(np.float64))
    days = p.shape[0]
    samples = days - 1 - window
    returns = torch.log(p[1:] / p[:-1])
    n_train, n_val = samples * 70 // 100, samples * 15 // 100
    train_returns = returns[: n_train + window]
    feature_mean, feature_std = train_returns.mean(0), train_returns.std(0).clamp_min(1e-12)
    train_targets = returns[window: window + n_train, 0]
    target_mean, target_std = train_targets.mean().item(), max(train_targets.std().item(), 1e-12)
    normalized = (returns - feature_mean) / feature_std
    x = normalized.unfold(0, window, 1)[:samples].transpose(1, 2).contiguous().float()
    y = ((returns[window: window + samples, 0] - target_mean) / target_std).unsqueeze(1).float()
    start = n_train + n_val
    return x[start: start + limit], y[start: start + limit]


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every tensor non-trivial, so a layer hone computes differently cannot hide behind zeros or ones."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(noise.abs() * 0.5 + 0.5)
            elif tensor.dim() == 1:  # norm scales around 1; biases and running means around 0
                tensor.copy_(noise * 0.1 + (1.0 if name.endswith(".weight") else 0.0))
            else:
                fan_in = math.prod(tensor.shape[1:]) if tensor.dim() > 1 else tensor.numel()
                tensor.copy_(noise / math.sqrt(fan_in))


def check_parity(hone: Path, limit: int = 64) -> bool:
    all_ok = True
    print(f"\n{'model':<12}{'names':>8}{'hone loss':>16}{'peer loss':>16}{'rel diff':>11}  result")
    with tempfile.TemporaryDirectory(prefix="hone-peers-parity-") as tmp:
        for name in [n for n in zoo.ZOO if n != "minilm"]:
            dataset = DATASET_OF.get(name, "fashion-mnist")
            run = Path(tmp) / name
            train = subprocess.run([str(hone), "train", "--model", name, "--data", dataset, "--epochs", "1",
                                    "--max-steps", "1", "--limit", str(limit), "-o", str(run), "-q"],
                                   capture_output=True, text=True, check=False)
            if train.returncode != 0:
                print(f"{name:<12} hone train failed: {train.stderr.strip().splitlines()[-1:]}")
                all_ok = False
                continue
            hone_tensors, metadata = read_safetensors(run / "model.safetensors")
            model = zoo.build(name)
            ours = model.state_dict()
            same_layout = {k: (tuple(v.shape), v.dtype) for k, v in hone_tensors.items()} == {
                k: (tuple(v.shape), v.dtype) for k, v in ours.items()}
            randomize(model, seed=1)
            write_safetensors(run / "model.safetensors", dict(model.state_dict()), metadata)
            evaluation = subprocess.run([str(hone), "eval", str(run), "--json"], capture_output=True, text=True,
                                        check=False)
            if evaluation.returncode != 0:
                print(f"{name:<12} hone eval failed: {evaluation.stderr.strip()}")
                all_ok = False
                continue
            hone_loss = json.loads(evaluation.stdout)["metrics"]["loss"]
            x, y = goldsilver_test(limit) if dataset == "goldsilver" else fashion_mnist_test(limit)
            with torch.no_grad():
                out = model.eval()(x)
                peer_loss = (F.mse_loss(out, y) if dataset == "goldsilver" else F.cross_entropy(out, y)).item()
            rel = abs(hone_loss - peer_loss) / max(abs(hone_loss), 1e-12)
            ok = same_layout and rel <= PARITY_RTOL
            all_ok = all_ok and ok
            print(f"{name:<12}{'same' if same_layout else 'DIFFER':>8}{hone_loss:>16.8f}{peer_loss:>16.8f}{rel:>11.1e}"
                  f"  {'ok' if ok else 'MISMATCH'}")
    print(f"(loss on the first {limit} test samples, every tensor random, written into a hone run; "
          f"tolerance {PARITY_RTOL:g} relative)")
    return all_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("Example:")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hone", default=str(DEFAULT_HONE), help="hone binary (default build/tools/hone/hone)")
    parser.add_argument("--parity", action="store_true", help="also check outputs through `hone train`/`hone eval`")
    args = parser.parse_args()
    hone = Path(args.hone) if args.hone and Path(args.hone).is_file() else None
    if hone is None:
        print(f"hone binary not found at '{args.hone}': checking against zoo.py's recorded counts only")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    ok = check_counts(hone)
    if args.parity:
        if hone is None:
            print("--parity needs the hone binary")
            return 2
        ok = check_parity(hone) and ok
    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
