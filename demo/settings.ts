/// <reference types="vite/client" />
// The demo's settings form: its defaults, reading and writing it, remembering it across reloads
// (localStorage), and turning it into createEngine options and per-turn send options.

const STORAGE_KEY = 'ccmem-demo/settings';

/**
 * The embedded model: a folder (and its CCM adapter, if the policy needs one) served from public/models
 * (scripts/demo-model.mjs writes it), beside the page's base URL.
 */
export const EMBEDDED = { name: 'stories260K', model: 'models/stories260K/', adapter: '' };

export interface DemoSettings {
  source: 'embedded' | 'custom';
  model: string;
  adapter: string;
  capacity: string;
  policy: 'full' | 'window' | 'ccm-concat' | 'ccm-merge';
  sinks: string;
  window: string;
  evictChunk: string;
  compTokens: string;
  ccmSink: boolean;
  budget: string;
  maxNewTokens: string;
  temperature: string;
  topP: string;
}

/** What a first visit gets (a stored visit keeps its own). The embedded model's policy is the `policy` here. */
export const DEFAULT_SETTINGS: DemoSettings = {
  source: 'embedded',
  model: '',
  adapter: '',
  capacity: '',
  policy: 'window',
  sinks: '4',
  window: '256',
  evictChunk: '',
  compTokens: '',
  ccmSink: false,
  budget: '',
  maxNewTokens: '96',
  temperature: '0.8',
  topP: '0.95',
};

type Field = HTMLInputElement | HTMLSelectElement;

function fields(form: HTMLFormElement): Field[] {
  return [...form.elements].filter((e): e is Field => e instanceof HTMLInputElement || e instanceof HTMLSelectElement);
}

export function readSettings(form: HTMLFormElement): DemoSettings {
  const out: Record<string, string | boolean> = {};
  for (const f of fields(form)) {
    if (f instanceof HTMLInputElement && f.type === 'radio') {
      if (f.checked) out[f.name] = f.value;
    } else if (f instanceof HTMLInputElement && f.type === 'checkbox') out[f.name] = f.checked;
    else out[f.name] = f.value.trim();
  }
  return out as unknown as DemoSettings;
}

export function writeSettings(form: HTMLFormElement, s: Partial<DemoSettings>): void {
  for (const f of fields(form)) {
    const v = (s as Record<string, string | boolean | undefined>)[f.name];
    if (v === undefined) continue;
    if (f instanceof HTMLInputElement && f.type === 'radio') f.checked = f.value === v;
    else if (f instanceof HTMLInputElement && f.type === 'checkbox') f.checked = v === true;
    else f.value = String(v);
  }
  showPolicyFields(form);
}

/** Shows only the parameters of the chosen policy. */
export function showPolicyFields(form: HTMLFormElement): void {
  const policy = (form.elements.namedItem('policy') as HTMLSelectElement).value;
  for (const div of form.querySelectorAll<HTMLElement>('[data-policy]')) {
    div.hidden = !div.dataset.policy?.split(' ').includes(policy);
  }
}

/** The defaults, overridden by what this browser stored on an earlier visit. */
export function loadStoredSettings(): DemoSettings {
  try {
    return { ...DEFAULT_SETTINGS, ...(JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') as Partial<DemoSettings>) };
  } catch {
    return DEFAULT_SETTINGS;
  }
}

export function storeSettings(s: DemoSettings): void {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(s));
}

/** A number field, or undefined when left blank. */
function optional(v: string, what: string): number | undefined {
  if (v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${what} is not a number`);
  return n;
}

function required(v: string, what: string): number {
  const n = optional(v, what);
  if (n === undefined) throw new Error(`${what} is required`);
  return n;
}

const besidePage = (path: string) => new URL(path, new URL(import.meta.env.BASE_URL, location.href)).href;

export function modelUrl(s: DemoSettings): string {
  if (s.source === 'embedded') return besidePage(EMBEDDED.model);
  if (!s.model) throw new Error('enter a hub id (org/name) or the URL of a model folder');
  return s.model;
}

/** The adapter field, or the embedded model's own adapter when the field is left blank. */
function adapterUrl(s: DemoSettings): string | undefined {
  if (s.adapter) return s.adapter;
  return s.source === 'embedded' && EMBEDDED.adapter ? besidePage(EMBEDDED.adapter) : undefined;
}

/** How the status line names the model. */
export const modelLabel = (s: DemoSettings) => (s.source === 'embedded' ? `${EMBEDDED.name} (embedded)` : s.model);

/** createEngine's options (without onProgress); also the identity under which a chat's memory is saved. */
export function engineOptions(s: DemoSettings) {
  const memory =
    s.policy === 'full'
      ? { policy: s.policy }
      : s.policy === 'window'
        ? {
            policy: s.policy,
            sinks: required(s.sinks, 'Sinks'),
            window: required(s.window, 'Window'),
            evictChunk: optional(s.evictChunk, 'Evict chunk'),
          }
        : {
            policy: s.policy,
            compTokens: optional(s.compTokens, 'COMP tokens'),
            sink: s.ccmSink,
            budget: s.policy === 'ccm-concat' ? optional(s.budget, 'Slot budget') : undefined,
          };
  return {
    model: modelUrl(s),
    adapter: adapterUrl(s),
    capacity: optional(s.capacity, 'Cache slots'),
    memory,
  } as const;
}

export function sendOptions(s: DemoSettings) {
  return {
    maxNewTokens: required(s.maxNewTokens, 'Max new tokens'),
    temperature: required(s.temperature, 'Temperature'),
    topP: required(s.topP, 'Top-p'),
  };
}
