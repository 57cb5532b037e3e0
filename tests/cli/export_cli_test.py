"""`hone export` end to end: train tiny runs on real data, export them, and check what the command
reports (onnxruntime beside hone at batch 1, 7, 256 and on the whole test split, the metric, the
fusion report), what it writes (onnx's checker, metadata, a dynamic batch axis) and how it fails
(usage errors exit 2, nothing written); int8 dynamic runs (Linear and LSTM) export too; at opset 23
MiniLM's attention is ONNX's Attention op. A layer
with no lowering is tested in tests/export/model_export_test.cpp (every zoo layer kind lowers).

Usage: export_cli_test.py HONE_EXECUTABLE
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HONE = sys.argv[1]


def cpu_has_vnni():
    """onnxruntime's u8s8 MatMulInteger saturates in int16 on x86 CPUs without VNNI (AVX2's
    vpmaddubsw): there its int8-dynamic outputs leave the tolerance, and hone export refuses them."""
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        return True
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8")) or "avx2" not in flags


def hone(*args, expect=0):
    result = subprocess.run([HONE, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == expect, (
        f"hone {' '.join(map(str, args))}: exit {result.returncode}, expected {expect}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def check_report(report, metric, tolerance):
    assert report["verified"] and report["passed"] and report["written"], report
    cases = {c["case"] for c in report["checks"]}
    assert {"batch 1", "batch 7"} <= cases, cases
    assert any(c.startswith("test split") for c in cases), cases
    for check in report["checks"]:
        assert check["max_rel_error"] <= tolerance, check
    assert report["metric"] == metric, report["metric"]
    assert set(report["fusion"]) == {"basic", "extended", "all"}, report["fusion"].keys()


def main():
    with tempfile.TemporaryDirectory(prefix="hone-export-cli") as tmp:
        run = os.path.join(tmp, "mlp")
        hone("train", "-m", "mlp", "-d", "digits", "--model-config", '{"hidden":[32]}', "--epochs", "15", "--lr", "0.01", "-o", run, "-q")

        # fp32, JSON: every case within 1e-5, the same accuracy from onnxruntime as from hone.
        out = os.path.join(tmp, "mlp.onnx")
        report = json.loads(hone("export", run, "-o", out, "--json").stdout)
        check_report(report, "accuracy", 1e-5)
        assert report["metric_hone"] > 0.5, report["metric_hone"]  # trained, so the metric means something
        assert abs(report["metric_hone"] - report["metric_onnxruntime"]) <= 1e-4, report
        assert "Gemm" in report["fusion"]["basic"], report["fusion"]["basic"]
        assert "batch 256" in {c["case"] for c in report["checks"]}

        onnx.checker.check_model(out, full_check=True)
        model = onnx.load(out)
        meta = {p.key: p.value for p in model.metadata_props}
        for key in ("hone.version", "hone.source", "hone.inputs", "hone.outputs", "hone.labels", "hone.verification"):
            assert key in meta, (key, sorted(meta))
        assert len(json.loads(meta["hone.labels"])) == 10
        assert json.loads(meta["hone.verification"])["metric"] == "accuracy"
        # The loader's scaling (digits: x / 16) is inside: the graph takes raw 0..16 values.
        assert "scale" in json.loads(meta["hone.normalization"])
        session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        (pixels,) = session.get_inputs()
        assert pixels.name == "pixels" and pixels.shape == ["batch", 1, 8, 8], (pixels.name, pixels.shape)
        raw = np.random.default_rng(0).integers(0, 17, (5, 1, 8, 8)).astype(np.float32)  # digits' raw 0..16
        (logits,) = session.run(None, {"pixels": raw})
        assert logits.shape == (5, 10), logits.shape  # a dynamic batch axis

        # The text report says what it compared and what onnxruntime made of the graph.
        text = hone("export", run, "-o", os.path.join(tmp, "mlp-text.onnx")).stdout
        for phrase in ("onnxruntime vs hone", "digits test split", "accuracy", "fusion report", "verified"):
            assert phrase in text, (phrase, text)

        # fp16: Casts at the edges, the fp16 tolerance.
        fp16 = os.path.join(tmp, "mlp-fp16.onnx")
        report = json.loads(hone("export", run, "-o", fp16, "--dtype", "fp16", "--json").stdout)
        check_report(report, "accuracy", 2e-2)
        assert abs(report["metric_hone"] - report["metric_onnxruntime"]) <= 0.02, report
        types = {t.data_type for t in onnx.load(fp16).graph.initializer}
        assert onnx.TensorProto.FLOAT16 in types, types

        # A fixed batch axis, written without verification.
        fixed = os.path.join(tmp, "mlp-fixed.onnx")
        hone("export", run, "-o", fixed, "--batch-axis", "4", "--no-verify")
        dims = onnx.load(fixed).graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_value == 4, dims

        # Usage errors: exit 2, nothing written.
        bad = os.path.join(tmp, "bad.onnx")
        hone("export", run, "-o", bad, "--dtype", "bf16", expect=2)
        hone("export", run, "-o", bad, "--batch-axis", "zero", "--no-verify", expect=2)
        hone("export", run, "-o", bad, "--batch-axis", "4", expect=2)  # a fixed axis cannot be verified
        hone("export", run, expect=2)
        hone("export", run, "-o", bad, "--opset", "19", expect=2)  # below Gelu's opset
        hone("export", run, "-o", bad, "--opset", "26", expect=2)  # past the newest checked
        assert not os.path.exists(bad)

        # Opset 23: self-attention as ONNX's Attention op with the padding mask (random token ids of
        # random lengths), none of the MatMul/Softmax form left, IR 11.
        minilm = os.path.join(tmp, "minilm-23.onnx")
        report = json.loads(hone("export", "minilm", "-o", minilm, "--seq-len", "16", "--opset", "23", "--json").stdout)
        assert report["verified"] and report["passed"] and report["metric"] == "cosine", report
        assert report["metric_onnxruntime"] >= 0.99999, report["metric_onnxruntime"]
        for check in report["checks"]:
            assert check["max_rel_error"] <= 1e-5, check
        assert report["fusion"]["basic"].get("Attention") == 6, report["fusion"]["basic"]
        assert "Softmax" not in report["fusion"]["basic"], report["fusion"]["basic"]
        model = onnx.load(minilm)
        assert model.ir_version == 11 and model.opset_import[0].version == 23, (model.ir_version, model.opset_import)

        # int8 dynamic: DynamicQuantizeLinear + MatMulInteger, which onnxruntime fuses.
        int8 = os.path.join(tmp, "mlp-int8")
        hone("compress", run, "--quant", "int8-dynamic", "-o", int8, "--no-verdict")
        if cpu_has_vnni():
            report = json.loads(hone("export", int8, "-o", os.path.join(tmp, "mlp-int8.onnx"), "--json").stdout)
            check_report(report, "accuracy", 5e-2)
            assert abs(report["metric_hone"] - report["metric_onnxruntime"]) <= 0.003, report
            assert "com.microsoft.DynamicQuantizeMatMul" in report["fusion"]["extended"], report["fusion"]["extended"]
        else:  # the verification catches onnxruntime's saturation, and nothing is written
            refused = hone("export", int8, "-o", os.path.join(tmp, "mlp-int8.onnx"), expect=1)
            assert "beyond tolerance" in refused.stderr, refused.stderr
            assert not os.path.exists(os.path.join(tmp, "mlp-int8.onnx"))

        # A forecaster: raw price windows in, the next-day price out, RMSE from both.
        lstm = os.path.join(tmp, "lstm")
        hone("train", "-m", "lstm", "-d", "goldsilver", "--epochs", "1", "--limit", "300", "-o", lstm, "-q")
        report = json.loads(hone("export", lstm, "-o", os.path.join(tmp, "lstm.onnx"), "--json").stdout)
        check_report(report, "rmse", 1e-5)
        assert abs(report["metric_hone"] - report["metric_onnxruntime"]) <= 1e-6 * report["metric_hone"], report
        assert "LSTM" in report["fusion"]["basic"], report["fusion"]["basic"]

        # int8 dynamic LSTM: the float LSTM op on the dequantized int8 weights, the head as MatMulInteger.
        lstm_int8 = os.path.join(tmp, "lstm-int8")
        hone("compress", lstm, "--quant", "int8-dynamic", "-o", lstm_int8, "--no-verdict")
        if cpu_has_vnni():
            report = json.loads(hone("export", lstm_int8, "-o", os.path.join(tmp, "lstm-int8.onnx"), "--json").stdout)
            check_report(report, "rmse", 5e-2)
            assert "LSTM" in report["fusion"]["basic"] and "MatMulInteger" in report["fusion"]["basic"], report["fusion"]
    print("export CLI: ok")


if __name__ == "__main__":
    main()
