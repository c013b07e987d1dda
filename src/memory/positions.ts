// Positions of the compressed context memory (ccm.md section 4) and the row layout of its single-pass
// training sequence (section 6), as pure functions. The rule: text tokens are numbered counting text
// tokens only; COMP_k (and SUM_k) of a step sits at L + k, L = text tokens up to the end of that step's
// chunk; the next text token sits at L again, overlapping the COMP positions on purpose.
import { invalidInput } from '../errors.js';

/** Positions of one recurrent step: the chunk c(t) (gate 0), then its n COMP tokens (gate 1). */
export interface CcmOnlineStep {
  chunk: number[];
  comp: number[];
}

export interface CcmOnlinePositions {
  steps: CcmOnlineStep[];
  /** The input I read after the last step. */
  input: number[];
}

export type CcmMode = 'concat' | 'merge';

/**
 * Row kinds of the training sequence [BOS] c(1) COMP(1) [SUM(1)] sep c(2) ... c(T) COMP(T) [SUM(T)] sep I.
 * 'input' covers everything after the last separator (I, O and EOS).
 */
export type CcmRowKind = 'bos' | 'text' | 'sep' | 'comp' | 'sum' | 'input';

export interface CcmLayoutOptions {
  chunkLengths: number[];
  /** COMP tokens per step. */
  n: number;
  mode: CcmMode;
  inputLength: number;
  /** A BOS row first (default false); it belongs to chunk 0. */
  bos?: boolean;
  /** Separator tokens after every COMP [SUM] group (default 0); they belong to the block that follows. */
  sepLength?: number;
}

/** Row sum[k]'s K/V are the mean of the K/V of rows comps[k] (CCM-merge's SUM trick). */
export interface SumGroup {
  sum: number[];
  comps: number[][];
}

/**
 * One entry per row. The 'bos', 'text', 'sep' and 'input' rows, in order, are the uncompressed text
 * stream, and each one's position is its index in that stream.
 */
export interface CcmTrainingLayout {
  mode: CcmMode;
  n: number;
  kinds: CcmRowKind[];
  positions: number[];
  /**
   * Block of each row (0-based step): t for c(t), its COMP and SUM rows and the separator before it;
   * BOS is in block 0; the last separator and the input are in block T = chunkLengths.length.
   */
  chunk: number[];
  /** k for COMP_k and SUM_k rows, -1 for text rows. */
  comp: number[];
  /** merge: per step t, its SUM rows and for each k the COMP_k rows of steps 0..t; concat: none. */
  sumGroups: SumGroup[];
}

function checkCount(value: number, what: string, min: number): void {
  if (!Number.isInteger(value) || value < min) throw invalidInput(`${what} must be an integer >= ${min}, got ${value}`);
}

const range = (start: number, length: number) => Array.from({ length }, (_, i) => start + i);

/**
 * Positions for the recurrent inference of ccm.md section 5: per step those of c(t) and of its COMP
 * tokens, then those of the input. Throws INVALID_INPUT when a position reaches `maxPositions`.
 */
export function ccmOnlinePositions(
  chunkLengths: number[],
  n: number,
  inputLength: number,
  maxPositions = Number.POSITIVE_INFINITY,
): CcmOnlinePositions {
  checkCount(n, 'COMP tokens per step', 1);
  checkCount(inputLength, 'input length', 0);
  let text = 0;
  const steps = chunkLengths.map((length) => {
    checkCount(length, 'chunk length', 0);
    const chunk = range(text, length);
    text += length;
    return { chunk, comp: range(text, n) };
  });
  const input = range(text, inputLength);
  const last = Math.max(text + inputLength, chunkLengths.length > 0 ? text + n : 0) - 1;
  if (last >= maxPositions) {
    throw invalidInput(`position ${last} exceeds the model's max_position_embeddings (${maxPositions})`);
  }
  return { steps, input };
}

/** Rows, positions and SUM groups of the single training pass of ccm.md section 6. */
export function ccmTrainingLayout(o: CcmLayoutOptions): CcmTrainingLayout {
  const { n, mode } = o;
  const sepLength = o.sepLength ?? 0;
  checkCount(n, 'COMP tokens per step', 1);
  checkCount(o.inputLength, 'input length', 0);
  checkCount(sepLength, 'separator length', 0);
  const layout: CcmTrainingLayout = { mode, n, kinds: [], positions: [], chunk: [], comp: [], sumGroups: [] };
  let text = 0; // text rows so far: the position of the next text row
  const push = (kind: CcmRowKind, position: number, chunk: number, comp = -1) => {
    layout.kinds.push(kind);
    layout.positions.push(position);
    layout.chunk.push(chunk);
    layout.comp.push(comp);
    return layout.kinds.length - 1;
  };
  const pushText = (kind: CcmRowKind, count: number, chunk: number) => {
    for (let i = 0; i < count; i++) push(kind, text++, chunk);
  };
  const compRows: number[][] = range(0, n).map(() => []); // COMP_k rows of every step so far
  if (o.bos) pushText('bos', 1, 0);
  o.chunkLengths.forEach((length, t) => {
    checkCount(length, 'chunk length', 0);
    if (t > 0) pushText('sep', sepLength, t);
    pushText('text', length, t);
    for (let k = 0; k < n; k++) compRows[k]?.push(push('comp', text + k, t, k));
    if (mode === 'merge') {
      const sum = range(0, n).map((k) => push('sum', text + k, t, k));
      layout.sumGroups.push({ sum, comps: compRows.map((rows) => [...rows]) });
    }
  });
  const T = o.chunkLengths.length;
  if (T > 0) pushText('sep', sepLength, T);
  pushText('input', o.inputLength, T);
  return layout;
}
