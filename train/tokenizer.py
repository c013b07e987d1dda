"""Byte-level BPE tokenizer for the chat model, trained with the `tokenizers` library on train-split text.

Digits are split one per token, so numbers never seen in training (the splits' value pools are disjoint)
still tokenize into trained ids. The post-processor prepends BOS when special tokens are added.
  .venv/bin/python train/tokenizer.py --out DIR [--vocab 1024] [--seed 0] [--count 20000]
"""

import argparse
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
from common import BOS, CHAT_TEMPLATE, END, PAD, SPECIAL_TOKENS  # noqa: E402


def train_texts(seed, count):
    """The text the model will see: every turn of `count` train records (user, assistant, question, reply)."""
    for r in data.generate("train", seed, count):
        for t in r["history"]:
            yield t["user"]
            yield t["assistant"]
        yield r["question"]
        yield r["reply"]
    for s in data.SMALL_TALK:
        yield s[0]


def train_tokenizer(vocab_size, seed, count):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(train_texts(seed, count), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return tok


def write_tokenizer_files(tok, out, max_length):
    """tokenizer.json and tokenizer_config.json (with the chat template) into `out`."""
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": END,
        "pad_token": PAD,
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=20000)
    args = ap.parse_args()
    tok = train_tokenizer(args.vocab, args.seed, args.count)
    write_tokenizer_files(tok, args.out, 1024)
    print(f"vocab {tok.get_vocab_size()} -> {args.out}")


if __name__ == "__main__":
    main()
