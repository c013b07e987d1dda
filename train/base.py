"""Trains the base chat model (models/chat-tiny) from scratch on train/data.py's recall chats.

  .venv/bin/python train/base.py [--steps N] [--out models/chat-tiny] [--work .tmp/train/base]
  .venv/bin/python train/base.py --bench            # tokens/s of a few model sizes, then exit
  .venv/bin/python train/base.py --eval-only        # recall accuracy of the exported model

Loss: cross-entropy on assistant targets only (reply tokens and the end marker that closes each reply),
the question's reply weighted 2x; user turns and template tokens are context, not targets.
--init DIR fine-tunes an exported model instead (its tokenizer too), e.g. after train/data.py gained phrasings.
Re-running the same command resumes from the last checkpoint in --work (model, optimizer, step, RNG).
"""

import argparse
import json
import math
import os
import random
import re
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import plot  # noqa: E402
from common import END, PAD, encode_chat  # noqa: E402
from tokenizer import train_tokenizer, write_tokenizer_files  # noqa: E402

FINAL_REPLY_WEIGHT = 2.0
AUGMENT_FRACTION = 0.25  # train records whose asked value is replaced by a word of random vocab pieces


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="models/chat-tiny")
    ap.add_argument("--work", default=".tmp/train/base")
    ap.add_argument("--seed", type=int, default=0, help="model init, batches and augmentation")
    ap.add_argument("--data-seed", type=int, default=1, help="train/data.py seed for the train split")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=0, help="MLP width; 0 = 8/3 x hidden rounded to 32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--records", type=int, default=89024, help="train records generated (5564 batches of 16)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-minutes", type=float, default=3.0)
    ap.add_argument("--eval-count", type=int, default=100)
    ap.add_argument("--init", help="fine-tune this exported model (its weights and tokenizer) instead of training "
                    "from scratch; use a fresh --work")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--eval-only", action="store_true")
    return ap.parse_args(argv)


def model_config(args, vocab_size, tok):
    from transformers import LlamaConfig

    inter = args.intermediate or max(32, round(args.hidden * 8 / 3 / 32) * 32)
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        intermediate_size=inter,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.token_to_id("<|bos|>"),
        eos_token_id=tok.token_to_id(END),
        pad_token_id=tok.token_to_id(PAD),
    )


# --- data ------------------------------------------------------------------------------------------


def _random_word(rng, pieces_space, pieces_inner, capital):
    """A made-up value built from vocab pieces, so every piece is trained as part of a copied value."""
    word = rng.choice(pieces_space) + "".join(rng.choice(pieces_inner) for _ in range(rng.randint(0, 2)))
    return word.capitalize() if capital else word.lower()


def _augment(record, rng, pieces_space, pieces_inner):
    old = record["answer"]
    if old.isdigit():
        return record
    new = _random_word(rng, pieces_space, pieces_inner, old[:1].isupper())
    pattern = re.compile(r"(?<!\w)" + re.escape(old) + r"(?!\w)", re.IGNORECASE)

    def sub(text):
        return pattern.sub(lambda m: new.capitalize() if m.group(0)[:1].isupper() else new, text)

    history = [{"user": sub(t["user"]), "assistant": sub(t["assistant"])} for t in record["history"]]
    return {**record, "history": history, "reply": sub(record["reply"]), "answer": new}


def _alpha_pieces(tok):
    space, inner = [], []
    for token in tok.get_vocab():
        text = tok.decode([tok.token_to_id(token)])
        if text.startswith(" ") and text[1:].isalpha():
            space.append(text[1:])
        elif text.isalpha():
            inner.append(text)
    return sorted(space), sorted(inner)


def prepare(args, tok, n_records):
    """Tokenized train records (ids, per-token loss weights) and the batches of every step, cached."""
    path = os.path.join(args.work, f"data-{args.data_seed}-{n_records}.pt")
    if os.path.exists(path):
        return torch.load(path)
    rng = random.Random(args.seed)
    space, inner = _alpha_pieces(tok)
    records = data.generate("train", args.data_seed, n_records)
    seqs = []
    for r in records:
        if rng.random() < AUGMENT_FRACTION:
            r = _augment(r, rng, space, inner)
        ids, targets, final_start = encode_chat(tok, r["history"], r["question"], r["reply"])
        weights = [(FINAL_REPLY_WEIGHT if i >= final_start else 1.0) if t else 0.0 for i, t in enumerate(targets)]
        seqs.append((torch.tensor(ids, dtype=torch.int16), torch.tensor(weights, dtype=torch.float16)))
    # batches of similar lengths (less padding), in a seeded order
    order = list(range(len(seqs)))
    rng.shuffle(order)
    batches = []
    chunk = args.batch * 64
    for c in range(0, len(order), chunk):
        part = sorted(order[c : c + chunk], key=lambda i: len(seqs[i][0]))
        group = [part[b : b + args.batch] for b in range(0, len(part), args.batch)]
        rng.shuffle(group)
        batches.extend(g for g in group if len(g) == args.batch)
    blob = {"seqs": seqs, "batches": batches}
    torch.save(blob, path)
    return blob


def collate(seqs, batch, pad_id):
    n = max(len(seqs[i][0]) for i in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    weights = torch.zeros((len(batch), n))
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for row, i in enumerate(batch):
        s, w = seqs[i]
        ids[row, : len(s)] = s.long()
        weights[row, : len(s)] = w.float()
        mask[row, : len(s)] = 1
    return ids, weights, mask


def loss_of(model, ids, weights, mask):
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    # weights[t] is the weight of predicting token t, from position t-1
    w = weights[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
    return (ce * w.reshape(-1)).sum() / w.sum()


# --- training --------------------------------------------------------------------------------------


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model, args):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95)
    )


def get_tokenizer(args):
    from tokenizers import Tokenizer

    tok_dir = args.init or os.path.join(args.work, "tokenizer")
    if not args.init and not os.path.exists(os.path.join(tok_dir, "tokenizer.json")):
        write_tokenizer_files(train_tokenizer(args.vocab, args.data_seed, 20000), tok_dir, 1024)
    return Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json")), tok_dir


def bench(args):
    from transformers import LlamaForCausalLM

    torch.set_num_threads(args.threads)
    tok, _ = get_tokenizer(args)
    blob = prepare(args, tok, 2000)
    sizes = [(128, 4, 4, 2), (160, 4, 5, 1), (192, 5, 6, 2), (256, 6, 8, 2)]
    if os.environ.get("BENCH_SIZES"):
        sizes = [tuple(map(int, s.split("x"))) for s in os.environ["BENCH_SIZES"].split(",")]
    for hidden, layers, heads, kv in sizes:
        a = argparse.Namespace(**{**vars(args), "hidden": hidden, "layers": layers, "heads": heads, "kv_heads": kv})
        torch.manual_seed(0)
        model = LlamaForCausalLM(model_config(a, tok.get_vocab_size(), tok))
        opt = make_optimizer(model, a)
        n_params = sum(p.numel() for p in model.parameters())
        tokens, t0 = 0, None
        for step, batch in enumerate(blob["batches"][:8]):
            if step == 2:
                tokens, t0 = 0, time.time()
            ids, w, m = collate(blob["seqs"], batch, tok.token_to_id(PAD))
            loss = loss_of(model, ids, w, m)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tokens += ids.numel()
        rate = tokens / (time.time() - t0)
        print(json.dumps({"hidden": hidden, "layers": layers, "heads": heads, "kv_heads": kv, "params": n_params,
                          "tokens_per_s": round(rate)}), flush=True)


def save_checkpoint(path, model, opt, step):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "rng": torch.get_rng_state(), "py_rng": random.getstate()}, tmp)
    os.replace(tmp, path)


def train(args):
    from transformers import LlamaForCausalLM

    torch.set_num_threads(args.threads)
    os.makedirs(args.work, exist_ok=True)
    tok, tok_dir = get_tokenizer(args)
    blob = prepare(args, tok, args.records)
    assert len(blob["batches"]) >= args.steps, "not enough batches"
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    config = model_config(args, tok.get_vocab_size(), tok)
    model = LlamaForCausalLM.from_pretrained(args.init) if args.init else LlamaForCausalLM(config)
    config = model.config
    opt = make_optimizer(model, args)
    ckpt = os.path.join(args.work, "checkpoint.pt")
    log_path = os.path.join(args.work, "loss.jsonl")
    step = 0
    if os.path.exists(ckpt):
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        torch.set_rng_state(state["rng"])
        random.setstate(state["py_rng"])
        print(f"resumed at step {step}", flush=True)
        # drop log lines past the checkpoint (they are redone)
        if os.path.exists(log_path):
            with open(log_path) as f:
                lines = [ln for ln in f if json.loads(ln)["step"] <= step]
            with open(log_path, "w") as f:
                f.writelines(lines)
    elif os.path.exists(log_path):
        os.remove(log_path)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params}, vocab {config.vocab_size}, steps {args.steps}", flush=True)
    model.train()
    pad = tok.token_to_id(PAD)
    last_ckpt = time.time()
    log = open(log_path, "a")
    while step < args.steps:
        t0 = time.time()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        ids, w, m = collate(blob["seqs"], blob["batches"][step], pad)
        loss = loss_of(model, ids, w, m)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        dt = time.time() - t0
        log.write(json.dumps({"step": step, "loss": round(loss.item(), 5), "lr": opt.param_groups[0]["lr"],
                              "tokens": ids.numel(), "seconds": round(dt, 4)}) + "\n")
        if step % 50 == 0:
            log.flush()
            print(f"step {step} loss {loss.item():.4f} {ids.numel() / dt:.0f} tok/s", flush=True)
        if time.time() - last_ckpt > args.checkpoint_minutes * 60 or step == args.steps:
            log.flush()
            save_checkpoint(ckpt, model, opt, step)
            plot.write_loss_svg(log_path, os.path.join(args.work, "loss.svg"))
            last_ckpt = time.time()
    log.close()
    export(model, tok_dir, args)
    evaluate(args)


def export(model, tok_dir, args):
    """The Hugging Face layout in --out: config, F32 weights, tokenizer files, generation config."""
    import shutil

    from transformers import GenerationConfig

    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    cfg_path = os.path.join(args.out, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    # transformers 5 nests rope_theta under rope_parameters; older readers (ccmem) look at the top level
    cfg["rope_theta"] = float(model.config.rope_parameters["rope_theta"]) if getattr(model.config, "rope_parameters", None) else 10000.0
    cfg["torch_dtype"] = "float32"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    GenerationConfig(bos_token_id=model.config.bos_token_id, eos_token_id=model.config.eos_token_id,
                     pad_token_id=model.config.pad_token_id).save_pretrained(args.out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, name), os.path.join(args.out, name))
    print(f"exported to {args.out}", flush=True)


def whole_word(word, text):
    return re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", text, re.IGNORECASE) is not None


def evaluate(args, split="validation"):
    """Greedy recall accuracy with the whole chat in context, tokenized as ccmem feeds it."""
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    torch.set_num_threads(args.threads)
    tok = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
    model = LlamaForCausalLM.from_pretrained(args.out).eval()
    end = tok.token_to_id(END)
    records = data.generate(split, 7, args.eval_count)
    correct, by_kind = 0, {}
    with torch.no_grad():
        for r in records:
            ids, _, _ = encode_chat(tok, r["history"], r["question"])
            out = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False, eos_token_id=end,
                                 pad_token_id=end)
            reply = tok.decode(out[0, len(ids):].tolist(), skip_special_tokens=True)
            ok = whole_word(r["answer"], reply)
            correct += ok
            k = by_kind.setdefault(r["kind"], [0, 0])
            k[0] += ok
            k[1] += 1
    result = {"split": split, "seed": 7, "n": len(records), "accuracy": correct / len(records),
              "by_kind": {k: v[0] / v[1] for k, v in sorted(by_kind.items())}}
    print(json.dumps(result), flush=True)
    with open(os.path.join(args.work, f"eval-{split}.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def main():
    args = parse_args()
    if args.bench:
        bench(args)
    elif args.eval_only:
        evaluate(args)
        evaluate(args, "test")
    else:
        train(args)


if __name__ == "__main__":
    main()
