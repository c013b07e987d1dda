// The framed export layout (src/util/frame.ts) on the CPU: a round trip, the exact bytes, and each fault
// decoding names, in the order it checks them.
import { describe, expect, it } from 'vitest';
import { invalidInput } from '../../src/errors.js';
import { decodeFrame, encodeFrame, type FrameFormat } from '../../src/util/frame.js';

const FORMAT: FrameFormat = { magic: 0x54534554, version: 3, what: 'test', json: 'header' };
const bad = (why: string) => invalidInput(`cannot import: ${why}`);

/** `frame` with its bytes at `at` replaced and the digest made again, so only that change is wrong. */
async function resigned(frame: Uint8Array, at: number, value: number): Promise<Uint8Array> {
  const out = frame.slice();
  new DataView(out.buffer).setUint32(at, value, true);
  const body = out.subarray(0, out.length - 32);
  out.set(new Uint8Array(await crypto.subtle.digest('SHA-256', body)), body.length);
  return out;
}

describe('frames', () => {
  it('round-trip JSON (through replacer and reviver) and a payload of several parts', async () => {
    const parts = [new Float32Array([1.5, -2]), new Uint8Array([7, 8, 9]).subarray(1)];
    const big = (_: string, v: unknown) => (v === Number.POSITIVE_INFINITY ? 'Infinity' : v);
    const frame = await encodeFrame(FORMAT, { a: 1, budget: Number.POSITIVE_INFINITY }, parts, big);
    const text = '{"a":1,"budget":"Infinity"}';
    expect(frame.length).toBe(12 + text.length + 8 + 2 + 32);
    const view = new DataView(frame.buffer);
    expect([view.getUint32(0, true), view.getUint32(4, true), view.getUint32(8, true)]).toEqual([0x54534554, 3, 27]);
    expect(new TextDecoder().decode(frame.subarray(12, 12 + text.length))).toBe(text);
    const back = (_: string, v: unknown) => (v === 'Infinity' ? Number.POSITIVE_INFINITY : v);
    const { json, payload } = await decodeFrame(frame, FORMAT, bad, back);
    expect(json).toEqual({ a: 1, budget: Number.POSITIVE_INFINITY });
    expect([...new Float32Array(payload.slice(0, 8).buffer)]).toEqual([1.5, -2]);
    expect([...payload.subarray(8)]).toEqual([8, 9]);
  });

  it('name the first fault: size, digest, magic, version, JSON length', async () => {
    const frame = await encodeFrame(FORMAT, { a: 1 }, [new Uint8Array(4)]);
    const refused = (bytes: Uint8Array) => decodeFrame(bytes, FORMAT, bad);
    await expect(refused(frame.subarray(0, 43))).rejects.toThrow('cannot import: 43 bytes is too short');
    const flipped = frame.slice();
    flipped[14] = (flipped[14] as number) ^ 1;
    await expect(refused(flipped)).rejects.toThrow('the checksum does not match (corrupt data)');
    await expect(refused(await resigned(frame, 0, 0x4d4d4343))).rejects.toThrow('not a ccmem test export');
    await expect(refused(await resigned(frame, 4, 4))).rejects.toThrow('format version 4, this build reads 3');
    await expect(refused(await resigned(frame, 8, 1000))).rejects.toThrow('the header runs past the end');
  });
});
