// CPU reference for the residual add.
export function addRef(x: Float32Array, y: Float32Array, n: number): Float32Array {
  const out = x.slice();
  for (let i = 0; i < n; i++) out[i] = (x[i] as number) + (y[i] as number);
  return out;
}
