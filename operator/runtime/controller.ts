/**
 * A level-triggered controller in the controller-runtime mould: informer events enqueue the
 * object's `namespace/name` key; workers take keys from a {@link WorkQueue} (deduped, one worker
 * per key) and call `reconcile(key)`, which reads the *current* object from the cache or the API.
 *
 * Outcomes of `reconcile`:
 * - resolves `{ requeueAfterMs }` → back-off forgotten, key re-added after that delay (`requeue`);
 * - resolves nothing → back-off forgotten (`success`);
 * - throws {@link TerminalError} → not retried (`terminal`); the first time a key fails with a given
 *   reason and message it is logged once (without a stack) and recorded as a Warning event on the
 *   object (when a recorder is given); the same failure again (e.g. on every resync) only counts;
 * - throws a 409 Conflict → re-added rate-limited without an error log (`requeue`);
 * - throws anything else → logged, re-added rate-limited (`error`).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { SharedInformer } from "./informer.js";
import type { KubeObject } from "../../kube/k8s-client.js";
import { isConflict } from "../../kube/k8s-client.js";
import { runtimeMetrics } from "./metrics.js";
import { WorkQueue } from "./workqueue.js";
import type { WorkQueueOptions } from "./workqueue.js";
import type { EventRecorder } from "./events.js";

/** What a reconcile is about: the primary object's namespace (`""` when cluster-scoped) and name. */
export interface ReconcileKey {
  namespace: string;
  name: string;
}

/**
 * Outcome of a reconcile: `{ requeueAfterMs }` runs it again after that many milliseconds; `{}` or
 * nothing waits for the next event (or resync).
 */
export type ReconcileResult = { requeueAfterMs?: number } | void | undefined;

/** Per-call context handed to the reconciler. */
export interface ReconcileContext {
  /** pino child logger with `{controller, namespace, name, reconcileID}`. */
  log: Logger;
  /** Unique id of this reconcile call. */
  reconcileID: string;
  /** The controller's name. */
  controller: string;
}

/** The reconcile function: reads current state for `key`, converges it, and returns or throws. */
export type Reconciler = (key: ReconcileKey, ctx: ReconcileContext) => Promise<ReconcileResult>;

/**
 * A reconciler of one kind (controller-runtime's `reconcile.Reconciler`): the Task, Schedule and
 * Queue reconcilers implement it, and a {@link Controller} calls `reconcile` with each key.
 */
export interface ObjectReconciler {
  /** Reads the current object for `key`, converges the world to it, logs through `ctx.log`. */
  reconcile(key: ReconcileKey, ctx: ReconcileContext): Promise<ReconcileResult>;
}

/**
 * An error that retrying cannot fix (invalid spec, unsupported setting), controller-runtime's
 * `reconcile.TerminalError`. The reconciler writes the matching condition to the object's status
 * first; the controller then records a Warning event with `reason` once, and does not requeue. A
 * later change of the object (or a resync) reconciles it again.
 */
export class TerminalError extends Error {
  /** Short CamelCase reason for events and conditions. Default `ReconcileFailed`. */
  readonly reason: string;

  /**
   * @param message human-readable message (also the Warning event message)
   * @param opts `cause` and an optional `reason`
   */
  constructor(message: string, opts: { cause?: unknown; reason?: string } = {}) {
    super(message, { cause: opts.cause });
    this.name = "TerminalError";
    this.reason = opts.reason ?? "ReconcileFailed";
  }
}

/** True when `err` or anything in its cause chain is a {@link TerminalError}. */
export function isTerminal(err: unknown): err is Error {
  let e: unknown = err;
  for (let i = 0; e && i < 10; i++) {
    if (e instanceof TerminalError) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The {@link TerminalError} reason of `err` (or of the first one in its cause chain), else `ReconcileFailed`. */
export function terminalReason(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; e && i < 10; i++) {
    if (e instanceof TerminalError) return e.reason;
    e = (e as { cause?: unknown }).cause;
  }
  return "ReconcileFailed";
}

/** A secondary watch whose objects are children carrying a controller ownerReference to the primary. */
export interface OwnsSpec {
  informer: SharedInformer;
  /** Kind of the owner to match in `ownerReferences` (the controller's primary kind). */
  ownerKind: string;
}

/** A secondary watch with a custom mapping from an object to the primary keys to enqueue. */
export interface WatchesSpec<W extends KubeObject = KubeObject> {
  informer: SharedInformer<W>;
  /** The primary keys to enqueue for a watched object (declared as a method so a `WatchesSpec<Queue>` is a `WatchesSpec`). */
  map(obj: W): ReconcileKey[];
}

/** Options of {@link Controller} over primary objects of type `T`. */
export interface ControllerOptions<T extends KubeObject = KubeObject> {
  /** Controller name (metrics label, logger field, queue name), e.g. `queue`. */
  name: string;
  /** Informer over the primary resource; its add/update/delete events enqueue the object's key. */
  for: SharedInformer<T>;
  /** Children: events enqueue the owner named by a controller ownerReference of kind `ownerKind`. */
  owns?: OwnsSpec[];
  /** Other watches with a mapping function. */
  watches?: WatchesSpec[];
  /** The reconcile function. */
  reconcile: Reconciler;
  /** Concurrent workers (never two on one key). Default 1. */
  workers?: number;
  /** Base logger. */
  logger: Logger;
  /** prom-client registry for the runtime metrics. Default prom-client's global registry. */
  registry?: Registry;
  /** Records a Warning event on the primary object for terminal errors. */
  recorder?: EventRecorder;
  /** Work queue settings (clock, back-off, bucket) — mostly for tests. */
  queue?: Omit<WorkQueueOptions, "name" | "onDepth">;
  /** Max time to wait for informer caches before `start()` fails, ms. Default 60 000. */
  cacheSyncTimeoutMs?: number;
  /** Re-enqueue every cached primary object this often, ms (0 = never). Default 0. */
  resyncPeriodMs?: number;
  /** Whether `stop()` also stops the informers. Default true (set false when they are shared). */
  stopInformers?: boolean;
}

/** `namespace/name` (or `name` when the namespace is empty). */
export function keyString(k: ReconcileKey): string {
  return k.namespace ? `${k.namespace}/${k.name}` : k.name;
}

/** Parses a {@link keyString}. */
export function parseKey(s: string): ReconcileKey {
  const i = s.indexOf("/");
  return i < 0 ? { namespace: "", name: s } : { namespace: s.slice(0, i), name: s.slice(i + 1) };
}

/**
 * Keys of the owners named by `obj`'s controller ownerReferences of kind `ownerKind` (same
 * namespace as `obj`).
 */
export function ownerKeys(obj: KubeObject, ownerKind: string): ReconcileKey[] {
  const ns = obj.metadata?.namespace ?? "";
  return (obj.metadata?.ownerReferences ?? [])
    .filter((r) => r.controller === true && r.kind === ownerKind)
    .map((r) => ({ namespace: ns, name: r.name }));
}

/** The controller of primary objects of type `T`. `start()` once, `stop()` once. */
export class Controller<T extends KubeObject = KubeObject> {
  /** Controller name. */
  readonly name: string;
  /** The controller's work queue (exposed for tests and diagnostics). */
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions<T>;
  /** Per key, the terminal failure last recorded (`reason` and message), so a repeat is not recorded again. */
  private readonly terminal = new Map<string, string>();
  private readonly log: Logger;
  private readonly metrics;
  private workers: Promise<void>[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopping: Promise<void> | undefined;
  private synced = false;

  /** @param opts see {@link ControllerOptions} */
  constructor(opts: ControllerOptions<T>) {
    this.opts = opts;
    this.name = opts.name;
    this.log = opts.logger.child({ controller: opts.name });
    this.metrics = runtimeMetrics(opts.registry);
    const depth = this.metrics.workqueueDepth;
    this.queue = new WorkQueue({ ...(opts.queue ?? {}), name: opts.name, onDepth: (d) => depth.set({ name: opts.name }, d) });
    depth.set({ name: opts.name }, 0);
  }

  /** Enqueues a key now (e.g. from an external trigger). */
  enqueue(key: ReconcileKey): void {
    this.queue.add(keyString(key));
  }

  /** Enqueues a key after `delayMs` milliseconds. */
  enqueueAfter(key: ReconcileKey, delayMs: number): void {
    this.queue.addAfter(keyString(key), delayMs);
  }

  /** True once every informer of the controller has synced. */
  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Registers event handlers, starts the informers, waits for their caches, then starts the
   * workers. Resolves once workers run.
   *
   * @throws Error `start controller <name>` when a cache does not sync within `cacheSyncTimeoutMs`
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const o = this.opts;
    const enqueueObj = (obj: KubeObject): void => {
      if (obj.metadata?.name) this.enqueue({ namespace: obj.metadata.namespace ?? "", name: obj.metadata.name });
    };
    o.for.on("add", enqueueObj).on("update", (_old, obj) => enqueueObj(obj)).on("delete", enqueueObj);
    for (const w of o.owns ?? []) {
      const enqueueOwner = (obj: KubeObject): void => {
        for (const k of ownerKeys(obj, w.ownerKind)) this.enqueue(k);
      };
      w.informer.on("add", enqueueOwner).on("update", (old, obj) => {
        enqueueOwner(old);
        enqueueOwner(obj);
      }).on("delete", enqueueOwner);
    }
    for (const w of o.watches ?? []) {
      const enqueueMapped = (obj: KubeObject): void => {
        let keys: ReconcileKey[] = [];
        try {
          keys = w.map(obj);
        } catch (err) {
          this.log.error({ err }, "Watch mapping threw");
        }
        for (const k of keys) this.enqueue(k);
      };
      w.informer.on("add", enqueueMapped).on("update", (_old, obj) => enqueueMapped(obj)).on("delete", enqueueMapped);
    }
    const informers = this.informers();
    for (const inf of informers) inf.start();
    try {
      await Promise.all(informers.map((i) => i.waitForSync(o.cacheSyncTimeoutMs ?? 60_000)));
    } catch (cause) {
      throw new Error(`start controller ${this.name}`, { cause });
    }
    this.synced = true;
    const n = Math.max(1, o.workers ?? 1);
    for (let i = 0; i < n; i++) this.workers.push(this.work());
    if (o.resyncPeriodMs && o.resyncPeriodMs > 0) {
      this.resyncTimer = setInterval(() => {
        for (const obj of o.for.list()) enqueueObj(obj);
      }, o.resyncPeriodMs);
    }
    this.log.info({ workers: n }, "Controller started");
  }

  /**
   * Stops taking keys, waits for in-flight reconciles, then stops the informers (unless
   * `stopInformers: false`). Memoised.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.resyncTimer) clearInterval(this.resyncTimer);
      try {
        await this.queue.shutDownWithDrain();
        await Promise.all(this.workers);
      } catch (err) {
        this.log.error({ err }, "Controller workers failed to stop");
      }
      if (this.opts.stopInformers !== false) {
        for (const inf of this.informers()) {
          try {
            await inf.stop();
          } catch (err) {
            this.log.error({ err }, "Informer failed to stop");
          }
        }
      }
      this.log.info("Controller stopped");
    })();
    return this.stopping;
  }

  private informers(): SharedInformer[] {
    const o = this.opts;
    return [...new Set([o.for, ...(o.owns ?? []).map((w) => w.informer), ...(o.watches ?? []).map((w) => w.informer)])];
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async process(key: string): Promise<void> {
    const k = parseKey(key);
    const reconcileID = randomUUID();
    const log = this.log.child({ namespace: k.namespace, name: k.name, reconcileID });
    const end = this.metrics.reconcileTime.startTimer({ controller: this.name });
    let result: "success" | "error" | "requeue" | "terminal";
    try {
      const res = await this.opts.reconcile(k, { log, reconcileID, controller: this.name });
      this.queue.forget(key);
      this.terminal.delete(key);
      const after = res?.requeueAfterMs;
      if (after !== undefined && after >= 0) {
        this.queue.addAfter(key, after);
        result = "requeue";
      } else result = "success";
    } catch (err) {
      if (isTerminal(err)) {
        this.queue.forget(key);
        result = "terminal";
        const reason = terminalReason(err);
        const message = (err as Error).message;
        if (this.terminal.get(key) !== `${reason}\n${message}`) {
          this.terminal.set(key, `${reason}\n${message}`);
          log.warn({ reason, error: message }, "Reconcile failed terminally, not retrying");
          this.recordTerminal(k, reason, message);
        } else log.debug({ reason }, "Reconcile failed terminally again");
      } else if (isConflict(err)) {
        const delay = this.queue.addRateLimited(key);
        result = "requeue";
        log.debug({ delayMs: delay }, "Reconcile hit a conflict, requeued");
      } else {
        const delay = this.queue.addRateLimited(key);
        result = "error";
        log.error({ err, delayMs: delay, attempt: this.queue.numRequeues(key) }, "Reconcile failed, retrying");
      }
    }
    end();
    this.metrics.reconcileTotal.inc({ controller: this.name, result });
  }

  private recordTerminal(k: ReconcileKey, reason: string, message: string): void {
    const rec = this.opts.recorder;
    if (!rec) return;
    const obj = this.opts.for.get(k.namespace || undefined, k.name);
    if (!obj) return;
    void rec.warning(obj, reason, message);
  }
}
