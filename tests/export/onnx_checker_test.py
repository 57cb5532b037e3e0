"""hone's hand-written ONNX serializer against the real thing: the models that onnx_write_sample
writes pass onnx.checker.check_model(full_check=True) (which runs strict shape inference), keep
their ir_version, opsets, symbolic dims, metadata and initializer bytes, and run in onnxruntime to
the same numbers as a numpy reference at two batch sizes. Then protobuf's own encoding of those
models (unpacked repeated fields) goes through hone's reader and writer back to hone's bytes, and
a model made with onnx.helper survives the same round trip unchanged.

Usage: python onnx_checker_test.py /path/to/onnx_write_sample   (run by ctest)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

FP32_TOLERANCE = 1e-5  # relative, by max |a - b| / max |b| (tests/support/tolerances.h's kFp32)


def sample_values(count, salt):
    """onnx_write_sample.cpp's sample_value(): exact in float32."""
    index = np.arange(count, dtype=np.int64)
    return (((index * 37 + salt * 11) % 101 - 50) / 64.0).astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def mlp_reference(x, weights):
    h = np.maximum(x @ weights["w1"].T + weights["b1"], 0)
    z = 0.5 * (h @ weights["w2"]) + weights["b2_half"].astype(np.float32)
    scaled = z * np.array([0.5, 1.0, -2.0], np.float32)
    chosen = np.where(weights["mask"], scaled, -scaled).reshape(-1, 3)[:, [2, 0, 1]]
    e = np.exp(chosen - chosen.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def quant_reference(x, weights):
    scale, zero = weights["x_scale"], weights["x_zero"].astype(np.float32)
    codes = np.clip(np.rint(x / scale) + zero, -128, 127).astype(np.int8)
    xq = (codes.astype(np.float32) - zero) * scale
    w = weights["w_codes"].astype(np.float32) * weights["w_scale"]
    return xq @ w, codes


def lstm_reference(x, weights, hidden=5):
    """ONNX LSTM, forward, gates in i, o, f, c order, no peepholes (clip 10 does not bind here)."""
    w, r, b = weights["W"][0], weights["R"][0], weights["B"][0]
    bias = b[: 4 * hidden] + b[4 * hidden :]
    batch = x.shape[1]
    h, c = np.zeros((batch, hidden), np.float64), np.zeros((batch, hidden), np.float64)
    ys = []
    for step in x.astype(np.float64):
        gates = np.clip(step @ w.T + h @ r.T + bias, -10, 10)
        i, o, f, g = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys)[:, None].astype(np.float32), h[None].astype(np.float32)


def relative_error(got, want):
    return float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


def dims_of(value):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value.type.tensor_type.shape.dim]


def check_model_file(path, failures):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    name = os.path.basename(path)
    if model.ir_version != 10 or [(o.domain, o.version) for o in model.opset_import] != [("", 21)]:
        failures.append(f"{name}: ir_version {model.ir_version}, opsets {model.opset_import}")
    if model.producer_name != "hone":
        failures.append(f"{name}: producer_name {model.producer_name!r}")
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    if metadata.get("hone.sample") != name.removesuffix(".onnx"):
        failures.append(f"{name}: metadata {metadata}")
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return model, weights


def run_session(path, feeds):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_mlp(directory, failures):
    path = os.path.join(directory, "mlp.onnx")
    model, weights = check_model_file(path, failures)
    for name, dims, salt in (("w1", (7, 5), 1), ("b1", (7,), 2), ("w2", (7, 3), 3)):
        want = sample_values(np.prod(dims), salt).reshape(dims)
        if weights[name].dtype != np.float32 or not np.array_equal(weights[name], want):
            failures.append(f"mlp.onnx: initializer {name} differs from sample_value()")
    expected = {
        "b2_half": np.array([0.5, -1.25, 2], np.float16),
        "mask": np.array([True, False, True]),
        "shape": np.array([-1, 3], np.int64),
        "columns": np.array([2, 0, 1], np.int32),
    }
    for name, want in expected.items():
        if weights[name].dtype != want.dtype or not np.array_equal(weights[name], want):
            failures.append(f"mlp.onnx: initializer {name} = {weights[name]!r}, expected {want!r}")
    if str(weights["scale_bf16"].dtype) != "bfloat16" and weights["scale_bf16"].dtype != np.uint16:
        failures.append(f"mlp.onnx: scale_bf16 has dtype {weights['scale_bf16'].dtype}")
    if dims_of(model.graph.input[0]) != ["batch", 5] or dims_of(model.graph.output[0]) != ["batch", 3]:
        failures.append(f"mlp.onnx: dims {dims_of(model.graph.input[0])} -> {dims_of(model.graph.output[0])}")
    if [n.op_type for n in model.graph.node].count("Gemm") != 2 or model.graph.node[-1].name != "softmax":
        failures.append(f"mlp.onnx: nodes {[n.op_type for n in model.graph.node]}")
    rng = np.random.default_rng(7)
    for batch in (1, 6):
        x = rng.standard_normal((batch, 5)).astype(np.float32)
        (got,) = run_session(path, {"x": x})
        error = relative_error(got, mlp_reference(x.astype(np.float64), weights))
        print(f"mlp.onnx batch {batch}: relative error {error:.2e}")
        if not error < FP32_TOLERANCE:
            failures.append(f"mlp.onnx batch {batch}: {error:.2e} >= {FP32_TOLERANCE}")


def check_quant(directory, failures):
    path = os.path.join(directory, "quant.onnx")
    model, weights = check_model_file(path, failures)
    axes = [a.i for n in model.graph.node for a in n.attribute if a.name == "axis"]
    if axes != [1, 1, 1, 0] or weights["w_codes"].dtype != np.int8 or weights["x_zero"].tolist() != [0, -3, 5, 127]:
        failures.append(f"quant.onnx: axes {axes}, w_codes {weights['w_codes'].dtype}, x_zero {weights['x_zero']}")
    rng = np.random.default_rng(8)
    for batch in (2, 9):
        x = (rng.standard_normal((batch, 4)) * 3).astype(np.float32)
        got, codes, u = run_session(path, {"x": x})
        want, want_codes = quant_reference(x, weights)
        want_u = (weights["u_codes"].astype(np.float32) - weights["u_zero"].astype(np.float32)) * weights["x_scale"]
        if weights["u_codes"].dtype != np.uint8 or not np.array_equal(u, want_u):
            failures.append(f"quant.onnx: uint8 DequantizeLinear gave {u}, expected {want_u}")
        if codes.dtype != np.int8 or not np.array_equal(codes, want_codes):
            failures.append(f"quant.onnx batch {batch}: int8 codes differ in {(codes != want_codes).sum()} places")
        error = relative_error(got, want.astype(np.float64))
        print(f"quant.onnx batch {batch}: codes exact, relative error {error:.2e}")
        if not error < FP32_TOLERANCE:
            failures.append(f"quant.onnx batch {batch}: {error:.2e} >= {FP32_TOLERANCE}")


def check_lstm(directory, failures):
    path = os.path.join(directory, "lstm.onnx")
    model, weights = check_model_file(path, failures)
    node = model.graph.node[0]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    want_attributes = {"hidden_size": 5, "direction": b"forward", "activations": [b"Sigmoid", b"Tanh", b"Tanh"],
                       "clip": 10.0, "input_forget": 0}
    if attributes != want_attributes or list(node.input) != ["X", "W", "R", "B", "", "", ""]:
        failures.append(f"lstm.onnx: attributes {attributes}, inputs {list(node.input)}")
    if dims_of(model.graph.output[0]) != ["seq", 1, "batch", 5]:
        failures.append(f"lstm.onnx: Y dims {dims_of(model.graph.output[0])}")
    rng = np.random.default_rng(9)
    for seq, batch in ((1, 1), (4, 3)):
        x = rng.standard_normal((seq, batch, 3)).astype(np.float32)
        y, y_h = run_session(path, {"X": x})
        want_y, want_h = lstm_reference(x, weights)
        error = max(relative_error(y, want_y.astype(np.float64)), relative_error(y_h, want_h.astype(np.float64)))
        print(f"lstm.onnx seq {seq} batch {batch}: relative error {error:.2e}")
        if y.shape != (seq, 1, batch, 5) or not error < FP32_TOLERANCE:
            failures.append(f"lstm.onnx seq {seq} batch {batch}: shape {y.shape}, error {error:.2e}")


def roundtrip(program, directory, data, name):
    source, target = os.path.join(directory, name + ".in"), os.path.join(directory, name + ".out")
    with open(source, "wb") as f:
        f.write(data)
    subprocess.run([program, "roundtrip", source, target], check=True)
    with open(target, "rb") as f:
        return f.read()


def helper_model():
    """A model written by onnx.helper / protobuf, inside the subset hone reads."""
    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5, "w")
    shift_bytes = np.array([1, -1, 0.5], np.float32).tobytes()
    shift = helper.make_tensor("shift", onnx.TensorProto.FLOAT, [3], shift_bytes, raw=True)
    nodes = [
        helper.make_node("Constant", [], ["c"], name="const", value=shift),
        helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
        helper.make_node("Add", ["m", "c"], ["a"], name="add"),
        helper.make_node("LeakyRelu", ["a"], ["l"], name="leaky", alpha=0.125),
        helper.make_node("ReduceSum", ["l", "axes"], ["y"], name="sum", keepdims=1),
    ]
    axes = numpy_helper.from_array(np.array([-1], np.int64), "axes")
    graph = helper.make_graph(nodes, "helper", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 1])], [weight, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="onnx.helper",
                              ir_version=10)
    helper.set_model_props(model, {"k": "v"})
    onnx.checker.check_model(model, full_check=True)
    return model


def check_roundtrips(program, directory, failures):
    for name in ("mlp", "quant", "lstm"):
        with open(os.path.join(directory, name + ".onnx"), "rb") as f:
            ours = f.read()
        protobufs = onnx.load_from_string(ours).SerializeToString()
        back = roundtrip(program, directory, protobufs, name)
        print(f"{name}.onnx: hone {len(ours)} bytes, protobuf {len(protobufs)} bytes, read back by hone: "
              f"{'identical' if back == ours else 'DIFFERENT'}")
        if back != ours:
            failures.append(f"{name}.onnx: protobuf's encoding read and rewritten by hone differs from hone's")
    model = helper_model()
    back = onnx.load_from_string(roundtrip(program, directory, model.SerializeToString(), "helper"))
    onnx.checker.check_model(back, full_check=True)
    if onnx.printer.to_text(back) != onnx.printer.to_text(model) or back.metadata_props != model.metadata_props:
        failures.append("onnx.helper model changed in hone's round trip:\n" + onnx.printer.to_text(back))
    x = np.array([[1, 2], [-3, 0.5]], np.float32)
    got = ort.InferenceSession(back.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    a = x @ (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5) + np.array([1, -1, 0.5], np.float32)
    want = np.where(a > 0, a, 0.125 * a).sum(axis=1, keepdims=True)
    if not relative_error(got, want.astype(np.float64)) < FP32_TOLERANCE:
        failures.append(f"onnx.helper model after round trip: {got} != {want}")
    print("onnx.helper model: unchanged by hone's round trip, runs")


def main() -> int:
    program = os.path.abspath(sys.argv[1])
    failures = []
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run([program, "write", directory], check=True)
        check_mlp(directory, failures)
        check_quant(directory, failures)
        check_lstm(directory, failures)
        check_roundtrips(program, directory, failures)
    for failure in failures:
        print("FAIL:", failure)
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
