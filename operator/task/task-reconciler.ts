/**
 * Task reconciler: accepts a Task, publishes it exactly once to its Queue's stream, revokes it when
 * the Task is deleted, and deletes finished Tasks after `ttlSecondsAfterFinished`.
 *
 * Order for a new Task (level-triggered, safe to run any number of times):
 *   validate what the schema cannot (args size; TerminalError) → Queue exists? (else
 *   Pending/QueueNotFound) → flow options the Queue can honour? (else Failed/InvalidFlowOptions;
 *   TerminalError) → finalizer and publish intent (annotation PUBLISH_INTENT_ANNOTATION) in
 *   one write locked on resourceVersion → singleton lock when spec.unique is set (Reject and held:
 *   Failed/UniqueKeyHeld) → publish with Nats-Msg-Id = uid → PubAck → status Queued
 *   (locked on resourceVersion). Nothing is published before the finalizer is on the Task, so a
 *   delete can always revoke; a Task deleted before that held nothing outside the cluster.
 * API writes of a Task that runs once and succeeds: create, the finalizer+intent patch, Queued
 * (operator), Running and Succeeded (worker); the finalizer comes off when the Task is deleted.
 * `Queued` therefore always means "the message is in the stream". While NATS cannot be reached the
 * Task stays Pending with Accepted=False reason NatsUnavailable and the error, and is requeued with
 * back-off (publish timeout 2 s, so no controller worker is held).
 *
 * No duplicate run (docs/operator.md, "Publishing a Task"): every attempt sends the same message
 * (built at the intent time) under Nats-Msg-Id = uid. Attempts within half the Queue's duplicate
 * window of the intent are dropped by JetStream as duplicates of any earlier stored copy; later ones
 * are made only after looking the task up in NATS (results bucket record, or a message with that id
 * in the work or delay stream) — found means published, so the status is confirmed without publishing.
 * The lock on the status write keeps a worker's Running from being overwritten by our Queued.
 * The operator writes its part of the status (phase until Queued, the Accepted condition) with
 * server-side apply as FIELD_MANAGERS.operator; workers write every later status themselves — except
 * for a Task whose message was removed by `celeriac queue purge` (no worker ever sees it): after the
 * queue's purge notice (purge-notices.ts), a Queued Task created before the purge whose results-bucket
 * record is Cancelled is ended Cancelled by the operator, Succeeded=False reason Purged (or Revoked
 * when a revoke recorded it first), locked on resourceVersion so a worker's Running wins.
 */
import { clearTaskWaiting, hasStaleWaiting } from "./task-waiting.js";
import type { KubeConfig } from "@kubernetes/client-node";
import { CONDITION_TYPES, FIELD_MANAGERS, FINALIZERS, PUBLISH_INTENT_ANNOTATION, REASONS, isTerminalPhase } from "../../api/constants.js";
import { DEFAULT_DUPLICATE_WINDOW } from "../../api/defaults.js";
import { getCondition, setCondition } from "../../api/conditions.js";
import { FLOW_TASK_REASONS, type UniqueSpec } from "../../api/flow.js";
import type { TaskMessage, TaskRecord } from "../../api/message.js";
import { PURGED_ERROR } from "../../api/queue-ops.js";
import { CELERIAC_TYPES, type Queue, type Task } from "../../api/objects.js";
import type { TaskStatus } from "../../api/task.js";
import { InvalidTaskMessageError, argsTooLarge, newTaskMessage, taskMessageInput, type NewTaskMessageInput } from "../../api/task-message.js";
import type { claimUnique } from "../../nats/unique.js";
import { parseGoDuration } from "../../nats/queue-settings.js";
import {
  TerminalError, applyStatus, deleteObject, isConflict, isNotFound, mergePatch, setFinalizer,
  type EventSink, type ObjectReconciler, type ObjectRef, type ReconcileContext, type ReconcileKey, type ReconcileResult,
} from "../runtime/index.js";

/** Publishes and revokes task messages (NATS side). */
export interface TaskPublisher {
  /** Publishes `msg` (to the delay stream when it has a future eta); resolves once JetStream acknowledged it. */
  publish(msg: TaskMessage): Promise<void>;
  /**
   * True when NATS already holds the task: a results-bucket record, or a message with
   * `Nats-Msg-Id` = `msg.id` in the work or delay stream.
   */
  isStored(msg: TaskMessage): Promise<boolean>;
  /** Marks task `id` revoked: it never starts, and a running attempt is aborted. */
  revoke(namespace: string, queue: string, id: string): Promise<void>;
  /**
   * Takes the singleton lock of `msg.unique` for task `msg.id` in its queue's results bucket
   * (`claimUnique` of nats/unique.ts): claimed, or the holder and what the policy made of it.
   */
  claimUnique(msg: TaskMessage, unique: UniqueClaimSpec): Promise<UniqueClaim>;
  /** After the PubAck of a task with `unique`: marks it published in its lock (`confirmUnique` of nats/unique.ts). */
  confirmUnique(msg: TaskMessage): Promise<void>;
  /**
   * Task `id`'s record in its queue's results bucket, or undefined when it has none. Optional: without
   * it purged Tasks are not ended (see the file comment).
   * @throws Error when the bucket cannot be read
   */
  record?(namespace: string, queue: string, id: string): Promise<TaskRecord | undefined>;
}

/** The queue purge notices the reconciler consults (purge-notices.ts `PurgeNotices`). */
export interface PurgeNoticeSource {
  /** Starts watching the queue's purge notice (idempotent). */
  watch(namespace: string, queue: string): void;
  /** The queue's last purge notice time, epoch ms, or undefined when none was seen. */
  lastPurgeMs(namespace: string, queue: string): number | undefined;
}

/**
 * Clock skew allowed between a purge's notice time (the purging shell's clock) and a Task's
 * creationTimestamp (the API server's), ms: a Task created up to this long after the notice is still checked.
 */
export const PURGE_SKEW_MS = 60_000;

/** A singleton lock request: the message's `unique` (key, policy resolved; default Reject). */
export type UniqueClaimSpec = Required<UniqueSpec>;
/** The outcome of a singleton lock claim (nats/unique.ts). */
export type UniqueClaim = Awaited<ReturnType<typeof claimUnique>>;


/** Dependencies of the Task reconciler. */
export interface TaskReconcilerDeps {
  kc: KubeConfig;
  /** Cache lookups (informers). */
  getTask(namespace: string, name: string): Task | undefined;
  getQueue(namespace: string, name: string): Queue | undefined;
  publisher: TaskPublisher;
  events: EventSink;
  /** Queue purge notices: with them (and `publisher.record`), purged Queued Tasks end Cancelled. */
  purges?: PurgeNoticeSource;
  now?: () => Date;
  /** Random number in [0, 1) for back-off jitter (tests). */
  random?: () => number;
}

/** First and largest delay between publish attempts while NATS is unavailable, ms. */
export const PUBLISH_BACKOFF = Object.freeze({ baseMs: 500, capMs: 30_000 });

/**
 * Delay before publish attempt `failures + 1`: `base · 2^(failures-1)`, capped, with ±20 % jitter. Pure.
 * @param failures consecutive failed attempts (≥ 1)
 * @param random a number in [0, 1)
 */
export function publishRetryDelayMs(failures: number, random: number): number {
  const d = Math.min(PUBLISH_BACKOFF.capMs, PUBLISH_BACKOFF.baseMs * 2 ** Math.min(Math.max(failures, 1) - 1, 20));
  return Math.round(d * (0.8 + 0.4 * random));
}

/**
 * How long after the publish intent the operator may publish again without looking in NATS first:
 * half the Queue's duplicate window (JetStream drops a repeat within the window of the first stored
 * copy; half leaves room for clock skew and a copy that was stored late). Pure.
 * @returns milliseconds (0 when the window is 0 or unparseable: always look first)
 */
export function blindRepublishMs(queue: Queue | undefined): number {
  try {
    return parseGoDuration(queue?.spec.stream?.duplicateWindow ?? DEFAULT_DUPLICATE_WINDOW) / 1e6 / 2;
  } catch {
    return 0;
  }
}

/** One reconcile's subject: the Task, its reference and the per-reconcile logger. */
interface Call {
  task: Task;
  namespace: string;
  ref: ObjectRef;
  uid: string;
  ctx: ReconcileContext;
}

/**
 * Reconciles Task resources. One instance per operator; state is only the set of tasks this process
 * saw acknowledged by JetStream and the publish back-off per task.
 */
export class TaskReconciler implements ObjectReconciler {
  readonly #d: TaskReconcilerDeps;
  readonly #published = new Set<string>();
  /** Per task uid: consecutive failed publishes and when the next attempt is due (epoch ms). */
  readonly #backoff = new Map<string, { failures: number; nextAt: number }>();
  readonly #now: () => Date;
  readonly #random: () => number;

  constructor(deps: TaskReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#random = deps.random ?? Math.random;
  }

  /** Forgets every publish back-off (NATS reconnected: the next reconcile of each Task publishes at once). */
  resetBackoff(): void {
    this.#backoff.clear();
  }

  /**
   * Reconciles the Task `key` from the cache.
   * @returns `requeueAfterMs` of the publish back-off while NATS is unavailable
   * @throws TerminalError `ArgsTooLarge` after recording phase Failed (not retried)
   * @throws Error on API failures (the controller retries with back-off); a 409 Conflict means "requeue"
   */
  async reconcile(key: ReconcileKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const task = this.#d.getTask(key.namespace, key.name);
    if (!task) return {};
    const c: Call = { task, namespace: key.namespace, ref: { ...CELERIAC_TYPES.Task, namespace: key.namespace, name: key.name }, uid: task.metadata.uid ?? "", ctx };
    if (task.metadata.deletionTimestamp) return this.#finalize(c);
    const phase = task.status?.phase;
    // a Task the flow-control dispatcher held says so in status.waiting until it starts (task-waiting.ts)
    if (hasStaleWaiting(task)) await clearTaskWaiting(this.#d.kc, task);
    if (isTerminalPhase(phase)) return this.#finished(c);
    if (phase === "Queued" || phase === "Running" || phase === "Retrying") return this.#inFlight(c);
    return this.#accept(c);
  }

  async #finalize({ task, namespace, ref, uid, ctx }: Call): Promise<ReconcileResult> {
    if (!task.metadata.finalizers?.includes(FINALIZERS.task)) return {};
    const phase = task.status?.phase;
    // A Pending task with a publish intent may be in the stream (PubAck lost): revoke it too.
    const maybePublished = phase !== undefined && phase !== "Pending" ? true : task.metadata.annotations?.[PUBLISH_INTENT_ANNOTATION] !== undefined;
    if (!isTerminalPhase(phase) && maybePublished) {
      await this.#d.publisher.revoke(namespace, task.spec.queue, uid);
      this.#d.events.event(task, "Normal", REASONS.Revoked, `Revoked task ${uid} (phase ${phase ?? "Pending"}) because the Task was deleted`);
      ctx.log.info({ phase }, "Revoked deleted task");
    }
    await this.#removeFinalizer(task, ref);
    this.#published.delete(uid);
    this.#backoff.delete(uid);
    return {};
  }

  async #removeFinalizer(task: Task, ref: ObjectRef): Promise<void> {
    try {
      await setFinalizer(this.#d.kc, ref, task, FINALIZERS.task, false, FIELD_MANAGERS.operator);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * A finished Task. Its finalizer stays until the Task is deleted (then `#finalize` removes it
   * without revoking): removing it at every finish would be one more write per Task, and the
   * deletion of any Task needs a running operator anyway (docs/install.md). With
   * `ttlSecondsAfterFinished` it is removed just before the TTL delete, so that delete is immediate.
   */
  async #finished({ task, ref, uid, ctx }: Call): Promise<ReconcileResult> {
    this.#published.delete(uid);
    this.#backoff.delete(uid);
    const ttl = task.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return {};
    const finishedAt = Date.parse(task.status?.completionTime ?? task.metadata.creationTimestamp ?? "");
    if (Number.isNaN(finishedAt)) return {};
    const due = finishedAt + ttl * 1000 - this.#now().getTime();
    if (due > 0) return { requeueAfterMs: due };
    await this.#removeFinalizer(task, ref);
    await deleteObject(this.#d.kc, ref);
    ctx.log.info({ ttlSecondsAfterFinished: ttl }, "Deleted finished task after its TTL");
    return {};
  }

  /**
   * A Queued (or running) Task: its message is in the stream. When its Queue is deleted while it
   * still waits (phase Queued), it says so: Accepted=False reason QueueDeleted and a Warning Event.
   */
  async #inFlight(c: Call): Promise<ReconcileResult> {
    const { task, namespace, ref, ctx } = c;
    this.#backoff.delete(task.metadata.uid ?? "");
    if (task.status?.phase !== "Queued") return {};
    if (await this.#purged(c)) return {};
    const queue = this.#d.getQueue(namespace, task.spec.queue);
    if (queue && !queue.metadata.deletionTimestamp) return {};
    const accepted = getCondition(task.status.conditions, CONDITION_TYPES.Task.Accepted);
    if (accepted?.reason === REASONS.QueueDeleted) return {};
    const message = `queue "${task.spec.queue}" was deleted while this task waited in it: the task runs only if a Queue of that name is applied again and its stream was kept (deletionPolicy Retain)`;
    await this.#apply(ref, this.#status(task, "Queued", { status: "False", reason: REASONS.QueueDeleted, message }), task.metadata.resourceVersion);
    this.#d.events.event(task, "Warning", REASONS.QueueDeleted, message);
    ctx.log.warn({ queue: task.spec.queue }, "Marked queued task whose queue was deleted");
    return {};
  }

  /**
   * A Queued Task whose queue was purged after it was created (a purge notice, purge-notices.ts) and
   * whose results-bucket record is Cancelled: its message is gone, no worker will write it, so it is
   * ended here — phase Cancelled with the record's completionTime and error, Accepted kept,
   * Succeeded=False reason Purged (Revoked when the record's error is not the purge's) — locked on
   * the resourceVersion read (a worker's Running written meanwhile wins: 409, read again). Idempotent:
   * a terminal Task is never reconciled here again.
   * @returns true when it wrote the Task (or lost the lock), false when the Task is not purged
   * @throws Error when the record cannot be read or the API write fails (the controller retries)
   */
  async #purged({ task, namespace, ref, uid, ctx }: Call): Promise<boolean> {
    const purges = this.#d.purges;
    if (!purges || !this.#d.publisher.record) return false;
    const queue = task.spec.queue;
    purges.watch(namespace, queue);
    const last = purges.lastPurgeMs(namespace, queue);
    const created = Date.parse(task.metadata.creationTimestamp ?? "");
    if (last === undefined || (!Number.isNaN(created) && last < created - PURGE_SKEW_MS)) return false;
    const rec = await this.#d.publisher.record(namespace, queue, uid);
    if (rec?.status.phase !== "Cancelled") return false;
    const purged = rec.status.error?.type === PURGED_ERROR.type && rec.status.error.message === PURGED_ERROR.message;
    const reason = purged ? REASONS.Purged : REASONS.Revoked;
    const message = purged
      ? `removed from queue "${queue}" by a queue purge (celeriac queue purge) before any worker took it; it will not run`
      : `revoked before any worker took it (${rec.status.error?.message ?? "cancelled"}); its message is gone from queue "${queue}"`;
    const accepted = getCondition(task.status?.conditions, CONDITION_TYPES.Task.Accepted);
    const now = this.#now();
    const status = this.#status(task, "Cancelled",
      { status: accepted?.status === "False" ? "False" : "True", reason: accepted?.reason ?? REASONS.Queued, message: accepted?.message ?? `published to queue "${queue}"` },
      {
        ...(task.status?.queuedTime ? { queuedTime: task.status.queuedTime } : {}),
        attempts: task.status?.attempts ?? 0,
        completionTime: rec.status.completionTime ?? now.toISOString(),
        error: { ...(rec.status.error ?? PURGED_ERROR) },
      });
    status.conditions = [
      ...(status.conditions ?? []),
      ...setCondition(undefined, { type: CONDITION_TYPES.Task.Succeeded, status: "False", reason, message, observedGeneration: task.metadata.generation }, now),
    ];
    try {
      await this.#apply(ref, status, task.metadata.resourceVersion);
    } catch (err) {
      if (isConflict(err)) return true;
      throw err;
    }
    this.#d.events.event(task, "Normal", REASONS.Cancelled, `Cancelled: ${message}`);
    ctx.log.info({ queue, reason }, "Ended a purged task Cancelled");
    return true;
  }

  /**
   * The operator's status intent: `phase`, the Accepted condition (lastTransitionTime kept unless
   * its status flips), observedGeneration and `extra`. Pure apart from the clock.
   */
  #status(task: Task, phase: TaskStatus["phase"], accepted: { status: "True" | "False"; reason: string; message: string }, extra: Partial<TaskStatus> = {}): TaskStatus {
    const type = CONDITION_TYPES.Task.Accepted;
    const all = setCondition(task.status?.conditions, { type, ...accepted, observedGeneration: task.metadata.generation }, this.#now());
    return { ...extra, phase, conditions: all.filter((c) => c.type === type), observedGeneration: task.metadata.generation };
  }

  /** Server-side applies the operator's status; `lock` = the resourceVersion it must still have. */
  async #apply(ref: ObjectRef, status: TaskStatus, lock?: string): Promise<void> {
    await applyStatus(this.#d.kc, CELERIAC_TYPES.Task, { metadata: { name: ref.name, namespace: ref.namespace, ...(lock ? { resourceVersion: lock } : {}) }, status }, FIELD_MANAGERS.operator, { force: true });
  }

  async #accept({ task, namespace, ref, uid, ctx }: Call): Promise<ReconcileResult> {
    // 1. what the schema cannot check: terminal, recorded as phase Failed (nothing was published,
    //    so no finalizer is needed)
    const tooLarge = argsTooLarge(task.spec.args, task.spec.kwargs as Record<string, unknown> | undefined);
    if (tooLarge) {
      await this.#apply(ref, this.#status(task, "Failed", { status: "False", reason: REASONS.ArgsTooLarge, message: tooLarge }, {
        completionTime: this.#now().toISOString(),
        error: { type: REASONS.ArgsTooLarge, message: tooLarge },
      }));
      throw new TerminalError(tooLarge, { reason: REASONS.ArgsTooLarge });
    }
    // 2. the queue must exist (nothing is published while it does not: no finalizer yet either)
    const queue = this.#d.getQueue(namespace, task.spec.queue);
    if (!queue || queue.metadata.deletionTimestamp) {
      const message = `queue "${task.spec.queue}" does not exist in namespace "${namespace}": the task waits until it is applied`;
      if (task.status?.phase !== "Pending" || getCondition(task.status.conditions, CONDITION_TYPES.Task.Accepted)?.reason !== REASONS.QueueNotFound) {
        await this.#apply(ref, this.#status(task, "Pending", { status: "False", reason: REASONS.QueueNotFound, message }));
        this.#d.events.event(task, "Warning", REASONS.QueueNotFound, message);
      }
      return {}; // the Queue informer re-enqueues waiting tasks when the queue appears (waitingTasks)
    }
    // 2b. flow options the Queue cannot honour (a priority beyond its levels, a key on a queue
    //     without concurrencyKeys): terminal, recorded as phase Failed; never published without them
    let input: NewTaskMessageInput;
    try {
      input = taskMessageInput(task, queue.spec);
    } catch (err) {
      if (!(err instanceof InvalidTaskMessageError)) throw err;
      return this.#invalidFlow({ task, namespace, ref, uid, ctx }, err);
    }
    // 3. the finalizer (so a delete can always revoke what we publish) and the publish intent (when
    //    the first attempt started; every attempt sends the message built then), in one write
    //    locked on the version read, before anything is published
    const intent = Date.parse(task.metadata.annotations?.[PUBLISH_INTENT_ANNOTATION] ?? "");
    const hasFinalizer = task.metadata.finalizers?.includes(FINALIZERS.task) === true;
    const now = this.#now();
    if (Number.isNaN(intent) || !hasFinalizer) {
      const at = Number.isNaN(intent) ? now : new Date(intent);
      const msg = newTaskMessage(input, at);
      if (msg.expires && Date.parse(msg.expires) <= now.getTime()) return this.#expired(task, ref, msg.expires);
      const metadata: Record<string, unknown> = { resourceVersion: task.metadata.resourceVersion };
      if (!hasFinalizer) metadata.finalizers = [...(task.metadata.finalizers ?? []), FINALIZERS.task];
      if (Number.isNaN(intent)) metadata.annotations = { [PUBLISH_INTENT_ANNOTATION]: now.toISOString() };
      const patched = await mergePatch<Task>(this.#d.kc, ref, { metadata }, FIELD_MANAGERS.operator)
        .catch((err: unknown) => {
          if (isConflict(err)) return undefined;
          throw err;
        });
      if (!patched) return { requeueAfterMs: 0 };
      return this.#publish({ task: patched, namespace, ref, uid, ctx }, queue, msg, at.getTime());
    }
    const msg = newTaskMessage(input, new Date(intent));
    if (msg.expires && Date.parse(msg.expires) <= this.#now().getTime()) return this.#expired(task, ref, msg.expires);
    return this.#publish({ task, namespace, ref, uid, ctx }, queue, msg, intent);
  }

  /**
   * A Task whose flow options its Queue cannot honour: phase Failed, Accepted=False reason
   * InvalidFlowOptions with the error (naming spec.priority or spec.concurrencyKey and the fix),
   * then a TerminalError (a Warning Event; not retried). A Task with a publish intent may already be
   * in NATS (published under an earlier Queue spec): it is revoked first.
   * @throws TerminalError InvalidFlowOptions
   */
  async #invalidFlow({ task, namespace, ref, uid, ctx }: Call, err: InvalidTaskMessageError): Promise<never> {
    const reason = FLOW_TASK_REASONS.InvalidFlowOptions;
    if (task.metadata.annotations?.[PUBLISH_INTENT_ANNOTATION] !== undefined) await this.#d.publisher.revoke(namespace, task.spec.queue, uid);
    await this.#apply(ref, this.#status(task, "Failed", { status: "False", reason, message: err.message }, {
      completionTime: this.#now().toISOString(),
      error: { type: reason, message: err.message },
    }));
    ctx.log.warn({ field: err.field, err: err.message }, "Refused task with flow options its queue cannot honour");
    throw new TerminalError(err.message, { reason });
  }

  /**
   * A Task whose singleton key is held by another live task under policy Reject: phase Failed,
   * Accepted=False reason UniqueKeyHeld naming the holder; nothing was published. A Warning Event.
   */
  async #uniqueHeld(task: Task, ref: ObjectRef, holder: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const reason = FLOW_TASK_REASONS.UniqueKeyHeld;
    const message = `unique key "${task.spec.unique?.key}" is held by task ${holder} (policy Reject): not published; delete this Task and create it again once that task finished, or use policy Wait or Replace`;
    try {
      await this.#apply(ref, this.#status(task, "Failed", { status: "False", reason, message }, {
        completionTime: this.#now().toISOString(),
        error: { type: reason, message },
      }), task.metadata.resourceVersion);
    } catch (err) {
      if (isConflict(err)) return { requeueAfterMs: 0 };
      throw err;
    }
    this.#d.events.event(task, "Warning", reason, message);
    ctx.log.info({ holder, key: task.spec.unique?.key }, "Refused task whose unique key is held");
    return {};
  }

  async #expired(task: Task, ref: ObjectRef, expires: string): Promise<ReconcileResult> {
    const now = this.#now();
    const message = `the task expired at ${expires} before it was queued`;
    await this.#apply(ref, this.#status(task, "Expired", { status: "True", reason: REASONS.Expired, message }, { completionTime: now.toISOString() }));
    this.#d.events.event(task, "Warning", REASONS.Expired, message);
    return {};
  }

  /**
   * 5. publish (unless this process saw its PubAck, or NATS already holds it), then 6. status Queued,
   * locked on the version read: a worker's Running written meanwhile wins (409 → requeue).
   */
  async #publish({ task, ref, uid, ctx }: Call, queue: Queue, msg: TaskMessage, intent: number): Promise<ReconcileResult> {
    const nowMs = this.#now().getTime();
    const b = this.#backoff.get(uid);
    if (b && b.nextAt > nowMs) return { requeueAfterMs: b.nextAt - nowMs };
    let how = "Published task";
    if (!this.#published.has(uid)) {
      let heldBy: string | undefined;
      try {
        if (nowMs - intent >= blindRepublishMs(queue) && (await this.#d.publisher.isStored(msg))) {
          how = "Confirmed task already in NATS beyond the duplicate window; not published again";
        } else {
          // the singleton lock first (a retried publish finds its own id as the holder)
          const claim = msg.unique ? await this.#d.publisher.claimUnique(msg, msg.unique) : undefined;
          if (claim?.outcome === "rejected" && claim.holder !== msg.id) heldBy = claim.holder;
          else {
            if (claim && claim.outcome !== "claimed") ctx.log.info({ outcome: claim.outcome, holder: claim.holder, key: msg.unique?.key }, "Unique key was held");
            await this.#d.publisher.publish(msg);
            // the task is stored: a failed confirm is logged, never a reason to publish again
            if (msg.unique) await this.#d.publisher.confirmUnique(msg).catch((err: unknown) => ctx.log.warn({ err: (err as Error).message }, "Failed to confirm the unique lock of a published task"));
          }
        }
      } catch (err) {
        return this.#natsUnavailable(task, ref, uid, err as Error, ctx);
      }
      if (heldBy !== undefined) return this.#uniqueHeld(task, ref, heldBy, ctx);
      this.#published.add(uid);
      this.#backoff.delete(uid);
    }
    const due = msg.eta ? `, due at ${msg.eta}` : "";
    const queued = this.#status(task, "Queued", { status: "True", reason: REASONS.Queued, message: `published to queue "${task.spec.queue}"${due}` }, { queuedTime: this.#now().toISOString(), attempts: 0 });
    try {
      await this.#apply(ref, queued, task.metadata.resourceVersion);
    } catch (err) {
      if (isConflict(err)) return { requeueAfterMs: 0 };
      throw err;
    }
    // No Normal Event per Task for this: the Accepted condition (reason Queued, the queue and any due
    // time) says it on the Task itself, and one Event per Task was one more API write per Task.
    ctx.log.info({ task: task.spec.task, queue: task.spec.queue, eta: msg.eta }, how);
    return {};
  }

  /** Records Accepted=False NatsUnavailable with the error (once per distinct error) and requeues with back-off. */
  async #natsUnavailable(task: Task, ref: ObjectRef, uid: string, err: Error, ctx: ReconcileContext): Promise<ReconcileResult> {
    const failures = (this.#backoff.get(uid)?.failures ?? 0) + 1;
    const delay = publishRetryDelayMs(failures, this.#random());
    this.#backoff.set(uid, { failures, nextAt: this.#now().getTime() + delay });
    const message = `waiting for NATS to publish to queue "${task.spec.queue}"; retrying with back-off: ${err.message}`;
    const cur = getCondition(task.status?.conditions, CONDITION_TYPES.Task.Accepted);
    if (cur?.reason !== REASONS.NatsUnavailable || cur.message !== message) {
      try {
        await this.#apply(ref, this.#status(task, "Pending", { status: "False", reason: REASONS.NatsUnavailable, message }), task.metadata.resourceVersion);
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
      if (cur?.reason !== REASONS.NatsUnavailable) this.#d.events.event(task, "Warning", REASONS.NatsUnavailable, message);
    }
    ctx.log.warn({ err: err.message, attempt: failures, delayMs: delay }, "Failed to publish task; NATS is unavailable");
    return { requeueAfterMs: delay };
  }
}
