#!/usr/bin/env python3
"""Trains a CCM adapter (ccm-concat or ccm-merge, ccm.md sections 2-6) for a Hugging Face Llama, Mistral
or Qwen2 causal LM, on the recall chats of train/data.py, and writes it in ccmem's adapter format.

  .venv/bin/python train/ccm.py --model models/chat-tiny --mode concat --comp-tokens 2 \
      --data-seed 1 --steps 1000 --batch 16 --out models/chat-tiny-concat [--sink] [--device cuda]
  torchrun --nproc-per-node 4 train/ccm.py ... --device cuda      (data parallel, one process per GPU)

The base model stays frozen; trained are the row-gated LoRA on q/k/v/o (on COMP/SUM rows only) and the
COMP (+ SUM) embedding rows. The objective is the single masked forward of ccm.md section 6 (with the SUM
overwrite for merge); each chat turn is one compressed chunk, tokenized exactly as ccmem's Chat feeds it
(train/ccm_chat.py). A run with the same --out resumes from its checkpoint. See docs/training.md.
"""

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import data as chat_data  # noqa: E402
from ccm_chat import ChatCodec, separators  # noqa: E402
from ccm_data import end_of_turn_id, record_sample  # noqa: E402
from ccm_export import load_into, read_adapter, write_adapter  # noqa: E402
from ccm_layout import collate, visible  # noqa: E402
from ccm_model import TARGETS, CcmModel  # noqa: E402
from ccm_trainer import add_training_arguments, distributed, train  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Train a CCM adapter (ccm-concat / ccm-merge) for ccmem.")
    p.add_argument("--model", required=True, help="Hugging Face model folder (config.json, weights, tokenizer)")
    p.add_argument("--mode", required=True, choices=["concat", "merge"])
    p.add_argument("--comp-tokens", type=int, required=True, help="COMP tokens per turn (n)")
    p.add_argument("--sink", action="store_true", help="keep the first token (BOS) visible as memory slot 0")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    p.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha (default 16)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="default 0.05")
    p.add_argument("--targets", default="q,k,v,o", help="projections with a LoRA pair (default q,k,v,o)")
    p.add_argument("--data-seed", type=int, default=1, help="train/data.py seed of the training chats (default 1)")
    p.add_argument("--pool", type=int, default=20000, help="distinct training chats, cycled (default 20000)")
    p.add_argument("--data", help="train on these chats instead (JSONL of {history, question, reply}; a record "
                                  "without reply uses its answer as the reply); --data-seed then only shuffles")
    p.add_argument("--no-history-loss", action="store_true",
                   help="loss on the final reply only (default: also the replies of turns 2..T)")
    p.add_argument("--answer-weight", type=float, default=1.0,
                   help="loss weight of the final reply's tokens against the history replies' (default 1)")
    p.add_argument("--out", required=True, help="output adapter folder (also holds checkpoint and log)")
    p.add_argument("--init-adapter", help="start from this trained adapter (same mode, n, rank and targets) with "
                   "a fresh optimizer and schedule: continues a run that ended, e.g. with more steps")
    add_training_arguments(p)
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",")]
    if not args.targets or any(t not in TARGETS for t in args.targets):
        p.error("--targets must be a comma list of q, k, v, o")
    if args.comp_tokens < 1:
        p.error("--comp-tokens must be >= 1")
    return args


class Records:
    """The training chats in a seeded order per epoch; samples tokenized once, on first use."""

    def __init__(self, records, make, seed):
        self.records, self.make, self.seed = records, make, seed
        self.samples = {}
        self.orders = {}

    def at(self, g):
        epoch, i = divmod(g, len(self.records))
        if epoch not in self.orders:
            order = list(range(len(self.records)))
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
            self.orders = {epoch: order}
        idx = self.orders[epoch][i]
        if idx not in self.samples:
            self.samples[idx] = self.make(self.records[idx])
        return self.samples[idx]


def training_chats(args):
    """train/data.py's train split, or the records of --data (each with a "reply")."""
    if not args.data:
        return chat_data.generate("train", args.data_seed, args.pool)
    records = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    return [{**r, "reply": r.get("reply", r.get("answer"))} for r in records]


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = distributed(args.device)
    torch.manual_seed(args.seed)
    n, mode, sink = args.comp_tokens, args.mode, args.sink
    rows = 2 * n if mode == "merge" else n
    dtype = getattr(torch, args.dtype)
    model = CcmModel.load(
        args.model, rows, dtype=dtype, device=device, rank=args.rank, alpha=args.alpha,
        dropout=args.lora_dropout, targets=args.targets,
    )
    if args.init_adapter:
        config, tensors = read_adapter(args.init_adapter)
        wanted = {"method": "ccm", "mode": mode, "compTokens": n, "sink": sink, "rank": args.rank, "targets": args.targets}
        got = {k: config.get(k) for k in wanted}
        if got != wanted:
            raise SystemExit(f"--init-adapter {args.init_adapter}: {got} does not match this run's {wanted}")
        load_into(model, tensors)
    codec = ChatCodec(args.model)
    eos = end_of_turn_id(codec, model.base.config)
    vocab = model.vocab

    def make(record):
        return record_sample(codec, record, n, mode, sink, vocab, eos, history_loss=not args.no_history_loss)

    records = Records(training_chats(args), make, args.data_seed)

    def batches(step, rank, world):
        first = (step * world + rank) * args.batch
        samples = [records.at(first + j) for j in range(args.batch)]
        b = collate(samples, dtype=dtype, device=device)
        mask = visible(b.kinds, b.blocks, mode, sink)[:, None]
        final = b.blocks == b.blocks.max(dim=1, keepdim=True).values  # the input block: question and reply
        weights = torch.where(final, args.answer_weight, 1.0)
        return {"ids": b.ids, "positions": b.positions, "gates": b.gates, "mask": mask, "labels": b.labels,
                "sums": b.sums, "weights": weights}

    seps = separators(codec)
    name = os.path.basename(os.path.normpath(args.model))

    def export():
        write_adapter(args.out, model, "ccm", n, mode, sink, seps, name)

    run = {k: getattr(args, k) for k in ("mode", "comp_tokens", "sink", "rank", "alpha", "targets", "data_seed",
                                         "pool", "data", "no_history_loss", "answer_weight", "steps", "batch", "lr", "warmup", "seed",
                                         "init_adapter")}
    run["model"] = name
    run["world"] = world
    train(model, batches, args, run, export, rank, world, device, title=f"ccm-{mode} n={n} on {name}")


if __name__ == "__main__":
    main()
