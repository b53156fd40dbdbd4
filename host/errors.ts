/** A module failed to load or start, with the message Envoy would log. */
export class HostLoadError extends Error {
  /** The filter (plugin name) that failed. */
  filter = "";
  /** What that filter logged while loading (e.g. why on_configure returned false). */
  logs: string[] = [];
  constructor(message: string) {
    super(message);
    this.name = "HostLoadError";
  }
}

/**
 * A filter did something Envoy would silently ignore (e.g. changed request headers after they went
 * upstream). The host throws so the test fails instead of passing against behaviour Envoy lacks.
 */
export class HostViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostViolation";
  }
}

/** Thrown by a host function to trap the calling module (e.g. proc_exit, restricted_callback). */
export class WasmTrap extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WasmTrap";
  }
}
