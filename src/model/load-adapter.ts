// A model together with its adapter: a CCM adapter's LoRA stays separate and row-gated (applied by the
// forward pass); a sentinel or plain LoRA is merged into the weights as they load. CCM and sentinel
// adapters also bring extra embedding rows (COMP, CL/CR), which go to the GPU with their LoRA.
import type { Gpu } from '../gpu/device.js';
import { type Adapter, checkAdapter, loadAdapter } from './adapter.js';
import { uploadAdapter } from './adapter-gpu.js';
import type { GpuAdapter } from './gpu-adapter.js';
import { type LoadedModel, type LoadOptions, loadModel } from './load.js';

export interface ModelWithAdapter {
  model: LoadedModel;
  adapter: Adapter | undefined;
  /** The gated LoRA and extra rows on the GPU (ccm and sentinel adapters). */
  gpuAdapter: GpuAdapter | undefined;
}

export async function loadModelWithAdapter(
  gpu: Gpu,
  modelSpec: string,
  adapterSpec: string | undefined,
  options: Omit<LoadOptions, 'mergeAdapter'> = {},
): Promise<ModelWithAdapter> {
  const adapter = adapterSpec ? await loadAdapter(adapterSpec) : undefined;
  const method = adapter?.config.method;
  const model = await loadModel(gpu, modelSpec, { ...options, mergeAdapter: method === 'ccm' ? undefined : adapter });
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
