"""Incremental sentinel-span inference in PyTorch (sentinel.md section 4), the way ccmem's Session runs its
sentinel policy in a chat: each turn is fed causally over every live slot; at the turn's end every finished
sentence older than the `recent` last tokens (src/memory/sentinel.ts sentenceSpans, earlier spans kept) is
compressed: <CL> at the position before the span sees only itself, <CR> at the span's last position sees
<CL>, the span and itself; the span's slots are dropped and <CR>'s K/V takes the span's first slot. The
LoRA is on for every row (ccmem merges it into the weights).
"""

import torch

from ccm_recurrent import Decoder


def sentence_spans_after(ids, spans, ends, recent, max_span, bos):
    """sentenceSpans of src/memory/sentinel.ts: new spans of `ids` given the compressed `spans`."""
    out, start, limit, i = [], 0, len(ids) - recent, 0
    starts = {s: e for s, e in spans}
    while i < limit:
        if i in starts:
            start = starts[i]
            i = starts[i]
            continue
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
        i += 1
    return out


class RecurrentSentinel:
    def __init__(self, model, ends, recent=32, max_span=25, bos=None):
        self.model, self.ends, self.recent, self.max_span, self.bos = model, ends, recent, max_span, bos
        self.kv = None  # per layer (K, V) of the live slots
        self.fed = []  # text ids fed so far (positions = indices)
        self.spans = []  # compressed (start, end) text ranges, ascending

    def _device(self):
        return self.model.embeddings.device

    def _run(self, ids, positions, mask):
        dev = self._device()
        gates = torch.ones(1, len(ids), dtype=torch.bool, device=dev)
        _, present = self.model.hidden(torch.tensor([ids], device=dev), torch.tensor([positions], device=dev),
                                       gates, mask[None, None], past=self.kv, record=True)
        return present

    def slot_of(self, i):
        """Live slot of text index i (outside every span, or a span's first token: its <CR> slot)."""
        return i - sum(e - s - 1 for s, e in self.spans if e <= i)

    def slots(self):
        return 0 if self.kv is None else self.kv[0][0].shape[2]

    @torch.no_grad()
    def feed(self, ids):
        past = self.slots()
        mask = torch.ones(len(ids), past + len(ids), dtype=torch.bool, device=self._device())
        mask[:, past:] = mask[:, past:].tril()
        present = self._run(ids, list(range(len(self.fed), len(self.fed) + len(ids))), mask)
        self.kv = present if self.kv is None else [
            (torch.cat([k, pk], 2), torch.cat([v, pv], 2)) for (k, v), (pk, pv) in zip(self.kv, present)]
        self.fed += list(ids)

    @torch.no_grad()
    def end_turn(self):
        for span in sentence_spans_after(self.fed, self.spans, self.ends, self.recent, self.max_span, self.bos):
            self.compress(*span)

    def compress(self, start, end):
        past, slot, length = self.slots(), self.slot_of(start), end - start
        mask = torch.zeros(2, past + 2, dtype=torch.bool, device=self._device())
        mask[0, past] = True  # <CL>: itself
        mask[1, slot : slot + length] = True  # <CR>: the span, <CL>, itself
        mask[1, past:] = True
        vocab = self.model.vocab
        present = self._run([vocab, vocab + 1], [max(start - 1, 0), end - 1], mask)
        self.kv = [(torch.cat([k[:, :, :slot], pk[:, :, 1:], k[:, :, slot + length :]], 2),
                    torch.cat([v[:, :, :slot], pv[:, :, 1:], v[:, :, slot + length :]], 2))
                   for (k, v), (pk, pv) in zip(self.kv, present)]
        self.spans = sorted(self.spans + [(start, end)])

    def decoder(self):
        return Decoder(self.model, self.kv, len(self.fed), lora=True)
