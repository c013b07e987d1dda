// The chat demo: loads a model into ccmem's worker (createEngine), streams replies into the log, stops
// them on request, publishes each turn's memory statistics through the devtools hook (which the
// <ccm-memory-panel> beside the chat, and the DevTools extension, follow) and keeps the conversation in
// IndexedDB so that a reload restores it.
import '../src/devtools/panel.js';
import { formatBytes } from '../src/devtools/chart.js';
import { installHook, publishSample } from '../src/devtools/hook.js';
import {
  createEngine,
  type Engine,
  type EngineChat,
  isCcmemError,
  type LoadProgress,
  type Usage,
} from '../src/index.js';
import { forgetChat, loadSavedChat, type SavedChat, saveChat } from './saved.js';
import {
  type DemoSettings,
  engineOptions,
  loadStoredSettings,
  readSettings,
  sendOptions,
  showPolicyFields,
  storeSettings,
  writeSettings,
} from './settings.js';

/** The engine id this page publishes under on the devtools hook; the panel's `engine` attribute. */
const HOOK_ENGINE = 'demo';

const $ = <T extends Element>(selector: string) => document.querySelector<T>(selector)!;
const settingsForm = $<HTMLFormElement>('#settings');
const composer = $<HTMLFormElement>('#composer');
const input = composer.elements.namedItem('text') as HTMLTextAreaElement;
const buttons = {
  load: settingsForm.querySelector<HTMLButtonElement>('button[type=submit]')!,
  send: $<HTMLButtonElement>('#send'),
  stop: $<HTMLButtonElement>('#stop'),
  newChat: $<HTMLButtonElement>('#new-chat'),
};
const progress = $<HTMLProgressElement>('#progress');
const status = $<HTMLElement>('#status');
const errorBox = $<HTMLElement>('#error');
const log = $<HTMLOListElement>('#log');

interface Current {
  engine: Engine;
  chat: EngineChat;
  /** JSON of the engine options: a saved memory only imports into the same setup. */
  setup: string;
  /** The turns the chat holds (stopped ones are not kept: the chat returns to before them). */
  transcript: SavedChat['transcript'];
}

let current: Current | undefined;
let stopper: AbortController | undefined;

/** For the browser console and the demo's test: the live engine and chat. */
Object.assign(window, {
  ccmemDemo: {
    get engine() {
      return current?.engine;
    },
    get chat() {
      return current?.chat;
    },
  },
});

type State = 'loading' | 'ready' | 'generating' | 'error';

function setState(state: State): void {
  document.body.dataset.state = state;
  buttons.load.disabled = state === 'loading' || state === 'generating';
  buttons.send.disabled = state !== 'ready';
  buttons.newChat.disabled = state !== 'ready';
  buttons.stop.disabled = state !== 'generating';
}

function showError(e: unknown): void {
  errorBox.hidden = false;
  errorBox.textContent = isCcmemError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}

function addMessage(role: 'user' | 'assistant', text: string, className?: string): HTMLLIElement {
  const li = document.createElement('li');
  li.className = className ? `${role} ${className}` : role;
  li.textContent = text;
  log.append(li);
  return li;
}

function showProgress(files: Map<string, LoadProgress>, last: LoadProgress): void {
  let loaded = 0;
  let total = 0;
  for (const f of files.values()) {
    loaded += f.loaded;
    total += f.total;
  }
  progress.value = total ? loaded / total : 0;
  status.textContent = `Loading ${last.file}: ${formatBytes(last.loaded)}${last.total ? ` of ${formatBytes(last.total)}` : ''}`;
}

/** Publishes the chat's statistics (and the turn's speed) for the memory panel. */
async function publishStats(cur: Current, usage?: Usage): Promise<void> {
  const { memory, ledger } = await cur.engine.memory(cur.chat);
  if (memory) publishSample(HOOK_ENGINE, { memory, ledger, ...(usage && { speed: usage }) });
}

/** Imports the saved conversation when it was made with the same setup; returns the turns restored. */
async function restore(cur: Current): Promise<number> {
  const saved = await loadSavedChat();
  if (!saved || saved.setup !== cur.setup) return 0;
  try {
    await cur.chat.importMemory(saved.memory);
  } catch (e) {
    showError(e);
    await forgetChat();
    return 0;
  }
  cur.transcript = saved.transcript;
  for (const m of saved.transcript) addMessage(m.role, m.content, 'restored');
  return saved.transcript.length / 2;
}

async function load(settings: DemoSettings): Promise<void> {
  setState('loading');
  errorBox.hidden = true;
  const old = current;
  current = undefined;
  if (old) {
    installHook().publish({ type: 'reset', engine: HOOK_ENGINE });
    await old.engine.dispose();
  }
  log.replaceChildren();
  progress.value = 0;
  status.textContent = 'Loading…';
  try {
    const options = engineOptions(settings);
    const files = new Map<string, LoadProgress>();
    const engine = await createEngine({
      ...options,
      onProgress: (p) => {
        files.set(p.file, p);
        showProgress(files, p);
      },
      onError: showError, // a crashed worker or lost device: the engine restarts and restores the chat
    });
    const cur: Current = { engine, chat: engine.chat(), setup: JSON.stringify(options), transcript: [] };
    current = cur;
    const turns = await restore(cur);
    const { model, gpu, format, policy, capacity } = engine.info;
    progress.value = 1;
    status.textContent =
      `${settings.source === 'embedded' ? 'stories260K (embedded)' : model} on ${gpu}: ${format} weights, ` +
      `${policy} policy, ${capacity} cache slots${turns ? `. Restored ${turns} turns from your last visit.` : ''}`;
    await publishStats(cur);
    setState('ready');
  } catch (e) {
    showError(e);
    status.textContent = 'Not loaded.';
    setState('error');
  }
}

async function send(text: string): Promise<void> {
  const cur = current;
  if (!cur) return;
  let options: ReturnType<typeof sendOptions>;
  try {
    options = sendOptions(readSettings(settingsForm));
  } catch (e) {
    showError(e);
    return;
  }
  errorBox.hidden = true;
  stopper = new AbortController();
  setState('generating');
  const question = addMessage('user', text);
  const reply = addMessage('assistant', '', 'streaming');
  try {
    for await (const delta of cur.chat.send(text, { ...options, signal: stopper.signal })) reply.textContent += delta;
    const result = await cur.chat.lastResult();
    cur.transcript.push({ role: 'user', content: text }, { role: 'assistant', content: result?.text ?? '' });
    await saveChat({ setup: cur.setup, memory: await cur.chat.exportMemory(), transcript: cur.transcript });
    await publishStats(cur, result?.usage); // after the export, whose readback is in the ledger's peak
  } catch (e) {
    if (!isCcmemError(e, 'ABORTED')) throw e;
    // the chat is back where it was before this turn: show the turn as dropped
    question.classList.add('stopped');
    reply.classList.add('stopped');
  } finally {
    reply.classList.remove('streaming');
    stopper = undefined;
    if (current === cur) setState('ready');
  }
}

async function newChat(): Promise<void> {
  const cur = current;
  if (!cur) return;
  setState('loading');
  await forgetChat();
  await cur.chat.dispose();
  cur.chat = cur.engine.chat();
  cur.transcript = [];
  log.replaceChildren();
  installHook().publish({ type: 'reset', engine: HOOK_ENGINE });
  await publishStats(cur);
  setState('ready');
}

settingsForm.addEventListener('change', () => showPolicyFields(settingsForm));
settingsForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const settings = readSettings(settingsForm);
  storeSettings(settings);
  void load(settings);
});
composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || document.body.dataset.state !== 'ready') return;
  input.value = '';
  send(text).catch(showError);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    composer.requestSubmit();
  }
});
buttons.stop.addEventListener('click', () => stopper?.abort());
buttons.newChat.addEventListener('click', () => newChat().catch(showError));

writeSettings(settingsForm, loadStoredSettings());
void load(readSettings(settingsForm));
