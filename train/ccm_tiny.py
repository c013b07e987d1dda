#!/usr/bin/env python3
"""A tiny random chat model folder in the Hugging Face layout, for the adapter pipeline's tests: the
project's byte-level BPE tokenizer and chat template (train/tokenizer.py, train/common.py) trained on a
few hundred chats, and a seeded random Llama (GQA) or Qwen2 (q/k/v biases) of a few thousand parameters.

  .venv/bin/python train/ccm_tiny.py --out DIR [--arch llama|qwen2] [--seed 0]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from common import END, PAD  # noqa: E402
from tokenizer import train_tokenizer, write_tokenizer_files  # noqa: E402


def make_tiny(out, arch="llama", seed=0):
    tok = train_tokenizer(vocab_size=320, seed=seed, count=300)
    write_tokenizer_files(tok, out, 512)
    shape = dict(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        initializer_range=0.1,
        bos_token_id=tok.token_to_id("<|bos|>"),
        eos_token_id=tok.token_to_id(END),
        pad_token_id=tok.token_to_id(PAD),
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**shape)) if arch == "qwen2" else LlamaForCausalLM(LlamaConfig(**shape))
    if arch == "qwen2":
        with torch.no_grad():  # transformers zero-initializes biases: make them matter
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.1)
    model.save_pretrained(out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="llama", choices=["llama", "qwen2"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    make_tiny(args.out, args.arch, args.seed)
    print(args.out)


if __name__ == "__main__":
    main()
