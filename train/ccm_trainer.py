"""The adapter training loop shared by train/ccm.py and train/sentinel.py.

AdamW over the trainable tensors only (LoRA + embedding rows), cosine schedule with linear warmup, no
weight decay, gradient clipping. Data parallel through torchrun (DistributedDataParallel: gloo on CPU,
nccl on CUDA): each rank takes its own slice of every step's records, so the effective batch is
batch x ranks. A checkpoint (trainable tensors, optimizer, step, RNG states) is written atomically every
few minutes and at the end; a run with the same --out resumes from it. Every step appends one JSON line
to <out>/train_log.jsonl and the loss curve is redrawn as <out>/loss.svg.
"""

import json
import math
import os
import random
import time

import torch
import torch.distributed as dist

from ccm_plot import write_loss_svg

CHECKPOINT = "checkpoint.pt"
LOG = "train_log.jsonl"


def distributed(device):
    """(rank, world, device) — from torchrun's environment when present."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return dist.get_rank(), world, torch.device("cuda", local)
    dist.init_process_group("gloo")
    return dist.get_rank(), world, torch.device(device)


def lr_at(step, steps, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * 0.5 * (1 + math.cos(math.pi * progress))


def _rng_state():
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _named_trainable(model):
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(path, model, optimizer, step, run):
    tmp = path + ".tmp"
    state = {
        "step": step,
        "run": run,
        "trainable": {k: v.detach().cpu() for k, v in _named_trainable(model).items()},
        "optimizer": optimizer.state_dict(),
        "rng": _rng_state(),
    }
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model, optimizer, run):
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["run"] != run:
        diff = {k: (state["run"].get(k), v) for k, v in run.items() if state["run"].get(k) != v}
        raise SystemExit(f"{path} was written by a different run {diff}; pass --restart to start over")
    params = _named_trainable(model)
    with torch.no_grad():
        for name, value in state["trainable"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    _set_rng_state(state["rng"])
    return state["step"]


def _truncate_log(path, step):
    """Keeps the log lines of steps before `step` (a resumed run rewrites the rest)."""
    if not os.path.exists(path):
        return
    lines = [ln for ln in open(path, encoding="utf-8") if ln.strip() and json.loads(ln)["step"] < step]
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)


def train(model, batches, args, run, export, rank=0, world=1, device="cpu", title="adapter training"):
    """Trains `model` (a CcmModel) for args.steps steps. `batches(step, rank, world)` gives the keyword
    arguments of the model's forward for that step; `export()` writes the adapter files (rank 0).
    `run`: the settings a checkpoint must match to be resumed."""
    os.makedirs(args.out, exist_ok=True)
    ckpt, log_path = os.path.join(args.out, CHECKPOINT), os.path.join(args.out, LOG)
    params = model.trainable()
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    start = 0
    if os.path.exists(ckpt) and not args.restart:
        start = load_checkpoint(ckpt, model, optimizer, run)
        if rank == 0:
            print(f"resumed from {ckpt} at step {start}", flush=True)
    elif rank == 0 and os.path.exists(log_path):
        os.remove(log_path)
    if rank == 0:
        _truncate_log(log_path, start)
    net = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    warmup = max(1, round(args.steps * args.warmup))
    model.train()
    last_save = time.time()
    began = time.time()
    end = min(args.steps, args.stop_at) if args.stop_at else args.steps
    for step in range(start, end):
        t0 = time.time()
        lr = lr_at(step, args.steps, args.lr, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = batches(step, rank, world)
        loss_sum, count = net(**batch)
        loss = loss_sum / count.clamp(min=1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, args.clip)
        optimizer.step()
        seconds = time.time() - t0
        rows, labels = int(batch["ids"].numel()), int((batch["labels"] != -100).sum())
        loss_value = float(loss.detach())
        if world > 1:  # totals over the ranks
            totals = [float(loss_sum.detach()), float(count), labels, rows]
            stats = torch.tensor(totals, dtype=torch.float64, device=device)
            dist.all_reduce(stats)
            loss_value, labels, rows = float(stats[0] / stats[1].clamp(min=1)), int(stats[2]), int(stats[3])
        if rank == 0:
            entry = {
                "step": step,
                "loss": round(loss_value, 5),
                "lr": lr,
                "gradNorm": round(float(grad_norm), 5),
                "labels": labels,
                "rows": rows,
                "seconds": round(seconds, 4),
                "rowsPerSecond": round(rows / seconds, 1),
            }
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            if step % args.print_every == 0 or step == args.steps - 1:
                print(json.dumps(entry), flush=True)
        due = time.time() - last_save >= args.checkpoint_minutes * 60
        if due or step == end - 1:
            if rank == 0:
                save_checkpoint(ckpt, model, optimizer, step + 1, run)
                export()
                write_loss_svg(log_path, os.path.join(args.out, "loss.svg"), title)
            last_save = time.time()
    if rank == 0:
        print(f"done: step {end} of {args.steps} ({time.time() - began:.0f} s this run)", flush=True)
    if world > 1:
        dist.destroy_process_group()


def add_training_arguments(parser):
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    parser.add_argument("--batch", type=int, default=16, help="records per step per rank (default 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--warmup", type=float, default=0.03, help="warmup fraction of the steps (default 0.03)")
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed: LoRA init, dropout (default 0)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="base weights' dtype (default float32; bfloat16 for large models on GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--checkpoint-minutes", type=float, default=3.0, help="default 3")
    parser.add_argument("--print-every", type=int, default=10, help="default 10")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--stop-at", type=int, default=0,
                        help="checkpoint and stop at this step; the same command with a later --stop-at (or none) "
                             "continues (default: run to --steps)")
