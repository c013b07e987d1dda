// An adapter written in the official Context-Memory release layout (PEFT adapter_config.json and a state
// dict with PEFT key names, no "ccmem" section): it records neither the mode nor the COMP count, as released.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PEFT_NAMING } from '../../src/adapters/peft.js';
import { adapterTensors } from '../../src/adapters/tensors.js';
import type { Adapter } from '../../src/adapters/types.js';
import { writeSafetensors } from '../../src/model/safetensors.js';

const PROJECTIONS = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj' } as const;

export function peftFiles(adapter: Adapter): Record<string, string | Uint8Array> {
  const { config } = adapter;
  const tensors = adapterTensors(adapter).map((t) => ({
    name: t.lora ? PEFT_NAMING.lora(t.lora.layer, t.lora.target, t.lora.matrix) : PEFT_NAMING.embeddings[0]!,
    dtype: 'F32' as const,
    shape: t.shape,
    data: t.data,
  }));
  const peftConfig = {
    base_model_name_or_path: config.baseModel.name ?? 'base-model',
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: config.rank,
    lora_alpha: config.alpha,
    lora_dropout: 0.05,
    target_modules: config.targets.map((t) => PROJECTIONS[t]),
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
  };
  return {
    'adapter_config.json': JSON.stringify(peftConfig),
    'adapter_model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
  };
}

/** A temporary folder holding `files`. */
export function writeFolder(files: Record<string, string | Uint8Array>, prefix = 'ccmem-adapter-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}
