// A model together with its adapter: a CCM adapter's LoRA stays separate and row-gated (applied by the
// forward pass); a sentinel or plain LoRA is merged into the weights as they load. CCM and sentinel
// adapters also bring extra embedding rows (COMP, CL/CR), which go to the GPU with their LoRA.

import { loadAdapter } from '../adapters/files.js';
import type { GpuAdapter } from '../adapters/gpu.js';
import { uploadAdapter } from '../adapters/gpu.js';
import { type AdapterUse, impliedByMemory } from '../adapters/peft.js';
import { checkAdapter } from '../adapters/tensors.js';
import type { Adapter } from '../adapters/types.js';
import type { Gpu } from '../gpu/device.js';
import { type LoadedModel, type LoadOptions, loadModel } from './load.js';
import { openSource } from './source.js';

export interface ModelWithAdapter {
  model: LoadedModel;
  adapter: Adapter | undefined;
  /** The gated LoRA and extra rows on the GPU (ccm and sentinel adapters). */
  gpuAdapter: GpuAdapter | undefined;
}

export interface ModelWithAdapterOptions extends Omit<LoadOptions, 'mergeAdapter'> {
  /**
   * The memory policy the adapter is loaded for (a MemoryRequest): an official PEFT adapter, which does not
   * record its mode, COMP count or sink, takes them from there (ccm-merge: merge, ccm-concat/ccm-stream: concat).
   */
  memory?: AdapterUse;
}

export async function loadModelWithAdapter(
  gpu: Gpu,
  modelSpec: string,
  adapterSpec: string | undefined,
  options: ModelWithAdapterOptions = {},
): Promise<ModelWithAdapter> {
  const { memory, ...load } = options;
  // the hub host applies to the adapter too; the revision names the model's
  const adapterSource = adapterSpec && openSource(adapterSpec, { remoteHost: load.remoteHost, fetch: load.fetch });
  const adapter = adapterSource ? await loadAdapter(adapterSource, {}, impliedByMemory(memory)) : undefined;
  const method = adapter?.config.method;
  const model = await loadModel(gpu, modelSpec, { ...load, mergeAdapter: method === 'ccm' ? undefined : adapter });
  try {
    if (adapter) checkAdapter(adapter, model.config);
    const uploaded = method === 'ccm' || method === 'sentinel';
    const gpuAdapter = uploaded ? await uploadAdapter(gpu, adapter!, `adapter:${adapterSpec}`) : undefined;
    return { model, adapter, gpuAdapter };
  } catch (e) {
    gpu.releaseOwner(model.owner);
    throw e;
  }
}
