// WASI preview1 functions as proxy-wasm-cpp-host provides them (src/exports.cc, FOR_ALL_WASI_FUNCTIONS),
// registered under both wasi_snapshot_preview1 and wasi_unstable. There is no file system:
// fd_write to fd 1/2 goes to the filter's log (info/error), most other calls return an errno.
import { randomFillSync } from "node:crypto";
import { ENVOY_WASI_FUNCTIONS } from "./envoy-abi.mjs";
import { RANDOM_GET_MAX_BYTES } from "./abi.js";
import { WasmTrap } from "./errors.js";
import type { MemView } from "./memory.js";

const ESUCCESS = 0;
const EBADF = 8;
const ENOTDIR = 20;
const EFAULT = 21;
const EINVAL = 28;
const ENOENT = 44;
const ENOSYS = 52;
const ENOTSUP = 58;

export interface WasiHost {
  mem(): MemView;
  /** proxy_log equivalent; level 2 info for stdout, 4 error for stderr (cpp-host writevImpl). */
  log(level: number, message: string): void;
  nowNs(): bigint;
  /** cpp-host logs these through Context::error (Envoy: trace level). */
  error(message: string): void;
  /** Host functions cpp-host allows while _initialize/_start run (WasmBase::startVm). */
  checkAllowed(name: string): void;
  /** The VM's environment (Envoy: vm_config.environment_variables, host_env_keys resolved from
   * Envoy's own environment plus key_values); nothing else of the process environment is visible. */
  env?: ReadonlyArray<readonly [string, string]>;
}

function isStd(fd: number): boolean {
  return fd === 1 || fd === 2;
}

export function makeWasi(h: WasiHost): Record<string, (...args: any[]) => any> {
  const env = h.env ?? [];
  const writev = (fd: number, iovs: number, iovsLen: number): number | { n: number } => {
    if (!isStd(fd)) return EBADF;
    iovs >>>= 0;
    const m = h.mem();
    const parts: Buffer[] = [];
    let total = 0;
    for (let i = 0; i < iovsLen; i++) {
      const buf = m.getU32(iovs + i * 8);
      const len = m.getU32(iovs + i * 8 + 4);
      if (buf === null || len === null) return EFAULT;
      if (len === 0) continue;
      const data = m.copy(buf, len);
      if (!data) return EFAULT;
      parts.push(data);
      total += len;
    }
    if (total > 0) {
      let s = Buffer.concat(parts).toString("utf8");
      if (s.endsWith("\n")) s = s.slice(0, -1); // cpp-host strips one trailing newline
      h.log(fd === 1 ? 2 : 4, s);
    }
    return { n: total };
  };

  const fns: Record<string, (...args: any[]) => any> = {
    fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) {
      const r = writev(fd, iovs, iovsLen);
      if (typeof r === "number") return r;
      return h.mem().setU32(nwrittenPtr, r.n) ? ESUCCESS : EFAULT;
    },
    fd_pwrite(fd: number, iovs: number, iovsLen: number, _offset: bigint, nwrittenPtr: number) {
      const r = writev(fd, iovs, iovsLen);
      if (typeof r === "number") return r;
      return h.mem().setU32(nwrittenPtr, r.n) ? ESUCCESS : EFAULT;
    },
    fd_read: () => ENOSYS,
    fd_pread: () => ENOSYS,
    fd_seek() {
      h.error("wasi_unstable fd_seek");
      return ESUCCESS;
    },
    fd_close() {
      h.error("wasi_unstable fd_close");
      return ESUCCESS;
    },
    fd_fdstat_get(fd: number, statPtr: number) {
      if (!isStd(fd)) return EBADF;
      statPtr >>>= 0;
      const m = h.mem();
      // 24-byte fdstat, zeroed except fs_rights_base = FD_WRITE (64), as cpp-host writes it.
      if (m.ok(statPtr, 24)) {
        m.u8.fill(0, statPtr, statPtr + 24);
        m.dv.setBigUint64(statPtr + 8, 64n, true);
      }
      return ESUCCESS;
    },
    fd_fdstat_set_flags: () => ENOSYS,
    fd_fdstat_set_rights: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_advise: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_allocate: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_datasync: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_filestat_set_size: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_filestat_set_times: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_sync: (fd: number) => (isStd(fd) ? ESUCCESS : EBADF),
    fd_filestat_get: () => EBADF,
    fd_prestat_get: () => EBADF,
    fd_prestat_dir_name: () => ENOSYS,
    fd_readdir(_fd: number, _buf: number, _len: number, _cookie: bigint, nreadPtr: number) {
      return h.mem().setU32(nreadPtr, 0) ? ENOTDIR : EFAULT;
    },
    fd_renumber: (fd: number, to: number) => (isStd(fd) && isStd(to) ? ENOTSUP : EBADF),
    fd_tell(fd: number, retPtr: number) {
      if (!isStd(fd)) return EBADF;
      return h.mem().setU64(retPtr, 0n) ? ESUCCESS : EFAULT;
    },
    path_open: () => ENOENT,
    path_create_directory: () => ENOTSUP,
    path_filestat_get: () => ENOTSUP,
    path_filestat_set_times: () => ENOTSUP,
    path_link: () => ENOTSUP,
    path_readlink(_fd: number, _p: number, _pl: number, _b: number, _bl: number, retPtr: number) {
      return h.mem().setU32(retPtr, 0) ? ENOTSUP : EFAULT;
    },
    path_remove_directory: () => ENOTSUP,
    path_rename: () => ENOTSUP,
    path_symlink: () => ENOTSUP,
    path_unlink_file: () => ENOTSUP,
    sock_accept(_fd: number, _flags: number, retPtr: number) {
      return h.mem().setU32(retPtr, 0) ? ENOTSUP : EFAULT;
    },
    sock_recv(_fd: number, _d: number, _dl: number, _f: number, ret0: number, ret1: number) {
      const m = h.mem();
      if (!m.setU32(ret0, 0) || !m.ok(ret1, 2)) return EFAULT;
      m.dv.setUint16(ret1, 0, true);
      return ENOTSUP;
    },
    sock_send(_fd: number, _d: number, _dl: number, _f: number, ret0: number) {
      return h.mem().setU32(ret0, 0) ? ENOTSUP : EFAULT;
    },
    sock_shutdown: () => ENOTSUP,
    // Envoy passes no arguments, and as environment only what vm_config.environment_variables
    // lists (WasmBase::envs()). cpp-host exports.cc: environ_sizes_get counts
    // len(key) + len(value) + 2 per entry; environ_get writes "KEY=VALUE\0" entries back to back and
    // a 32-bit pointer to each.
    environ_sizes_get(countPtr: number, sizePtr: number) {
      const m = h.mem();
      let size = 0;
      for (const [k, v] of env) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
      return m.setU32(countPtr, env.length) && m.setU32(sizePtr, size) ? ESUCCESS : EFAULT;
    },
    environ_get(environPtr: number, bufPtr: number) {
      const m = h.mem();
      let ptr = environPtr >>> 0;
      let buf = bufPtr >>> 0;
      for (const [k, v] of env) {
        if (!m.setU32(ptr, buf)) return EFAULT;
        const data = Buffer.from(`${k}=${v}\0`);
        const view = m.view(buf, data.length);
        if (!view) return EFAULT;
        view.set(data);
        buf += data.length;
        ptr += 4;
      }
      return ESUCCESS;
    },
    args_sizes_get(argcPtr: number, sizePtr: number) {
      const m = h.mem();
      return m.setU32(argcPtr, 0) && m.setU32(sizePtr, 0) ? ESUCCESS : EFAULT;
    },
    args_get: () => ESUCCESS,
    clock_time_get(clockId: number, _precision: bigint, resultPtr: number) {
      // cpp-host: realtime (0) is the wall clock, monotonic (1) Envoy's monotonic clock; others EINVAL.
      let t: bigint;
      if (clockId === 0) t = h.nowNs();
      else if (clockId === 1) t = process.hrtime.bigint();
      else return EINVAL;
      return h.mem().setU64(resultPtr, t) ? ESUCCESS : EFAULT;
    },
    clock_res_get(clockId: number, resultPtr: number) {
      if (clockId !== 0 && clockId !== 1) return EINVAL;
      return h.mem().setU64(resultPtr, 1n) ? ESUCCESS : EFAULT;
    },
    random_get(ptr: number, len: number) {
      if (len > RANDOM_GET_MAX_BYTES) return EINVAL;
      if (len === 0) return ESUCCESS;
      const m = h.mem();
      const v = m.view(ptr, len);
      if (!v) return EFAULT;
      randomFillSync(v);
      return ESUCCESS;
    },
    sched_yield: () => ESUCCESS,
    poll_oneoff(_in: number, _out: number, _n: number, neventsPtr: number) {
      return h.mem().setU32(neventsPtr, 0) ? ESUCCESS : EFAULT;
    },
    proc_exit(code: number) {
      // cpp-host only logs here and returns; every toolchain follows proc_exit with `unreachable`,
      // so the module traps either way. Trapping at once gives a clearer message.
      throw new WasmTrap(`wasi proc_exit(${code})`);
    },
  };
  for (const name of ENVOY_WASI_FUNCTIONS) {
    if (!fns[name]) throw new Error(`host/wasi.ts lacks ${name}, which host/envoy-abi.mjs allows`);
  }
  // Every WASI function may run during _initialize/_start except proc_exit's siblings that cpp-host
  // leaves out of its start-time allow-list; wrap them so a restricted call traps like cpp-host.
  const START_ALLOWED = new Set([
    "fd_write", "args_sizes_get", "args_get", "environ_sizes_get", "environ_get", "clock_time_get",
    "clock_res_get", "random_get", "poll_oneoff", "fd_fdstat_get", "fd_fdstat_set_flags", "fd_advise",
    "fd_allocate", "fd_datasync", "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size",
    "fd_filestat_set_times", "fd_pread", "fd_prestat_dir_name", "fd_prestat_get", "fd_pwrite",
    "fd_readdir", "fd_renumber", "fd_sync", "fd_tell", "path_create_directory", "path_filestat_get",
    "path_filestat_set_times", "path_link", "path_readlink", "path_remove_directory", "path_rename",
    "path_symlink", "path_unlink_file", "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
  ]);
  const out: Record<string, (...args: any[]) => any> = {};
  for (const [name, fn] of Object.entries(fns)) {
    out[name] = START_ALLOWED.has(name)
      ? fn
      : (...args: any[]) => {
          h.checkAllowed(name);
          return fn(...args);
        };
  }
  return out;
}
