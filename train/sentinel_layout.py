"""Rows, positions, mask and labels of sentinel-span training (sentinel.md section 3), and the spans ccmem's
sentinel policy picks in a chat (src/memory/sentinel.ts sentenceSpans): mirrors src/memory/masks.ts.

A text with spans [start, end) becomes  a b <CL> s1 s2 s3 <CR> c ...  <CL> = id V, <CR> = id V + 1.
"""

import re
from dataclasses import dataclass

import torch

from ccm_layout import IGNORE

TEXT, OPEN, SPAN, CLOSE = 1, 2, 3, 4  # 0 is padding


@dataclass
class SentinelSample:
    ids: list
    positions: list
    kinds: list
    span: list  # span index of open/span/close rows, -1 otherwise
    labels: list


def sentence_ends(codec, vocab):
    """Ids whose text ends a sentence (. ! ? or a newline), as ccmem's CLI gives its sentinel policy."""
    ends = set()
    for i in range(vocab):
        if re.search(r"[.!?\n]$", codec.tok.decode([i], skip_special_tokens=True)):
            ends.add(i)
    return ends


def sentence_spans(ids, ends, recent=32, max_span=25, bos=None):
    """src/memory/sentinel.ts sentenceSpans with no earlier spans: every finished sentence ending before
    the `recent` last tokens, cut into near-equal pieces of at most max_span; pieces of one token dropped."""
    out, start = [], 0
    for i in range(len(ids) - recent):
        if ids[i] == bos:
            start = i + 1
        elif ids[i] in ends:
            length = i + 1 - start
            pieces = -(-length // max_span)
            for k in range(pieces):
                a, b = start + (k * length) // pieces, start + ((k + 1) * length) // pieces
                if b - a >= 2:
                    out.append((a, b))
            start = i + 1
    return out


def build_sentinel(text_ids, text_labels, spans, vocab):
    """Rows of `text_ids` with `spans` wrapped; `text_labels[i]` is the target predicted at text token i
    (the next text token, or IGNORE). Sentinel rows take no loss, so a target that would be a sentinel
    is the next real token (sentinel.md section 3)."""
    s = SentinelSample([], [], [], [], [])

    def push(token, position, kind, span, label=IGNORE):
        s.ids.append(token)
        s.positions.append(position)
        s.kinds.append(kind)
        s.span.append(span)
        s.labels.append(label)

    nxt = 0
    for k, (start, end) in enumerate(spans):
        if start < nxt or end <= start or end > len(text_ids):
            raise ValueError(f"span {k} [{start}, {end}) is empty, out of order or outside the text")
        for i in range(nxt, start):
            push(text_ids[i], i, TEXT, -1, text_labels[i])
        push(vocab, max(start - 1, 0), OPEN, k)
        for i in range(start, end):
            push(text_ids[i], i, SPAN, k, text_labels[i])
        push(vocab + 1, end - 1, CLOSE, k)
        nxt = end
    for i in range(nxt, len(text_ids)):
        push(text_ids[i], i, TEXT, -1, text_labels[i])
    return s


def sentinel_visible(kinds, span):
    """[B, S, S] bool (src/memory/masks.ts sentinelVisible): text and span rows see earlier text and
    <CR> rows, span rows also their own span's earlier tokens; <CR> sees its span, <CL> and itself; <CL>
    only itself. Padding rows (kind 0, last) see themselves."""
    S = kinds.shape[1]
    causal = torch.ones(S, S, dtype=torch.bool, device=kinds.device).tril()
    q_kind, k_kind = kinds[:, :, None], kinds[:, None, :]
    same_span = (span[:, :, None] == span[:, None, :]) & (span[:, :, None] >= 0)
    ordinary = (k_kind == TEXT) | (k_kind == CLOSE) | ((k_kind == SPAN) & same_span)
    seen = torch.where(q_kind == CLOSE, same_span, ordinary)
    eye = torch.eye(S, dtype=torch.bool, device=kinds.device)[None]
    seen = torch.where((q_kind == OPEN) | (q_kind == 0), eye, seen)
    return causal & seen


def collate_sentinel(samples, device="cpu"):
    S = max(len(s.ids) for s in samples)

    def tensor(field, fill):
        out = torch.full((len(samples), S), fill, dtype=torch.long)
        for b, s in enumerate(samples):
            out[b, : len(getattr(s, field))] = torch.tensor(getattr(s, field), dtype=torch.long)
        return out.to(device)

    kinds, span = tensor("kinds", 0), tensor("span", -1)
    return {
        "ids": tensor("ids", 0),
        "positions": tensor("positions", 0),
        "gates": kinds > 0,  # ungated: the LoRA is on for every real row
        "mask": sentinel_visible(kinds, span)[:, None],
        "labels": tensor("labels", IGNORE),
        "sums": None,
    }
