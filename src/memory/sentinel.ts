// Sentinel span compression on a live cache (sentinel.md section 4). A span of working tokens is read by
// <CL> (seeing only itself, at the position of the token before the span, 0 at the start) and <CR> (seeing
// <CL>, the span and itself, at the position of the span's last token) in one 2-row forward; then the
// span's slots and <CL> are dropped, <CR>'s K/V takes the span's first slot and later slots move left.
// Keys keep their rotations: positions still count every text token, so a session tracks working tokens
// as text (for prefix reuse) plus the spans, which decide the slot of each token.
import { invalidInput } from '../errors.js';
import type { Batch } from '../gpu/batch.js';
import { appendRows, type KvContext, relocate, relocations } from './stream.js';

/** Working-token (text) indices [start, end) compressed into one <CR> slot. */
export interface Span {
  start: number;
  end: number;
}

/** Cache slots the spans give back: each keeps one of its tokens' slots. */
export function savedSlots(spans: readonly Span[]): number {
  return spans.reduce((n, s) => n + s.end - s.start - 1, 0);
}

/** Working slot of text index `i` (a token outside every span, or the first of a span: its <CR> slot). */
export function slotOf(spans: readonly Span[], i: number): number {
  return i - savedSlots(spans.filter((s) => s.end <= i));
}

/** What the working slots hold: the text ids with each span replaced by one `close` id. */
export function slotIds(text: readonly number[], spans: readonly Span[], close: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const span = spans.find((s) => s.start === i);
    if (span) {
      out.push(close);
      i = span.end - 1;
    } else {
      out.push(text[i] as number);
    }
  }
  return out;
}

/** The longest prefix of at most `keep` text tokens that ends outside every span (a span's raw K/V is gone). */
export function prefixOutsideSpans(spans: readonly Span[], keep: number): number {
  const cut = spans.find((s) => s.start < keep && keep < s.end);
  return cut ? cut.start : keep;
}

/** Refuses a span [first, last] that is out of range or holds an earlier <CR> (a span never trained). */
export function checkSpan(spans: readonly Span[], first: number, last: number, length: number): void {
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last < first || last >= length) {
    throw invalidInput(`span [${first}, ${last}] is not a range of the ${length} working tokens`);
  }
  const hit = spans.find((s) => s.start <= last && first < s.end);
  if (hit) {
    throw invalidInput(
      `span [${first}, ${last}] overlaps the compressed span [${hit.start}, ${hit.end - 1}]: ` +
        'a span cannot contain an earlier <CR>',
    );
  }
}

export interface SentenceRule {
  /** Whether a token's text ends a sentence (. ! ? or a newline). */
  isEnd: (id: number) => boolean;
  /** The most recent tokens, never compressed. */
  recent: number;
  maxSpan: number;
  /** Never inside a span (the model's BOS). */
  bos?: number;
}

/**
 * The automatic spans for working text `ids`: every finished sentence of uncompressed tokens that ends
 * before the `recent` most recent tokens, split into near-equal pieces of at most maxSpan tokens. A
 * sentence starts after a sentence end, a compressed span or BOS; single tokens are left (nothing saved).
 */
export function sentenceSpans(ids: readonly number[], spans: readonly Span[], rule: SentenceRule): Span[] {
  const out: Span[] = [];
  const limit = ids.length - rule.recent;
  let start = 0;
  for (let i = 0; i < limit; i++) {
    const span = spans.find((s) => s.start === i);
    if (span) {
      i = span.end - 1;
      start = span.end;
    } else if (ids[i] === rule.bos) {
      start = i + 1;
    } else if (rule.isEnd(ids[i] as number)) {
      const length = i + 1 - start;
      const pieces = Math.ceil(length / rule.maxSpan);
      for (let k = 0; k < pieces; k++) {
        const piece = {
          start: start + Math.floor((k * length) / pieces),
          end: start + Math.floor(((k + 1) * length) / pieces),
        };
        if (piece.end - piece.start >= 2) out.push(piece);
      }
      start = i + 1;
    }
  }
  return out;
}

export interface SpanCompression {
  /** Slots in use. */
  past: number;
  /** Slot of the span's first token and the span's length. */
  slot: number;
  length: number;
  /** Positions of the span's first and last tokens. */
  first: number;
  last: number;
  /** Token ids of <CL> and <CR>. */
  open: number;
  close: number;
}

/** Records the <CL>/<CR> forward and the compaction that leaves <CR>'s K/V in the span's first slot. */
export function compressSpanKv(b: Batch, ctx: KvContext, a: SpanCompression): void {
  const { past, slot, length } = a;
  appendRows(b, ctx, {
    past,
    ids: [a.open, a.close],
    positions: [Math.max(a.first - 1, 0), a.last],
    // <CL> sees itself; <CR> sees <CL>, the span and itself
    visible: (row, j) => j === past || (row === 1 && (j === past + 1 || (j >= slot && j < slot + length))),
    gated: false,
  });
  const tail = Array.from({ length: past - slot - length }, (_, i) => ({ slot: slot + length + i, delta: 0 }));
  relocate(b, ctx, relocations([{ slot: past + 1, delta: 0 }, ...tail], slot));
}
