#!/usr/bin/env python3
"""Trains a sentinel-span adapter (sentinel.md sections 2-3) for a Hugging Face Llama, Mistral or Qwen2
causal LM on the recall chats of train/data.py, and writes it in ccmem's adapter format (method
"sentinel": an ungated LoRA that ccmem merges into the weights, plus the <CL> and <CR> rows).

  .venv/bin/python train/sentinel.py --model models/chat-tiny --data-seed 1 --steps 600 --batch 16 \
      --out models/chat-tiny-sentinel [--device cuda]         (torchrun works as for train/ccm.py)

Each chat is the token stream ccmem's Chat feeds (train/ccm_chat.py). Its spans are those ccmem's
sentinel policy compresses before the question arrives: every finished sentence of the history that ends
before the last --recent tokens, cut into pieces of at most --max-span tokens (src/memory/sentinel.ts,
with the CLI's sentence ends: tokens whose text ends in . ! ? or a newline). Loss: every assistant reply
and its EOS, with sentinel.md's label rule. A run with the same --out resumes from its checkpoint.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from ccm import Records, training_chats  # noqa: E402
from ccm_chat import ChatCodec, record_turns, separators  # noqa: E402
from ccm_data import end_of_turn_id  # noqa: E402
from ccm_export import write_adapter  # noqa: E402
from ccm_layout import reply_labels  # noqa: E402
from ccm_model import TARGETS, CcmModel  # noqa: E402
from ccm_trainer import add_training_arguments, distributed, train  # noqa: E402
from sentinel_layout import build_sentinel, collate_sentinel, sentence_ends, sentence_spans  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Train a sentinel-span adapter for ccmem.")
    p.add_argument("--model", required=True, help="Hugging Face model folder")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16, the reference's)")
    p.add_argument("--alpha", type=float, default=32.0, help="LoRA alpha (default 32)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="default 0.05")
    p.add_argument("--targets", default="q,k,v,o", help="default q,k,v,o")
    p.add_argument("--recent", type=int, default=32, help="ccmem's memory.recent (default 32)")
    p.add_argument("--max-span", type=int, default=25, help="ccmem's memory.maxSpan (default 25)")
    p.add_argument("--data-seed", type=int, default=1, help="default 1")
    p.add_argument("--pool", type=int, default=20000, help="default 20000")
    p.add_argument("--data", help="JSONL chats instead of train/data.py's (as train/ccm.py --data)")
    p.add_argument("--out", required=True)
    add_training_arguments(p)
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",")]
    if not args.targets or any(t not in TARGETS for t in args.targets):
        p.error("--targets must be a comma list of q, k, v, o")
    return args


def chat_sample(codec, record, ends, eos, vocab, recent, max_span, bos):
    """A record with a "reply" as one sentinel training sample (history spans, every reply trained)."""
    turns, question, answer = record_turns(codec, record, reply=record["reply"])
    ids, labels = [], []
    for delta, reply in turns:
        ids += delta + reply
        labels += reply_labels(len(delta), reply, eos)
    spans = sentence_spans(ids, ends, recent, max_span, bos)
    ids += question + answer
    labels += reply_labels(len(question), answer, eos)
    return build_sentinel(ids, labels, spans, vocab)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = distributed(args.device)
    torch.manual_seed(args.seed)
    dtype = getattr(torch, args.dtype)
    model = CcmModel.load(args.model, 2, dtype=dtype, device=device, rank=args.rank, alpha=args.alpha,
                          dropout=args.lora_dropout, targets=args.targets)
    codec = ChatCodec(args.model)
    eos = end_of_turn_id(codec, model.base.config)
    ends = sentence_ends(codec, model.vocab)
    bos = model.base.config.bos_token_id

    def make(record):
        return chat_sample(codec, record, ends, eos, model.vocab, args.recent, args.max_span, bos)

    records = Records(training_chats(args), make, args.data_seed)

    def batches(step, rank, world):
        first = (step * world + rank) * args.batch
        return collate_sentinel([records.at(first + j) for j in range(args.batch)], device)

    seps = separators(codec)
    name = os.path.basename(os.path.normpath(args.model))

    def export():
        write_adapter(args.out, model, "sentinel", 1, None, False, seps, name)

    run = {k: getattr(args, k) for k in ("rank", "alpha", "targets", "recent", "max_span", "data_seed", "pool", "data",
                                         "steps", "batch", "lr", "warmup", "seed")}
    run["model"] = name
    run["world"] = world
    train(model, batches, args, run, export, rank, world, device, title=f"sentinel on {name}")


if __name__ == "__main__":
    main()
