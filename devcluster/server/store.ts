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
  /** The object before the change (MODIFIED only). Never mutate. */
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

/** The in-memory store. All methods are synchronous; returned objects are copies. */
export class Store {
  private revision = 1;
  private readonly data = new Map<string, Map<string, KObject>>();
  private readonly log: StoreEvent[] = [];
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
   * Lists objects (copies), sorted by namespace then name.
   * @param namespace restrict to one namespace; undefined = all
   */
  list(gr: string, namespace?: string): KObject[] {
    const b = this.data.get(gr);
    if (!b) return [];
    const out: KObject[] = [];
    const keys = [...b.keys()].sort();
    for (const k of keys) {
      const o = b.get(k) as KObject;
      if (namespace === undefined || (o.metadata?.namespace ?? "") === namespace) out.push(clone(o));
    }
    return out;
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
   * @returns the stored copy
   */
  create(gr: string, obj: KObject): KObject {
    const o = clone(obj);
    o.metadata.resourceVersion = String(++this.revision);
    this.bucket(gr).set(objKey(o), o);
    this.emit({ type: "ADDED", rv: this.revision, gr, obj: o });
    return clone(o);
  }

  /**
   * Replaces an existing object, assigning the next resourceVersion; emits MODIFIED.
   * @returns the stored copy
   */
  update(gr: string, obj: KObject): KObject {
    const o = clone(obj);
    const b = this.bucket(gr);
    const prev = b.get(objKey(o));
    o.metadata.resourceVersion = String(++this.revision);
    b.set(objKey(o), o);
    this.emit({ type: "MODIFIED", rv: this.revision, gr, obj: o, prev });
    return clone(o);
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
    const o = clone(prev);
    lastWords?.(o);
    o.metadata.resourceVersion = String(++this.revision);
    this.emit({ type: "DELETED", rv: this.revision, gr, obj: o });
    return clone(o);
  }

  private emit(e: StoreEvent): void {
    this.log.push(e);
    this.trim();
    for (const l of [...this.listeners]) l(e);
  }

  private trim(): void {
    const extra = this.log.length - this.historySize;
    if (extra > 0) {
      const dropped = this.log.splice(0, extra);
      this.compacted = (dropped[dropped.length - 1] as StoreEvent).rv;
    }
  }

  /**
   * Events with rv > `since` for one storage key, oldest first.
   * @throws ApiError 410 Expired when `since` is older than the retained history
   */
  eventsSince(gr: string, since: number): StoreEvent[] {
    if (since < this.compacted) throw expired(String(since), this.compacted + 1) as ApiError;
    return this.log.filter((e) => e.rv > since && e.gr === gr);
  }

  /**
   * Drops the whole watch history, like an etcd compaction at the current revision: every watch from an
   * older resourceVersion then answers 410 Expired, and each compaction listener (the open watches) is called.
   * A fault hook for tests and benches; nothing in the server calls it on its own.
   * @returns the resourceVersion compacted to (watches from it or newer still work) and how many listeners ran
   */
  compact(): { compactedTo: number; listeners: number } {
    this.log.length = 0;
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
