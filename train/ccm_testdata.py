#!/usr/bin/env python3
"""Writes what the TypeScript tests of the adapter pipeline compare ccmem against (test/train/):

  model/            a tiny random Llama chat model (train/ccm_tiny.py)
  concat/, merge/   CCM adapters trained on it for a few steps by train/ccm.py (concat n=2; merge n=3, sink)
  logits.json       per adapter (concat, merge, sentinel): chunks and input ids of a real chat and PyTorch's
                    recurrent final logits
  chats.json        records and the ids ccmem's Chat must feed for them (delta and reply per turn, question)
  layouts.json      training rows of a few cases: positions, kinds, blocks, visibility mask
  sentinel/         a sentinel adapter trained on it for a few steps by train/sentinel.py
  sentinel.json     sentinel training rows (positions, kinds, mask, labels) and a chat's history spans

  .venv/bin/python train/ccm_testdata.py --out DIR
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import ccm  # noqa: E402
import data as chat_data  # noqa: E402
from ccm_chat import ChatCodec, record_turns  # noqa: E402
from ccm_export import load_adapted  # noqa: E402
from ccm_layout import IGNORE, build_sample, collate, visible  # noqa: E402
from ccm_recurrent import RecurrentCcm  # noqa: E402
from ccm_tiny import make_tiny  # noqa: E402
import sentinel  # noqa: E402
from sentinel_infer import RecurrentSentinel  # noqa: E402
from sentinel_layout import build_sentinel, collate_sentinel, sentence_ends, sentence_spans  # noqa: E402

ADAPTERS = {"concat": ["--comp-tokens", "2"], "merge": ["--comp-tokens", "3", "--sink"]}
KIND_NAMES = {1: "text", 2: "bos", 3: "comp", 4: "sum"}
SENTINEL_KINDS = {1: "text", 2: "open", 3: "span", 4: "close"}


def train_adapters(out, model_dir):
    for mode, extra in ADAPTERS.items():
        # a high learning rate, so that a few steps move B well away from zero
        ccm.main(["--model", model_dir, "--mode", mode, *extra, "--steps", "6", "--batch", "2", "--pool", "12",
                  "--lr", "0.05", "--out", os.path.join(out, mode), "--restart", "--print-every", "100",
                  "--checkpoint-minutes", "100"])


def train_sentinel(out, model_dir):
    sentinel.main(["--model", model_dir, "--steps", "4", "--batch", "2", "--pool", "8", "--lr", "0.05",
                   "--out", os.path.join(out, "sentinel"), "--restart", "--print-every", "100",
                   "--checkpoint-minutes", "100"])


def sentinel_cases(codec, records):
    rows = []
    for length, spans in [(14, [(2, 5), (7, 9)]), (6, [(0, 3)]), (8, [(1, 4), (4, 7)])]:
        text = [10 + i for i in range(length)]
        labels = text[1:] + [IGNORE]
        s = build_sentinel(text, labels, spans, 100)
        batch = collate_sentinel([s])
        rows.append({"textLength": length, "spans": spans, "ids": s.ids, "positions": s.positions,
                     "kinds": [SENTINEL_KINDS[k] for k in s.kinds], "span": s.span, "labels": s.labels,
                     "mask": [[int(v) for v in r] for r in batch["mask"][0, 0].tolist()]})
    vocab = codec.tok.get_vocab_size()
    ends = sentence_ends(codec, vocab)
    chats = []
    for rec in records:
        turns, _, _ = record_turns(codec, rec)
        ids = [t for d, r in turns for t in d + r]
        chats.append({"ids": ids, "spans": sentence_spans(ids, ends, 32, 25, codec.bos_id)})
    return {"layouts": rows, "chats": chats}


def chat_ids(codec, record, turns):
    steps, question, _ = record_turns(codec, {**record, "history": record["history"][:turns]})
    return [d + r for d, r in steps], question


def logits_cases(out, model_dir, codec, record):
    cases = {}
    for mode in ADAPTERS:
        model, adapter = load_adapted(model_dir, os.path.join(out, mode), torch.float64)
        chunks, inp = chat_ids(codec, record, 3)
        with torch.no_grad():
            r = RecurrentCcm(model, adapter["mode"], adapter["compTokens"], adapter["sink"])
            for chunk in chunks:
                r.compress(chunk)
            last = r.decoder().forward(inp)[-1]
        cases[mode] = {"chunks": chunks, "input": inp, "logits": [float(v) for v in last], "slots": r.slots()}
    model, _ = load_adapted(model_dir, os.path.join(out, "sentinel"), torch.float64, method="sentinel")
    chunks, inp = chat_ids(codec, record, 3)
    with torch.no_grad():
        r = RecurrentSentinel(model, sentence_ends(codec, model.vocab), bos=model.base.config.bos_token_id)
        for chunk in chunks:
            r.feed(chunk)
            r.end_turn()
        last = r.decoder().forward(inp)[-1]
    cases["sentinel"] = {"chunks": chunks, "input": inp, "logits": [float(v) for v in last], "slots": r.slots(),
                         "spans": r.spans}
    return cases


def layout_cases():
    out = []
    for mode, n, sink, lengths, inp in [
        ("concat", 2, False, [2, 1], 1),  # ccm.md section 4's toy example
        ("concat", 1, False, [2, 2, 2], 2),  # section 6's concat mask
        ("merge", 1, False, [2, 2, 2], 2),  # section 6's merge mask
        ("concat", 3, True, [4, 1, 3], 3),
        ("merge", 2, True, [3, 5, 2, 1], 2),
    ]:
        chunks = [[10 + i for i in range(length)] for length in lengths]
        s = build_sample(chunks, [[IGNORE] * length for length in lengths], list(range(inp)), [IGNORE] * inp,
                         n, mode, sink, 100)
        b = collate([s])
        mask = visible(b.kinds, b.blocks, mode, sink)[0]
        out.append({
            "mode": mode, "n": n, "sink": sink, "chunkLengths": [length - (sink and t == 0) for t, length in
                                                                 enumerate(lengths)],
            "inputLength": inp, "positions": s.positions, "kinds": [KIND_NAMES[k] for k in s.kinds],
            "blocks": s.blocks, "mask": [[int(v) for v in row] for row in mask.tolist()],
            "sums": {str(row): comps for row, comps in s.sums.items()},
        })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model_dir = make_tiny(os.path.join(args.out, "model"))
    train_adapters(args.out, model_dir)
    train_sentinel(args.out, model_dir)
    codec = ChatCodec(model_dir)
    records = chat_data.generate("validation", 7, 3)
    chats = []
    for rec in records:
        turns, question, _ = record_turns(codec, rec)
        chats.append({"record": chat_data.public(rec), "turns": turns, "question": question})
    files = {
        "logits.json": logits_cases(args.out, model_dir, codec, records[0]),
        "chats.json": chats,
        "layouts.json": layout_cases(),
        "sentinel.json": sentinel_cases(codec, records),
    }
    for name, value in files.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(value, f)


if __name__ == "__main__":
    main()
