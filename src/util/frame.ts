// The framed binary layout of ccmem's exports (a session's memory: src/memory/persist.ts; a chat:
// src/worker/chat-state.ts): magic (u32) | version (u32) | JSON bytes (u32) | JSON | payload | SHA-256
// of everything before it, integers little-endian. Decoding checks the size, the digest, the magic, the
// version and the JSON's length, in that order, and names the first fault.

export interface FrameFormat {
  /** Four ASCII letters read as a little-endian u32, e.g. 0x4d4d4343 for "CCMM". */
  magic: number;
  version: number;
  /** What the frame holds, for errors ("memory": "not a ccmem memory export"). */
  what: string;
  /** What the JSON is, for errors ("header": "the header runs past the end"). */
  json: string;
}

const HEAD = 12;
const DIGEST = 32;

/** `json` (JSON.stringify with `replacer`) and the payload parts, framed as `format` says. */
export async function encodeFrame(
  format: FrameFormat,
  json: unknown,
  payload: readonly ArrayBufferView[],
  replacer?: (key: string, value: unknown) => unknown,
): Promise<Uint8Array> {
  const text = new TextEncoder().encode(JSON.stringify(json, replacer));
  const bodyLength = HEAD + text.length + payload.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(bodyLength + DIGEST);
  const view = new DataView(out.buffer);
  view.setUint32(0, format.magic, true);
  view.setUint32(4, format.version, true);
  view.setUint32(8, text.length, true);
  out.set(text, HEAD);
  let at = HEAD + text.length;
  for (const p of payload) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  out.set(new Uint8Array(await crypto.subtle.digest('SHA-256', out.subarray(0, bodyLength))), bodyLength);
  return out;
}

/**
 * The JSON (parsed with `reviver`) and the payload of a frame; the payload is a view of `bytes`. A
 * fault throws `bad(why)`.
 */
export async function decodeFrame(
  bytes: Uint8Array,
  format: FrameFormat,
  bad: (why: string) => Error,
  reviver?: (key: string, value: unknown) => unknown,
): Promise<{ json: unknown; payload: Uint8Array }> {
  if (bytes.length < HEAD + DIGEST) throw bad(`${bytes.length} bytes is too short`);
  const body = bytes.subarray(0, bytes.length - DIGEST) as Uint8Array<ArrayBuffer>;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  if (!digest.every((d, i) => d === bytes[body.length + i])) throw bad('the checksum does not match (corrupt data)');
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (view.getUint32(0, true) !== format.magic) throw bad(`not a ccmem ${format.what} export`);
  const version = view.getUint32(4, true);
  if (version !== format.version) throw bad(`format version ${version}, this build reads ${format.version}`);
  const length = view.getUint32(8, true);
  if (HEAD + length > body.length) throw bad(`the ${format.json} runs past the end`);
  const json: unknown = JSON.parse(new TextDecoder().decode(body.subarray(HEAD, HEAD + length)), reviver);
  return { json, payload: body.subarray(HEAD + length) };
}
