"""A frozen Hugging Face causal LM (Llama, Mistral, Qwen2) with CCM's trainable parts (ccm.md sections 2-3):
a row-gated LoRA on q/k/v/o and the COMP (and SUM) embedding rows, read by ids >= vocab_size.

The model runs with its own layers (so RoPE, biases and rope scaling are transformers'), but attention
goes through the function registered here as "ccm". Before each forward, `CcmModel` puts on a shared
context what that pass needs: the per-row LoRA gate, the boolean visibility mask, the merge SUM matrix
(applied inside every layer after RoPE, ccm.md section 6) or, for recurrent inference, each layer's past
keys/values (post-RoPE, as ccmem stores them) and a place to record the new ones.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface, AutoModelForCausalLM

TARGETS = ("q", "k", "v", "o")


class CcmContext:
    """What the next forward pass needs; set by CcmModel, read by the attention function and the LoRA."""

    def __init__(self):
        self.gate_rows = None  # flat row indices (into batch * seq) where the LoRA is on
        self.mask = None  # [B, 1, S, K] bool, K = past + S
        self.sums = None  # [B, S, S] or None: K/V of SUM rows := their COMP means
        self.past = None  # per layer (K, V) [B, Hkv, P, d] or None
        self.present = None  # per layer (K, V) of this pass's rows, when a list


def ccm_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    ctx = module.ccm_ctx
    layer = module.layer_idx
    if ctx.sums is not None:
        m = ctx.sums.to(key.dtype)[:, None]
        key = m @ key
        value = m @ value
    if ctx.present is not None:
        ctx.present[layer] = (key, value)
    if ctx.past is not None and ctx.past[layer] is not None:
        past_k, past_v = ctx.past[layer]
        key = torch.cat([past_k, key], dim=2)
        value = torch.cat([past_v, value], dim=2)
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=ctx.mask, dropout_p=dropout, scale=scaling, enable_gqa=True
    )
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register("ccm", ccm_attention)


class GatedLoRA(nn.Module):
    """y = W x (+ b) + g * (alpha / r) * B (A dropout(x)), g = 1 on the context's gated rows only."""

    def __init__(self, base, rank, alpha, dropout, ctx):
        super().__init__()
        self.base = base
        self.ctx = ctx
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=torch.float32))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # PEFT's init; B = 0: a no-op at start
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        y = self.base(x)
        rows = self.ctx.gate_rows
        if rows is None or rows.numel() == 0:
            return y
        flat = y.reshape(-1, y.shape[-1])
        xs = x.reshape(-1, x.shape[-1])[rows].to(self.lora_A.dtype)
        delta = (self.dropout(xs) @ self.lora_A.T) @ self.lora_B.T * self.scale
        return flat.index_add(0, rows, delta.to(y.dtype)).view_as(y)


def comp_init(embed, m):
    """ccm.md section 3: COMP row (m - 1 - k) = mean of the base rows E[k::m]."""
    rows = torch.empty(m, embed.shape[1], dtype=torch.float32)
    for k in range(m):
        rows[m - 1 - k] = embed[k::m].float().mean(0)
    return rows


class CcmModel(nn.Module):
    """The base model (frozen) + gated LoRA + extra embedding rows. `rows` = m (n concat, 2n merge)."""

    def __init__(self, base, rows, rank=8, alpha=16.0, dropout=0.05, targets=TARGETS):
        super().__init__()
        self.base = base
        self.rank, self.alpha, self.targets = rank, float(alpha), tuple(targets)
        self.vocab = base.config.vocab_size
        self.ctx = CcmContext()
        for p in base.parameters():
            p.requires_grad_(False)
        self.loras = nn.ModuleDict()
        for i, layer in enumerate(self.decoder_layers()):
            attn = layer.self_attn
            attn.ccm_ctx = self.ctx
            for t in self.targets:
                wrapped = GatedLoRA(getattr(attn, f"{t}_proj"), rank, alpha, dropout, self.ctx)
                setattr(attn, f"{t}_proj", wrapped)
                self.loras[f"{i}_{t}"] = wrapped
        embed = base.get_input_embeddings().weight
        self.embeddings = nn.Parameter(comp_init(embed.detach(), rows))

    @classmethod
    def load(cls, model_dir, rows, dtype=torch.float32, device="cpu", **lora):
        base = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="ccm", dtype=dtype)
        if base.config.model_type not in ("llama", "mistral", "qwen2"):
            raise ValueError(f"model_type {base.config.model_type!r}: only llama, mistral and qwen2 are supported")
        return cls(base.to(device), rows, **lora).to(device)

    def decoder_layers(self):
        return self.base.model.layers

    def trainable(self):
        return [p for p in self.parameters() if p.requires_grad]

    def embed(self, ids):
        table = self.base.get_input_embeddings()
        base = table(ids.clamp(max=self.vocab - 1))
        extra = ids >= self.vocab
        if not extra.any():
            return base
        rows = self.embeddings.to(base.dtype)[(ids - self.vocab).clamp(min=0)]
        return torch.where(extra[..., None], rows, base)

    def hidden(self, ids, positions, gates, mask, sums=None, past=None, record=False):
        """Final hidden states [B, S, D] of `ids` at RoPE `positions` with the LoRA on where `gates`.
        `past`: per-layer (K, V) every row may see (the mask's first columns); `record`: also return each
        layer's post-RoPE (K, V) of these rows."""
        c = self.ctx
        c.gate_rows = gates.reshape(-1).nonzero().squeeze(1)
        c.mask = mask
        c.sums = sums
        c.past = past
        c.present = [None] * len(self.decoder_layers()) if record else None
        try:
            out = self.base.model(inputs_embeds=self.embed(ids), position_ids=positions, use_cache=False)
            return out.last_hidden_state, c.present
        finally:
            c.gate_rows = c.mask = c.sums = c.past = c.present = None

    def logits(self, hidden):
        return self.base.lm_head(hidden)

    def forward(self, ids, positions, gates, mask, labels, sums=None, weights=None):
        """Weighted sum of next-token cross-entropy over the labelled rows, and their total weight (rows
        weigh 1 unless `weights` [B, S] says otherwise)."""
        h, _ = self.hidden(ids, positions, gates, mask, sums)
        rows = labels != -100
        ce = F.cross_entropy(self.logits(h[rows]).float(), labels[rows], reduction="none")
        if weights is None:
            return ce.sum(), rows.sum()
        w = weights[rows].to(ce.dtype)
        return (ce * w).sum(), w.sum()
