/**
 * Versioned in-memory storage: one global resourceVersion counter (like the etcd revision), objects keyed by
 * `group/resource` then `namespace/name`, and a bounded event log that watches replay from.
 */
import { expired, type ApiError } from "./errors.js";
import type { KObject } from "./types.js";
import { clone } from "./util.js";

/** One committed change, as watchers see it. */
export interface StoreEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  /** The resourceVersion of this change. */
  rv: number;
  /** `group/resource` storage key. */
  gr: string;
  /** The object after the change (for DELETED: its last state with the deletion's RV). Never mutate. */
  obj: KObject;
  /** The object before the change (MODIFIED and DELETED). Never mutate. */
  prev?: KObject;
}

/** Options of a {@link Store}. */
export interface StoreOptions {
  /** How many events the watch history keeps before older resourceVersions answer 410 (default 10000). */
  historySize?: number;
}

function objKey(o: KObject): string {
  return `${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
}

/** The first index in sorted `keys` whose key is ≥ `k`. */
function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index ≥ `from` in `log` (rv ascending) whose rv is ≥ `rv`. */
function lowerBoundRv(log: readonly StoreEvent[], from: number, rv: number): number {
  let lo = from;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((log[mid] as StoreEvent).rv < rv) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The in-memory store. All methods are synchronous; returned objects are copies. */
export class Store {
  private revision = 1;
  private readonly data = new Map<string, Map<string, KObject>>();
  /** Per storage key, its object keys sorted (etcd key order), rebuilt after a create or delete. */
  private readonly sortedKeys = new Map<string, string[]>();
  /** The watch history: `log[head..]` are the retained events, oldest first (a ring trimmed in chunks). */
  private log: StoreEvent[] = [];
  private head = 0;
  /** RV of the newest event dropped from the log; watches from an older RV get 410. */
  private compacted = 0;
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly compactionListeners = new Set<(compactedTo: number) => void>();
  private historySize: number;

  /** @param opts see {@link StoreOptions} */
  constructor(opts: StoreOptions = {}) {
    this.historySize = opts.historySize ?? 10000;
  }

  /** Current global resourceVersion. */
  get currentRv(): number {
    return this.revision;
  }

  /** Changes the watch history size (tests set 3 to exercise 410 relists). */
  setHistorySize(n: number): void {
    this.historySize = Math.max(1, n);
    this.trim();
  }

  private bucket(gr: string): Map<string, KObject> {
    let b = this.data.get(gr);
    if (!b) {
      b = new Map();
      this.data.set(gr, b);
    }
    return b;
  }

  /** Reads one object (a copy), or undefined. */
  get(gr: string, namespace: string, name: string): KObject | undefined {
    const o = this.data.get(gr)?.get(`${namespace}/${name}`);
    return o ? clone(o) : undefined;
  }

  /**
   * The stored object itself, not a copy, or undefined: for readers that copy or only read
   * (stored objects are replaced on every write, never changed in place). Never mutate it.
   */
  peek(gr: string, namespace: string, name: string): KObject | undefined {
    return this.data.get(gr)?.get(`${namespace}/${name}`);
  }

  /**
   * Lists objects (copies), sorted by namespace then name.
   * @param namespace restrict to one namespace; undefined = all
   */
  list(gr: string, namespace?: string): KObject[] {
    return this.listRaw(gr, namespace).map((o) => clone(o));
  }

  /** As {@link Store.list}, but the stored objects themselves (never mutate them). */
  listRaw(gr: string, namespace?: string): KObject[] {
    const b = this.data.get(gr);
    if (!b) return [];
    const out: KObject[] = [];
    for (const k of this.keysOf(gr, b)) {
      const o = b.get(k) as KObject;
      if (namespace === undefined || (o.metadata?.namespace ?? "") === namespace) out.push(o);
    }
    return out;
  }

  private keysOf(gr: string, b: Map<string, KObject>): string[] {
    let keys = this.sortedKeys.get(gr);
    if (!keys) {
      keys = [...b.keys()].sort();
      this.sortedKeys.set(gr, keys);
    }
    return keys;
  }

  /**
   * One page of a list as it was at resourceVersion `rv` (etcd's MVCC read at a revision, rebuilt
   * from the watch history): the stored objects themselves (never mutate them), in key order,
   * starting after `after` (a `namespace/name` key; "" = from the start), at most `limit` of those
   * `matches` accepts (0 = all).
   * @param namespace restrict to one namespace; undefined = all
   * @returns the items, the key of the last one returned when more matching keys may follow
   *   (`more`), and how many objects of the key range follow the page (selectors not applied)
   * @throws ApiError 410 Expired when `rv` is older than the retained history (compacted)
   */
  listAt(gr: string, o: { rv: number; namespace?: string; after: string; limit: number; matches: (o: KObject) => boolean }): { items: KObject[]; lastKey?: string; remaining: number } {
    if (o.rv < this.compacted) throw expired(String(o.rv), this.compacted + 1) as ApiError;
    const b = this.data.get(gr) ?? new Map<string, KObject>();
    // objects changed after rv: their state at rv (null = absent then)
    const then = new Map<string, KObject | null>();
    for (let i = this.log.length - 1; i >= this.head; i--) {
      const e = this.log[i] as StoreEvent;
      if (e.rv <= o.rv) break;
      if (e.gr !== gr) continue;
      then.set(objKey(e.obj), e.type === "ADDED" ? null : (e.prev ?? null));
    }
    let keys = this.keysOf(gr, b);
    const extra = [...then.keys()].filter((k) => !b.has(k));
    if (extra.length) keys = [...keys, ...extra].sort();
    const prefix = o.namespace === undefined ? "" : `${o.namespace}/`;
    const from = `${o.after}\u0000`;
    let i = lowerBound(keys, o.after === "" || from < prefix ? prefix : from);
    const items: KObject[] = [];
    let lastKey: string | undefined;
    for (; i < keys.length; i++) {
      const k = keys[i] as string;
      if (prefix && !k.startsWith(prefix)) break;
      const obj = then.has(k) ? then.get(k) : b.get(k);
      if (!obj) continue;
      if (!o.matches(obj)) continue;
      if (o.limit > 0 && items.length === o.limit) {
        lastKey = objKey(items[items.length - 1] as KObject);
        break;
      }
      items.push(obj);
    }
    let remaining = 0;
    if (lastKey !== undefined) {
      for (; i < keys.length; i++) {
        const k = keys[i] as string;
        if (prefix && !k.startsWith(prefix)) break;
        if (then.has(k) ? then.get(k) : b.has(k)) remaining++;
      }
    }
    return { items, ...(lastKey !== undefined ? { lastKey } : {}), remaining };
  }

  /** Every storage key that holds objects. */
  groups(): string[] {
    return [...this.data.keys()];
  }

  /** Number of objects under a storage key. */
  count(gr: string): number {
    return this.data.get(gr)?.size ?? 0;
  }

  /**
   * Stores a new object, assigning the next resourceVersion; emits ADDED.
   * @param owned true when the caller hands `obj` over (it never touches it again): it is stored as
   *   is and the stored object itself is returned (never mutate it); false (default) stores a copy
   *   and returns another
   * @returns the stored object (a copy unless `owned`)
   */
  create(gr: string, obj: KObject, owned = false): KObject {
    const o = owned ? obj : clone(obj);
    o.metadata.resourceVersion = String(++this.revision);
    const b = this.bucket(gr);
    if (!b.has(objKey(o))) this.sortedKeys.delete(gr);
    b.set(objKey(o), o);
    this.emit({ type: "ADDED", rv: this.revision, gr, obj: o });
    return owned ? o : clone(o);
  }

  /**
   * Replaces an existing object, assigning the next resourceVersion; emits MODIFIED.
   * @param owned as for {@link Store.create}
   * @returns the stored object (a copy unless `owned`)
   */
  update(gr: string, obj: KObject, owned = false): KObject {
    const o = owned ? obj : clone(obj);
    const b = this.bucket(gr);
    const prev = b.get(objKey(o));
    o.metadata.resourceVersion = String(++this.revision);
    b.set(objKey(o), o);
    this.emit({ type: "MODIFIED", rv: this.revision, gr, obj: o, prev });
    return owned ? o : clone(o);
  }

  /**
   * Removes an object; emits DELETED carrying `last` with the deletion's resourceVersion.
   * @returns the deleted object's last state (with the new RV), or undefined if it was absent
   */
  delete(gr: string, namespace: string, name: string, lastWords?: (o: KObject) => void): KObject | undefined {
    const b = this.bucket(gr);
    const key = `${namespace}/${name}`;
    const prev = b.get(key);
    if (!prev) return undefined;
    b.delete(key);
    this.sortedKeys.delete(gr);
    const o = clone(prev);
    lastWords?.(o);
    o.metadata.resourceVersion = String(++this.revision);
    this.emit({ type: "DELETED", rv: this.revision, gr, obj: o, prev });
    return clone(o);
  }

  private emit(e: StoreEvent): void {
    this.log.push(e);
    this.trim();
    for (const l of [...this.listeners]) l(e);
  }

  /**
   * Keeps the newest `historySize` events: older ones are dropped by moving `head` (O(1) per event);
   * the array itself is cut once the dropped prefix is as long as the history.
   */
  private trim(): void {
    const extra = this.log.length - this.head - this.historySize;
    if (extra > 0) {
      this.head += extra;
      this.compacted = (this.log[this.head - 1] as StoreEvent).rv;
      if (this.head >= this.historySize) {
        this.log = this.log.slice(this.head);
        this.head = 0;
      }
    }
  }

  /**
   * Events with rv > `since` for one storage key, oldest first.
   * @throws ApiError 410 Expired when `since` is older than the retained history
   */
  eventsSince(gr: string, since: number): StoreEvent[] {
    if (since < this.compacted) throw expired(String(since), this.compacted + 1) as ApiError;
    const out: StoreEvent[] = [];
    for (let i = lowerBoundRv(this.log, this.head, since + 1); i < this.log.length; i++) {
      const e = this.log[i] as StoreEvent;
      if (e.gr === gr) out.push(e);
    }
    return out;
  }

  /**
   * Drops the whole watch history, like an etcd compaction at the current revision: every watch from an
   * older resourceVersion then answers 410 Expired, and each compaction listener (the open watches) is called.
   * A fault hook for tests and benches; nothing in the server calls it on its own.
   * @returns the resourceVersion compacted to (watches from it or newer still work) and how many listeners ran
   */
  compact(): { compactedTo: number; listeners: number } {
    this.log = [];
    this.head = 0;
    this.compacted = this.revision;
    const ls = [...this.compactionListeners];
    for (const l of ls) l(this.revision);
    return { compactedTo: this.revision, listeners: ls.length };
  }

  /** Registers a listener called synchronously by {@link Store.compact}; returns the unsubscribe function. */
  onCompact(fn: (compactedTo: number) => void): () => void {
    this.compactionListeners.add(fn);
    return () => this.compactionListeners.delete(fn);
  }

  /** Registers a listener called synchronously for every committed change; returns the unsubscribe function. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
