// Environment variables through WASI environ_get, which Envoy fills from the VM's
// `environment_variables` (host_env_keys / key_values) — how provider keys reach a filter without
// being written into envoy.yaml.

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_sizes_get")
declare function environ_sizes_get(count: usize, size: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_get")
declare function environ_get(environ: usize, buf: usize): u16;

/** The value of an environment variable, or null when Envoy did not pass it to the VM. */
export function getEnv(name: string): string | null {
  const sizes = memory.data(16);
  if (environ_sizes_get(sizes, sizes + 4) != 0) return null;
  const count = load<u32>(sizes);
  const size = load<u32>(sizes + 4);
  if (count == 0) return null;
  const ptrs = new ArrayBuffer(<i32>count * 4);
  const buf = new ArrayBuffer(<i32>size);
  if (environ_get(changetype<usize>(ptrs), changetype<usize>(buf)) != 0) return null;
  const prefix = name + "=";
  for (let i: u32 = 0; i < count; i++) {
    const p = load<u32>(changetype<usize>(ptrs) + <usize>i * 4);
    // Each entry is NAME=value\0 inside buf.
    let end = <usize>p;
    const limit = changetype<usize>(buf) + <usize>size;
    while (end < limit && load<u8>(end) != 0) end++;
    const entry = String.UTF8.decodeUnsafe(<usize>p, end - <usize>p);
    if (entry.startsWith(prefix)) return entry.substring(prefix.length);
  }
  return null;
}
