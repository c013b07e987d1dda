// A tiny WGSL preprocessor (in the manner of web-rwkv's gpp use): `#include "snippet"`, nested
// `#if NAME` / `#if !NAME` / `#else` / `#endif` on boolean defines, and `{{NAME}}` substitution.
// Keeping variants in one .wgsl file per op means f32, native f16 and f16-packed-in-u32 weights share
// one kernel body.

export type Defines = Readonly<Record<string, string | number | boolean>>;

export function preprocess(
  source: string,
  defines: Defines,
  snippets: Readonly<Record<string, string>>,
  depth = 0,
): string {
  if (depth > 8) throw new Error('wgsl preprocess: #include nested too deeply');
  const out: string[] = [];
  const stack: { active: boolean; parentActive: boolean; seenElse: boolean }[] = [];
  const active = () => stack.every((s) => s.active);
  for (const line of source.split('\n')) {
    const t = line.trim();
    const ifMatch = /^#if\s+(!?)(\w+)\s*$/.exec(t);
    if (ifMatch) {
      const value = Boolean(defines[ifMatch[2] as string]);
      const parentActive = active();
      stack.push({ active: ifMatch[1] === '!' ? !value : value, parentActive, seenElse: false });
      continue;
    }
    if (t === '#else') {
      const top = stack.at(-1);
      if (!top || top.seenElse) throw new Error('wgsl preprocess: unexpected #else');
      top.active = !top.active;
      top.seenElse = true;
      continue;
    }
    if (t === '#endif') {
      if (!stack.pop()) throw new Error('wgsl preprocess: unexpected #endif');
      continue;
    }
    if (!active()) continue;
    const inc = /^#include\s+"([\w.-]+)"\s*$/.exec(t);
    if (inc) {
      const name = inc[1] as string;
      const snippet = snippets[name];
      if (snippet === undefined) throw new Error(`wgsl preprocess: unknown snippet "${name}"`);
      out.push(preprocess(snippet, defines, snippets, depth + 1));
      continue;
    }
    if (t.startsWith('#')) throw new Error(`wgsl preprocess: unknown directive "${t}"`);
    out.push(
      line.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
        const v = defines[name];
        if (v === undefined) throw new Error(`wgsl preprocess: {{${name}}} is not defined`);
        return String(v);
      }),
    );
  }
  if (stack.length) throw new Error('wgsl preprocess: missing #endif');
  return out.join('\n');
}
