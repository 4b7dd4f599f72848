/**
 * `defineTask`: how a tasks module declares its handlers. A tasks module is an ES module whose
 * exports include values returned by `defineTask`; the worker registers every such export.
 */
import type { Logger } from "pino";
import { MAX_PRIORITY_LEVELS, parseRate } from "../api/flow.js";
import type { SignatureOptions } from "../api/canvas.js";
import type { RetryPolicySpec } from "../api/policies.js";
import type { ProgressValue } from "./progress.js";
import { immutableSignature, signature, type ArgsSuffix, type Signature } from "../canvas/build.js";

/**
 * Registry of task signatures, for typed handlers and typed `client.enqueue`. Extend it by
 * declaration merging:
 * ```ts
 * declare module "celeriac/worker" {
 *   interface TaskRegistry {
 *     "emails.send": { args: [to: string, subject: string]; kwargs: { cc?: string[] }; result: { messageId: string } };
 *   }
 * }
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TaskRegistry {}

/** Signature of one task: positional args, keyword args and result (all JSON). */
export interface TaskSignature {
  args: unknown[];
  kwargs: Record<string, unknown>;
  result: unknown;
}

/** Signature of task `N`: the registry's entry when declared, else untyped JSON. */
export type SignatureOf<N extends string> = N extends keyof TaskRegistry
  ? TaskRegistry[N] extends TaskSignature
    ? TaskRegistry[N]
    : TaskSignature
  : TaskSignature;

/** What a handler gets besides its arguments. */
export interface TaskContext {
  /** The task id (also the results-bucket key). */
  readonly taskId: string;
  /** This attempt's number, 1-based; crashed attempts count. */
  readonly attempt: number;
  /** Total attempts allowed. */
  readonly maxAttempts: number;
  /** Task (handler) name. */
  readonly task: string;
  /** Queue and namespace the task came from. */
  readonly queue: string;
  readonly namespace: string;
  /**
   * Aborted when the task times out (reason: `TimeoutError`), is revoked (reason:
   * `CancelledError`) or the worker is forced to stop. Pass it to fetch(), child processes, etc.
   */
  readonly signal: AbortSignal;
  /** When the time limit ends (the signal aborts then). */
  readonly deadline: Date;
  /** pino child logger with `{taskId, task, attempt}`. */
  readonly log: Logger;
  /**
   * Resets the message's ack timer now. The worker already does this automatically every third of
   * the ack wait while the handler runs; call it only if you block the event loop for long stretches.
   */
  heartbeat(): void;
  /**
   * Asks for another attempt (Celery's `self.retry`): throws a `RetryError`, so use `throw ctx.retry(…)`
   * or just call it. Uses up an attempt.
   * @param opts.countdownSeconds delay before the next attempt, in seconds (default: the backoff)
   */
  retry(opts?: { countdownSeconds?: number; message?: string }): never;
  /**
   * Reports progress (Celery's `update_state(state, meta)`, BullMQ's `job.updateProgress`): it becomes
   * `status.progress` of the task's record — `{fraction?, done?, total?, display, meta?, updatedAt}` —
   * seen by `handle.progress()` / `handle.onProgress(cb)` in the client and, for a Task resource, on
   * `status.progress` and the Progress column. Call it as often as you like: writes are rate-limited
   * (the results bucket at most every 250 ms, a Task at most every 500 ms, the last report always
   * written) and never block or throw for that; the final record keeps the last report. The phase
   * stays Running: put a custom state in `meta` (e.g. `{stage: "resizing"}`).
   * @param value a fraction from 0 to 1, or `{done, total?}`: non-negative integers, done ≤ total
   *   (leave `total` out when unknown)
   * @param meta your own JSON object (custom state, current item…), at most 4 KiB of JSON
   * @throws TypeError naming the argument and the fix: NaN or a fraction outside 0–1, a count that is
   *   not a non-negative integer, done > total, meta not an object, not JSON-serialisable or over 4 KiB
   */
  progress(value: ProgressValue, meta?: Record<string, unknown>): void;
}

/** A handler: JSON args and kwargs in, JSON-serialisable result (or a promise of one) out. */
export type TaskHandler<S extends TaskSignature = TaskSignature> = (
  args: S["args"],
  kwargs: S["kwargs"],
  ctx: TaskContext,
) => S["result"] | Promise<S["result"]>;

/**
 * Per-handler options; where set they override what the message carries. The flow-control ones
 * (`rateLimit`, `priority`, `concurrencyKey`) matter on a flow-controlled Queue only (one that sets
 * spec.rateLimit, rateLimits, concurrencyKeys or priorities; docs/flow-control.md).
 */
export interface TaskOptions<S extends TaskSignature = TaskSignature> {
  /** Handler time limit, in seconds (overrides the message's `timeoutSeconds`). */
  timeoutSeconds?: number;
  /** Retry policy fields (each overrides the message's resolved value). */
  retry?: RetryPolicySpec;
  /** One-line description, shown in logs at startup. */
  description?: string;
  /**
   * Start rate of this task name across all workers of the queue together, in Celery's syntax
   * (`"10/s"`, `"100/m"`, `"1000/h"`, a bare number = per second; Celery's Task.rate_limit, but
   * global instead of per worker). The worker publishes it at start (results-bucket key
   * `task-defaults.<base64url(name)>`) for the queue's dispatcher; the Queue's
   * `spec.rateLimits[name]` wins over it.
   */
  rateLimit?: string | number;
  /**
   * Default priority (an integer 0–9, below the Queue's `spec.priorities.levels`; higher starts
   * first) of this task when it is enqueued through its definition (`client.enqueue(definition, …)`);
   * an enqueue's own `priority` wins.
   */
  priority?: number;
  /**
   * Default concurrency key of this task when it is enqueued through its definition, computed from
   * its arguments (e.g. `(args, kwargs) => kwargs.tenant`); undefined: no key of its own (the
   * Queue's `concurrencyKeys.from` applies). An enqueue's own `concurrencyKey` wins.
   */
  concurrencyKey?: (args: S["args"], kwargs: S["kwargs"]) => string | undefined;
}

const TASK_MARK: unique symbol = Symbol.for("celeriac.task");

/** A task definition, as returned by `defineTask`. */
export interface TaskDefinition<N extends string = string, S extends TaskSignature = SignatureOf<N>> {
  readonly [TASK_MARK]: true;
  readonly name: N;
  readonly handler: TaskHandler<S>;
  readonly options: Readonly<TaskOptions<S>>;
  /**
   * A signature of this task for a canvas (Celery's `task.s(...)`): `add.s([2, 2])`. In a chain
   * (or as a chord body or a callback) the parent's result is prepended to `args`, so `args` may be
   * any tail of the handler's arguments: `chain(add.s([2, 2]), mul.s([4]))` runs `mul(4, 4)`.
   * @param args positional args, an array (default none)
   * @param kwargs keyword args (default none)
   * @param options per-step options (queue, countdownSeconds, eta, expires, timeoutSeconds, retry, priority, concurrencyKey, unique)
   * @throws InvalidCanvasError (a TypeError) naming the field when args, kwargs or options are malformed
   */
  s(args?: ArgsSuffix<S["args"]>, kwargs?: S["kwargs"], options?: SignatureOptions): Signature<S["result"]>;
  /**
   * An immutable signature (Celery's `task.si(...)`): the parent's result is not prepended, so
   * `args` are the complete arguments: `chain(a.s(), notify.si(["done"]))`.
   * @throws InvalidCanvasError (a TypeError) naming the field when args, kwargs or options are malformed
   */
  si(args?: S["args"], kwargs?: S["kwargs"], options?: SignatureOptions): Signature<S["result"]>;
}

const TASK_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

/**
 * Defines a task.
 * @param name registered name, e.g. `reports.generate` (letters, digits, `_ . : -`; starts with a letter or `_`)
 * @param handler `(args, kwargs, ctx) => result`; a throw is a failed attempt (see errors.ts)
 * @param options per-handler timeout / retry overrides, and the flow-control defaults (rateLimit,
 *   priority, concurrencyKey)
 * @throws TypeError when the name is invalid, the handler is not a function, `rateLimit` is not a
 *   Celery rate, `priority` is not an integer 0–9, or `concurrencyKey` is not a function
 */
export function defineTask<N extends string, S extends TaskSignature = SignatureOf<N>>(
  name: N,
  handler: TaskHandler<S>,
  options: TaskOptions<S> = {},
): TaskDefinition<N, S> {
  if (!TASK_NAME.test(name) || name.length > 200) {
    throw new TypeError(`task name "${name}" is invalid: use letters, digits and _ . : - (starting with a letter or _), at most 200`);
  }
  if (typeof handler !== "function") throw new TypeError(`task "${name}": handler must be a function`);
  checkFlowOptions(name, options);
  const def: TaskDefinition<N, S> = Object.freeze({
    [TASK_MARK]: true as const,
    name,
    handler,
    options: Object.freeze({ ...options }),
    s: (args?: ArgsSuffix<S["args"]>, kwargs?: S["kwargs"], o?: SignatureOptions) => signature(def, args, kwargs, o),
    si: (args?: S["args"], kwargs?: S["kwargs"], o?: SignatureOptions) => immutableSignature(def, args, kwargs, o),
  });
  return def;
}

/**
 * Checks the flow-control options of `defineTask`.
 * @throws TypeError naming the task, the option and the fix
 */
function checkFlowOptions(name: string, o: TaskOptions<never>): void {
  if (o.rateLimit !== undefined) {
    try {
      parseRate(o.rateLimit, `task "${name}": rateLimit`);
    } catch (err) {
      throw new TypeError((err as Error).message, { cause: err });
    }
  }
  const maxPriority = MAX_PRIORITY_LEVELS - 1;
  if (o.priority !== undefined && !(Number.isInteger(o.priority) && o.priority >= 0 && o.priority <= maxPriority)) {
    throw new TypeError(`task "${name}": priority ${String(o.priority)} is invalid: use an integer 0 … ${maxPriority} (below the Queue's spec.priorities.levels; higher starts first)`);
  }
  if (o.concurrencyKey !== undefined && typeof o.concurrencyKey !== "function") {
    throw new TypeError(`task "${name}": concurrencyKey must be a function (args, kwargs) => string | undefined, e.g. (args, kwargs) => kwargs.tenant`);
  }
}

/** True when `v` was made by `defineTask`. */
export function isTaskDefinition(v: unknown): v is TaskDefinition {
  return typeof v === "object" && v !== null && (v as Record<symbol, unknown>)[TASK_MARK] === true;
}

/**
 * Collects the task definitions among a module's exports (and arrays of them), keyed by name.
 * @throws Error when two exports define the same name, or when there is none
 */
export function collectTasks(mod: Record<string, unknown> | readonly unknown[]): Map<string, TaskDefinition> {
  const out = new Map<string, TaskDefinition>();
  const values = Array.isArray(mod) ? mod : Object.values(mod);
  const add = (v: unknown) => {
    if (!isTaskDefinition(v)) return;
    const prev = out.get(v.name);
    if (prev && prev !== v) throw new Error(`task "${v.name}" is defined twice`);
    out.set(v.name, v);
  };
  for (const v of values) {
    if (Array.isArray(v)) v.forEach(add);
    else add(v);
  }
  if (out.size === 0) throw new Error("the tasks module exports no task: export values made by defineTask()");
  return out;
}
