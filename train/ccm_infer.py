#!/usr/bin/env python3
"""PyTorch inference of CCM memory, for checking ccmem against it and for its accuracy on recall chats.

  # final-position logits after compressing each chunk (the twin of `ccmem memory-logits`)
  .venv/bin/python train/ccm_infer.py logits --model DIR --adapter DIR --chunks 1,2,3/4,5 --input 6,7
  # recall accuracy on a JSONL of train/data.py records, the history fed turn by turn as ccmem's Chat
  # feeds it (ccm: each turn compressed after it; sentinel: its finished sentences older than the last 32
  # tokens compressed after each turn, as ccmem's policy defaults), then the question answered greedily
  .venv/bin/python train/ccm_infer.py eval --model DIR [--adapter DIR] --memory full|ccm|sentinel|none --data FILE
      [--limit N] [--max-new-tokens 32] [--threads N] [--out FILE.jsonl]

`eval` prints one JSON line {"memory", "n", "accuracy", "meanKvSlots", "meanFullContextSlots"}: correct when
the answer appears in the reply as a whole word (case-insensitive); KV slots counted when the question
arrives. --out writes one line per record (its reply and whether it was correct).
"""

import argparse
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from ccm_chat import ChatCodec, record_turns  # noqa: E402
from ccm_export import load_adapted  # noqa: E402
from ccm_model import CcmModel  # noqa: E402
from ccm_recurrent import Decoder, RecurrentCcm  # noqa: E402
from sentinel_infer import RecurrentSentinel  # noqa: E402
from sentinel_layout import sentence_ends  # noqa: E402


def parse_ids(text):
    return [int(x) for x in text.split(",") if x.strip() != ""]


def whole_word(word, text):
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE) is not None


def stop_ids(codec, config):
    eos = config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if codec.eos_id is not None:
        ids.add(codec.eos_id)
    return ids


def plain_model(model_dir, dtype):
    """The base model alone (no adapter rows; every gate off)."""
    return CcmModel.load(model_dir, 0, dtype=dtype, dropout=0.0).eval()


def answer(model, codec, record, memory, adapter, max_new_tokens, ends=None):
    """(reply text, KV slots when the question arrives, slots the full context would hold)."""
    turns, question, _ = record_turns(codec, record)
    full_slots = sum(len(d) + len(r) for d, r in turns)
    if memory == "sentinel":
        r = RecurrentSentinel(model, ends, bos=model.base.config.bos_token_id)
        for delta, reply in turns:
            r.feed(delta + reply)
            r.end_turn()
        dec, slots = r.decoder(), r.slots()
    elif memory == "ccm":
        r = RecurrentCcm(model, adapter["mode"], adapter["compTokens"], adapter["sink"])
        for delta, reply in turns:
            r.compress(delta + reply)
        dec, slots = r.decoder(), r.slots()
    elif memory == "full":
        dec = Decoder(model, None, 0)
        context = [t for d, r in turns for t in d + r]
        if context:
            dec.forward(context)
        slots = full_slots
    else:  # none: the question is the conversation's first turn
        _, question, _ = record_turns(codec, {"history": [], "question": record["question"]})
        dec, slots = Decoder(model, None, 0), 0
    out = dec.greedy(question, max_new_tokens, stop_ids(codec, model.base.config))
    return codec.decode(out), slots, full_slots


def evaluate(args):
    dtype = torch.float32
    if args.memory in ("ccm", "sentinel"):
        if not args.adapter:
            raise SystemExit(f"--memory {args.memory} needs --adapter")
        model, adapter = load_adapted(args.model, args.adapter, dtype, method=args.memory)
    else:
        model, adapter = plain_model(args.model, dtype), None
    codec = ChatCodec(args.model)
    ends = sentence_ends(codec, model.vocab) if args.memory == "sentinel" else None
    records = [json.loads(ln) for ln in open(args.data, encoding="utf-8") if ln.strip()]
    if args.limit:
        records = records[: args.limit]
    correct, slots, full = 0, 0, 0
    began = time.time()
    out = open(args.out, "w", encoding="utf-8") if args.out else None
    with torch.no_grad():
        for i, rec in enumerate(records):
            reply, s, f = answer(model, codec, rec, args.memory, adapter, args.max_new_tokens, ends)
            ok = whole_word(rec["answer"], reply)
            correct += ok
            slots += s
            full += f
            if out:
                out.write(json.dumps({"i": i, "answer": rec["answer"], "reply": reply, "correct": ok}) + "\n")
    if out:
        out.close()
    n = len(records)
    result = {
        "memory": f"ccm-{adapter['mode']}" if args.memory == "ccm" else args.memory,
        "n": n,
        "accuracy": correct / n if n else 0.0,
        "meanKvSlots": slots / n if n else 0.0,
        "meanFullContextSlots": full / n if n else 0.0,
        "seconds": round(time.time() - began, 1),
    }
    print(json.dumps(result))


def logits(args):
    dtype = getattr(torch, args.dtype)
    model, adapter = load_adapted(args.model, args.adapter, dtype)
    chunks = [parse_ids(c) for c in args.chunks.split("/")]
    with torch.no_grad():
        r = RecurrentCcm(model, adapter["mode"], adapter["compTokens"], adapter["sink"])
        for chunk in chunks:
            r.compress(chunk)
        last = r.decoder().forward(parse_ids(args.input))[-1]
    print(json.dumps({"logits": [float(v) for v in last], "slots": r.slots()}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    lg = sub.add_parser("logits", help="final-position logits after the compressed chunks")
    lg.add_argument("--model", required=True)
    lg.add_argument("--adapter", required=True)
    lg.add_argument("--chunks", required=True, help="chunk ids, e.g. 1,2,3/4,5")
    lg.add_argument("--input", required=True, help="input ids after the memory, e.g. 6,7")
    lg.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="default float64")
    ev = sub.add_parser("eval", help="recall accuracy on a JSONL of records")
    ev.add_argument("--model", required=True)
    ev.add_argument("--adapter")
    ev.add_argument("--memory", required=True, choices=["full", "ccm", "sentinel", "none"])
    ev.add_argument("--data", required=True)
    ev.add_argument("--limit", type=int, default=0, help="first N records only (default all)")
    ev.add_argument("--max-new-tokens", type=int, default=32, help="default 32")
    ev.add_argument("--threads", type=int, default=None)
    ev.add_argument("--out", help="per-record results (JSONL)")
    args = p.parse_args()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    (logits if args.command == "logits" else evaluate)(args)


if __name__ == "__main__":
    main()
