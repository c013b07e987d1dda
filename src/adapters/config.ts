// Validation of a project adapter config (adapter_config.json, or a config a PEFT import or a test made)
// into a typed AdapterConfig: every field checked, a MODEL_FORMAT or UNSUPPORTED_MODEL error naming the
// first wrong one.
import { modelFormat, unsupportedModel } from '../errors.js';
import {
  ADAPTER_FORMAT,
  ADAPTER_VERSION,
  type AdapterConfig,
  type AdapterMethod,
  type BaseModelInfo,
  type CompMode,
  embeddingRowsFor,
  LORA_TARGETS,
  type LoraTarget,
} from './types.js';

const METHODS: readonly AdapterMethod[] = ['ccm', 'sentinel', 'lora'];
const MODES: readonly CompMode[] = ['concat', 'merge'];

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
const isTokenId = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

function field<T>(where: string, name: string, value: unknown, ok: (v: unknown) => boolean, what: string): T {
  if (!ok(value)) throw modelFormat(`${where}: "${name}" must be ${what}, found ${JSON.stringify(value)}`);
  return value as T;
}

const BASE_INTS = ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const;

/** The fields of a baseModel object that are present, each validated. */
export function parseBaseModel(raw: unknown, where: string): Partial<BaseModelInfo> {
  const b = field<Json>(where, 'baseModel', raw, isObject, 'an object');
  const out: Partial<BaseModelInfo> = {};
  for (const key of BASE_INTS) {
    if (b[key] !== undefined) out[key] = field(where, `baseModel.${key}`, b[key], isPositiveInt, 'a positive integer');
  }
  for (const key of ['architecture', 'name'] as const) {
    if (b[key] !== undefined)
      out[key] = field(where, `baseModel.${key}`, b[key], (v) => typeof v === 'string', 'a string');
  }
  return out;
}

/** Validates a project adapter config (parsed JSON or a typed object) and returns a fresh typed copy. */
export function parseAdapterConfig(raw: unknown, where: string): AdapterConfig {
  if (!isObject(raw)) throw modelFormat(`${where}: expected a JSON object`);
  const c = raw;
  if (c.format !== ADAPTER_FORMAT) {
    throw modelFormat(`${where}: "format" is ${JSON.stringify(c.format)}, expected "${ADAPTER_FORMAT}"`);
  }
  if (c.version !== ADAPTER_VERSION) {
    throw unsupportedModel(
      `${where}: adapter format version ${JSON.stringify(c.version)}; this engine reads version ${ADAPTER_VERSION}`,
    );
  }
  if (!METHODS.includes(c.method as AdapterMethod)) {
    throw unsupportedModel(
      `${where}: unknown adapter method ${JSON.stringify(c.method)} (known: ${METHODS.join(', ')})`,
    );
  }
  const method = c.method as AdapterMethod;
  const rank = field<number>(where, 'rank', c.rank, isPositiveInt, 'a positive integer');
  const isAlpha = (v: unknown) => typeof v === 'number' && v > 0 && Number.isFinite(v);
  const alpha = field<number>(where, 'alpha', c.alpha, isAlpha, 'a positive number');
  const isTargets = (v: unknown) =>
    Array.isArray(v) && v.length > 0 && v.every((t) => LORA_TARGETS.includes(t)) && new Set(v).size === v.length;
  const targets = field<LoraTarget[]>(
    where,
    'targets',
    c.targets,
    isTargets,
    'a non-empty list of distinct q, k, v, o',
  );
  const compTokens = field<number>(where, 'compTokens', c.compTokens, isTokenId, 'a non-negative integer');
  if (method === 'ccm' ? compTokens < 1 : compTokens !== (method === 'sentinel' ? 1 : 0)) {
    throw modelFormat(
      `${where}: a ${method} adapter cannot have compTokens ${compTokens} (ccm: at least 1, sentinel: 1, lora: 0)`,
    );
  }
  const mode =
    method === 'ccm'
      ? field<CompMode>(where, 'mode', c.mode, (v) => MODES.includes(v as CompMode), '"concat" or "merge"')
      : field<undefined>(where, 'mode', c.mode, (v) => v === undefined, `absent for a ${method} adapter`);
  const sink = field<boolean>(where, 'sink', c.sink, (v) => typeof v === 'boolean', 'true or false');
  const isSeparators = (v: unknown) =>
    isObject(v) && Object.values(v).every((ids) => Array.isArray(ids) && ids.every(isTokenId));
  const separators = field<Json>(where, 'separators', c.separators, isSeparators, 'an object of token id lists');
  const rows = embeddingRowsFor(method, compTokens, mode);
  if (c.embeddingRows !== rows) {
    throw modelFormat(
      `${where}: "embeddingRows" is ${JSON.stringify(c.embeddingRows)}, but a ${method}${mode ? ` ${mode}` : ''} ` +
        `adapter with compTokens ${compTokens} has ${rows}`,
    );
  }
  const base = parseBaseModel(c.baseModel, where);
  for (const key of ['hiddenSize', 'numLayers'] as const) {
    if (base[key] === undefined) throw modelFormat(`${where}: "baseModel.${key}" is missing`);
  }
  return {
    format: ADAPTER_FORMAT,
    version: ADAPTER_VERSION,
    method,
    rank,
    alpha,
    targets: [...targets],
    compTokens,
    ...(mode ? { mode } : {}),
    sink,
    separators: Object.fromEntries(Object.entries(separators).map(([k, ids]) => [k, [...(ids as number[])]])),
    embeddingRows: rows,
    baseModel: base as BaseModelInfo,
  };
}
