// The files the CLI reads and writes on the user's behalf (checkpoints, turn lists, data, outputs). A path
// that does not exist or cannot be read or written is the user's input, so it fails with one INVALID_INPUT
// line naming the flag and the path, not with Node's ENOENT stack. (Model and adapter folders go through
// src/model/source.ts, which reports them as MODEL_FORMAT or FETCH errors.)
import { type FileHandle, mkdir, open, writeFile } from 'node:fs/promises';
import { invalidInput } from '../errors.js';

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder, not a file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EEXIST: 'a file of that name is in the way',
  ENAMETOOLONG: 'the name is too long',
};

/** A file-system failure on `path` (given by `what`, e.g. "--turns") as one INVALID_INPUT line. */
export function fileError(what: string, path: string, e: unknown): Error {
  const code = (e as { code?: string }).code;
  const reason = (code && REASONS[code]) ?? (e as Error).message;
  return invalidInput(`${what} ${path}: ${reason}`);
}

const CHUNK = 16 << 20;

/** The bytes of `path`, read in 16 MiB pieces (`onProgress` after each: bytes read, file size). */
export async function readInputFile(
  path: string,
  what: string,
  onProgress?: (loaded: number, total: number) => void,
): Promise<Uint8Array> {
  let file: FileHandle | undefined;
  try {
    file = await open(path, 'r');
    const size = (await file.stat()).size;
    const bytes = new Uint8Array(size);
    for (let done = 0; done < size; ) {
      const { bytesRead } = await file.read(bytes, done, Math.min(CHUNK, size - done), done);
      if (bytesRead === 0) return bytes.subarray(0, done); // the file shrank meanwhile
      done += bytesRead;
      onProgress?.(done, size);
    }
    return bytes;
  } catch (e) {
    throw fileError(what, path, e);
  } finally {
    await file?.close();
  }
}

export async function readTextFile(path: string, what: string): Promise<string> {
  return new TextDecoder().decode(await readInputFile(path, what));
}

/** A JSON file's value; invalid JSON names the file. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  const text = await readTextFile(path, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw invalidInput(`${what} ${path}: invalid JSON (${(e as Error).message})`);
  }
}

export async function writeOutputFile(path: string, data: string | Uint8Array, what: string): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (e) {
    throw fileError(what, path, e);
  }
}

/** Creates folder `path` (and its parents) for output; a file in the way or no permission fails here. */
export async function makeOutputFolder(path: string, what: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    throw fileError(what, path, e);
  }
}
