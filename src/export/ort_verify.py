"""hone export's verifier: runs an exported ONNX model in onnxruntime on inputs hone wrote.

Compiled into the hone program as a string (src/CMakeLists.txt) and run with the project's venv
Python as: ort_verify.py MODEL INPUTS OUTPUTS REPORT CHUNK

INPUTS is a safetensors file whose tensors are named CASE/INPUT and whose metadata "cases" lists
the cases (a JSON list); each case is run in slices of at most CHUNK rows, and the outputs are
written to OUTPUTS as CASE/OUTPUT. REPORT (JSON) gets onnx's checker verdict and, for each graph
optimization level, the op types of onnxruntime's optimized graph (the fusion report). hone
compares the outputs with its own; nothing is judged here.
"""
import collections
import json
import os
import struct
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin : base + end], dtype=DTYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"])
    return tensors, metadata


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        raw = array.tobytes()
        header[name] = {"dtype": NAMES[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for raw in chunks:
            f.write(raw)


def op_types(model_path):
    counts = collections.Counter()
    for node in onnx.load(model_path).graph.node:
        counts[node.op_type if node.domain in ("", "ai.onnx") else node.domain + "." + node.op_type] += 1
    return dict(sorted(counts.items()))


def main():
    model_path, inputs_path, outputs_path, report_path, chunk = sys.argv[1:6]
    chunk = int(chunk)
    started = time.perf_counter()
    report = {"onnxruntime": ort.__version__, "onnx": onnx.__version__}
    try:
        onnx.checker.check_model(model_path, full_check=True)
        report["checker"] = "ok"
    except Exception as error:  # the checker's message is the finding
        report["checker"] = str(error)

    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    fusion = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, level in levels.items():
            options = ort.SessionOptions()
            options.graph_optimization_level = level
            options.optimized_model_filepath = os.path.join(scratch, name + ".onnx")
            ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
            fusion[name] = op_types(options.optimized_model_filepath)
    report["fusion"] = fusion

    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    output_names = [o.name for o in session.get_outputs()]
    tensors, metadata = read_safetensors(inputs_path)
    results = {}
    for case in json.loads(metadata["cases"]):
        feeds = {name: tensors[case + "/" + name] for name in input_names}
        rows = next(iter(feeds.values())).shape[0]
        parts = collections.defaultdict(list)
        for begin in range(0, rows, chunk):
            outputs = session.run(output_names, {k: v[begin : begin + chunk] for k, v in feeds.items()})
            for name, value in zip(output_names, outputs):
                parts[name].append(value)
        for name in output_names:
            results[case + "/" + name] = np.concatenate(parts[name], axis=0)
    write_safetensors(outputs_path, results)
    report["seconds"] = time.perf_counter() - started
    with open(report_path, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
