// The single-range HTTP reads the engine's URL model source makes, as both local static servers (the Vite
// dev server of the browser tests, bench/peers-server.ts) answer them.

/**
 * One `bytes=` range of a `size`-byte file as inclusive [start, end]; null when there is none (or it is
 * not a single byte range: the whole file is sent), 'unsatisfiable' when it starts past the end.
 */
export function parseRange(header: string | undefined, size: number): [number, number] | null | 'unsatisfiable' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return null;
  const start = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
  const end = m[1] === '' || m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start <= end ? [start, end] : 'unsatisfiable';
}
