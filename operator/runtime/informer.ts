/**
 * A list+watch informer with a local cache, written on client-node's `Watch` rather than its
 * `makeInformer` (which stops for good on any non-410 error, SPEC §1 gotcha 8):
 *
 * 1. LIST → replace the cache (adds, updates, and deletes for objects gone since the last list)
 *    → synced;
 * 2. WATCH from the list's resourceVersion; events update the cache and call handlers; updates
 *    whose resourceVersion equals the cached one are dropped;
 * 3. the watch ends: cleanly (server timeout) → re-watch from the last resourceVersion; with a
 *    410 Expired (an `ERROR` event or an HTTP 410) → relist at once; with any other error →
 *    exponential back-off, then re-watch (and relist if that fails too).
 *
 * The list and watch calls are behind {@link ListWatchSource} so unit tests can drive them.
 */
import { Watch } from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { isGone, listObjects, resourcePath, KubeApiError } from "../../kube/k8s-client.js";
import type { KubeObject, ObjectList, ResourceType } from "../../kube/k8s-client.js";

/** One watch event as the server sends it. */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** A running watch: call to stop it (its `onDone` is then called, possibly with an abort error). */
export type StopWatch = () => void;

/** Where an informer gets its data. The default talks to the API server. */
export interface ListWatchSource<T extends KubeObject> {
  /** Lists all objects; resolves items and the list resourceVersion. */
  list(signal: AbortSignal): Promise<ObjectList<T>>;
  /**
   * Starts a watch from `resourceVersion`. `onEvent` gets each event; `onDone` is called exactly
   * once when the stream ends (`null` for a clean close, else the error, with `statusCode` 410 for
   * an expired resourceVersion).
   */
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, obj: unknown) => void,
    onDone: (err: unknown) => void,
  ): Promise<StopWatch>;
}

/** Options of {@link Informer}. */
export interface InformerOptions<T extends KubeObject> {
  /** Cluster connection; required unless `source` is given. */
  kc?: KubeConfig;
  /** The resource type to watch. */
  type: ResourceType;
  /** Restrict to one namespace; default all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Replaces the API-server list/watch (tests). */
  source?: ListWatchSource<T>;
  /** Logger (a child `{informer: plural}` is made). */
  logger?: Logger;
  /** First retry delay after an error, ms. Default 200. */
  initialBackoffMs?: number;
  /** Retry delay cap, ms. Default 30 000. */
  maxBackoffMs?: number;
  /** Server-side watch timeout range in seconds, `[min, max)`; default `[300, 600)` like client-go. */
  watchTimeoutSeconds?: [number, number];
  /**
   * Applied to every object before it enters the cache (listed or watched), like client-go's
   * `SetTransform`; it must be idempotent (a listed object may pass through it twice). Default
   * {@link stripManagedFields}; `null` keeps objects as the server sent them.
   */
  transform?: ((obj: T) => T) | null;
}

/**
 * The default informer transform: drops `metadata.managedFields` (field ownership, often the
 * largest part of an object, which no controller here reads — it applies its own intent), as
 * controller-runtime's `cache.TransformStripManagedFields`. Mutates and returns `obj`.
 */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj?.metadata && "managedFields" in obj.metadata) delete (obj.metadata as { managedFields?: unknown }).managedFields;
  return obj;
}

/** Handler names. */
export type InformerEvent = "add" | "update" | "delete";

type AddHandler<T> = (obj: T) => void;
type UpdateHandler<T> = (oldObj: T, newObj: T) => void;
type DeleteHandler<T> = (obj: T) => void;

/** Cache key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

/** The default source: LIST and WATCH on the API server through client-node. */
export function apiServerSource<T extends KubeObject>(
  kc: KubeConfig,
  type: ResourceType,
  opts: { namespace?: string; labelSelector?: string; fieldSelector?: string; watchTimeoutSeconds?: [number, number]; transform?: (obj: T) => T } = {},
): ListWatchSource<T> {
  const watcher = new Watch(kc);
  const ns = type.namespaced ? opts.namespace : undefined;
  const [lo, hi] = opts.watchTimeoutSeconds ?? [300, 600];
  return {
    list: (signal) =>
      listObjects<T>(kc, type, { namespace: ns, labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, signal, ...(opts.transform ? { transform: opts.transform as unknown as (o: KubeObject) => KubeObject } : {}) }),
    async watch(resourceVersion, onEvent, onDone) {
      const ac = await watcher.watch(
        resourcePath(type, ns),
        {
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: Math.floor(lo + Math.random() * Math.max(0, hi - lo)),
          labelSelector: opts.labelSelector,
          fieldSelector: opts.fieldSelector,
        },
        (phase, obj) => onEvent(phase as WatchEventType, obj),
        onDone,
      );
      return () => ac.abort();
    },
  };
}

/**
 * What controllers need of an informer: event handlers, the cache, start/stop and sync. Covariant in
 * `T` (handlers only ever receive a `T`), so an `Informer<Task>` is a `SharedInformer<KubeObject>`
 * where a controller watches children of any kind. {@link Informer} watches one namespace or all;
 * {@link MultiNamespaceInformer} fans out over several and presents one cache.
 */
export interface SharedInformer<out T extends KubeObject = KubeObject> {
  /** The watched type. */
  readonly type: ResourceType;
  /** Registers a handler for objects added (first seen). */
  on(event: "add", fn: (obj: T) => void): this;
  /** Registers a handler for changed objects (a new resourceVersion). */
  on(event: "update", fn: (oldObj: T, newObj: T) => void): this;
  /** Registers a handler for deleted objects (last known state). */
  on(event: "delete", fn: (obj: T) => void): this;
  /** Starts list+watch in the background. Idempotent. */
  start(): void;
  /** Stops list+watch; resolves when it has ended. Idempotent. */
  stop(): Promise<void>;
  /** True once the cache has been filled by a first LIST. */
  hasSynced(): boolean;
  /** Resolves once synced. @throws Error on timeout or when stopped before syncing */
  waitForSync(timeoutMs: number): Promise<void>;
  /** The cached object `namespace/name` (or `name` for cluster-scoped types), if any. */
  get(namespace: string | undefined, name: string): T | undefined;
  /** All cached objects, optionally only those in `namespace`. */
  list(namespace?: string): T[];
}

/**
 * An informer over one resource type. Start it with {@link Informer.start}, read the cache with
 * {@link Informer.get}/{@link Informer.list}, stop it with {@link Informer.stop}.
 */
export class Informer<T extends KubeObject = KubeObject> implements SharedInformer<T> {
  /** The watched type. */
  readonly type: ResourceType;
  private readonly source: ListWatchSource<T>;
  private readonly transform: ((obj: T) => T) | undefined;
  private readonly cache = new Map<string, T>();
  private readonly adds: AddHandler<T>[] = [];
  private readonly updates: UpdateHandler<T>[] = [];
  private readonly deletes: DeleteHandler<T>[] = [];
  private readonly log: Logger | undefined;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private stopped = false;
  private running: Promise<void> | undefined;
  private stopWatch: StopWatch | undefined;
  private listAbort: AbortController | undefined;
  private wakeSleep: (() => void) | undefined;
  private resourceVersion = "";
  /** Number of successful LISTs (1 after the initial sync; more after relists). */
  listCount = 0;
  /** Number of watches started. */
  watchCount = 0;
  /** Last error seen by the loop (cleared on the next successful list). */
  lastError: unknown = undefined;

  /** @param opts see {@link InformerOptions} */
  constructor(opts: InformerOptions<T>) {
    this.type = opts.type;
    this.transform = opts.transform === null ? undefined : (opts.transform ?? stripManagedFields);
    if (opts.source) this.source = opts.source;
    else if (opts.kc) {
      this.source = apiServerSource<T>(opts.kc, opts.type, {
        namespace: opts.namespace,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        watchTimeoutSeconds: opts.watchTimeoutSeconds,
        ...(this.transform ? { transform: this.transform } : {}),
      });
    } else throw new Error(`create informer ${opts.type.plural}: kc or source is required`);
    this.log = opts.logger?.child({ informer: opts.type.plural, ...(opts.namespace ? { namespace: opts.namespace } : {}) });
    this.initialBackoffMs = opts.initialBackoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  }

  /** Registers a handler for objects added (first seen). */
  on(event: "add", fn: AddHandler<T>): this;
  /** Registers a handler for changed objects (a new resourceVersion). */
  on(event: "update", fn: UpdateHandler<T>): this;
  /** Registers a handler for deleted objects (last known state). */
  on(event: "delete", fn: DeleteHandler<T>): this;
  on(event: InformerEvent, fn: AddHandler<T> | UpdateHandler<T>): this {
    if (event === "add") this.adds.push(fn as AddHandler<T>);
    else if (event === "update") this.updates.push(fn as UpdateHandler<T>);
    else this.deletes.push(fn as DeleteHandler<T>);
    return this;
  }

  /** Starts the list+watch loop in the background. Idempotent. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = this.run().catch((err) => {
      this.log?.error({ err }, "Informer loop crashed");
    });
  }

  /** Stops the loop, aborts the current list or watch, and resolves when it has ended. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.listAbort?.abort();
    this.stopWatch?.();
    this.wakeSleep?.();
    for (const w of this.syncWaiters.splice(0)) w();
    await this.running;
  }

  /** True once the first LIST has filled the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Resolves once the cache has synced.
   *
   * @param timeoutMs give up after this many ms
   * @throws Error `wait for <plural> informer sync` on timeout or when stopped before syncing
   */
  async waitForSync(timeoutMs: number): Promise<void> {
    if (this.synced) return;
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    const synced = new Promise<void>((resolve) => {
      waiter = resolve;
      this.syncWaiters.push(resolve);
    });
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([synced, timeout]);
    clearTimeout(timer);
    this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
    if (!this.synced) {
      throw new Error(`wait for ${this.type.plural} informer sync: not synced after ${timeoutMs} ms`, {
        cause: this.lastError,
      });
    }
  }

  /** The cached object `namespace/name` (or `name` for cluster-scoped types), if any. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** All cached objects, optionally only those in `namespace`. */
  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  /** The resourceVersion the next watch would start from. */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(): Promise<void> {
    // `failures` drives the back-off and is reset only by a healthy watch (or a 410, which is
    // normal); `watchErrors` counts failed watches in a row and forces a relist at 3.
    let failures = 0;
    let watchErrors = 0;
    let needList = true;
    while (!this.stopped) {
      if (needList) {
        try {
          this.listAbort = new AbortController();
          const res = await this.source.list(this.listAbort.signal);
          if (this.stopped) return;
          this.replace(res.items);
          this.resourceVersion = res.resourceVersion;
          this.listCount++;
          this.lastError = undefined;
          needList = false;
          watchErrors = 0;
          if (!this.synced) {
            this.synced = true;
            for (const w of this.syncWaiters.splice(0)) w();
            this.log?.debug({ objects: this.cache.size }, "Informer synced");
          }
        } catch (err) {
          if (this.stopped) return;
          this.lastError = err;
          const delay = this.backoff(failures++);
          this.log?.warn({ err, delayMs: delay }, "Informer list failed");
          await this.sleep(delay);
          continue;
        }
      }
      const started = Date.now();
      const outcome = await this.watchOnce();
      if (this.stopped) return;
      const healthy = outcome.events > 0 || Date.now() - started >= 1000;
      if (outcome.gone) {
        this.log?.info({ resourceVersion: this.resourceVersion }, "Informer watch expired, relisting");
        needList = true;
        failures = 0;
        continue;
      }
      if (outcome.err) {
        this.lastError = outcome.err;
        if (healthy) failures = 0;
        const delay = this.backoff(failures++);
        this.log?.warn({ err: outcome.err, delayMs: delay }, "Informer watch failed");
        await this.sleep(delay);
        // After repeated failures the resourceVersion may be stale anyway: relist.
        if (++watchErrors >= 3) needList = true;
        continue;
      }
      // Clean close: re-watch from the last resourceVersion; back off only if it closed at once.
      watchErrors = 0;
      if (healthy) failures = 0;
      else await this.sleep(this.backoff(failures++));
    }
  }

  private watchOnce(): Promise<{ err?: unknown; gone: boolean; events: number }> {
    return new Promise((resolve) => {
      let gone = false;
      let events = 0;
      let finished = false;
      const finish = (err: unknown): void => {
        if (finished) return;
        finished = true;
        this.stopWatch = undefined;
        if (isGone(err)) gone = true;
        resolve({ err: gone ? undefined : (err ?? undefined), gone, events });
      };
      this.watchCount++;
      this.source
        .watch(
          this.resourceVersion,
          (type, obj) => {
            if (finished) return;
            events++;
            if (type === "ERROR") {
              const status = obj as { code?: number; reason?: string; message?: string };
              if (status?.code === 410) gone = true;
              else this.lastError = new KubeApiError(status?.code ?? 500, status as object);
              return;
            }
            this.apply(type, obj as T);
          },
          (err) => finish(gone ? null : err),
        )
        .then((stop) => {
          if (finished) return;
          this.stopWatch = stop;
          if (this.stopped) stop();
        })
        .catch((err) => finish(err));
    });
  }

  private apply(type: WatchEventType, raw: T): void {
    const obj = raw?.metadata && this.transform && type !== "BOOKMARK" ? this.transform(raw) : raw;
    const rv = obj?.metadata?.resourceVersion;
    if (type === "BOOKMARK") {
      if (rv) this.resourceVersion = rv;
      return;
    }
    if (!obj?.metadata?.name) return;
    if (rv) this.resourceVersion = rv;
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (type === "DELETED") {
      this.cache.delete(key);
      this.emitDelete(old ?? obj);
      return;
    }
    if (old && old.metadata?.resourceVersion === rv) return; // duplicate
    this.cache.set(key, obj);
    if (old) this.emitUpdate(old, obj);
    else this.emitAdd(obj);
  }

  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const raw of items) {
      // the API source transformed them page by page already; a test source's items are done here
      const obj = this.transform ? this.transform(raw) : raw;
      const key = objectKey(obj);
      seen.add(key);
      const old = this.cache.get(key);
      if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) continue;
      this.cache.set(key, obj);
      if (old) this.emitUpdate(old, obj);
      else this.emitAdd(obj);
    }
    for (const [key, old] of [...this.cache]) {
      if (seen.has(key)) continue;
      this.cache.delete(key);
      this.emitDelete(old);
    }
  }

  private emitAdd(obj: T): void {
    for (const h of this.adds) this.safely(() => h(obj));
  }

  private emitUpdate(old: T, obj: T): void {
    for (const h of this.updates) this.safely(() => h(old, obj));
  }

  private emitDelete(obj: T): void {
    for (const h of this.deletes) this.safely(() => h(obj));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log?.error({ err }, "Informer handler threw");
    }
  }

  private backoff(failures: number): number {
    const base = Math.min(this.maxBackoffMs, this.initialBackoffMs * Math.pow(2, Math.min(failures, 30)));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeSleep = undefined;
        resolve();
      }, ms);
      this.wakeSleep = () => {
        clearTimeout(t);
        this.wakeSleep = undefined;
        resolve();
      };
    });
  }
}

/** Options of {@link MultiNamespaceInformer}: those of {@link Informer} with a list of namespaces. */
export interface MultiNamespaceInformerOptions<T extends KubeObject> extends Omit<InformerOptions<T>, "namespace" | "source"> {
  /** Namespaces to watch; each gets its own list+watch. */
  namespaces: readonly string[];
  /** Replaces the API-server list/watch per namespace (tests). */
  source?: (namespace: string) => ListWatchSource<T>;
}

/**
 * One informer over several namespaces (controller-runtime's `cache.Options.DefaultNamespaces`): a
 * list+watch per namespace, presented as one cache and one set of handlers. A RBAC setup that grants
 * the operator only some namespaces needs this, as it cannot list across all of them.
 */
export class MultiNamespaceInformer<T extends KubeObject = KubeObject> implements SharedInformer<T> {
  /** The watched type. */
  readonly type: ResourceType;
  /** The per-namespace informers, by namespace. */
  readonly informers: ReadonlyMap<string, Informer<T>>;

  /** @param opts see {@link MultiNamespaceInformerOptions} */
  constructor(opts: MultiNamespaceInformerOptions<T>) {
    this.type = opts.type;
    const { namespaces, source, ...rest } = opts;
    this.informers = new Map([...new Set(namespaces)].map((namespace) => [namespace, new Informer<T>({ ...rest, namespace, ...(source ? { source: source(namespace) } : {}) })]));
  }

  on(event: "add", fn: (obj: T) => void): this;
  on(event: "update", fn: (oldObj: T, newObj: T) => void): this;
  on(event: "delete", fn: (obj: T) => void): this;
  on(event: InformerEvent, fn: AddHandler<T> | UpdateHandler<T>): this {
    for (const i of this.informers.values()) {
      if (event === "add") i.on("add", fn as AddHandler<T>);
      else if (event === "update") i.on("update", fn as UpdateHandler<T>);
      else i.on("delete", fn as DeleteHandler<T>);
    }
    return this;
  }

  start(): void {
    for (const i of this.informers.values()) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }

  hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  async waitForSync(timeoutMs: number): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync(timeoutMs)));
  }

  /** The cached object; undefined for a namespace not watched. */
  get(namespace: string | undefined, name: string): T | undefined {
    return namespace === undefined ? undefined : this.informers.get(namespace)?.get(namespace, name);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return this.informers.get(namespace)?.list(namespace) ?? [];
    return [...this.informers.values()].flatMap((i) => i.list());
  }
}

/**
 * The informer for a set of watched namespaces: one {@link Informer} over all namespaces when
 * `namespaces` is empty, over the one namespace when it holds one, else a
 * {@link MultiNamespaceInformer}. Either way one cache and one set of handlers per resource type.
 */
export function namespacedInformer<T extends KubeObject>(opts: Omit<InformerOptions<T>, "namespace" | "source"> & { namespaces: readonly string[] }): SharedInformer<T> {
  const { namespaces, ...rest } = opts;
  if (namespaces.length === 0) return new Informer<T>(rest);
  if (namespaces.length === 1) return new Informer<T>({ ...rest, namespace: namespaces[0]! });
  return new MultiNamespaceInformer<T>(opts);
}
