// Small argument helpers shared by the CLI commands: typed parsing with clear INVALID_INPUT errors.
import { invalidInput } from '../errors.js';

export function parseIds(text: string, flag: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const ids = parts.map(Number);
  const bad = parts.findIndex((p, i) => p === '' || !Number.isInteger(ids[i]) || (ids[i] as number) < 0);
  if (bad >= 0) throw invalidInput(`${flag}: "${parts[bad]}" is not a token id (expected e.g. 1,2,3)`);
  return ids;
}

export function parseNumber(text: string | undefined, flag: string, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw invalidInput(`${flag}: "${text}" is not ${integer ? 'an integer' : 'a number'}`);
  }
  return n;
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw invalidInput(`${flag} is required`);
  return value;
}
