/**
 * Crash attribution: which task a lost worker's crash counts against. Pure.
 *
 * A worker process that dies (SIGKILL, OOM, a segfault, a handler calling `process.exit`) takes
 * every attempt in flight on it down, and JetStream redelivers them all. Counting each crash as an
 * attempt of every task in flight (what the delivery count alone gives, and what Celery does) lets
 * one poison task dead-letter the innocent tasks that merely ran beside it. So the worker counts a
 * crash only against a task that ran *alone* on its process:
 * - a delivery whose previous delivery was lost with its worker (its record says `Running` with no
 *   outcome after it, or no record at all though JetStream delivered it before) runs alone: the
 *   worker lets the handlers in flight finish, pulls nothing meanwhile, records `Running` (alone)
 *   *before* the handler starts, and runs it with no other handler beside it;
 * - a loss while the task ran beside others is recorded (`workerLost`) but not counted against
 *   `maxAttempts`; a loss while it ran alone is its own, and counts as an attempt;
 * - retries (handler failures, timeouts) count as they always did.
 * A poison task is thus dead-lettered after `maxAttempts` crashes while alone (plus the one
 * uncounted crash that made it suspect), and the tasks beside it keep their attempts.
 *
 * The evidence is in the task's record in the results bucket: every record the worker writes carries
 * a `delivery` trace (`DeliveryTrace`): the delivery count that wrote it, whether that delivery ran
 * alone, and the losses so far.
 *
 * A delivery that may not start yet (its unique key is held by another task: worker/admission.ts
 * `uniqueWaiting`) is naked with a delay and recorded `Queued` with `status.waiting`, its trace, and
 * `attempts` = the attempts made so far. Such a record counts like a `Retrying` one whose attempt was
 * not made: the next delivery is the same attempt again (not counted), alone only if this one was
 * to. A unique task records `Running` before its handler can start (admission.ts `admitUnique`), so
 * deliveries lost after a waiting one recorded nothing because they never started: they count as
 * losses before the start (`workerLostWaiting`), no reason to run alone. So waiting for a unique key
 * never uses up `maxAttempts`, however many deliveries it takes.
 */
import type { DeliveryTraceRecord, TaskRecord } from "../api/message.js";

/**
 * Written with every worker record of a task (the record's top-level `delivery` field, beside
 * `status`): what the next delivery needs to attribute a lost worker. Its schema is
 * `DeliveryTraceSchema` (api/message.ts): count (1-based), alone, workerLost, workerLostAlone.
 */
export type DeliveryTrace = Readonly<DeliveryTraceRecord>;

/** A results-bucket record as the worker writes it: a `TaskRecord` with its optional `delivery` trace. */
export type TracedRecord = TaskRecord;

/** What `attributeDelivery` decides for a delivery. */
export interface Attribution {
  /** This attempt's number, 1-based: attempts counted so far + 1 (what `ctx.attempt` and `status.attempts` say). */
  readonly attempt: number;
  /** True when the attempt must run alone on this worker process. */
  readonly alone: boolean;
  /** The trace to write with this delivery's records. */
  readonly trace: DeliveryTrace;
  /** What happened to the previous delivery: `none` (nothing lost), `beside` (lost beside other tasks: not counted), `alone` (lost alone: counted). */
  readonly lost: "none" | "beside" | "alone";
}

/**
 * Worker losses beside other tasks after which a task is dead-lettered anyway (each such loss makes
 * it run alone next, so this is reached only when its alone runs keep dying before they record
 * anything): keeps a task that always dies with its worker from looping forever.
 */
export const MAX_UNCOUNTED_WORKER_LOSSES = 10;

/**
 * Worker losses of deliveries that never started (they waited, held by their worker, to run alone
 * while another suspect ran alone and killed the process) after which a task is dead-lettered
 * anyway. Such losses are no evidence against the task, so the cap is far above any sensible
 * `maxAttempts`: it only guarantees an end when worker processes keep dying for reasons no task
 * explains.
 */
export const MAX_WAITING_WORKER_LOSSES = 100;

/**
 * Worker losses that count towards {@link MAX_UNCOUNTED_WORKER_LOSSES}: losses while the handler
 * may have run beside others (neither alone nor waiting). Pure.
 */
export function uncountedLosses(t: DeliveryTrace): number {
  return t.workerLost - t.workerLostAlone - (t.workerLostWaiting ?? 0);
}

/**
 * Attributes a delivery from its JetStream delivery count and the task's latest record. Pure; never
 * throws. The rules, by the latest non-final record:
 * - none, delivery 1: a first run, shared (attempt 1);
 * - none, delivery n > 1: the n − 1 earlier deliveries were lost before they recorded anything —
 *   so none ran alone (an alone run records first) — not counted; attempt 1, alone;
 * - `Retrying` (attempt k failed) written by delivery n − 1: attempt k + 1, shared; written by an
 *   earlier delivery: the ones in between were lost untraced (beside others): attempt k + 1, alone;
 * - `Running` attempt k, shared: lost beside others, not counted: attempt k again, alone;
 * - `Running` attempt k, alone: lost alone, counted: attempt k + 1, alone;
 * - deliveries between the record's and this one recorded nothing: the first after a shared state
 *   may have run (a loss beside others), every later one ran alone, so it was lost while it waited
 *   to start (`workerLostWaiting`: counted nowhere, only capped by {@link MAX_WAITING_WORKER_LOSSES});
 * - a trace from a delivery count ≥ n: the server lost the consumer's state (a crash resets the
 *   count), which is no evidence of a lost worker: the record's attempt again (k + 1 after a
 *   `Retrying`), alone only if it ran alone;
 * - a `Running`/`Retrying` record with no trace (written by an older worker): the delivery count is
 *   the attempt, shared (the old rule); any other phase (e.g. a producer's `Queued`): as none;
 * - a `Queued` record with a trace (a delivery that waited for its unique key and was naked
 *   unstarted; its `attempts` = attempts made): attempt k + 1 (not counted), alone when that
 *   delivery was to run alone; deliveries lost after it never started (`workerLostWaiting`).
 * @param count the JetStream delivery count, 1-based
 * @param record the task's latest record when it was read and is not final (undefined: none, or not read)
 */
export function attributeDelivery(count: number, record: TracedRecord | undefined): Attribution {
  const phase = record?.status.phase;
  const t = record?.delivery;
  const k = record?.status.attempts ?? 0;
  // a worker's Queued record with a trace: a delivery that waited (unique key held), naked unstarted
  const waited = phase === "Queued" && t !== undefined;
  const traced = phase === "Running" || phase === "Retrying" || waited;
  const zero = { workerLost: 0, workerLostAlone: 0, workerLostWaiting: 0 };
  if (!record || !traced) {
    if (count <= 1) return { attempt: 1, alone: false, lost: "none", trace: { count, alone: false, ...zero } };
    // delivery 1 ran shared and may have started; every later one was alone, so it records before it starts
    return { attempt: 1, alone: true, lost: "beside", trace: { count, alone: true, workerLost: count - 1, workerLostAlone: 0, workerLostWaiting: count - 2 } };
  }
  if (!t) return { attempt: Math.max(1, count), alone: false, lost: "none", trace: { count, alone: false, ...zero } };
  const { workerLost, workerLostAlone } = t;
  const waiting = t.workerLostWaiting ?? 0;
  if (count <= t.count) {
    const alone = t.alone;
    return { attempt: phase === "Retrying" || waited ? k + 1 : Math.max(1, k), alone, lost: "none", trace: { count, alone, workerLost, workerLostAlone, workerLostWaiting: waiting } };
  }
  // deliveries between the record's and this one were lost before recording anything
  const untraced = count - t.count - 1;
  if (waited) {
    // a unique task records Running before its handler can start: those lost since never started
    const lost = untraced > 0 ? "beside" : "none";
    return { attempt: k + 1, alone: t.alone, lost, trace: { count, alone: t.alone, workerLost: workerLost + untraced, workerLostAlone, workerLostWaiting: waiting + untraced } };
  }
  if (phase === "Retrying") {
    // the delivery after a Retrying runs shared (may have started); those after it ran alone: waited
    const alone = untraced > 0;
    return { attempt: k + 1, alone, lost: alone ? "beside" : "none", trace: { count, alone, workerLost: workerLost + untraced, workerLostAlone, workerLostWaiting: waiting + Math.max(0, untraced - 1) } };
  }
  const trace = { count, alone: true, workerLost: workerLost + 1 + untraced, workerLostWaiting: waiting + untraced };
  if (t.alone) return { attempt: k + 1, alone: true, lost: "alone", trace: { ...trace, workerLostAlone: workerLostAlone + 1 } };
  return { attempt: Math.max(1, k), alone: true, lost: "beside", trace: { ...trace, workerLostAlone } };
}
