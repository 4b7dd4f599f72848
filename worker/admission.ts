/**
 * Admission: what happens to a delivered message before any handler runs. `admit` is pure, like
 * `classifyOutcome` after the handler: it either admits the message to run, or returns the ending
 * to settle at once (revoked, expired, unknown task, attempts exhausted, invalid message), or the
 * replay of a final record an earlier delivery already wrote. A message with a unique key is then
 * checked against its lock (`admitUnique`): it runs only while the lock names it, else it waits.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { REVOKED_BEFORE_START, type ParseResult, type TaskMessage } from "../api/message.js";
import { TASK_ID_PATTERN } from "../api/naming.js";
import { resolveRetryPolicy, type ResolvedRetryPolicy } from "../api/policies.js";
import { isTerminalPhase } from "../api/constants.js";
import { checkUnique, type CheckUniqueOptions } from "../nats/unique.js";
import type { TaskDefinition } from "./define-task.js";
import { UnknownTaskError, WorkerLostError } from "./errors.js";
import { attributeDelivery, MAX_UNCOUNTED_WORKER_LOSSES, MAX_WAITING_WORKER_LOSSES, uncountedLosses, type Attribution, type DeliveryTrace, type TracedRecord } from "./attribution.js";
import type { Ending, Settlement } from "./settle.js";

/** A message admitted to run: its envelope, its handler, the retry policy in force and how to run it. */
export interface Admitted {
  /** The validated envelope. */
  readonly message: TaskMessage;
  /** The registered handler of `message.task`. */
  readonly def: TaskDefinition;
  /** The message's retry policy with the handler's overrides applied (seconds). */
  readonly policy: ResolvedRetryPolicy;
  /** This attempt's number, 1-based (attributed: see attribution.ts; the delivery count when nothing was lost). */
  readonly attempt: number;
  /** True when it must run alone on this worker process (its previous delivery was lost with its worker). */
  readonly alone: boolean;
  /** The delivery trace to write with its records. */
  readonly trace: DeliveryTrace;
}

/** The decision of `admit`: run the handler, or settle the message now. */
export type Admission = { readonly run: Admitted } | { readonly settle: Settlement };

/** What `admit` looks at. Times in ms. */
export interface AdmissionInput {
  /** The parsed body (`parseTaskMessage`). */
  readonly parsed: ParseResult;
  /** The JetStream delivery count, 1-based (the attempt's number is attributed from it and `previous`). */
  readonly attempt: number;
  /** The `Nats-Msg-Id` header (the task id) and the `Celeriac-Task` header: used only when the body does not parse. */
  readonly headers: { readonly id: string | undefined; readonly task: string | undefined };
  /** The worker's queue: the identity of a record for a body that does not parse. */
  readonly queue: string;
  /** The worker's namespace, likewise. */
  readonly namespace: string;
  /** The subject the message came on (for the `InvalidMessage` detail); the worker's queue and namespace are its tokens. */
  readonly subject?: string | undefined;
  /** Registered handlers by task name. */
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** True when the task id has been revoked. */
  readonly isRevoked: (id: string) => boolean;
  /**
   * The task's latest record, read when the delivery may be a redelivery (see `previousRecord`):
   * a final one is replayed, a `Running`/`Retrying` one attributes a lost worker (attribution.ts).
   */
  readonly previous?: TracedRecord | undefined;
  /** Now, in ms since the epoch (for `expires`). */
  readonly nowMs: number;
}

/**
 * Decides a delivered message, in this order:
 * 1. body invalid → deadLetter `InvalidMessage` (recorded when the `Nats-Msg-Id` header is a valid task id);
 * 2. task id invalid → deadLetter `InvalidMessage`, nothing recorded;
 * 2b. envelope `queue`/`namespace` not the ones of the subject it came on (the worker's) →
 *    deadLetter `InvalidMessage`, nothing recorded (the envelope cannot be trusted to name a record);
 * 3. an earlier delivery recorded a final outcome → replay it (write again, ack);
 * 4. revoked → cancel; 5. past `expires` → expire;
 * 6. no handler for the task → deadLetter `UnknownTask`;
 * 7. the attributed attempt (`attributeDelivery`: crashes count only when the task ran alone) above
 *    `maxAttempts`, more than `MAX_UNCOUNTED_WORKER_LOSSES` losses while it ran beside others, or more
 *    than `MAX_WAITING_WORKER_LOSSES` losses before it started → deadLetter
 *    `MaxAttemptsExceeded` with a `WorkerLostError`, recording the attempts made;
 * 8. else run (alone when its previous delivery was lost with its worker).
 * Pure; never throws.
 * @param input the parsed message, its delivery count and the worker's view (tasks, revocations, now)
 * @returns `{run}` with the admitted message, or `{settle}` with the ending (or replay) to settle now
 */
export function admit(input: AdmissionInput): Admission {
  const { parsed, attempt } = input;
  if (!parsed.ok) {
    const id = input.headers.id ?? "";
    const task = input.headers.task || "unknown";
    // best effort: a record for an id we can find, so result() callers learn why
    const identity = TASK_ID_PATTERN.test(id) ? { id, task, queue: input.queue, namespace: input.namespace, origin: { kind: "Client" as const } } : undefined;
    return { settle: { outcome: { action: "deadLetter", reason: "InvalidMessage" }, identity, task, attempts: attempt, error: { type: "InvalidMessage", message: parsed.reason }, detail: parsed.reason } };
  }
  const msg = parsed.message;
  if (!TASK_ID_PATTERN.test(msg.id)) {
    const detail = `id: "${msg.id.slice(0, 80)}" is not a valid task id: use 1-256 of A-Z a-z 0-9 _ = -`;
    return { settle: { outcome: { action: "deadLetter", reason: "InvalidMessage" }, identity: undefined, task: msg.task, attempts: attempt, detail } };
  }
  if (msg.queue !== input.queue || msg.namespace !== input.namespace) {
    const detail = `envelope queue/namespace "${msg.namespace}/${msg.queue}" does not match the subject it came on (${input.subject ?? `queue ${input.namespace}/${input.queue}`})`;
    return { settle: { outcome: { action: "deadLetter", reason: "InvalidMessage" }, identity: undefined, task: msg.task, attempts: attempt, detail } };
  }
  const prev = input.previous;
  const unique = msg.unique ? { unique: msg.unique } : {};
  if (prev && isTerminalPhase(prev.status.phase)) return { settle: { replay: prev, message: msg, ...unique } };
  const at = attributeDelivery(attempt, prev);
  const base = { identity: msg, message: msg, task: msg.task, attempts: at.attempt, queuedTime: msg.createdAt, trace: at.trace, ...unique };
  if (input.isRevoked(msg.id)) return { settle: { ...base, outcome: { action: "cancel", phase: "Cancelled" }, error: { ...REVOKED_BEFORE_START } } };
  if (msg.expires && Date.parse(msg.expires) < input.nowMs) {
    return { settle: { ...base, outcome: { action: "expire", phase: "Expired" }, error: { type: "ExpiredError", message: `not started before it expired at ${msg.expires}` } } };
  }
  const def = input.tasks.get(msg.task);
  if (!def) {
    const registered = [...input.tasks.keys()].sort().join(", ");
    const text = `no handler registered for "${msg.task}" on queue "${msg.queue}"; registered: ${registered}`;
    return { settle: { ...base, outcome: { action: "deadLetter", reason: "UnknownTask" }, error: { type: new UnknownTaskError(text).name, message: text }, detail: text } };
  }
  const policy = resolveRetryPolicy(def.options.retry, msg.retry);
  if (at.attempt > policy.maxAttempts || uncountedLosses(at.trace) > MAX_UNCOUNTED_WORKER_LOSSES || (at.trace.workerLostWaiting ?? 0) > MAX_WAITING_WORKER_LOSSES) {
    const text = workerLostText(at, policy.maxAttempts);
    return { settle: { ...base, attempts: at.attempt - 1, outcome: { action: "deadLetter", reason: "MaxAttemptsExceeded" }, error: { type: new WorkerLostError(text).name, message: text }, detail: text } };
  }
  return { run: { message: msg, def, policy, attempt: at.attempt, alone: at.alone, trace: at.trace } };
}

/** The `WorkerLostError` message of a task dead-lettered because its workers kept being lost. Pure. */
function workerLostText(at: Attribution, maxAttempts: number): string {
  const { workerLost, workerLostAlone } = at.trace;
  const made = at.attempt - 1;
  if (at.lost === "alone") {
    return `attempt ${made} of ${maxAttempts} did not finish: its worker was lost while the task ran alone on it (${workerLostAlone} of ${workerLost} worker losses with no other task beside it): the task kills its worker`;
  }
  if (uncountedLosses(at.trace) > MAX_UNCOUNTED_WORKER_LOSSES) {
    return `its worker was lost ${workerLost} times (${uncountedLosses(at.trace)} while it ran beside other tasks, more than ${MAX_UNCOUNTED_WORKER_LOSSES}) after ${made} counted attempts`;
  }
  if ((at.trace.workerLostWaiting ?? 0) > MAX_WAITING_WORKER_LOSSES) {
    return `its worker was lost ${workerLost} times (${at.trace.workerLostWaiting} before it started, while it waited to run alone; more than ${MAX_WAITING_WORKER_LOSSES}) after ${made} counted attempts: worker processes keep dying for a reason no task explains`;
  }
  return `attempt ${made} of ${maxAttempts} did not finish: its worker was lost`;
}

/** First delay of a delivery waiting for its unique key, ms (1 s). */
export const UNIQUE_WAIT_MIN_MS = 1000;
/** Longest delay of a delivery waiting for its unique key, ms (5 s). */
export const UNIQUE_WAIT_MAX_MS = 5000;

/**
 * The nak delay of a delivery waiting for its unique key. Its cap is the time waited so far, between
 * 1 s and 5 s — 1 s, 1 s, 2 s, 4 s, then 5 s: doubling to 5 s with nothing to count but `since` —
 * and the delay is uniform between 1 s and the cap (jitter, so tasks enqueued together and waiting on
 * one key do not all come back at the same instant, one taking the key and the rest waiting a whole
 * cap again: measured, 10 such tasks ran ~4.8 s apart without it). Pure.
 * @param sinceMs when the task started waiting (its `status.waiting.since`), ms since the epoch
 * @param nowMs now, ms since the epoch
 * @param random a source of [0, 1) numbers (Math.random in production)
 * @returns the delay, ms
 */
export function uniqueWaitDelayMs(sinceMs: number, nowMs: number, random: () => number = Math.random): number {
  const waited = Number.isFinite(sinceMs) ? nowMs - sinceMs : 0;
  const cap = Math.min(UNIQUE_WAIT_MAX_MS, Math.max(UNIQUE_WAIT_MIN_MS, waited));
  return Math.round(UNIQUE_WAIT_MIN_MS + random() * (cap - UNIQUE_WAIT_MIN_MS));
}

/**
 * The ending of an admitted delivery whose unique key is held by another task: `wait` — record
 * `Queued` with `status.waiting` {reason UniqueKeyHeld, message, since} (since kept from the
 * previous record's UniqueKeyHeld waiting) and `attempts` = the attempts made so far, then nak with
 * `uniqueWaitDelayMs`. Not an attempt: attribution.ts counts the next delivery as this attempt
 * again. Pure; never throws.
 * @param a the admitted delivery (its message has `unique`)
 * @param holder the task id holding the key
 * @param previous the task's latest record, when it was read
 * @param nowMs now, ms since the epoch
 * @param random jitter source of the delay (`uniqueWaitDelayMs`)
 */
export function uniqueWaiting(a: Admitted, holder: string, previous: TracedRecord | undefined, nowMs: number, random: () => number = Math.random): Ending {
  const msg = a.message;
  const key = msg.unique?.key ?? "";
  const prev = previous?.status.waiting;
  const since = prev?.reason === "UniqueKeyHeld" ? prev.since : new Date(nowMs).toISOString();
  return {
    outcome: { action: "wait", phase: "Queued", delayMs: uniqueWaitDelayMs(Date.parse(since), nowMs, random) },
    identity: msg,
    task: msg.task,
    attempts: a.attempt - 1,
    queuedTime: msg.createdAt,
    trace: a.trace,
    ...(msg.unique ? { unique: msg.unique } : {}),
    waiting: { reason: "UniqueKeyHeld", message: `unique key ${key} is held by task ${holder}`, since },
  };
}

/**
 * The unique-key step of an admitted delivery, before its gate and its handler: undefined
 * when it may run — the lock names it now (nats/unique.ts `checkUnique`), and `writeRunning` wrote
 * its `Running` record before the lock write that let it run — else the `wait` ending to settle
 * (`uniqueWaiting`). A message without `unique` runs with no I/O.
 * @param kv the queue's results bucket
 * @param a the admitted delivery
 * @param previous the task's latest record, when it was read
 * @param writeRunning writes the attempt's `Running` record (Settler.writeRunning)
 * @param opts the lock's stale grace and clock (tests), and the delay's jitter source
 * @throws Error from the lock or from `writeRunning`: the message is left for redelivery
 */
export async function admitUnique(kv: KV, a: Admitted, previous: TracedRecord | undefined, writeRunning: () => Promise<void>, opts: CheckUniqueOptions & { random?: () => number } = {}): Promise<Ending | undefined> {
  if (!a.message.unique) return undefined;
  const r = await checkUnique(kv, a.message, { ...opts, beforeTake: writeRunning });
  return r.run ? undefined : uniqueWaiting(a, r.holder, previous, (opts.now ?? Date.now)(), opts.random);
}

/**
 * For a delivery that may be a redelivery (redelivery.ts) of a valid message: the latest record of
 * task `id` in the results bucket, whatever its phase (a final one is replayed; a `Running` or
 * `Retrying` one says whether a worker was lost: attribution.ts).
 * @param kv the queue's results bucket
 * @param id the task id (the record's key)
 * @param log where a failed lookup is logged
 * @returns the record, or undefined when there is none
 * @throws the KV error (or a JSON parse error), after logging it: the message is left for redelivery
 */
export async function previousRecord(kv: KV, id: string, log: Logger): Promise<TracedRecord | undefined> {
  try {
    const prev = await kv.get(id);
    if (prev?.operation !== "PUT") return undefined;
    return prev.json<TracedRecord>();
  } catch (err) {
    log.warn({ err, taskId: id }, "Check of previous record failed");
    throw err;
  }
}
