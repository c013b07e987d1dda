// The repetition-penalty set seen[vocab] (u32 0/1). CLEAR: seen[0 .. count) = 0. Otherwise marks
// seen[ids[offset + i]] = 1 for i < count (prompt tokens), ignoring ids outside the set.
struct Params { count: u32, offset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
#if CLEAR
@group(0) @binding(1) var<storage, read_write> seen: array<u32>;
#else
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
#endif

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.count) { return; }
#if CLEAR
  seen[i] = 0u;
#else
  let id = ids[p.offset + i];
  if (id < arrayLength(&seen)) { seen[id] = 1u; }
#endif
}
