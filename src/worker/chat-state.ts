// A chat's export: its transcript (what Chat needs to render the next turn) plus the session's memory
// export (src/memory/persist.ts, which checks itself and the model, adapter and policy it was made for).
// A frame (src/util/frame.ts) "CCMC", version 1: the transcript JSON, then the memory export.
import type { ChatState } from '../engine/chat.js';
import { invalidInput } from '../errors.js';
import { decodeFrame, encodeFrame, type FrameFormat } from '../util/frame.js';

const FORMAT: FrameFormat = { magic: 0x434d4343, version: 1, what: 'chat', json: 'transcript' };

export function encodeChatExport(state: ChatState, memory: Uint8Array): Promise<Uint8Array> {
  return encodeFrame(FORMAT, state, [memory]);
}

export async function decodeChatExport(bytes: Uint8Array): Promise<{ state: ChatState; memory: Uint8Array }> {
  const bad = (why: string) => invalidInput(`cannot import the chat: ${why}`);
  if (!(bytes instanceof Uint8Array)) throw bad('not a ccmem chat export');
  const { json, payload } = await decodeFrame(bytes, FORMAT, bad);
  return { state: json as ChatState, memory: payload };
}
