/// <reference types="vite/client" />
// The demo's settings form: its defaults, reading and writing it, remembering it across reloads
// (localStorage), and turning it into createEngine options and per-turn send options.

const STORAGE_KEY = 'ccmem-demo/settings-2';
/** Where visits before chat-tiny kept their settings (stories260K with the window policy by default). */
const LEGACY_STORAGE_KEY = 'ccmem-demo/settings';

export type PolicyName = 'full' | 'window' | 'ccm-concat' | 'ccm-merge';

/** Suggested user turns, shown as chips that fill the message box, in groups ("Tell it", "Ask", ...). */
export type Suggestions = readonly { label: string; turns: readonly string[] }[];

export interface EmbeddedModel {
  /** The folder beside the page (scripts/demo-model.mjs writes it into public/models). */
  model: string;
  /** The model's CCM adapter folder for each ccm policy it has one for. */
  adapters: Partial<Record<PolicyName, string>>;
  /** The message box's placeholder. */
  placeholder: string;
  suggestions: Suggestions;
}

/**
 * The embedded models: chat-tiny, trained here on synthetic chats in which a user states personal facts and
 * later asks about them (models/README.md), with its ccm-concat and ccm-merge adapters; and stories260K,
 * a TinyStories model that only continues stories. The suggestions follow chat-tiny's training chats
 * (train/data.py): facts stated, small talk, then a question, phrased as the test split phrases them.
 */
export const EMBEDDED = {
  'chat-tiny': {
    model: 'models/chat-tiny/',
    adapters: { 'ccm-concat': 'models/chat-tiny-concat/', 'ccm-merge': 'models/chat-tiny-merge/' },
    placeholder: 'My locker number is 138.',
    suggestions: [
      {
        label: 'Tell it',
        turns: ['My locker number is 138.', 'I am 24 years old.', 'Hi! My name is Grace.', 'I live in Lisbon.'],
      },
      { label: 'Chat', turns: ['How are you today?', 'Tell me a fun fact.', 'The weather is nice today.'] },
      {
        label: 'Ask',
        turns: ['What is my locker number?', 'How old am I?', 'What is my name?', 'Which city do I live in?'],
      },
    ],
  },
  stories260K: {
    model: 'models/stories260K/',
    adapters: {},
    placeholder: 'Once upon a time, there was a little cat',
    suggestions: [{ label: 'Start a story', turns: ['Once upon a time, there was a little cat.'] }],
  },
} as const satisfies Record<string, EmbeddedModel>;

export type EmbeddedName = keyof typeof EMBEDDED;
export const EMBEDDED_NAMES = Object.keys(EMBEDDED) as EmbeddedName[];

export interface DemoSettings {
  /** An embedded model, or the hub id / URL in `model`. */
  source: EmbeddedName | 'custom';
  model: string;
  adapter: string;
  capacity: string;
  policy: PolicyName;
  sinks: string;
  window: string;
  evictChunk: string;
  compTokens: string;
  /** Keep the first token as a sink: '' the adapter's choice (what it was trained with), 'true' or 'false'. */
  ccmSink: '' | 'true' | 'false';
  budget: string;
  maxNewTokens: string;
  temperature: string;
  topP: string;
}

/**
 * What a first visit gets (a stored visit keeps its own): chat-tiny with ccm-concat and its adapter, a
 * budget of 48 memory slots (16 turns of chat-tiny-concat's n = 3; the model was trained on chats of up to 9),
 * so the KV stays flat once it is full; greedy decoding, which recalls best.
 */
export const DEFAULT_SETTINGS: DemoSettings = {
  source: 'chat-tiny',
  model: '',
  adapter: '',
  capacity: '',
  policy: 'ccm-concat',
  sinks: '4',
  window: '256',
  evictChunk: '',
  compTokens: '',
  ccmSink: '',
  budget: '48',
  maxNewTokens: '64',
  temperature: '0',
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

/**
 * The defaults, overridden by what this browser stored on an earlier visit. Settings of visits before
 * chat-tiny carry over only for a model of the user's own: the old embedded default gives way to the new one.
 */
export function loadStoredSettings(): DemoSettings {
  try {
    const legacy = localStorage.getItem(LEGACY_STORAGE_KEY);
    if (legacy !== null) {
      localStorage.removeItem(LEGACY_STORAGE_KEY);
      const old = JSON.parse(legacy) as Partial<DemoSettings>;
      if (old.source === 'custom') storeSettings({ ...DEFAULT_SETTINGS, ...old });
    }
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}') as Partial<DemoSettings>;
    const known = stored.source === undefined || stored.source === 'custom' || stored.source in EMBEDDED;
    return known ? { ...DEFAULT_SETTINGS, ...stored } : DEFAULT_SETTINGS;
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

/** The embedded model the settings pick, if any. */
export const embeddedModel = (s: DemoSettings): EmbeddedModel | undefined =>
  s.source === 'custom' ? undefined : EMBEDDED[s.source];

export function modelUrl(s: DemoSettings): string {
  const embedded = embeddedModel(s);
  if (embedded) return besidePage(embedded.model);
  if (!s.model) throw new Error('enter a hub id (org/name) or the URL of a model folder');
  return s.model;
}

/** The adapter field, or the embedded model's own adapter for the policy when the field is left blank. */
function adapterUrl(s: DemoSettings): string | undefined {
  if (s.adapter) return s.adapter;
  const own = embeddedModel(s)?.adapters[s.policy];
  return own ? besidePage(own) : undefined;
}

/** How the status line names the model. */
export const modelLabel = (s: DemoSettings) => (s.source === 'custom' ? s.model : `${s.source} (embedded)`);

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
            sink: s.ccmSink === '' ? undefined : s.ccmSink === 'true',
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
