// Attention visibility of the single-pass training sequences that the recurrent engine must reproduce:
// CCM concat and merge (ccm.md section 6) and sentinel spans (sentinel.md section 3, with its positions
// and labels), plus the packer to the GPU mask format. Every mask here lies on top of causal attention.
import { invalidInput } from '../errors.js';
import type { CcmTrainingLayout } from './positions.js';

/** Whether row `query` may attend to row `key`. */
export type Visible = (query: number, key: number) => boolean;

/** Label of a row that takes no loss. */
export const IGNORE_LABEL = -100;

/**
 * The CCM training mask. Every row sees the earlier rows of its own block (c(t), COMP(t), SUM(t) and the
 * separator before c(t)) plus the memory: concat, every earlier COMP row (Mem(t-1) = h(1..t-1)); merge,
 * the previous step's SUM rows (Mem(t-1) = their running mean). `sink`: BOS stays visible to every row.
 */
export function ccmVisible(
  layout: Pick<CcmTrainingLayout, 'mode' | 'kinds' | 'chunk'>,
  options: { sink?: boolean } = {},
): Visible {
  const { kinds, chunk } = layout;
  const memory =
    layout.mode === 'concat'
      ? (_q: number, k: number) => kinds[k] === 'comp'
      : (q: number, k: number) => kinds[k] === 'sum' && chunk[k] === (chunk[q] as number) - 1;
  return (q, k) => k <= q && (chunk[k] === chunk[q] || memory(q, k) || (options.sink === true && kinds[k] === 'bos'));
}

/** u32 words [queries, ceil(keys / 32)] row-major: bit (j % 32) of word j / 32 of row t = t may attend to j. */
export function packMask(queries: number, keys: number, visible: Visible): Uint32Array {
  const words = Math.ceil(keys / 32);
  const out = new Uint32Array(queries * words);
  for (let t = 0; t < queries; t++) {
    for (let j = 0; j < keys; j++) {
      if (visible(t, j)) out[t * words + (j >> 5)] = ((out[t * words + (j >> 5)] as number) | (1 << (j & 31))) >>> 0;
    }
  }
  return out;
}

/** 'open' = `<CL>`, 'close' = `<CR>`, 'span' = a text token inside a span, 'text' = any other text token. */
export type SentinelKind = 'text' | 'open' | 'span' | 'close';

export interface SentinelLayout {
  kinds: SentinelKind[];
  positions: number[];
  /** Index into the text of each text or span row; -1 for sentinels. */
  text: number[];
  /** Index of the span of each open, span and close row; -1 for ordinary text. */
  span: number[];
}

/**
 * Rows and positions of a text of `textLength` tokens with the given spans wrapped as <CL> .. <CR>.
 * Spans are half-open [start, end) text indices, non-empty, ascending and disjoint. Text tokens are
 * numbered ignoring sentinels; <CL> takes the position of the token before the span (0 at the start),
 * <CR> that of the span's last token.
 */
export function sentinelLayout(textLength: number, spans: [start: number, end: number][]): SentinelLayout {
  const layout: SentinelLayout = { kinds: [], positions: [], text: [], span: [] };
  const push = (kind: SentinelKind, position: number, text: number, span: number) => {
    layout.kinds.push(kind);
    layout.positions.push(position);
    layout.text.push(text);
    layout.span.push(span);
  };
  let next = 0; // next text index to emit
  const emitText = (until: number) => {
    for (; next < until; next++) push('text', next, next, -1);
  };
  spans.forEach(([start, end], s) => {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < next || end <= start || end > textLength) {
      throw invalidInput(`sentinel span ${s} [${start}, ${end}) is empty, out of order or outside 0..${textLength}`);
    }
    emitText(start);
    push('open', Math.max(start - 1, 0), -1, s);
    for (; next < end; next++) push('span', next, next, s);
    push('close', end - 1, -1, s);
  });
  emitText(textLength);
  return layout;
}

/** Row ids: the text's ids with `open` / `close` at the sentinel rows. */
export function sentinelIds(layout: SentinelLayout, textIds: number[], open: number, close: number): number[] {
  const textRows = layout.text.filter((i) => i >= 0).length;
  if (textIds.length !== textRows) throw invalidInput(`${textIds.length} text ids for ${textRows} text rows`);
  return layout.kinds.map((kind, r) =>
    kind === 'open' ? open : kind === 'close' ? close : (textIds[layout.text[r] as number] as number),
  );
}

/**
 * The sentinel training mask: text rows see earlier text and earlier <CR>s, never span tokens or <CL>;
 * span rows also see the earlier tokens of their own span (not its <CL>); <CR> sees its <CL>, its span
 * and itself; <CL> sees only itself.
 */
export function sentinelVisible(layout: SentinelLayout): Visible {
  const { kinds, span } = layout;
  return (q, k) => {
    if (k > q) return false;
    switch (kinds[q]) {
      case 'open':
        return k === q;
      case 'close':
        return span[k] === span[q];
      default:
        return kinds[k] === 'text' || kinds[k] === 'close' || (kinds[k] === 'span' && span[k] === span[q]);
    }
  };
}

/**
 * Next-token labels: sentinel rows take no loss, and a target that would be a sentinel is redirected to
 * the next text token (so the token after a span is predicted by the span's last token).
 */
export function sentinelLabels(ids: number[], kinds: SentinelKind[]): number[] {
  if (ids.length !== kinds.length) throw invalidInput(`${ids.length} ids for ${kinds.length} rows`);
  const labels = ids.map(() => IGNORE_LABEL);
  let nextText = IGNORE_LABEL; // id of the first text row after the current one
  for (let r = ids.length - 1; r >= 0; r--) {
    if (kinds[r] === 'text' || kinds[r] === 'span') {
      labels[r] = nextText;
      nextText = ids[r] as number;
    }
  }
  return labels;
}
