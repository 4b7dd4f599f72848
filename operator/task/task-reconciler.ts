/**
 * Task reconciler: accepts a Task, publishes it exactly once to its Queue's stream, revokes it when
 * the Task is deleted, and deletes finished Tasks after `ttlSecondsAfterFinished`.
 *
 * Order for a new Task (level-triggered, safe to run any number of times):
 *   finalizer → validate what the schema cannot (args size; TerminalError) → Queue exists? (else
 *   Pending/QueueNotFound) → status Queued (locked on resourceVersion) → publish with Nats-Msg-Id = uid.
 * The status is written before publishing so a worker's Running can never be overwritten by our Queued.
 * The operator writes its part of the status (phase until Queued, the Accepted condition) with
 * server-side apply as FIELD_MANAGERS.operator; workers write every later status themselves.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { CONDITION_TYPES, FIELD_MANAGERS, FINALIZERS, REASONS, isTerminalPhase } from "../../api/constants.js";
import { getCondition, setCondition } from "../../api/conditions.js";
import type { TaskMessage } from "../../api/message.js";
import { CELERIAC_TYPES, type Queue, type Task } from "../../api/objects.js";
import type { TaskStatus } from "../../api/task.js";
import { argsTooLarge, newTaskMessage, taskMessageInput } from "../../api/task-message.js";
import {
  TerminalError, applyStatus, deleteObject, isConflict, isNotFound, setFinalizer,
  type EventSink, type ObjectReconciler, type ObjectRef, type ReconcileContext, type ReconcileKey, type ReconcileResult,
} from "../runtime/index.js";

/** Publishes and revokes task messages (NATS side). */
export interface TaskPublisher {
  /** Publishes `msg` (to the delay stream when it has a future eta); resolves once JetStream stored it. */
  publish(msg: TaskMessage): Promise<void>;
  /** Marks task `id` revoked: it never starts, and a running attempt is aborted. */
  revoke(namespace: string, queue: string, id: string): Promise<void>;
}

/** Dependencies of the Task reconciler. */
export interface TaskReconcilerDeps {
  kc: KubeConfig;
  /** Cache lookups (informers). */
  getTask(namespace: string, name: string): Task | undefined;
  getQueue(namespace: string, name: string): Queue | undefined;
  publisher: TaskPublisher;
  events: EventSink;
  now?: () => Date;
  /**
   * How long after `queuedTime` a Queued Task may be published again after an operator restart, ms.
   * Within the stream's duplicate window (default 2 min) JetStream drops the repeat, so this stays
   * below it. Default 90 000 ms.
   */
  republishWindowMs?: number;
}

/** One reconcile's subject: the Task, its reference and the per-reconcile logger. */
interface Call {
  task: Task;
  namespace: string;
  ref: ObjectRef;
  uid: string;
  ctx: ReconcileContext;
}

/** Reconciles Task resources. One instance per operator; state is only the set of tasks published by this process. */
export class TaskReconciler implements ObjectReconciler {
  readonly #d: TaskReconcilerDeps;
  readonly #published = new Set<string>();
  readonly #now: () => Date;

  constructor(deps: TaskReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Reconciles the Task `key` from the cache.
   * @throws TerminalError `ArgsTooLarge` after recording phase Failed (not retried)
   * @throws Error on API or NATS failures (the controller retries with back-off); a 409 Conflict means "requeue"
   */
  async reconcile(key: ReconcileKey, ctx: ReconcileContext): Promise<ReconcileResult> {
    const task = this.#d.getTask(key.namespace, key.name);
    if (!task) return {};
    const c: Call = { task, namespace: key.namespace, ref: { ...CELERIAC_TYPES.Task, namespace: key.namespace, name: key.name }, uid: task.metadata.uid ?? "", ctx };
    if (task.metadata.deletionTimestamp) return this.#finalize(c);
    const phase = task.status?.phase;
    if (isTerminalPhase(phase)) return this.#finished(c);
    if (phase === "Queued" || phase === "Running" || phase === "Retrying") return this.#inFlight(c);
    return this.#accept(c);
  }

  async #finalize({ task, namespace, ref, uid, ctx }: Call): Promise<ReconcileResult> {
    if (!task.metadata.finalizers?.includes(FINALIZERS.task)) return {};
    const phase = task.status?.phase;
    if (!isTerminalPhase(phase) && phase !== undefined && phase !== "Pending") {
      await this.#d.publisher.revoke(namespace, task.spec.queue, uid);
      this.#d.events.event(task, "Normal", REASONS.Revoked, `Revoked task ${uid} (phase ${phase}) because the Task was deleted`);
      ctx.log.info({ phase }, "Revoked deleted task");
    }
    await this.#removeFinalizer(task, ref);
    return {};
  }

  async #removeFinalizer(task: Task, ref: ObjectRef): Promise<void> {
    try {
      await setFinalizer(this.#d.kc, ref, task, FINALIZERS.task, false, FIELD_MANAGERS.operator);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async #finished({ task, ref, uid, ctx }: Call): Promise<ReconcileResult> {
    this.#published.delete(uid);
    await this.#removeFinalizer(task, ref);
    const ttl = task.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return {};
    const finishedAt = Date.parse(task.status?.completionTime ?? task.metadata.creationTimestamp ?? "");
    if (Number.isNaN(finishedAt)) return {};
    const due = finishedAt + ttl * 1000 - this.#now().getTime();
    if (due > 0) return { requeueAfterMs: due };
    await deleteObject(this.#d.kc, ref);
    ctx.log.info({ ttlSecondsAfterFinished: ttl }, "Deleted finished task after its TTL");
    return {};
  }

  async #inFlight({ task, namespace, uid, ctx }: Call): Promise<ReconcileResult> {
    // A Queued task this process did not publish may have been accepted by an operator that died
    // between the status write and the publish. Publishing again within the duplicate window is a
    // no-op for JetStream (same Nats-Msg-Id), so it cannot run twice.
    if (task.status?.phase !== "Queued" || this.#published.has(uid)) return {};
    const queuedAt = Date.parse(task.status.queuedTime ?? "");
    const window = this.#d.republishWindowMs ?? 90_000;
    if (Number.isNaN(queuedAt) || this.#now().getTime() - queuedAt > window) {
      this.#published.add(uid);
      return {};
    }
    const queue = this.#d.getQueue(namespace, task.spec.queue);
    await this.#d.publisher.publish(newTaskMessage(taskMessageInput(task, queue?.spec), new Date(queuedAt)));
    this.#published.add(uid);
    ctx.log.info("Republished queued task after restart (deduplicated by Nats-Msg-Id)");
    return {};
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
    // 1. finalizer first, so a delete can always revoke what we publish
    if (await setFinalizer(this.#d.kc, ref, task, FINALIZERS.task, true, FIELD_MANAGERS.operator)) {
      return {}; // the update event brings us back with the new resourceVersion
    }
    // 2. what the schema cannot check: terminal, recorded as phase Failed
    const tooLarge = argsTooLarge(task.spec.args, task.spec.kwargs as Record<string, unknown> | undefined);
    if (tooLarge) {
      await this.#apply(ref, this.#status(task, "Failed", { status: "False", reason: REASONS.ArgsTooLarge, message: tooLarge }, {
        completionTime: this.#now().toISOString(),
        error: { type: REASONS.ArgsTooLarge, message: tooLarge },
      }));
      throw new TerminalError(tooLarge, { reason: REASONS.ArgsTooLarge });
    }
    // 3. the queue must exist
    const queue = this.#d.getQueue(namespace, task.spec.queue);
    if (!queue || queue.metadata.deletionTimestamp) {
      const message = `queue "${task.spec.queue}" does not exist in namespace "${namespace}": the task waits until it is applied`;
      if (task.status?.phase !== "Pending" || getCondition(task.status.conditions, CONDITION_TYPES.Task.Accepted)?.reason !== REASONS.QueueNotFound) {
        await this.#apply(ref, this.#status(task, "Pending", { status: "False", reason: REASONS.QueueNotFound, message }));
        this.#d.events.event(task, "Warning", REASONS.QueueNotFound, message);
      }
      return {}; // the Queue informer re-enqueues waiting tasks when the queue appears (waitingTasks)
    }
    // 4. already expired before we could publish it
    const now = this.#now();
    const msg = newTaskMessage(taskMessageInput(task, queue.spec), now);
    if (msg.expires && Date.parse(msg.expires) <= now.getTime()) {
      const message = `the task expired at ${msg.expires} before it was queued`;
      await this.#apply(ref, this.#status(task, "Expired", { status: "True", reason: REASONS.Expired, message }, { completionTime: now.toISOString() }));
      this.#d.events.event(task, "Warning", REASONS.Expired, message);
      return {};
    }
    // 5. status Queued (locked on the version read), then publish exactly once (Nats-Msg-Id = uid)
    const due = msg.eta ? `, due at ${msg.eta}` : "";
    const queued = this.#status(task, "Queued", { status: "True", reason: REASONS.Queued, message: `published to queue "${task.spec.queue}"${due}` }, { queuedTime: now.toISOString(), attempts: 0 });
    try {
      await this.#apply(ref, queued, task.metadata.resourceVersion);
    } catch (err) {
      if (isConflict(err)) return { requeueAfterMs: 0 };
      throw err;
    }
    await this.#d.publisher.publish(msg);
    this.#published.add(uid);
    this.#d.events.event(task, "Normal", REASONS.Queued, `Published task ${task.spec.task} to queue ${task.spec.queue}${msg.eta ? ` (due ${msg.eta})` : ""}`);
    ctx.log.info({ task: task.spec.task, queue: task.spec.queue, eta: msg.eta }, "Published task");
    return {};
  }
}
