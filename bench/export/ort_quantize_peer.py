"""The peer of hone's int8 QDQ export: onnxruntime's own quantize_static applied to hone's fp32
export of the same CNN, calibrated on Fashion-MNIST training images, beside hone's QDQ file:
file size, onnxruntime CPU latency (default session options: all optimizations) (median of timed runs after warm-up) and test accuracy.

    hone export runs/cnn -o cnn.onnx
    hone compress runs/cnn --fuse --quant int8-static -o runs/cnn-int8 && hone export runs/cnn-int8 -o cnn-int8.onnx
    python bench/export/ort_quantize_peer.py cnn.onnx cnn-int8.onnx [--calibration 512] [--threads 2]

Reads the Debian dataset-fashion-mnist files (HONE_FASHION_MNIST_DIR overrides the folder). The
exported graphs take pixel values in [0, 1] (their normalization is inside), so the calibration and
test inputs here are the raw images / 255.
"""
import argparse
import gzip
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

DATA = os.environ.get("HONE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


class Reader(CalibrationDataReader):
    def __init__(self, images, batch=32):
        self.batches = iter([{"pixels": images[i : i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def latency_ms(sess, x, iterations=30, warmup=5):
    for _ in range(warmup):
        sess.run(None, {"pixels": x})
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        sess.run(None, {"pixels": x})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def accuracy(sess, images, labels):
    correct = 0
    for i in range(0, len(images), 256):
        (logits,) = sess.run(None, {"pixels": images[i : i + 256]})
        correct += int((logits.argmax(1) == labels[i : i + 256]).sum())
    return correct / len(images)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("fp32")
    parser.add_argument("hone_int8")
    parser.add_argument("--calibration", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    train = (idx("train-images-idx3-ubyte.gz")[: args.calibration].astype(np.float32) / 255)[:, None]
    test = (idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255)[:, None]
    labels = idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        # onnxruntime's recommended pre-processing first (shape inference, its basic optimizations:
        # batch norms folded into the convs), so the peer quantizes the same folded graph hone does.
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(args.fp32, prepared)
        peer = os.path.join(tmp, "ort-quantize-static.onnx")
        quantize_static(prepared, peer, Reader(train), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        rows = []
        for name, path in (("hone fp32", args.fp32), ("hone int8 QDQ", args.hone_int8), ("onnxruntime quantize_static", peer)):
            sess = session(path, args.threads)
            rows.append((name, os.path.getsize(path) / 1024, latency_ms(sess, test[:1]), latency_ms(sess, test[:64]),
                         accuracy(sess, test, labels)))
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, calibration {args.calibration} training images")
    print("| model | file KiB | batch 1 ms | batch 64 ms | test accuracy |")
    print("|---|---|---|---|---|")
    for name, size, b1, b64, acc in rows:
        print(f"| {name} | {size:.0f} | {b1:.3f} | {b64:.2f} | {acc * 100:.2f} % |")


if __name__ == "__main__":
    main()
