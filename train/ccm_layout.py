"""Rows, positions, masks and labels of the single-pass CCM training sequence (ccm.md sections 4 and 6).

Mirrors ccmem's src/memory/positions.ts (ccmTrainingLayout) and src/memory/masks.ts (ccmVisible), the
oracle the engine is tested against. A sample is
    c(1) COMP(1) [SUM(1)] c(2) COMP(2) [SUM(2)] ... c(T) COMP(T) [SUM(T)] I
with no separator rows: in a chat the template's role markers are already inside each turn's chunk (the
delta ccmem feeds). With a sink, the first token of c(1) (BOS) stays visible to every row.
"""

from dataclasses import dataclass

import torch

IGNORE = -100
PAD, TEXT, BOS, COMP, SUM = 0, 1, 2, 3, 4


@dataclass
class Sample:
    ids: list
    positions: list
    kinds: list
    # block (0-based step) of each row: t for c(t), COMP(t), SUM(t); T for the input
    blocks: list
    # next-token target predicted at each row (IGNORE where no loss)
    labels: list
    # merge: for each SUM row, the COMP rows whose mean overwrites its K/V
    sums: dict


def build_sample(chunks, chunk_labels, inp, input_labels, n, mode, sink, vocab):
    """`chunks`: token lists c(1..T); `chunk_labels`: per chunk, the target of each of its rows (or IGNORE);
    `inp`/`input_labels`: the input I (and O) likewise. COMP_k is id vocab + k, SUM_k vocab + n + k."""
    if mode not in ("concat", "merge"):
        raise ValueError(f"mode must be concat or merge, got {mode!r}")
    if n < 1:
        raise ValueError(f"COMP tokens per step must be >= 1, got {n}")
    s = Sample([], [], [], [], [], {})
    text = 0  # text rows so far: the position of the next text row

    def push(token, position, kind, block, label=IGNORE):
        s.ids.append(token)
        s.positions.append(position)
        s.kinds.append(kind)
        s.blocks.append(block)
        s.labels.append(label)
        return len(s.ids) - 1

    comp_rows = [[] for _ in range(n)]
    for t, (chunk, labels) in enumerate(zip(chunks, chunk_labels, strict=True)):
        if len(chunk) != len(labels):
            raise ValueError(f"chunk {t}: {len(chunk)} ids, {len(labels)} labels")
        for i, (token, label) in enumerate(zip(chunk, labels)):
            push(token, text, BOS if sink and t == 0 and i == 0 else TEXT, t, label)
            text += 1
        for k in range(n):
            comp_rows[k].append(push(vocab + k, text + k, COMP, t))
        if mode == "merge":
            for k in range(n):
                s.sums[push(vocab + n + k, text + k, SUM, t)] = list(comp_rows[k])
    T = len(chunks)
    for token, label in zip(inp, input_labels, strict=True):
        push(token, text, TEXT, T, label)
        text += 1
    return s


def visible(kinds, blocks, mode, sink):
    """[B, S, S] bool: row q may attend to row k (ccm.md section 6; src/memory/masks.ts ccmVisible). Every
    row sees the earlier rows of its block and the memory: concat, every earlier COMP row; merge, the SUM
    rows of the previous block. Padding rows come last (block -1): no real row sees them, and each sees itself."""
    S = kinds.shape[1]
    causal = torch.ones(S, S, dtype=torch.bool, device=kinds.device).tril()
    same = blocks[:, :, None] == blocks[:, None, :]
    if mode == "concat":
        memory = (kinds == COMP)[:, None, :].expand(-1, S, -1)
    else:
        memory = (kinds == SUM)[:, None, :] & (blocks[:, None, :] == blocks[:, :, None] - 1)
    seen = same | memory
    if sink:
        seen = seen | (kinds == BOS)[:, None, :]
    return causal & seen


def sum_matrix(samples, S, dtype, device):
    """[B, S, S] row-averaging matrix for the SUM overwrite: row r of SUM_k(t) holds 1/(t+1) at the COMP_k
    rows of steps 0..t; identity elsewhere. None when no sample has SUM rows."""
    if not any(s.sums for s in samples):
        return None
    m = torch.zeros(len(samples), S, S, dtype=dtype)
    m[:, range(S), range(S)] = 1
    for b, s in enumerate(samples):
        for row, comps in s.sums.items():
            m[b, row, row] = 0
            m[b, row, comps] = 1.0 / len(comps)
    return m.to(device)


@dataclass
class Batch:
    ids: torch.Tensor  # [B, S] long
    positions: torch.Tensor  # [B, S] long
    kinds: torch.Tensor  # [B, S] long
    blocks: torch.Tensor  # [B, S] long
    labels: torch.Tensor  # [B, S] long
    sums: torch.Tensor | None  # [B, S, S] or None

    @property
    def gates(self):
        """LoRA gate: on for COMP and SUM rows (ccm.md section 3)."""
        return (self.kinds == COMP) | (self.kinds == SUM)


def collate(samples, dtype=torch.float32, device="cpu"):
    """Right-pads samples into one batch (padding rows: kind PAD, block -1, no label)."""
    S = max(len(s.ids) for s in samples)

    def tensor(field, fill):
        out = torch.full((len(samples), S), fill, dtype=torch.long)
        for b, s in enumerate(samples):
            values = getattr(s, field)
            out[b, : len(values)] = torch.tensor(values, dtype=torch.long)
        return out.to(device)

    return Batch(
        ids=tensor("ids", 0),
        positions=tensor("positions", 0),
        kinds=tensor("kinds", PAD),
        blocks=tensor("blocks", -1),
        labels=tensor("labels", IGNORE),
        sums=sum_matrix(samples, S, dtype, device),
    )


def reply_labels(prefix_len, reply, eos):
    """Labels of the rows prefix + reply that train the reply: the prefix's last row predicts reply[0], each
    reply row the next token, the last reply row `eos` (the EOS itself is never a row)."""
    if prefix_len < 1:
        raise ValueError("a reply needs at least one row before it")
    if not reply:
        return [IGNORE] * prefix_len
    return [IGNORE] * (prefix_len - 1) + [reply[0]] + list(reply[1:]) + [IGNORE if eos is None else eos]
