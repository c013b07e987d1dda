// Debian's Chromium as the browser tests and the browser benchmarks start it (never a downloaded build).
export const CHROMIUM = '/usr/bin/chromium';

/** WebGPU enabled, nothing in the background that would touch the network or skew timings. */
export const CHROMIUM_BASE_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
