"""Recurrent CCM inference in PyTorch (ccm.md section 5, batch 1), the way ccmem's Session runs it.

Each step forwards the chunk c(t) and its n COMP ids in one call (gate 0 on the chunk, 1 on COMP) over
the memory Mem(t-1); keeps the COMP rows' post-RoPE K/V of every layer; drops the chunk's. Concat appends
them, merge keeps the running mean (mem = (1 - 1/t) mem + (1/t) h, as ccmem's kv_merge kernel); a sink
adapter keeps the conversation's first token (BOS) as slot 0. Positions: ccm.md section 4.
A Decoder over plain causal context (full history, or none) shares the greedy loop.
"""

import torch


def _mask(rows, past, device):
    """Every row sees all past slots, and the rows up to itself."""
    seen = torch.ones(rows, past + rows, dtype=torch.bool, device=device)
    seen[:, past:] = torch.ones(rows, rows, dtype=torch.bool, device=device).tril()
    return seen[None, None]


def _cat(a, b):
    if a is None:
        return b
    return [(torch.cat([ka, kb], 2), torch.cat([va, vb], 2)) for (ka, va), (kb, vb) in zip(a, b, strict=True)]


def _slots(kv, start, end=None):
    return [(k[:, :, start:end], v[:, :, start:end]) for k, v in kv]


class Decoder:
    """Greedy decoding after a fixed past (list of per-layer (K, V), or None) whose next position is `start`;
    the LoRA is off (CCM: gate 0 on text) unless `lora` (a sentinel adapter's, merged in ccmem)."""

    def __init__(self, model, past, start, lora=False):
        self.model = model
        self.past = past
        self.start = start
        self.lora = lora

    def _device(self):
        return self.model.embeddings.device

    def forward(self, ids):
        """Feeds `ids` after the past (positions continue); returns their logits [len, vocab]."""
        dev = self._device()
        rows = len(ids)
        past_len = 0 if self.past is None else self.past[0][0].shape[2]
        positions = torch.arange(self.start, self.start + rows, device=dev)[None]
        gate = torch.full((1, rows), self.lora, dtype=torch.bool, device=dev)
        h, present = self.model.hidden(
            torch.tensor([ids], device=dev), positions, gate, _mask(rows, past_len, dev), past=self.past, record=True
        )
        self.past = _cat(self.past, present)
        self.start += rows
        return self.model.logits(h[0])

    @torch.no_grad()
    def greedy(self, prompt, max_new_tokens, stop_ids):
        """Feeds `prompt`, then decodes greedily until a stop id (not returned) or max_new_tokens."""
        logits = self.forward(prompt)[-1]
        out = []
        for _ in range(max_new_tokens):
            token = int(logits.argmax())
            if token in stop_ids:
                break
            out.append(token)
            if len(out) == max_new_tokens:
                break
            logits = self.forward([token])[-1]
        return out


class RecurrentCcm:
    """Compressed memory of a CcmModel, step by step (ccm.md section 5)."""

    def __init__(self, model, mode, n, sink):
        if mode not in ("concat", "merge"):
            raise ValueError(f"mode must be concat or merge, got {mode!r}")
        self.model, self.mode, self.n, self.sink = model, mode, n, sink
        self.sink_kv = None  # per layer (K, V) of slot 0, or None
        self.memory = None  # per layer (K, V) of the COMP slots
        self.text = 0  # L_t: text tokens consumed so far
        self.turns = 0

    def past(self):
        if self.sink_kv is None:
            return self.memory
        return _cat(self.sink_kv, self.memory) if self.memory is not None else self.sink_kv

    def slots(self):
        past = self.past()
        return 0 if past is None else past[0][0].shape[2]

    @torch.no_grad()
    def compress(self, chunk):
        """One step: read `chunk` over the memory, then its n COMP rows; keep those rows' K/V."""
        model, n, dev = self.model, self.n, self.model.embeddings.device
        ids = list(chunk) + [model.vocab + k for k in range(n)]
        positions = list(range(self.text, self.text + len(chunk))) + [self.text + len(chunk) + k for k in range(n)]
        gates = torch.tensor([[False] * len(chunk) + [True] * n], device=dev)
        past = self.past()
        past_len = 0 if past is None else past[0][0].shape[2]
        _, present = model.hidden(
            torch.tensor([ids], device=dev),
            torch.tensor([positions], device=dev),
            gates,
            _mask(len(ids), past_len, dev),
            past=past,
            record=True,
        )
        h = _slots(present, len(chunk))
        if self.sink and self.sink_kv is None and chunk:
            self.sink_kv = _slots(present, 0, 1)
        self.turns += 1
        t = self.turns
        if self.mode == "merge" and self.memory is not None:
            w = 1.0 / t
            self.memory = [((1 - w) * km + w * kh, (1 - w) * vm + w * vh) for (km, vm), (kh, vh) in zip(self.memory, h)]
        else:
            self.memory = _cat(self.memory, h)
        self.text += len(chunk)

    def decoder(self):
        """A decoder over the memory; the input continues at position L_{t+1}."""
        return Decoder(self.model, self.past(), self.text)
