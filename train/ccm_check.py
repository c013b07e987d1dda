#!/usr/bin/env python3
"""Self-check: the single-pass masked training forward (ccm.md section 6) equals recurrent inference
(section 5) on small random models with a non-zero adapter, for concat and merge, with and without sink,
GQA and MHA, Llama and Qwen2 (q/k/v biases); and sentinel's masked pass (sentinel.md section 3) equals
its incremental inference (section 4) when each span is compressed as soon as it is fed. Prints one JSON
line per case; exits 1 on a mismatch.

  .venv/bin/python train/ccm_check.py [--dtype float64|float32] [--tolerance 1e-9]
"""

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from ccm_layout import IGNORE, build_sample, collate, visible  # noqa: E402
from ccm_model import CcmModel  # noqa: E402
from ccm_recurrent import RecurrentCcm  # noqa: E402
from sentinel_infer import RecurrentSentinel  # noqa: E402
from sentinel_layout import build_sentinel, collate_sentinel  # noqa: E402

VOCAB = 70
CASES = [
    {"arch": "llama", "mode": "concat", "n": 1, "steps": 3, "gqa": False, "sink": False, "seed": 1},
    {"arch": "llama", "mode": "concat", "n": 2, "steps": 5, "gqa": True, "sink": True, "seed": 2},
    {"arch": "qwen2", "mode": "concat", "n": 3, "steps": 3, "gqa": True, "sink": False, "seed": 3},
    {"arch": "llama", "mode": "merge", "n": 1, "steps": 4, "gqa": True, "sink": False, "seed": 4},
    {"arch": "llama", "mode": "merge", "n": 2, "steps": 5, "gqa": False, "sink": True, "seed": 5},
    {"arch": "qwen2", "mode": "merge", "n": 4, "steps": 3, "gqa": True, "sink": True, "seed": 6},
]


def random_base(arch, gqa, seed):
    torch.manual_seed(seed)
    shape = dict(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2 if gqa else 4,
        vocab_size=VOCAB,
        max_position_embeddings=256,
        initializer_range=0.2,
    )
    if arch == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**shape, attn_implementation="ccm"))
    return LlamaForCausalLM(LlamaConfig(**shape, attn_implementation="ccm"))


def randomize_adapter(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lora in model.loras.values():
            lora.lora_B.copy_(torch.randn(lora.lora_B.shape, generator=g) * 0.2)
        model.embeddings.copy_(torch.randn(model.embeddings.shape, generator=g))


def single_pass_logits(model, chunks, inp, mode, n, sink):
    s = build_sample(chunks, [[IGNORE] * len(c) for c in chunks], inp, [IGNORE] * len(inp), n, mode, sink, VOCAB)
    b = collate([s], dtype=model.embeddings.dtype)
    mask = visible(b.kinds, b.blocks, mode, sink)[:, None]
    h, _ = model.hidden(b.ids, b.positions, b.gates, mask, b.sums)
    return model.logits(h[0, -1])


def recurrent_logits(model, chunks, inp, mode, n, sink):
    r = RecurrentCcm(model, mode, n, sink)
    for chunk in chunks:
        r.compress(chunk)
    return r.decoder().forward(inp)[-1]


def run_case(c, dtype):
    rng = random.Random(c["seed"])
    base = random_base(c["arch"], c["gqa"], c["seed"])
    rows = 2 * c["n"] if c["mode"] == "merge" else c["n"]
    model = CcmModel(base, rows, rank=4, alpha=8, dropout=0.0).to(dtype).eval()
    randomize_adapter(model, c["seed"])
    chunks = [[rng.randrange(3, VOCAB) for _ in range(rng.randint(2, 7))] for _ in range(c["steps"])]
    if c["sink"]:
        chunks[0].insert(0, 1)  # BOS
    inp = [rng.randrange(3, VOCAB) for _ in range(3)]
    with torch.no_grad():
        want = single_pass_logits(model, chunks, inp, c["mode"], c["n"], c["sink"])
        got = recurrent_logits(model, chunks, inp, c["mode"], c["n"], c["sink"])
        # the adapter must matter, or the check proves nothing
        off = CcmModel(random_base(c["arch"], c["gqa"], c["seed"]), rows, rank=4, alpha=8, dropout=0.0)
        off = off.to(dtype).eval()
        plain = recurrent_logits(off, chunks, inp, c["mode"], c["n"], c["sink"])
    scale = want.abs().max()
    return float((got - want).abs().max() / scale), float((plain - want).abs().max() / scale)


def sentinel_case(arch, gqa, seed, dtype):
    """Text a S1 b S2 c: masked pass vs feed/compress span by span; the LoRA is on for every row."""
    rng = random.Random(seed)
    model = CcmModel(random_base(arch, gqa, seed), 2, rank=4, alpha=8, dropout=0.0).to(dtype).eval()
    randomize_adapter(model, seed)
    segments = [[rng.randrange(3, VOCAB) for _ in range(rng.randint(2, 5))] for _ in range(5)]
    text = [t for seg in segments for t in seg]
    bounds = [sum(len(s) for s in segments[:i]) for i in range(6)]
    spans = [(bounds[1], bounds[2]), (bounds[3], bounds[4])]
    with torch.no_grad():
        s = build_sentinel(text, [IGNORE] * len(text), spans, VOCAB)
        batch = collate_sentinel([s])
        h, _ = model.hidden(batch["ids"], batch["positions"], batch["gates"], batch["mask"])
        want = model.logits(h[0, -1])
        r = RecurrentSentinel(model, set())
        for i, seg in enumerate(segments[:-1]):
            r.feed(seg)
            if i % 2 == 1:
                r.compress(bounds[i], bounds[i + 1])
        got = r.decoder().forward(segments[-1])[-1]
    return float((got - want).abs().max() / want.abs().max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--tolerance", type=float, default=None, help="default 1e-9 (float64), 1e-5 (float32)")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    tol = args.tolerance if args.tolerance is not None else (1e-9 if dtype == torch.float64 else 1e-5)
    failed = 0
    for c in CASES:
        err, adapter_effect = run_case(c, dtype)
        ok = err <= tol and adapter_effect > 1e-3
        failed += not ok
        print(json.dumps({**c, "dtype": args.dtype, "relError": err, "adapterEffect": adapter_effect, "ok": ok}))
    for arch, gqa, seed in [("llama", True, 7), ("qwen2", False, 8)]:
        err = sentinel_case(arch, gqa, seed, dtype)
        failed += err > tol
        print(json.dumps({"arch": arch, "mode": "sentinel", "gqa": gqa, "seed": seed, "dtype": args.dtype,
                          "relError": err, "ok": err <= tol}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
