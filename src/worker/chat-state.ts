// A chat's export: its transcript (what Chat needs to render the next turn) plus the session's memory
// export (src/memory/persist.ts, which checks itself and the model, adapter and policy it was made for).
// Layout: "CCMC" | u32 version | u32 transcript bytes | transcript JSON | memory export | SHA-256 of all before.
import type { ChatState } from '../engine/chat.js';
import { invalidInput } from '../errors.js';

const MAGIC = 0x434d4343; // "CCMC" little-endian
const VERSION = 1;
const HEAD = 12;
const DIGEST = 32;

export async function encodeChatExport(state: ChatState, memory: Uint8Array): Promise<Uint8Array> {
  const transcript = new TextEncoder().encode(JSON.stringify(state));
  const body = new Uint8Array(HEAD + transcript.length + memory.length);
  const view = new DataView(body.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, transcript.length, true);
  body.set(transcript, HEAD);
  body.set(memory, HEAD + transcript.length);
  const out = new Uint8Array(body.length + DIGEST);
  out.set(body);
  out.set(new Uint8Array(await crypto.subtle.digest('SHA-256', body)), body.length);
  return out;
}

export async function decodeChatExport(bytes: Uint8Array): Promise<{ state: ChatState; memory: Uint8Array }> {
  const bad = (why: string) => invalidInput(`cannot import the chat: ${why}`);
  if (!(bytes instanceof Uint8Array) || bytes.length < HEAD + DIGEST) throw bad('not a ccmem chat export');
  const body = bytes.slice(0, bytes.length - DIGEST);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  if (!digest.every((d, i) => d === bytes[body.length + i])) throw bad('the checksum does not match (corrupt data)');
  const view = new DataView(body.buffer);
  if (view.getUint32(0, true) !== MAGIC) throw bad('not a ccmem chat export');
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw bad(`format version ${version}, this build reads ${VERSION}`);
  const length = view.getUint32(8, true);
  if (HEAD + length > body.length) throw bad('the transcript runs past the end');
  const state = JSON.parse(new TextDecoder().decode(body.subarray(HEAD, HEAD + length))) as ChatState;
  return { state, memory: body.subarray(HEAD + length) };
}
