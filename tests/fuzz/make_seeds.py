#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (tests/fuzz/corpus/<harness>/) from real files: the Debian
datasets, the MiniLM package, the repository's recipes, and a tiny model hone trains on the real
sklearn digits, exports and serves. Seeds are kept small (libFuzzer's input length follows the
largest seed). Run once after `make build`; the output is checked in:

    python3 tests/fuzz/make_seeds.py build/tools/hone/hone
"""
import gzip
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "hone"
FASHION = pathlib.Path(os.environ.get("HONE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
MINILM = pathlib.Path(os.environ.get("HONE_MINILM_DIR", CACHE / "data" / "all-MiniLM-L6-v2"))
GOLDSILVER = CACHE / "data" / "goldsilver.csv"
FINE_FOODS = CACHE / "data" / "fine-foods" / "train.tsv"
REPO = ROOT.parents[1]


def put(harness, name, data):
    folder = CORPUS / harness
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def head_lines(path, n):
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(n))


def idx_bytes(type_code, dims, payload):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def seeds_io():
    labels_gz = (FASHION / "t10k-labels-idx1-ubyte.gz").read_bytes()
    put("gzip", "fashion-t10k-labels.gz", labels_gz)
    put("gzip", "goldsilver-head.csv.gz", gzip.compress(head_lines(GOLDSILVER, 40), mtime=0))
    put("gzip", "two-members.gz", gzip.compress(b"date,gold\n", mtime=0) + gzip.compress(b"2012-12-31,915.88\n", mtime=0))

    labels = gzip.decompress(labels_gz)
    put("idx", "fashion-labels-64.idx", idx_bytes(0x08, [64], labels[8:72]))
    images = gzip.open(FASHION / "t10k-images-idx3-ubyte.gz").read(16 + 3 * 28 * 28)
    put("idx", "fashion-images-3.idx", idx_bytes(0x08, [3, 28, 28], images[16:]))
    prices = [float(line.split(b",")[1]) for line in head_lines(GOLDSILVER, 17).splitlines()[1:]]
    put("idx", "gold-16.f32.idx", idx_bytes(0x0D, [16], struct.pack(">16f", *prices)))
    put("idx", "gold-16.f64.idx.gz", gzip.compress(idx_bytes(0x0E, [4, 4], struct.pack(">16d", *prices)), mtime=0))

    # The csv harness reads its options from the first byte: 0 = comma + header, 1 = tab, 4 = no header.
    put("csv", "goldsilver-head.csv", b"\x00" + head_lines(GOLDSILVER, 30))
    digits = gzip.open(sys_digits()).read().splitlines(keepends=True)[:6]
    put("csv", "digits-head.csv", b"\x04" + b"".join(digits))
    put("csv", "fine-foods-head.tsv", b"\x01" + head_lines(FINE_FOODS, 4))
    put("csv", "quoted.csv", b'\x00name,value\r\n"gold, spot","1,5"\r\n"say ""hi""",2\r\n')


def sys_digits():
    py = CACHE / "venv-torch-2.11.0" / "bin" / "python"
    out = subprocess.check_output([py, "-c", "import sklearn.datasets, os; print(os.path.dirname(sklearn.datasets.__file__))"])
    return pathlib.Path(out.decode().strip()) / "data" / "digits.csv.gz"


def safetensors_bytes(tensors, metadata=None):
    """tensors: name -> (dtype, shape, raw bytes), laid out in the given order (the format's spec)."""
    header, offset, data = {}, 0, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def minilm_tensor(f, header, base, name):
    entry = header[name]
    begin, end = entry["data_offsets"]
    f.seek(base + begin)
    return entry["dtype"], entry["shape"], f.read(end - begin)


def seeds_safetensors():
    with open(MINILM / "model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        names = [k for k in header if "LayerNorm" in k][:4]
        small = {k: minilm_tensor(f, header, base, k) for k in names}
    put("safetensors", "minilm-layernorms.safetensors", safetensors_bytes(small, {"format": "pt"}))
    one = dict(list(small.items())[:1])
    put("safetensors", "minilm-one.safetensors", safetensors_bytes(one))


def seeds_text():
    vocab = (MINILM / "vocab.txt").read_bytes().splitlines(keepends=True)
    put("wordpiece", "vocab-head.txt", b"VOCAB\n" + b"".join(vocab[:1200]))
    fortunes = pathlib.Path("/usr/share/games/fortunes/fortunes").read_bytes().split(b"\n%\n")
    for i, text in enumerate(fortunes[:6]):
        put("wordpiece", f"fortune-{i}.txt", text[:600])
    for i, line in enumerate(head_lines(FINE_FOODS, 4).splitlines()[1:]):
        put("wordpiece", f"fine-foods-{i}.txt", line[:600])
    put("wordpiece", "unicode.txt", "Café naïve — 東京で寿司を食べた. ÅNGSTRÖM don't re-tokenize\u00a0it!".encode())


def seeds_runs_and_recipes(hone):
    for recipe in sorted((REPO / "docs" / "recipes").glob("*.json")):
        put("recipe", recipe.name, recipe.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        run = tmp / "digits-mlp"
        subprocess.run([hone, "train", "-m", "mlp", "-d", "digits", "--model-config", '{"hidden":[12]}',
                        "--epochs", "2", "-o", run], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        put("run_config", "digits-mlp-config.json", (run / "config.json").read_bytes())
        compressed = tmp / "digits-int8"
        subprocess.run([hone, "compress", run, "--recipe", REPO / "docs" / "recipes" / "cnn-int8.json", "-o", compressed],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, folder in (("digits-mlp", run), ("digits-int8", compressed)):
            if not (folder / "config.json").exists():
                continue
            config = json.loads((folder / "config.json").read_text())
            if (folder / "compress.json").exists():
                config["edits"] = json.loads((folder / "compress.json").read_text())["edits"]
                put("run_config", f"{name}-with-edits.json", json.dumps(config, indent=1))
            onnx = tmp / f"{name}.onnx"
            subprocess.run([hone, "export", folder, "-o", onnx], check=False, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            if onnx.exists():
                put("onnx", f"{name}.onnx", onnx.read_bytes())
        bodies = tmp / "bodies.jsonl"
        subprocess.run([hone, "serve", run, "--write-requests", bodies, "--requests", "3"], check=True,
                       stdout=subprocess.DEVNULL)
        for i, body in enumerate(bodies.read_text().splitlines()):
            put("infer_request", f"digits-infer-{i}.json", body)
            row = json.loads(body)["inputs"][0]["data"][:64]
            put("infer_request", f"digits-predict-{i}.json", json.dumps({"instances": [row]}))
        put("infer_request", "embed.json", json.dumps({"inputs": ["Great coffee, fast shipping."], "normalize": True}))
    cnn = REPO / "runs" / "demo-cnn" / "config.json"
    if cnn.exists():
        put("run_config", "demo-cnn-config.json", cnn.read_bytes())


def main():
    hone = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "build" / "tools" / "hone" / "hone").resolve()
    shutil.rmtree(CORPUS, ignore_errors=True)
    seeds_io()
    seeds_safetensors()
    seeds_text()
    seeds_runs_and_recipes(hone)
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        print(f"{folder.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
