/**
 * Task reconciler: accepts a Task, publishes it exactly once to its Queue's stream, revokes it when
 * the Task is deleted, and deletes finished Tasks after `ttlSecondsAfterFinished`.
 *
 * Order for a new Task (level-triggered, safe to run any number of times):
 *   finalizer → validate what the schema cannot (args size) → Queue exists? (else Pending/QueueNotFound)
 *   → status Queued (conditional on resourceVersion) → publish with Nats-Msg-Id = uid.
 * The status is written before publishing so a worker's Running can never be overwritten by our Queued.
 * Workers write every later status (Running, Retrying, Succeeded, …) themselves.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { CONDITION_TYPES, FIELD_MANAGERS, FINALIZERS, GROUP, MAX_ARGS_BYTES, REASONS, RESOURCES, VERSION, isTerminalPhase } from "../../api/constants.js";
import { setCondition, type Condition } from "../../api/conditions.js";
import type { TaskMessage } from "../../api/message.js";
import type { QueueSpec } from "../../api/queue.js";
import type { TaskSpec, TaskStatus } from "../../api/task.js";
import { deleteObject, isConflict, isNotFound, patchStatus, setFinalizer, type KubeObject, type ObjectRef } from "../../kube/k8s-client.js";
import type { EventSink } from "../runtime/events.js";
import { argsSize, buildTaskMessage } from "./task-message.js";

/** A Task as read from the cache. */
export interface TaskResource extends KubeObject {
  metadata: { name: string; namespace: string; uid: string; resourceVersion?: string; generation?: number; finalizers?: string[]; deletionTimestamp?: string; creationTimestamp?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: TaskSpec;
  status?: TaskStatus;
}

/** A Queue as read from the cache. */
export interface QueueResource extends KubeObject {
  metadata: { name: string; namespace: string; uid: string; deletionTimestamp?: string };
  spec: QueueSpec;
}

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
  getTask(namespace: string, name: string): TaskResource | undefined;
  getQueue(namespace: string, name: string): QueueResource | undefined;
  publisher: TaskPublisher;
  events: EventSink;
  log: Logger;
  now?: () => Date;
  /**
   * How long after `queuedTime` a Queued Task may be published again after an operator restart, ms.
   * Within the stream's duplicate window (default 2 min) JetStream drops the repeat, so this stays
   * below it. Default 90 000 ms.
   */
  republishWindowMs?: number;
}

/** Result of one reconcile: requeue after this many ms, or nothing. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

const TASK_GVR = { group: GROUP, version: VERSION, plural: RESOURCES.Task.plural };

function ref(t: TaskResource): ObjectRef {
  return { ...TASK_GVR, namespace: t.metadata.namespace, name: t.metadata.name };
}

/** Reconciles Task resources. One instance per operator; state is only the set of tasks published by this process. */
export class TaskReconciler {
  readonly #d: TaskReconcilerDeps;
  readonly #published = new Set<string>();
  readonly #now: () => Date;

  constructor(deps: TaskReconcilerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  /**
   * Reconciles the Task `namespace/name` from the cache.
   * @throws Error on API or NATS failures (the controller retries with back-off); a 409 is rethrown as
   *   is and means "requeue"
   */
  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const task = this.#d.getTask(namespace, name);
    if (!task) return {};
    if (task.metadata.deletionTimestamp) return this.#finalize(task);
    const phase = task.status?.phase;
    if (isTerminalPhase(phase)) return this.#finished(task);
    if (phase === "Queued" || phase === "Running" || phase === "Retrying") return this.#inFlight(task);
    return this.#accept(task);
  }

  async #finalize(task: TaskResource): Promise<ReconcileResult> {
    if (!task.metadata.finalizers?.includes(FINALIZERS.task)) return {};
    const phase = task.status?.phase;
    if (!isTerminalPhase(phase) && phase !== undefined && phase !== "Pending") {
      await this.#d.publisher.revoke(task.metadata.namespace, task.spec.queue, task.metadata.uid);
      this.#d.events.event(task, "Normal", REASONS.Revoked, `Revoked task ${task.metadata.uid} (phase ${phase}) because the Task was deleted`);
      this.#d.log.info({ phase }, "Revoked deleted task");
    }
    await this.#removeFinalizer(task);
    return {};
  }

  async #removeFinalizer(task: TaskResource): Promise<void> {
    try {
      await setFinalizer(this.#d.kc, ref(task), task, FINALIZERS.task, false, FIELD_MANAGERS.operator);
    } catch (err) {
      if (!isNotFound((err as Error).cause)) throw err;
    }
  }

  async #finished(task: TaskResource): Promise<ReconcileResult> {
    this.#published.delete(task.metadata.uid);
    await this.#removeFinalizer(task);
    const ttl = task.spec.ttlSecondsAfterFinished;
    if (ttl === undefined) return {};
    const finishedAt = Date.parse(task.status?.completionTime ?? task.metadata.creationTimestamp ?? "");
    if (Number.isNaN(finishedAt)) return {};
    const due = finishedAt + ttl * 1000 - this.#now().getTime();
    if (due > 0) return { requeueAfterMs: due };
    await deleteObject(this.#d.kc, ref(task));
    this.#d.log.info({ ttlSecondsAfterFinished: ttl }, "Deleted finished task after its TTL");
    return {};
  }

  async #inFlight(task: TaskResource): Promise<ReconcileResult> {
    // A Queued task this process did not publish may have been accepted by an operator that died
    // between the status write and the publish. Publishing again within the duplicate window is a
    // no-op for JetStream (same Nats-Msg-Id), so it cannot run twice.
    if (task.status?.phase !== "Queued" || this.#published.has(task.metadata.uid)) return {};
    const queuedAt = Date.parse(task.status.queuedTime ?? "");
    const window = this.#d.republishWindowMs ?? 90_000;
    if (Number.isNaN(queuedAt) || this.#now().getTime() - queuedAt > window) {
      this.#published.add(task.metadata.uid);
      return {};
    }
    const queue = this.#d.getQueue(task.metadata.namespace, task.spec.queue);
    await this.#d.publisher.publish(buildTaskMessage(task, queue?.spec, new Date(queuedAt)));
    this.#published.add(task.metadata.uid);
    this.#d.log.info("Republished queued task after restart (deduplicated by Nats-Msg-Id)");
    return {};
  }

  #status(task: TaskResource, phase: TaskStatus["phase"], accepted: { status: "True" | "False"; reason: string; message: string }, extra: Partial<TaskStatus> = {}): TaskStatus {
    const now = this.#now();
    const conditions = setCondition(task.status?.conditions as Condition[] | undefined, {
      type: CONDITION_TYPES.Task.Accepted,
      ...accepted,
      observedGeneration: task.metadata.generation,
    }, now);
    return { ...extra, phase, conditions, observedGeneration: task.metadata.generation };
  }

  async #writeStatus(task: TaskResource, status: TaskStatus): Promise<void> {
      await patchStatus(this.#d.kc, ref(task), status as Record<string, unknown>, FIELD_MANAGERS.operator);
  }

  async #accept(task: TaskResource): Promise<ReconcileResult> {
    const { namespace } = task.metadata;
    // 1. finalizer first, so a delete can always revoke what we publish
    if (await setFinalizer(this.#d.kc, ref(task), task, FINALIZERS.task, true, FIELD_MANAGERS.operator)) {
      return {}; // the update event brings us back with the new resourceVersion
    }
    // 2. what the schema cannot check
    const size = argsSize(task.spec);
    if (size > MAX_ARGS_BYTES) {
      const message = `args and kwargs hold ${size} bytes of JSON; at most ${MAX_ARGS_BYTES} (256 KiB) are allowed: pass a reference (an object-store key, a URL) instead of the data`;
      await this.#writeStatus(task, this.#status(task, "Failed", { status: "False", reason: REASONS.ArgsTooLarge, message }, {
        completionTime: this.#now().toISOString(),
        error: { type: "ArgsTooLarge", message },
      }));
      this.#d.events.event(task, "Warning", REASONS.ArgsTooLarge, message);
      return {};
    }
    // 3. the queue must exist
    const queue = this.#d.getQueue(namespace, task.spec.queue);
    if (!queue || queue.metadata.deletionTimestamp) {
      const message = `queue "${task.spec.queue}" does not exist in namespace "${namespace}": the task waits until it is applied`;
      if (task.status?.phase !== "Pending" || task.status.conditions?.find((c) => c.type === CONDITION_TYPES.Task.Accepted)?.reason !== REASONS.QueueNotFound) {
        await this.#writeStatus(task, this.#status(task, "Pending", { status: "False", reason: REASONS.QueueNotFound, message }));
        this.#d.events.event(task, "Warning", REASONS.QueueNotFound, message);
      }
      return {}; // the Queue informer re-enqueues waiting tasks when the queue appears
    }
    // 4. already expired before we could publish it
    const now = this.#now();
    const msg = buildTaskMessage(task, queue.spec, now);
    if (msg.expires && Date.parse(msg.expires) <= now.getTime()) {
      const message = `the task expired at ${msg.expires} before it was queued`;
      await this.#writeStatus(task, this.#status(task, "Expired", { status: "True", reason: REASONS.Expired, message }, { completionTime: now.toISOString() }));
      this.#d.events.event(task, "Warning", REASONS.Expired, message);
      return {};
    }
    // 5. status Queued (conditional), then publish exactly once (Nats-Msg-Id = uid)
    const queued = this.#status(task, "Queued", { status: "True", reason: REASONS.Queued, message: `published to queue "${task.spec.queue}"${msg.eta ? `, due at ${msg.eta}` : ""}` }, { queuedTime: now.toISOString(), attempts: 0 });
    try {
      await patchStatus(this.#d.kc, ref(task), queued as Record<string, unknown>, FIELD_MANAGERS.operator, task.metadata.resourceVersion);
    } catch (err) {
      if (isConflict((err as Error).cause)) return { requeueAfterMs: 0 };
      throw err;
    }
    await this.#d.publisher.publish(msg);
    this.#published.add(task.metadata.uid);
    this.#d.events.event(task, "Normal", REASONS.Queued, `Published task ${task.spec.task} to queue ${task.spec.queue}${msg.eta ? ` (due ${msg.eta})` : ""}`);
    this.#d.log.info({ task: task.spec.task, queue: task.spec.queue, eta: msg.eta }, "Published task");
    return {};
  }
}
