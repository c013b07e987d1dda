// Import of the official Context-Memory adapters (snu-mllab/Context-Memory, ccm.md section 9): a PEFT
// LoRA adapter_config.json and a safetensors state dict with PEFT key names. This file only translates
// names and config fields into the project format; files.ts reads and validates the result.
// PEFT configs do not say how many COMP tokens, which mode or whether a sink is used: those come from the
// caller's options, an optional "ccmem" object inside adapter_config.json, or else the memory policy the
// adapter is loaded for (in that order).
import { modelFormat, unsupportedModel } from '../errors.js';
import { isObject, type Json } from './config.js';
import type { AdapterMethod, BaseModelInfo, CompMode, LoraTarget, TensorNaming } from './types.js';

/** What a PEFT adapter lacks; also accepted as `"ccmem": {...}` inside its adapter_config.json. */
export interface PeftImportOptions {
  /** Default: 'ccm' when the file has COMP embeddings, else 'lora' (a plain LoRA merged into W at load). */
  method?: AdapterMethod;
  /** Required for ccm: the reference saves concat and merge adapters alike. */
  mode?: CompMode;
  /** Default: the COMP rows the file holds (concat), or half of them (merge: the other half are SUM rows). */
  compTokens?: number;
  /** Default false. Set it for the reference's "sink" adapters, which keep the BOS slot in memory. */
  sink?: boolean;
  /** Token sequences joining chunks (ccm.md section 5). Default: none recorded. */
  separators?: Record<string, number[]>;
  /** Base model facts to record and check (hidden size and layer count are read from the tensors). */
  baseModel?: Partial<BaseModelInfo>;
}

/** The part of a memory request that tells which adapter it runs with (a MemoryRequest fits it). */
export interface AdapterUse {
  policy: string;
  compTokens?: number;
  sink?: boolean;
}

/**
 * What a memory policy implies about a CCM adapter: ccm-merge runs a merge adapter, ccm-concat and
 * ccm-stream a concat one (streaming concatenates, ccm.md section 7), and its COMP count and sink, when
 * given, are the adapter's. Other policies imply nothing.
 */
export function impliedByMemory(use: AdapterUse | undefined): PeftImportOptions {
  if (!use?.policy.startsWith('ccm-')) return {};
  return {
    mode: use.policy === 'ccm-merge' ? 'merge' : 'concat',
    ...(use.compTokens === undefined ? {} : { compTokens: use.compTokens }),
    ...(use.sink === undefined ? {} : { sink: use.sink }),
  };
}

/** Weight files a PEFT adapter folder may hold, in the order they are tried. */
export const PEFT_WEIGHT_FILES = ['adapter_model.safetensors', 'model.safetensors'] as const;
/** Pickle files the reference also ships: they cannot be read here and need converting. */
export const PEFT_PICKLE_FILES = ['adapter_model.bin', 'pytorch_model.bin'] as const;

const PREFIX = 'base_model.model.model.';
export const PEFT_NAMING: TensorNaming = {
  lora: (layer, t, m) => `${PREFIX}layers.${layer}.self_attn.${t}_proj.lora_${m}.weight`,
  // Older reference checkpoints call the COMP rows gist_embeddings.
  embeddings: [`${PREFIX}embed_tokens.comp_embeddings.weight`, `${PREFIX}embed_tokens.gist_embeddings.weight`],
};
const LAYER_OF = /^base_model\.model\.model\.layers\.(\d+)\.self_attn\.[qkvo]_proj\.lora_[AB]\.weight$/;

const MODULES: Record<string, LoraTarget> = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o' };

/** A PEFT LoRA config is recognised by its rank field `r` or its peft_type. */
export const isPeftConfig = (raw: unknown): raw is Json => isObject(raw) && ('r' in raw || 'peft_type' in raw);

/** One more than the highest layer index among the LoRA tensor names (0 when there are none). */
export function peftLayerCount(names: Iterable<string>): number {
  let count = 0;
  for (const name of names) {
    const m = LAYER_OF.exec(name);
    if (m) count = Math.max(count, Number(m[1]) + 1);
  }
  return count;
}

export interface PeftLayout {
  rank: number;
  alpha: number;
  targets: LoraTarget[];
}

/** Reads rank, alpha and targets, refusing every PEFT option that would change the math silently. */
export function peftLayout(c: Json, where: string): PeftLayout {
  const reject = (why: string) => unsupportedModel(`${where}: ${why}`);
  if (c.peft_type !== undefined && c.peft_type !== 'LORA')
    throw reject(`peft_type ${JSON.stringify(c.peft_type)} (only LORA)`);
  if (c.fan_in_fan_out === true) throw reject('fan_in_fan_out true (Conv1D-style weights) is not supported');
  if (c.bias !== undefined && c.bias !== 'none') throw reject(`bias ${JSON.stringify(c.bias)} (only "none")`);
  if (c.use_rslora === true) throw reject('use_rslora true (scale alpha/sqrt(r)) is not supported');
  if (c.use_dora === true) throw reject('use_dora true is not supported');
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    if (isObject(c[key]) && Object.keys(c[key]).length > 0) throw reject(`a per-module ${key} is not supported`);
  }
  const { r: rank, lora_alpha: alpha, target_modules: modules } = c;
  if (!Number.isSafeInteger(rank) || (rank as number) < 1) {
    throw modelFormat(`${where}: "r" must be a positive integer, found ${JSON.stringify(rank)}`);
  }
  if (typeof alpha !== 'number' || !(alpha > 0)) {
    throw modelFormat(`${where}: "lora_alpha" must be a positive number, found ${JSON.stringify(alpha)}`);
  }
  if (!Array.isArray(modules) || modules.length === 0) {
    throw unsupportedModel(`${where}: "target_modules" must be a non-empty list, found ${JSON.stringify(modules)}`);
  }
  const targets = modules.map((m) => {
    // Module names may be given as paths ("self_attn.q_proj"); the last component decides.
    const target = typeof m === 'string' ? MODULES[m.split('.').at(-1) ?? ''] : undefined;
    if (!target) throw reject(`LoRA on ${JSON.stringify(m)} is not supported (only q_proj, k_proj, v_proj, o_proj)`);
    return target;
  });
  return { rank: rank as number, alpha, targets };
}

/**
 * The project config (unvalidated JSON) of a PEFT adapter whose file holds `rows` COMP embedding rows.
 * Its baseModel holds only what the config, the "ccmem" section and the options say; the caller adds
 * what the tensors tell (hidden size, layer count). `implied` (impliedByMemory) fills in the mode, COMP
 * count and sink of a CCM adapter where neither the options nor the section say them.
 */
export function peftToProjectConfig(
  c: Json,
  options: PeftImportOptions,
  layout: PeftLayout,
  rows: number,
  implied: PeftImportOptions = {},
): Json {
  const section = c.ccmem ?? {};
  if (!isObject(section)) throw modelFormat('"ccmem" in a PEFT adapter_config.json must be an object');
  const said = (key: keyof PeftImportOptions): unknown => options[key] ?? section[key];
  const method = said('method') ?? (rows > 0 ? 'ccm' : 'lora');
  const pick = (key: keyof PeftImportOptions): unknown => said(key) ?? (method === 'ccm' ? implied[key] : undefined);
  const mode = pick('mode');
  if (method === 'ccm' && mode === undefined) {
    throw modelFormat(
      'a PEFT CCM adapter does not record its mode: load it for a ccm-concat or ccm-merge memory policy, ' +
        'pass { mode: "concat" | "merge" }, or add "ccmem": { "mode": ... } to adapter_config.json',
    );
  }
  const defaultComp = method === 'ccm' ? (mode === 'merge' ? rows / 2 : rows) : method === 'sentinel' ? 1 : 0;
  const name = typeof c.base_model_name_or_path === 'string' ? { name: c.base_model_name_or_path } : {};
  const sectionBase = isObject(section.baseModel) ? section.baseModel : {};
  return {
    format: 'ccmem-adapter',
    version: 1,
    method,
    ...layout,
    compTokens: pick('compTokens') ?? defaultComp,
    ...(mode === undefined ? {} : { mode }),
    sink: pick('sink') ?? false,
    separators: pick('separators') ?? {},
    embeddingRows: rows,
    baseModel: { ...name, ...sectionBase, ...options.baseModel },
  };
}
