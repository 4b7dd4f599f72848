/**
 * `celeriac/client`: enqueue tasks, await results, check status and revoke — Celery's `delay()`,
 * `apply_async()` and `AsyncResult`, on NATS JetStream.
 */
import { createHash, randomUUID } from "node:crypto";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { canvasKey, checkCanvas, freezeCanvas, InvalidCanvasError, type CanvasNode, type CanvasRecord, type FrozenNode } from "../api/canvas.js";
import type { ProducerFlow, UniqueSpec } from "../api/flow.js";
import type { TaskMessage, TaskRecord } from "../api/message.js";
import { DEFAULT_NAMESPACE, queueNames, type QueueNames } from "../api/naming.js";
import type { RetryPolicySpec } from "../api/policies.js";
import type { QueueSpec } from "../api/queue.js";
import { InvalidTaskMessageError, newTaskMessage, taskTimingFields } from "../api/task-message.js";
import type { TaskProgress, TaskStatus } from "../api/task.js";
import { connectNats, ensureQueueResources, natsSettingsFrom, publishTaskMessage, queueSettings, revokeTask, type NatsSettings, type QueueSettings } from "../nats/index.js";
import { claimUnique, confirmUnique } from "../nats/unique.js";
import { isCanvas, type Canvas } from "../canvas/build.js";
import { CanvasRuntime, canvasTaskIds } from "../canvas/runtime.js";
import { frozenTasks } from "../canvas/plan.js";
import { isTaskDefinition, type SignatureOf, type TaskDefinition, type TaskSignature } from "../worker/define-task.js";
import { canvasHandle, type CanvasHandle } from "./canvas-handle.js";
import { resolveEnqueueFlow, type DefinitionFlowDefaults } from "./enqueue-flow.js";
import { EnqueueError, EnqueueManyError, QueueNotFoundError, ResultTimeoutError, TaskFailedError, UniqueKeyHeldError } from "./errors.js";
import { isNoResponders, listQueues, queueStreamExists } from "./queue-lookup.js";
import { DEFAULT_SETTINGS_REFRESH_MS, ProducerSettings } from "./producer-settings.js";
import { ResultWatcher } from "./result-watcher.js";
import { watchProgress, type ProgressCallback, type ProgressSubscription } from "./progress-watch.js";

/** Options of `connect`. */
export interface ConnectOptions {
  /** Use this connection (not closed by `client.close()`); else one is opened from `nats`/env. */
  nc?: NatsConnection;
  /** NATS URL(s), comma-separated; default `CELERIAC_NATS_URL` or `nats://127.0.0.1:4222`. */
  servers?: string;
  /** Full NATS settings (overrides `servers`). */
  nats?: NatsSettings;
  /** Default queue of `enqueue`/`get`. */
  queue?: string;
  /** Default namespace. Default `default`. */
  namespace?: string;
  /** Settings used when the client creates a missing queue's resources (`createQueues`). */
  queueSettings?: Partial<QueueSettings>;
  /**
   * Standalone mode: create a queue's streams and bucket on first use when missing. Default false:
   * Queues are managed (the operator makes the streams of each Queue resource), so an enqueue to a
   * queue without streams rejects at once with `QueueNotFoundError` naming the queues that exist.
   * Giving `queueSettings` (which only matter when the client creates queues) implies true.
   */
  createQueues?: boolean;
  /** @deprecated use `createQueues` (same meaning). */
  ensureResources?: boolean;
  /**
   * How long an enqueue keeps trying to get JetStream's confirmation (e.g. across a server restart)
   * before rejecting with `EnqueueError`, in ms. Default 30000.
   */
  enqueueTimeoutMs?: number;
  /**
   * How long a Queue's producer settings (its default timeout and retry policy, published by the
   * operator) are used before they are re-read in the background, in ms. Default 30000.
   */
  settingsRefreshMs?: number;
}

/** Per-call options of `enqueue`. Times: seconds, or Date / RFC 3339 strings. */
export interface EnqueueOptions {
  /** Queue (default: the client's). */
  queue?: string;
  /** Namespace (default: the client's). */
  namespace?: string;
  /** Task id (1-256 of `A-Z a-z 0-9 _ = -`); the same id twice within the duplicate window runs once. Default a UUID. */
  taskId?: string;
  /** Run no earlier than this many seconds from now. Exclusive with `eta`. */
  countdownSeconds?: number;
  /** Run no earlier than this time. Exclusive with `countdownSeconds`. */
  eta?: Date | string;
  /** Not run if not started by then: a Date/RFC 3339 string, or seconds from now. Ends `Expired`. */
  expires?: Date | string | number;
  /** Handler time limit, in seconds. Default the Queue's `timeoutSeconds`, else 3600. */
  timeoutSeconds?: number;
  /**
   * Retry policy; each absent field takes the Queue's (`spec.retry`), else the documented default
   * (3 attempts, 1 s ×2, cap 600 s, jitter).
   */
  retry?: RetryPolicySpec;
  /**
   * W3C traceparent: the parent of the task's `celeriac.enqueue` span instead of the active context
   * (docs/tracing.md); carried in the envelope even when no OpenTelemetry SDK is registered.
   */
  traceparent?: string;
  /** W3C tracestate that goes with `traceparent`. */
  tracestate?: string;
  /**
   * Priority level on a flow-controlled Queue: an integer 0 … `spec.priorities.levels` - 1, higher
   * starts first. Default: the task definition's `priority` (when enqueued through one), else the
   * Queue's `priorities.default`. A priority on a queue without priorities is refused (TypeError).
   */
  priority?: number;
  /**
   * Concurrency key (tenant, account, …; 1–128 characters) on a Queue with `spec.concurrencyKeys`:
   * at most its limit of tasks with this key run at once. Default: the task definition's
   * `concurrencyKey(args, kwargs)`, else the Queue's `concurrencyKeys.from`. A key on a queue
   * without concurrencyKeys is refused (TypeError).
   */
  concurrencyKey?: string;
  /**
   * Singleton: at most one Queued-or-Running task of the queue holds `key`. When another live task
   * holds it, `policy` Reject (default) rejects with `UniqueKeyHeldError`; Replace revokes the holder
   * if it has not started (else the new task waits for it); Wait publishes the task, which starts
   * once the holder finished.
   */
  unique?: UniqueSpec;
}

/** Options of `client.apply` (a canvas's per-step options go on its signatures: `sig.set({...})`). */
export interface ApplyOptions {
  /** The canvas's queue: steps without their own `queue` option run there, and its results bucket holds the canvas's joins. Default: the client's. */
  queue?: string;
  /** Namespace of every step. Default: the client's. */
  namespace?: string;
  /**
   * The canvas id (1-200 of `A-Z a-z 0-9 _ = -`): every step's id derives from it, so applying the
   * same canvas with the same id again within the duplicate window runs it once. Default a UUID.
   */
  taskId?: string;
}

/** Largest frozen tree kept in the canvas record (`canvas.<id>`), in bytes of JSON (512 KiB). */
const MAX_CANVAS_RECORD_TREE_BYTES = 512 * 1024;

/** One element of `enqueueMany`: what `enqueue(name, args, kwargs, options)` takes. */
export interface EnqueueManyTask {
  /** The task name, or its definition (whose `priority` / `concurrencyKey` are then the defaults). */
  name: string | TaskDefinition;
  /** Positional arguments (default none). */
  args?: unknown[];
  /** Keyword arguments (default none). */
  kwargs?: Record<string, unknown>;
  /** The same options as `enqueue`'s (queue, taskId, countdown, …). */
  options?: EnqueueOptions;
}

/** The outcome of one `enqueueMany` element: its handle, or the error `enqueue` would have thrown. */
export type EnqueueManyResult = { ok: true; handle: TaskHandle } | { ok: false; error: Error };

/** Most `enqueueMany` publishes awaiting JetStream's confirmation at once (4,096 measured no faster than 1,024 here). */
export const ENQUEUE_MANY_WINDOW = 1024;

/** A task's record, or undefined when the results bucket has none (not started yet, or expired by TTL). */
export type TaskRecordOrNone = TaskRecord | undefined;

/** A handle on one task. */
export interface TaskHandle<R = unknown> {
  /** The task id. */
  readonly id: string;
  readonly queue: string;
  readonly namespace: string;
  /**
   * Waits (KV watch, no polling) until the task is terminal.
   * @returns the handler's result when it Succeeded
   * @throws TaskFailedError when it ended Failed, Cancelled or Expired (with `type`, `message`, `phase`)
   * @throws ResultTimeoutError after `timeoutMs`
   */
  result(opts?: { timeoutMs?: number }): Promise<R>;
  /** The task's current status, or undefined when no worker has recorded it yet. */
  status(): Promise<TaskStatus | undefined>;
  /** The task's full record, or undefined. */
  record(): Promise<TaskRecordOrNone>;
  /**
   * Revokes the task: if it has not started it never runs (ends `Cancelled`); if it is running its
   * signal is aborted within about a second and it ends `Cancelled`; a finished task is unchanged.
   */
  revoke(): Promise<void>;
  /**
   * The task's last reported progress (`status.progress`: `{fraction?, done?, total?, display, meta?,
   * updatedAt}`, written by the handler's `ctx.progress`), read once from the results bucket.
   * @returns undefined when the task has not reported any (or has no record yet)
   * @throws QueueNotFoundError when the queue has no streams
   */
  progress(): Promise<TaskProgress | undefined>;
  /**
   * Calls `cb(progress, record)` with the task's current progress and then each new one, in order,
   * from a KV watch of the task's key (no polling; a worker writes progress at most every 250 ms,
   * the last report always). Ends by itself once the task is final, after delivering its last
   * progress; a throwing `cb` does not end it; `client.close()` ends it.
   * @returns the unsubscribe function (idempotent), with `ended`: a promise of the final record
   *   (undefined when unsubscribed first) that rejects when the watch failed or the queue does not exist
   */
  onProgress(cb: ProgressCallback): ProgressSubscription;
}

interface QueueCtx {
  names: QueueNames;
  kv: KV;
  watcher: ResultWatcher;
  settings: ProducerSettings;
}

/**
 * Builds a task message for `enqueue` (pure apart from `now` and `newId`), with
 * `newTaskMessage` from `celeriac/api`: a numeric `expires` is seconds from `now`; `queueSpec` (the
 * Queue's producer settings) gives the defaults of what the options leave out; `flow` (the Queue's
 * producer flow settings, when it is flow-controlled) and the options' `priority` /
 * `concurrencyKey` (else the definition's `defaults`) give the message's `flow`
 * (`resolveEnqueueFlow`); `unique` is checked and set with its policy resolved (default Reject).
 * @throws TypeError (InvalidTaskMessageError, with `field`) naming the bad option and the fix,
 *   including a priority or key the queue cannot honour
 */
export function buildTaskMessage(
  task: string,
  args: unknown[],
  kwargs: Record<string, unknown>,
  o: EnqueueOptions & { queue: string; namespace: string; queueSpec?: Pick<QueueSpec, "timeoutSeconds" | "retry">; flow?: ProducerFlow; defaults?: DefinitionFlowDefaults },
  now: Date,
  newId: () => string = randomUUID,
): TaskMessage {
  const resolved = resolveEnqueueFlow(o.queue, o.flow, o, args, kwargs, o.defaults);
  return newTaskMessage(
    {
      id: o.taskId ?? newId(),
      task,
      args,
      kwargs,
      queue: o.queue,
      namespace: o.namespace,
      origin: { kind: "Client" },
      ...taskTimingFields(o),
      ...(o.traceparent ? { traceparent: o.traceparent, ...(o.tracestate ? { tracestate: o.tracestate } : {}) } : {}),
      ...(o.queueSpec ? { queueSpec: o.queueSpec } : {}),
      ...(resolved.flow ? { flow: resolved.flow } : {}),
      ...(resolved.unique ? { unique: resolved.unique } : {}),
    },
    now,
  );
}

/** A Celeriac client. Create with `connect()`. */
export class CeleriacClient {
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #js: JetStreamClient;
  readonly #o: ConnectOptions;
  readonly #queues = new Map<string, Promise<QueueCtx>>();
  /** Live `onProgress` subscriptions, ended by `close`. */
  readonly #progressSubs = new Set<ProgressSubscription>();
  #jsmP: Promise<JetStreamManager> | undefined;
  readonly #rechecks = new Map<string, Promise<boolean>>();
  readonly #runtimes = new Map<string, CanvasRuntime>();

  /** @internal use `connect()` */
  constructor(nc: NatsConnection, ownsConnection: boolean, o: ConnectOptions) {
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#js = jetstream(nc);
    this.#o = o;
  }

  /** The underlying NATS connection. */
  get connection(): NatsConnection {
    return this.#nc;
  }

  #queue(namespace: string, queue: string): Promise<QueueCtx> {
    const key = `${namespace}/${queue}`;
    let p = this.#queues.get(key);
    if (!p) {
      p = (async () => {
        const names = queueNames(namespace, queue);
        if (this.#createQueues) {
          await ensureQueueResources(await this.#jsm(), names, queueSettings(this.#o.queueSettings));
        } else if (!(await queueStreamExists(await this.#jsm(), names))) {
          throw await this.#queueNotFound(namespace, queue);
        }
        const kv = await new Kvm(this.#js).open(names.resultsBucket);
        const settings = new ProducerSettings(kv, this.#o.settingsRefreshMs ?? DEFAULT_SETTINGS_REFRESH_MS);
        await settings.load();
        return { names, kv, watcher: new ResultWatcher(kv), settings };
      })();
      p.catch(() => this.#queues.delete(key));
      this.#queues.set(key, p);
    }
    return p;
  }

  /** One JetStream manager per client (made on first use; no API check per call). */
  #jsm(): Promise<JetStreamManager> {
    this.#jsmP ??= jetstreamManager(this.#nc, { checkAPI: false });
    return this.#jsmP;
  }

  get #createQueues(): boolean {
    return this.#o.createQueues ?? this.#o.ensureResources ?? this.#o.queueSettings !== undefined;
  }

  async #queueNotFound(namespace: string, queue: string, cause?: unknown): Promise<QueueNotFoundError> {
    let existing: string[] = [];
    try {
      existing = await listQueues(await this.#jsm(), namespace);
    } catch {
      // the list only decorates the message
    }
    return new QueueNotFoundError(namespace, queue, existing, cause === undefined ? undefined : { cause });
  }

  /**
   * After a failed publish attempt: "no responders" means no stream listens on the subject. When the
   * work stream is gone (the Queue was deleted after this client cached it), forget the queue and
   * reject with `QueueNotFoundError` (standalone: create it again and retry).
   */
  async #onPublishError(err: unknown, namespace: string, queue: string, names: QueueNames): Promise<void> {
    if (!isNoResponders(err)) return;
    const key = `${namespace}/${queue}`;
    // concurrent enqueues that all hit the deleted stream share one re-check
    let check = this.#rechecks.get(key);
    if (!check) {
      check = (async () => queueStreamExists(await this.#jsm(), names))()
        .catch(() => true) // JetStream not answering (e.g. restarting): keep retrying
        .finally(() => this.#rechecks.delete(key));
      this.#rechecks.set(key, check);
    }
    if (await check) return;
    if (this.#createQueues) {
      await ensureQueueResources(await this.#jsm(), names, queueSettings(this.#o.queueSettings)).catch(() => undefined);
      return;
    }
    this.#queues.delete(key);
    throw await this.#queueNotFound(namespace, queue, err);
  }

  #target(o: { queue?: string; namespace?: string }): { queue: string; namespace: string } {
    const queue = o.queue ?? this.#o.queue;
    if (!queue) throw new TypeError("no queue given: pass { queue } to enqueue/get or to connect()");
    return { queue, namespace: o.namespace ?? this.#o.namespace ?? DEFAULT_NAMESPACE };
  }

  /**
   * Enqueues a task. Resolves once JetStream has stored it (retrying across reconnects with the same
   * `Nats-Msg-Id`, so no duplicate). Many concurrent calls pipeline their publish acks.
   * @returns a handle on the task
   * @param task the task name, or its definition (`defineTask(…)`): then the definition's
   *   `priority` and `concurrencyKey(args, kwargs)` are the defaults of the options
   * @throws TypeError on invalid arguments or options (naming the field), including a `priority` or
   *   `concurrencyKey` the queue cannot honour
   * @throws QueueNotFoundError when the queue has no streams (not with `createQueues`); checked
   *   once per queue per client, and again when a publish finds no stream listening
   * @throws UniqueKeyHeldError (an EnqueueError) when `unique` (policy Reject) is held by another
   *   live task: nothing was published
   * @throws EnqueueError when JetStream did not confirm within `enqueueTimeoutMs`
   */
  enqueue<N extends string, S extends TaskSignature>(task: TaskDefinition<N, S>, args?: S["args"], kwargs?: S["kwargs"], options?: EnqueueOptions): Promise<TaskHandle<S["result"]>>;
  enqueue<N extends string>(task: N, args?: SignatureOf<N>["args"], kwargs?: SignatureOf<N>["kwargs"], options?: EnqueueOptions): Promise<TaskHandle<SignatureOf<N>["result"]>>;
  async enqueue(task: string | TaskDefinition, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: EnqueueOptions = {}): Promise<TaskHandle> {
    const t = this.#target(options);
    const q = await this.#queue(t.namespace, t.queue);
    return this.#publish(q, t, task, args, kwargs, options);
  }

  /**
   * Builds one task's message (throws TypeError on a bad option), takes its singleton lock when it
   * has `unique`, and publishes it; see `enqueue`.
   */
  async #publish<R>(q: QueueCtx, t: { queue: string; namespace: string }, def: string | TaskDefinition, args: unknown[], kwargs: Record<string, unknown>, options: EnqueueOptions): Promise<TaskHandle<R>> {
    const task = typeof def === "string" ? def : def.name;
    const defaults: DefinitionFlowDefaults | undefined = isTaskDefinition(def)
      ? { task, ...(def.options.priority !== undefined ? { priority: def.options.priority } : {}), ...(def.options.concurrencyKey ? { concurrencyKey: def.options.concurrencyKey } : {}) }
      : undefined;
    const queueSpec = q.settings.queueSpec();
    const flow = q.settings.flow();
    const msg = buildTaskMessage(task, args, kwargs, { ...options, ...t, ...(queueSpec ? { queueSpec } : {}), ...(flow ? { flow } : {}), ...(defaults ? { defaults } : {}) }, new Date());
    if (msg.unique) await this.#claim(q, t, msg, msg.unique);
    const limit = this.#o.enqueueTimeoutMs ?? 30_000;
    try {
      await publishTaskMessage(this.#js, q.names, msg, {
        timeoutMs: limit,
        isClosed: () => this.#nc.isClosed(),
        onError: (err) => this.#onPublishError(err, t.namespace, t.queue, q.names),
      });
    } catch (err) {
      if (err instanceof QueueNotFoundError) throw err;
      throw new EnqueueError(
        `enqueue ${task} (${msg.id}) on queue ${t.namespace}/${t.queue}: JetStream did not confirm within ${limit} ms (${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}); ` +
          `retrying with taskId "${msg.id}" is safe (deduplicated within the duplicate window)`,
        { cause: err },
      );
    }
    if (msg.unique) {
      // the lock now names a task known to be in a stream (else it is taken as never published
      // after the grace); the task is stored either way, so a failure here is a warning, not an error
      await confirmUnique(q.kv, msg).catch((err: unknown) => process.emitWarning(`enqueue ${task} (${msg.id}): ${(err as Error).message}`, "UniqueLockWarning"));
    }
    return this.#handle<R>(msg.id, t);
  }

  /**
   * Takes the singleton lock of `msg` (claimUnique, nats/unique.ts). Claimed, Wait and Replace
   * publish; Reject with another holder throws. A lock already held by this very task id (a retried
   * enqueue) counts as claimed.
   * @throws UniqueKeyHeldError naming the holder and the policy
   * @throws EnqueueError when the results bucket cannot be read or written
   */
  async #claim(q: QueueCtx, t: { queue: string; namespace: string }, msg: TaskMessage, unique: NonNullable<TaskMessage["unique"]>): Promise<void> {
    let claim: Awaited<ReturnType<typeof claimUnique>>;
    try {
      claim = await claimUnique(q.kv, msg, unique);
    } catch (err) {
      throw new EnqueueError(`enqueue ${msg.task} (${msg.id}) on queue ${t.namespace}/${t.queue}: take unique key "${unique.key}": ${(err as Error).message}; nothing was published, retrying is safe`, { cause: err });
    }
    if (claim.outcome === "rejected" && claim.holder !== msg.id) throw new UniqueKeyHeldError(msg, t, unique.key, claim.holder);
  }

  /**
   * Enqueues many tasks at once (BullMQ's `addBulk`): every element takes the same arguments and
   * options as `enqueue`, and all publishes are pipelined (at most {@link ENQUEUE_MANY_WINDOW} awaiting
   * JetStream's confirmation at a time) instead of confirmed one by one. Elements are independent:
   * each is stored, with its own `Nats-Msg-Id`, or fails on its own.
   * @param tasks `{ name, args?, kwargs?, options? }` per task
   * @returns the handles, in the order of `tasks`, once every task is stored
   * @throws EnqueueManyError (an `AggregateError`) when any element failed: its `results` has one
   *   entry per element, in order, `{ ok: true, handle }` or `{ ok: false, error }` (the error
   *   `enqueue` would have thrown: TypeError, QueueNotFoundError, EnqueueError); the elements that
   *   succeeded are stored, so retrying only the failed ones (with the same `taskId`s) is safe
   * @throws TypeError when `tasks` is not an array
   */
  async enqueueMany(tasks: readonly EnqueueManyTask[]): Promise<TaskHandle[]> {
    const results = await this.enqueueManySettled(tasks);
    if (results.every((r) => r.ok)) return results.map((r) => (r as { handle: TaskHandle }).handle);
    throw new EnqueueManyError(results);
  }

  /**
   * As `enqueueMany`, but never rejects for an element: resolves with one result per element, in
   * order (`{ ok: true, handle }` or `{ ok: false, error }`), like `Promise.allSettled`.
   * @throws TypeError when `tasks` is not an array
   */
  async enqueueManySettled(tasks: readonly EnqueueManyTask[]): Promise<EnqueueManyResult[]> {
    if (!Array.isArray(tasks)) throw new TypeError("enqueueMany(tasks): tasks must be an array of { name, args?, kwargs?, options? }");
    const results = new Array<EnqueueManyResult>(tasks.length);
    // a counting window (not Promise.race over the in-flight set, which is O(window) per element)
    let inflight = 0;
    let slot: (() => void) | undefined;
    let drained: (() => void) | undefined;
    const release = () => {
      inflight--;
      const s = slot;
      slot = undefined;
      s?.();
      if (inflight === 0) drained?.();
    };
    for (let i = 0; i < tasks.length; i++) {
      if (inflight >= ENQUEUE_MANY_WINDOW) await new Promise<void>((r) => (slot = r));
      inflight++;
      void this.#enqueueElement(tasks[i], i).then(
        (handle) => void (results[i] = { ok: true, handle }),
        (error: unknown) => void (results[i] = { ok: false, error: error instanceof Error ? error : new Error(String(error)) }),
      ).finally(release);
    }
    if (inflight > 0) await new Promise<void>((r) => (drained = r));
    return results;
  }

  /** One element of `enqueueMany`: checks its shape, then enqueues it as `enqueue` does. */
  async #enqueueElement(el: EnqueueManyTask | undefined, i: number): Promise<TaskHandle> {
    if (!el || typeof el !== "object" || !((typeof el.name === "string" && el.name !== "") || isTaskDefinition(el.name))) {
      throw new TypeError(`enqueueMany: tasks[${i}].name must be a non-empty task name string or a task definition (defineTask)`);
    }
    const options = el.options ?? {};
    const t = this.#target(options);
    const q = await this.#queue(t.namespace, t.queue);
    return this.#publish(q, t, el.name, (el.args ?? []) as unknown[], (el.kwargs ?? {}) as Record<string, unknown>, options);
  }

  /**
   * Launches a canvas (Celery's `canvas.apply_async()`): checks it (`checkCanvas`), freezes it
   * (every step's id derived from the canvas id), writes its record `canvas.<id>` (CanvasRecord,
   * api/canvas.ts) in the results bucket of its queue, and publishes its first tasks (and the join
   * records of its groups); workers run the rest, each finished step continuing the canvas.
   * @param canvas a builder (`chain(...)`, `group(...)`, `add.s(...)`, …) or a node in wire form
   * @returns a handle: `id`, `result()`, `children()`, `revoke()`
   * @throws InvalidCanvasError (a TypeError) naming the path of a malformed node or an invalid `taskId`
   * @throws TypeError on an invalid step option (naming the field), or when no queue is given
   * @throws QueueNotFoundError when the canvas's queue or a step's queue has no streams (not with `createQueues`)
   * @throws EnqueueError when the canvas record could not be written or JetStream did not confirm a
   *   publish in time (applying again with the same `taskId` is safe)
   */
  async apply<R>(canvas: Canvas<R> | CanvasNode, options: ApplyOptions = {}): Promise<CanvasHandle<R>> {
    const node: unknown = isCanvas(canvas) ? canvas.toJSON() : canvas;
    checkCanvas(node);
    const t = this.#target(options);
    const id = options.taskId ?? randomUUID();
    const frozen = freezeCanvas(node, id);
    const q = await this.#queue(t.namespace, t.queue);
    // every queue a step runs on must exist (or is created, standalone) before anything is published
    const steps = canvasTaskIds(frozen, t.queue);
    const byQueue = new Map<string, string[]>();
    for (const s of steps) {
      const ids = byQueue.get(s.queue);
      if (ids) ids.push(s.id);
      else byQueue.set(s.queue, [s.id]);
    }
    const queues = await Promise.all(
      [...byQueue].map(async ([name, ids]) => {
        try {
          return { ctx: await this.#queue(t.namespace, name), ids };
        } catch (err) {
          // which step asked for it: in a 100-step canvas the queue's name alone does not say
          if (err instanceof QueueNotFoundError && name !== t.queue) {
            const first = steps.find((s) => s.queue === name)!;
            err.message = `canvas step ${first.id} (${first.task}): options.queue: ${err.message}`;
          }
          throw err;
        }
      }),
    );
    await this.#checkStepFlow(frozen, t);
    let created = false;
    try {
      created = await this.#writeCanvasRecord(q.kv, canvasRecord(frozen, id, t, new Date()));
      // a new canvas: the result watches start before anything is published, so the handle's
      // result() needs no read per step (a re-apply's steps may be finished already: they are read)
      if (created) await Promise.all(queues.map(({ ctx, ids }) => ctx.watcher.expect(ids)));
      await this.#runtime(t.namespace).start(frozen, { root: id, home: t.queue, queue: t.queue });
    } catch (err) {
      if (err instanceof TypeError || err instanceof QueueNotFoundError) {
        // refused before anything was published (start() builds every first message first): no record of a canvas that never ran
        if (created) await q.kv.purge(canvasKey(id)).catch(() => undefined);
        throw err;
      }
      throw new EnqueueError(`apply canvas ${id} on queue ${t.namespace}/${t.queue}: ${(err as Error).message}; applying again with taskId "${id}" is safe (deduplicated within the duplicate window)`, { cause: err });
    }
    return this.canvas<R>(id, frozen, t);
  }

  /**
   * Checks every step's explicit `priority` / `concurrencyKey` against its Queue before anything
   * runs: a later step its Queue cannot honour would otherwise fail only after the steps before it
   * ran. (The first tasks are checked again when their messages are built.)
   * @throws InvalidTaskMessageError "canvas step <id> (<task>): options.priority: …"
   */
  async #checkStepFlow(frozen: FrozenNode, t: { queue: string; namespace: string }): Promise<void> {
    for (const ft of frozenTasks(frozen)) {
      const o = ft.options;
      if (!o || (o.priority === undefined && o.concurrencyKey === undefined)) continue;
      const queue = o.queue ?? t.queue;
      const flow = (await this.#queue(t.namespace, queue)).settings.flow();
      const given = { ...(o.priority !== undefined ? { priority: o.priority } : {}), ...(o.concurrencyKey !== undefined ? { concurrencyKey: o.concurrencyKey } : {}) };
      try {
        resolveEnqueueFlow(queue, flow, given, ft.args ?? [], ft.kwargs ?? {});
      } catch (err) {
        // only what the step gave: a key read from args (concurrencyKeys.from) depends on the parent's result
        if (err instanceof InvalidTaskMessageError && err.field in given) throw new InvalidTaskMessageError(err.field, `canvas step ${ft.id} (${ft.task}): options.${err.message}`);
      }
    }
  }

  /**
   * Creates the canvas record; when one exists (the id was applied before), the same tree is a
   * re-apply (its steps are deduplicated by id) and another tree is refused: its steps would share
   * ids with the first canvas's and mix their results.
   * @returns true when this call created it
   * @throws InvalidCanvasError (path `taskId`) when the id holds another canvas
   */
  async #writeCanvasRecord(kv: KV, rec: CanvasRecord): Promise<boolean> {
    try {
      await kv.create(canvasKey(rec.id), JSON.stringify(rec));
      return true;
    } catch (err) {
      const e = await kv.get(canvasKey(rec.id));
      if (e?.operation !== "PUT") throw err;
      const old = e.json<CanvasRecord>();
      const same = old.treeHash !== undefined ? old.treeHash === rec.treeHash : old.tree !== undefined && JSON.stringify(old.tree) === JSON.stringify(rec.tree);
      if (!same) {
        throw new InvalidCanvasError("taskId", `taskId: canvas id "${rec.id}" is already used by another canvas (applied ${old.createdAt} on queue ${old.queue}); its steps would share ids with that one's: give a new taskId`);
      }
      return false;
    }
  }

  /** The canvas runtime of a namespace (one per client and namespace: its settings cache is shared). */
  #runtime(namespace: string): CanvasRuntime {
    let r = this.#runtimes.get(namespace);
    if (!r) {
      r = new CanvasRuntime({
        js: this.#js,
        namespace,
        maxPayload: () => this.#nc.info?.max_payload,
        bucket: async (name) => (await this.#queue(namespace, name)).kv,
        settings: async (name) => {
          const s = (await this.#queue(namespace, name)).settings;
          const queueSpec = s.queueSpec();
          const flow = s.flow();
          return { ...(queueSpec ? { queueSpec } : {}), ...(flow ? { flow } : {}) };
        },
      });
      this.#runtimes.set(namespace, r);
    }
    return r;
  }

  /**
   * A handle on a canvas already applied, from its frozen tree (e.g. `(await getCanvasRecord(id)).tree`).
   * @param o the canvas's queue and namespace (default: the client's)
   * @throws TypeError when `tree` is missing (a record whose tree was over 512 KiB keeps none)
   */
  canvas<R = unknown>(id: string, tree: FrozenNode, o: { queue?: string; namespace?: string } = {}): CanvasHandle<R> {
    if (tree === undefined || tree === null || typeof tree !== "object") {
      throw new TypeError(`canvas(${JSON.stringify(id)}): no frozen tree given; a canvas record keeps its tree only up to 512 KiB (getCanvasRecord(id).tree is then undefined): keep the handle client.apply returned, or its tree (handle.tree)`);
    }
    const t = this.#target(o);
    return canvasHandle<R>({ id, queue: t.queue, namespace: t.namespace, tree, get: (taskId, queue, task) => this.#handle(taskId, { queue, namespace: t.namespace, ...(task ? { task } : {}) }) });
  }

  /**
   * Reads a canvas's record (`canvas.<id>` in its queue's results bucket), written by `apply`.
   * @returns the record, or undefined when there is none (never applied, or expired by the bucket's TTL)
   * @throws QueueNotFoundError when the queue has no streams
   */
  async getCanvasRecord(id: string, o: { queue?: string; namespace?: string } = {}): Promise<CanvasRecord | undefined> {
    const t = this.#target(o);
    const e = await (await this.#queue(t.namespace, t.queue)).kv.get(canvasKey(id));
    return e?.operation === "PUT" ? e.json<CanvasRecord>() : undefined;
  }

  /** A handle for an existing task id. */
  get<R = unknown>(id: string, o: { queue?: string; namespace?: string } = {}): TaskHandle<R> {
    return this.#handle<R>(id, this.#target(o));
  }

  #handle<R>(id: string, t: { queue: string; namespace: string; task?: string }): TaskHandle<R> {
    const record = async (): Promise<TaskRecordOrNone> => {
      const q = await this.#queue(t.namespace, t.queue);
      const e = await q.kv.get(id);
      return e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
    };
    return {
      id,
      queue: t.queue,
      namespace: t.namespace,
      record,
      status: async () => (await record())?.status,
      result: async (opts = {}) => {
        const q = await this.#queue(t.namespace, t.queue);
        const rec = await q.watcher.wait(id, opts.timeoutMs, () => new ResultTimeoutError(`task ${id} did not finish within ${opts.timeoutMs} ms`));
        if (rec.status.phase === "Succeeded") return rec.status.result as R;
        throw new TaskFailedError(rec);
      },
      revoke: async () => {
        const q = await this.#queue(t.namespace, t.queue);
        await revokeTask(q.kv, t, id, t.task);
      },
      progress: async () => (await record())?.status.progress,
      onProgress: (cb) => this.#onProgress(t, id, cb),
    };
  }

  /** `handle.onProgress`: opens the queue, then watches the task's key (progress-watch.ts). */
  #onProgress(t: { queue: string; namespace: string }, id: string, cb: ProgressCallback): ProgressSubscription {
    let inner: ProgressSubscription | undefined;
    let stopped = false;
    const stop = () => {
      stopped = true;
      inner?.();
    };
    const ended = this.#queue(t.namespace, t.queue).then((q) => {
      if (stopped) return undefined;
      inner = watchProgress(q.kv, id, cb, () => this.#progressSubs.delete(sub));
      return inner.ended;
    });
    ended.catch(() => {
      this.#progressSubs.delete(sub);
    });
    const sub: ProgressSubscription = Object.assign(stop, { ended });
    this.#progressSubs.add(sub);
    return sub;
  }

  /** Stops result and progress watches and closes the connection if the client opened it (drained). */
  async close(): Promise<void> {
    for (const s of [...this.#progressSubs]) s();
    this.#progressSubs.clear();
    for (const p of this.#queues.values()) {
      try {
        (await p).watcher.stop();
      } catch {
        // queue never opened
      }
    }
    if (this.#ownsConnection && !this.#nc.isClosed()) await this.#nc.drain();
  }
}

/** The record `apply` writes: the tree is left out when its JSON exceeds 512 KiB. */
function canvasRecord(tree: FrozenNode, id: string, t: { queue: string; namespace: string }, now: Date): CanvasRecord {
  const json = JSON.stringify(tree);
  const rec: CanvasRecord = { v: 1, id, namespace: t.namespace, queue: t.queue, createdAt: now.toISOString(), treeHash: createHash("sha256").update(json).digest("hex") };
  return Buffer.byteLength(json) <= MAX_CANVAS_RECORD_TREE_BYTES ? { ...rec, tree } : rec;
}

/**
 * Connects a client.
 * @throws Error "connect to NATS at …" when the server cannot be reached
 */
export async function connect(opts: ConnectOptions = {}): Promise<CeleriacClient> {
  if (opts.nc) return new CeleriacClient(opts.nc, false, opts);
  const settings = opts.nats ?? natsSettingsFrom(opts.servers ? { url: opts.servers, name: "celeriac-client" } : { name: "celeriac-client" });
  return new CeleriacClient(await connectNats(settings), true, opts);
}
