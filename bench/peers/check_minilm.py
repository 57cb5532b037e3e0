#!/usr/bin/env python3
"""Proves zoo.py's `minilm` peer is all-MiniLM-L6-v2: loads the real weights (model.safetensors,
Hugging Face BertModel names mapped by zoo.hf_bert_to_peer_name) and compares its sentence
embeddings with sentence-transformers' on a few sentences of different lengths (so padding and
the pad mask matter). Needs sentence-transformers (the CPU venv has it; the GPU machine does not).

Example:
  ~/.cache/hone/venv-torch-2.11.0/bin/python bench/peers/check_minilm.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402
from check_zoo import minilm_dir, read_safetensors  # noqa: E402

MIN_COSINE = 0.99999
SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog, twice, before breakfast on a cold Tuesday morning.",
    "hone profiles, compresses and benchmarks neural networks on LibTorch.",
    "Gold and silver prices rose.",
    "?",
]


def load_peer(model_dir: Path) -> torch.nn.Module:
    tensors, _ = read_safetensors(model_dir / "model.safetensors")
    state = {}
    for hf_name, tensor in tensors.items():
        name = zoo.hf_bert_to_peer_name(hf_name)
        if name is not None:
            state[name] = tensor
    model = zoo.build("minilm")
    model.load_state_dict(state, strict=True)  # every peer tensor present, nothing left over
    return model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("Example:")[1])
    parser.add_argument("--model-dir", type=Path, default=minilm_dir(),
                        help="all-MiniLM-L6-v2 directory (default $HONE_MINILM_DIR or ~/.cache/hone/data/...)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the files are local; never download
    try:
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    except ImportError as error:
        print(f"sentence-transformers is not installed in this Python ({sys.executable}): {error}")
        return 2

    reference = SentenceTransformer(str(args.model_dir), device="cpu")
    peer = load_peer(args.model_dir)
    tokens = reference.tokenizer(SENTENCES, padding=True, truncation=True, max_length=reference.max_seq_length,
                                 return_tensors="pt")
    with torch.no_grad():
        expected = reference.encode(SENTENCES, convert_to_tensor=True, batch_size=len(SENTENCES))
        ours = peer(tokens["input_ids"])
        # The same sentences one at a time (no padding at all) must give the same embeddings.
        alone = torch.cat([peer(reference.tokenizer([s], return_tensors="pt")["input_ids"]) for s in SENTENCES])
    cosine = F.cosine_similarity(ours, expected, dim=1)
    cosine_alone = F.cosine_similarity(alone, expected, dim=1)
    print(f"input_ids {list(tokens['input_ids'].shape)}, pad tokens {(tokens['input_ids'] == 0).sum().item()}")
    print(f"{'sentence':<60}{'cos batched':>13}{'cos alone':>13}{'max |diff|':>12}")
    for i, sentence in enumerate(SENTENCES):
        diff = (ours[i] - expected[i]).abs().max().item()
        print(f"{sentence[:58]:<60}{cosine[i].item():>13.8f}{cosine_alone[i].item():>13.8f}{diff:>12.2e}")
    ok = bool((cosine >= MIN_COSINE).all() and (cosine_alone >= MIN_COSINE).all())
    print(f"min cosine {min(cosine.min().item(), cosine_alone.min().item()):.8f} (need >= {MIN_COSINE}): "
          f"{'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
