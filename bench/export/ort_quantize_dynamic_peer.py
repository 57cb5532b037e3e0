"""The peer of hone's int8 dynamic export: onnxruntime's own quantize_dynamic applied to hone's fp32
export of the same model, beside hone's int8 dynamic export (`hone compress --quant int8-dynamic`,
then `hone export`): file size, onnxruntime CPU latency (default session options: all
optimizations; median of timed runs after warm-up) at batch 1 and 64, and the task metric on the
real test split hone uses.

    hone export runs/mlp -o mlp.onnx
    hone compress runs/mlp --quant int8-dynamic -o runs/mlp-int8 && hone export runs/mlp-int8 -o mlp-int8.onnx
    python bench/export/ort_quantize_dynamic_peer.py --dataset digits mlp.onnx mlp-int8.onnx [--threads 2]
    python bench/export/ort_quantize_dynamic_peer.py --dataset goldsilver lstm.onnx lstm-int8.onnx
    python bench/export/ort_quantize_dynamic_peer.py --dataset fine-foods-text minilm.onnx minilm-int8.onnx

onnxruntime's quantize_dynamic runs twice: with its defaults (per-tensor int8 weights) and with
per_channel=True (what hone's int8 Linears hold), each after onnxruntime's quant_pre_process. It
turns MatMul/Gemm into DynamicQuantizeLinear + MatMulInteger (which onnxruntime fuses into
DynamicQuantizeMatMul / MatMulIntegerToFloat) and an LSTM into
com.microsoft.DynamicQuantizeLSTM; hone's export keeps ONNX's float LSTM op, fed its int8 weights
through DequantizeLinear (ONNX's LSTM has no int8 form).

The test splits are hone's, rebuilt here from the same files: digits (sklearn's digits.csv.gz,
shuffled by torch.randperm with hone's seed 20260101, the last 15 %; raw pixel values 0..16, which
the graphs take), goldsilver (the exported price table, hone's chronological 70/15/15 windows of
window + 1 raw prices, the window read from the graph's input; RMSE of the next-day gold price in
price units), fine-foods-text (the 1,000 test reviews, tokenized by the Hugging Face tokenizer of
all-MiniLM-L6-v2 at 128 tokens; the metric is the cosine of each model's embeddings with the fp32
export's: mean and lowest). HONE_DATA_DIR, HONE_SKLEARN_DATA_DIR and HONE_MINILM_DIR override the
folders as they do for hone.
"""
import argparse
import csv
import gzip
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

DATA = os.environ.get("HONE_DATA_DIR", os.path.expanduser("~/.cache/hone/data"))
SKLEARN = os.environ.get("HONE_SKLEARN_DATA_DIR", "/usr/lib/python3/dist-packages/sklearn/datasets/data")
MINILM = os.environ.get("HONE_MINILM_DIR", os.path.join(DATA, "all-MiniLM-L6-v2"))


def digits():
    """hone's digits test split: [N, 1, 8, 8] raw 0..16 pixels and labels (src/data/digits.cpp)."""
    import torch

    with gzip.open(os.path.join(SKLEARN, "digits.csv.gz"), "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    n = len(table)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(20260101)).numpy()
    table = table[order]
    n_train, n_val = n * 70 // 100, n * 15 // 100
    test = table[n_train + n_val :]
    return {"pixels": test[:, :64].astype(np.float32).reshape(-1, 1, 8, 8)}, test[:, 64].astype(np.int64)


def goldsilver(window):
    """hone's goldsilver test windows: [N, window + 1, 2] raw prices and the next day's gold price."""
    with open(os.path.join(DATA, "goldsilver.csv")) as f:
        rows = list(csv.DictReader(f))
    prices = np.array([[float(r["gold"]), float(r["silver"])] for r in rows])
    samples = len(prices) - 1 - window
    n_train, n_val = samples * 70 // 100, samples * 15 // 100
    starts = np.arange(n_train + n_val, samples)
    x = np.stack([prices[s : s + window + 1] for s in starts])
    return {"prices": x}, prices[starts + window + 1, 0]


def fine_foods_text(tokens=128):
    """The fine-food test reviews as all-MiniLM-L6-v2 token ids (padded to `tokens`) and their mask."""
    from transformers import BertTokenizerFast

    with open(os.path.join(DATA, "fine-foods", "test.tsv"), newline="") as f:
        lines = f.read().split("\n")
    assert lines[0] == "label\ttext", lines[0]
    texts = [line.split("\t", 1)[1] for line in lines[1:] if line]
    tokenizer = BertTokenizerFast(os.path.join(MINILM, "vocab.txt"), do_lower_case=True)
    encoded = tokenizer(texts, max_length=tokens, truncation=True, padding="max_length", return_tensors="np")
    return {"input_ids": encoded["input_ids"].astype(np.int64),
            "attention_mask": encoded["attention_mask"].astype(np.int64)}, None


def rows(inputs, begin, end):
    out = {k: v[begin:end] for k, v in inputs.items()}
    if "attention_mask" in out:  # a batch padded only to its longest row, as hone's encoder runs
        longest = int(out["attention_mask"].sum(1).max())
        out = {k: v[:, :longest] for k, v in out.items()}
    return out


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def latency_ms(sess, feed, iterations, warmup=5):
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def outputs(sess, inputs, batch=256):
    n = len(next(iter(inputs.values())))
    return np.concatenate([sess.run(None, rows(inputs, i, min(n, i + batch)))[0] for i in range(0, n, batch)])


def metric(dataset, y, truth, reference):
    if dataset == "digits":
        return f"{(y.argmax(1) == truth).mean() * 100:.2f} %"
    if dataset == "goldsilver":
        return f"RMSE {np.sqrt(((y.reshape(-1) - truth) ** 2).mean()):.4f}"
    cos = (y * reference).sum(1) / (np.linalg.norm(y, axis=1) * np.linalg.norm(reference, axis=1))
    return f"cosine mean {cos.mean():.6f}, lowest {cos.min():.6f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fp32", help="hone export of the float run")
    parser.add_argument("hone_int8", help="hone export of its `hone compress --quant int8-dynamic` run")
    parser.add_argument("--dataset", required=True, choices=["digits", "goldsilver", "fine-foods-text"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()

    if args.dataset == "digits":
        inputs, truth = digits()
    elif args.dataset == "goldsilver":
        window = session(args.fp32, 1).get_inputs()[0].shape[1] - 1
        inputs, truth = goldsilver(window)
    else:
        inputs, truth = fine_foods_text()
    n = len(next(iter(inputs.values())))

    args.fp32, args.hone_int8 = os.path.abspath(args.fp32), os.path.abspath(args.hone_int8)
    with tempfile.TemporaryDirectory() as tmp:
        # quant_pre_process leaves a model-sized .data file in the working directory when its
        # symbolic shape inference fails (MiniLM): let that be the temporary directory.
        os.chdir(tmp)
        prepared = os.path.join(tmp, "prepared.onnx")
        try:
            quant_pre_process(args.fp32, prepared)
        except Exception as error:  # MiniLM's dynamic sequence axis defeats its symbolic shape inference
            print(f"quant_pre_process: {error}; again with skip_symbolic_shape=True", file=sys.stderr)
            quant_pre_process(args.fp32, prepared, skip_symbolic_shape=True)
        models = [("hone fp32", args.fp32), ("hone int8 dynamic", args.hone_int8)]
        for per_channel in (False, True):
            peer = os.path.join(tmp, f"ort-quantize-dynamic-{per_channel}.onnx")
            quantize_dynamic(prepared, peer, weight_type=QuantType.QInt8, per_channel=per_channel)
            models.append((f"onnxruntime quantize_dynamic{' per-channel' if per_channel else ''}", peer))
        results, reference = [], None
        for name, path in models:
            sess = session(path, args.threads)
            y = outputs(sess, inputs)
            if reference is None:
                reference = y
            ops = sorted({node.op_type for node in onnx.load(path).graph.node} &
                         {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeLSTM", "MatMulIntegerToFloat",
                          "DynamicQuantizeMatMul", "LSTM"})
            results.append((name, os.path.getsize(path) / 1024, latency_ms(sess, rows(inputs, 0, 1), args.iterations),
                            latency_ms(sess, rows(inputs, 0, 64), args.iterations),
                            metric(args.dataset, y, truth, reference), ", ".join(ops)))
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, {args.dataset} test split ({n} samples)")
    print("| model | file KiB | batch 1 ms | batch 64 ms | metric | int8 / LSTM ops in the file |")
    print("|---|---|---|---|---|---|")
    for name, size, b1, b64, m, ops in results:
        print(f"| {name} | {size:.0f} | {b1:.3f} | {b64:.2f} | {m} | {ops} |")


if __name__ == "__main__":
    sys.exit(main())
