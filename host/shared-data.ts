// Shared data and shared queues, as cpp-host src/shared_data.cc and src/shared_queue.cc keep them:
// one store per Envoy process (here: per Host), scoped by vm_id, seen by every VM instance (worker)
// of every plugin with that vm_id.

export class SharedData {
  private data = new Map<string, Map<string, { value: Buffer; cas: number }>>();
  // SharedData::cas_ starts at 1 and skips 0 on wrap-around (0 means "no CAS" to set).
  private cas = 1;

  private nextCas(): number {
    const r = this.cas;
    this.cas = (this.cas + 1) >>> 0;
    if (this.cas === 0) this.cas = 1;
    return r;
  }

  get(vmId: string, key: string): { value: Buffer; cas: number } | undefined {
    return this.data.get(vmId)?.get(key);
  }

  /** How many keys a vm_id's shared data holds, and their values' bytes (what Envoy's process keeps). */
  size(vmId: string): { keys: number; bytes: number } {
    let bytes = 0;
    const map = this.data.get(vmId);
    for (const v of map?.values() ?? []) bytes += v.value.length;
    return { keys: map?.size ?? 0, bytes };
  }

  /** Returns "ok" or "cas_mismatch" (SharedData::set: cas 0 writes unconditionally; a new key ignores cas). */
  set(vmId: string, key: string, value: Buffer, cas: number): "ok" | "cas_mismatch" {
    let map = this.data.get(vmId);
    if (!map) this.data.set(vmId, (map = new Map()));
    const cur = map.get(key);
    if (cur && cas !== 0 && cas !== cur.cas) return "cas_mismatch";
    map.set(key, { value: Buffer.from(value), cas: this.nextCas() });
    return "ok";
  }
}

export interface QueueOwner {
  /** Delivers proxy_on_queue_ready(context_id, token) later, on the registering VM's thread. */
  queueReady(contextId: number, token: number): void;
}

interface Queue {
  items: Buffer[];
  contextId: number;
  owner: QueueOwner;
}

export class SharedQueues {
  private tokens = new Map<string, number>(); // vm_id \0 name -> token
  private queues = new Map<number, Queue>();
  private next = 1;

  private key(vmId: string, name: string): string {
    return `${vmId}\u0000${name}`;
  }

  /** SharedQueue::registerQueue: the last registration decides which VM/context gets on_queue_ready. */
  register(vmId: string, name: string, contextId: number, owner: QueueOwner): number {
    const k = this.key(vmId, name);
    let token = this.tokens.get(k);
    if (token === undefined) {
      do {
        token = this.next;
        this.next = (this.next + 1) >>> 0;
      } while (token === 0 || this.queues.has(token));
      this.tokens.set(k, token);
      this.queues.set(token, { items: [], contextId, owner });
    }
    const q = this.queues.get(token)!;
    q.contextId = contextId;
    q.owner = owner;
    return token;
  }

  /** 0 when not found (SharedQueue::resolveQueue). */
  resolve(vmId: string, name: string): number {
    return this.tokens.get(this.key(vmId, name)) ?? 0;
  }

  dequeue(token: number): { result: "ok"; value: Buffer } | { result: "not_found" | "empty" } {
    const q = this.queues.get(token);
    if (!q) return { result: "not_found" };
    const v = q.items.shift();
    if (v === undefined) return { result: "empty" };
    return { result: "ok", value: v };
  }

  enqueue(token: number, value: Buffer): "ok" | "not_found" {
    const q = this.queues.get(token);
    if (!q) return "not_found";
    q.items.push(Buffer.from(value));
    q.owner.queueReady(q.contextId, token);
    return "ok";
  }
}
