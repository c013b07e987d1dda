// The chat demo: loads a model into ccmem's worker (createEngine), streams replies into the log, stops
// them on request, marks replies cut by the token limit, and keeps the conversation in IndexedDB so that
// a reload restores it (stopped turns included, marked). The engine publishes each turn's memory
// statistics on the devtools hook by itself; the <ccm-memory-panel> beside the chat (and the DevTools
// extension) follow it. Load keeps the working model and conversation until the new setup has loaded,
// and asks before a new setup discards the conversation.
import '../src/devtools/panel.js';
import { formatBytes } from '../src/devtools/chart.js';
import { createEngine, type Engine, type EngineChat, isCcmemError, type LoadProgress } from '../src/index.js';
import { followPanel } from './kv-chart.js';
import { forgetChat, loadSavedChat, type SavedMessage, saveChat } from './saved.js';
import {
  type DemoSettings,
  EMBEDDED_NAMES,
  embeddedModel,
  engineOptions,
  loadStoredSettings,
  modelLabel,
  readSettings,
  sendOptions,
  showPolicyFields,
  storeSettings,
  writeSettings,
} from './settings.js';

/** The id this page's engines publish under on the devtools hook (their chats: demo.1, demo.2, ...). */
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
const suggestions = $<HTMLElement>('#suggestions');

interface Current {
  engine: Engine;
  chat: EngineChat;
  /** JSON of the engine options: a saved memory only imports into the same setup. */
  setup: string;
  /** The model and setup as the status line names them. */
  label: string;
  /** Every message shown, stopped turns too (marked): the chat's memory holds the others. */
  transcript: SavedMessage[];
  /** The chat's memory after its last finished turn (saved again beside a stopped turn). */
  memory: Uint8Array | undefined;
}

let current: Current | undefined;
let stopper: AbortController | undefined;

const kvChart = followPanel($<HTMLElement>('#kv-chart'), $('ccm-memory-panel'));

/** For the browser console and the demo's test: the live engine and chat, and the KV chart's uPlot. */
Object.assign(window, {
  ccmemDemo: {
    get kvChart() {
      return kvChart();
    },
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

/** Shown after a reply the token limit ended (finish reason 'length'), not the model. */
const CUT_NOTE = 'cut at the token limit (Max new tokens)';

function addMessage(m: SavedMessage, className?: string): HTMLLIElement {
  const li = document.createElement('li');
  li.classList.add(m.role);
  if (className) li.classList.add(className);
  if (m.stopped) li.classList.add('stopped');
  li.textContent = m.content;
  if (m.cut) markCut(li);
  log.append(li);
  return li;
}

function markCut(li: HTMLLIElement): void {
  li.classList.add('cut');
  li.dataset.note = CUT_NOTE;
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

/** The finished turns of a transcript (stopped ones are not in the memory). */
const finishedTurns = (t: readonly SavedMessage[]) => t.filter((m) => m.role === 'user' && !m.stopped).length;

/** Imports the saved conversation when it was made with the same setup; returns what the status says of it. */
async function restore(cur: Current): Promise<string> {
  const saved = await loadSavedChat();
  if (!saved || saved.setup !== cur.setup) return '';
  try {
    await cur.chat.importMemory(saved.memory);
  } catch (e) {
    showError(e);
    await forgetChat();
    return '';
  }
  cur.transcript = saved.transcript;
  cur.memory = saved.memory;
  for (const m of saved.transcript) addMessage(m, 'restored');
  const stopped = saved.transcript.filter((m) => m.role === 'user' && m.stopped).length;
  const kept = stopped ? ` (and ${stopped} stopped, shown but not in the memory)` : '';
  return ` Restored ${finishedTurns(saved.transcript)} turns${kept} from your last visit.`;
}

/** Loads `settings` in a new engine; the current one (and its conversation) stays until that succeeded. */
async function load(settings: DemoSettings): Promise<void> {
  let options: ReturnType<typeof engineOptions>;
  try {
    options = engineOptions(settings);
  } catch (e) {
    showError(e);
    return;
  }
  const setup = JSON.stringify(options);
  const old = current;
  const turns = old ? old.transcript.filter((m) => m.role === 'user').length : 0;
  if (old && setup !== old.setup && turns > 0) {
    const question = `Loading ${modelLabel(settings)} with the ${settings.policy} policy starts a new conversation: the ${turns} turns here will be discarded. Load it?`;
    if (!window.confirm(question)) return;
  }
  setState('loading');
  errorBox.hidden = true;
  progress.value = 0;
  status.textContent = 'Loading…';
  let engine: Engine;
  try {
    const files = new Map<string, LoadProgress>();
    engine = await createEngine({
      ...options,
      devtools: { id: HOOK_ENGINE },
      onProgress: (p) => {
        files.set(p.file, p);
        showProgress(files, p);
      },
      onError: showError, // a crashed worker or lost device: the engine restarts and restores the chat
    });
  } catch (e) {
    showError(e);
    progress.value = old ? 1 : 0;
    status.textContent = old
      ? `Could not load ${modelLabel(settings)}; still loaded, with its conversation: ${old.label}.`
      : 'Not loaded.';
    setState(old ? 'ready' : 'error');
    return;
  }
  storeSettings(settings); // (a setup that failed to load is not what the next visit starts with)
  // the old engine goes first, so that its chats have left the devtools hook when the new one publishes
  current = undefined;
  await old?.engine.dispose();
  if (old && setup !== old.setup) await forgetChat(); // the conversation the user agreed to discard
  log.replaceChildren();
  const { model, gpu, format, policy, capacity } = engine.info;
  const label =
    `${settings.source === 'custom' ? model : modelLabel(settings)} on ${gpu}: ${format} weights, ` +
    `${policy} policy, ${capacity} cache slots`;
  const cur: Current = { engine, chat: engine.chat(), setup, label, transcript: [], memory: undefined };
  current = cur;
  showSuggestions(settings);
  const restored = await restore(cur);
  progress.value = 1;
  status.textContent = `${label}.${restored}`;
  setState('ready');
}

/** The loaded embedded model's suggested turns as chips that fill the message box (none for a custom model). */
function showSuggestions(settings: DemoSettings): void {
  const embedded = embeddedModel(settings);
  input.placeholder = embedded?.placeholder ?? '';
  const items = (embedded?.suggestions ?? []).flatMap(({ label, turns }) => {
    const group = document.createElement('span');
    group.className = 'group';
    group.textContent = `${label}:`;
    const chips = turns.map((text) => {
      const chip = document.createElement('button');
      chip.type = 'button';
      chip.textContent = text;
      chip.addEventListener('click', () => {
        input.value = text;
        input.focus();
      });
      return chip;
    });
    return [group, ...chips];
  });
  suggestions.replaceChildren(...items);
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
  const question = addMessage({ role: 'user', content: text });
  const reply = addMessage({ role: 'assistant', content: '' }, 'streaming');
  let memory: Uint8Array;
  try {
    for await (const delta of cur.chat.send(text, { ...options, signal: stopper.signal })) reply.textContent += delta;
    const result = await cur.chat.lastResult();
    const cut = result?.finishReason === 'length';
    if (cut) markCut(reply);
    memory = await cur.chat.exportMemory();
    cur.transcript.push({ role: 'user', content: text }, { role: 'assistant', content: result?.text ?? '', cut });
  } catch (e) {
    if (!isCcmemError(e, 'ABORTED')) throw e;
    // the chat is back where it was before this turn: keep the turn in the log (and the save), marked
    question.classList.add('stopped');
    reply.classList.add('stopped');
    memory = cur.memory ?? (await cur.chat.exportMemory());
    const content = reply.textContent ?? '';
    cur.transcript.push({ role: 'user', content: text, stopped: true }, { role: 'assistant', content, stopped: true });
  } finally {
    reply.classList.remove('streaming');
    stopper = undefined;
  }
  cur.memory = memory;
  await saveChat({ setup: cur.setup, memory, transcript: cur.transcript });
  if (current === cur) setState('ready');
}

async function newChat(): Promise<void> {
  const cur = current;
  if (!cur) return;
  setState('loading');
  await forgetChat();
  await cur.chat.dispose();
  cur.chat = cur.engine.chat();
  cur.transcript = [];
  cur.memory = undefined;
  log.replaceChildren();
  setState('ready');
}

$('#embedded-models').replaceChildren(
  ...EMBEDDED_NAMES.map((name) => {
    const label = document.createElement('label');
    const radio = Object.assign(document.createElement('input'), { type: 'radio', name: 'source', value: name });
    label.append(radio, ` ${name} (embedded)`);
    return label;
  }),
);
settingsForm.addEventListener('change', () => showPolicyFields(settingsForm));
settingsForm.addEventListener('submit', (e) => {
  e.preventDefault();
  void load(readSettings(settingsForm));
});
composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || document.body.dataset.state !== 'ready') return;
  input.value = '';
  send(text).catch((err: unknown) => {
    showError(err);
    if (current) setState('ready');
  });
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
