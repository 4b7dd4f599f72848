/**
 * Errors the client rejects with.
 */
import type { TaskMessage, TaskRecord } from "../api/message.js";

/** `result()` found the task ended Failed, Cancelled or Expired; carries the task's recorded error. */
export class TaskFailedError extends Error {
  override readonly name = "TaskFailedError";
  /** The task's error class name, e.g. `TypeError`, `UnknownTaskError`, `CancelledError`. */
  readonly type: string;
  /** The task's terminal phase. */
  readonly phase: "Failed" | "Cancelled" | "Expired";
  /** The full record from the results bucket. */
  readonly record: TaskRecord;
  constructor(record: TaskRecord) {
    const e = record.status.error ?? { type: record.status.phase ?? "Error", message: `task ended ${record.status.phase}` };
    super(`task ${record.id} (${record.task}) ${String(record.status.phase).toLowerCase()}: ${e.type}: ${e.message}`);
    this.type = e.type;
    this.phase = record.status.phase as "Failed" | "Cancelled" | "Expired";
    this.record = record;
  }
}

/** `result({timeoutMs})` gave up waiting; the task may still finish later. */
export class ResultTimeoutError extends Error {
  override readonly name = "ResultTimeoutError";
}

/** The enqueue was not confirmed by JetStream in time (NATS unreachable); retrying with the same taskId is safe. */
export class EnqueueError extends Error {
  override readonly name: string = "EnqueueError";
}

/**
 * The enqueue's `unique` key (policy Reject) is held by another Queued-or-Running task of the queue:
 * nothing was published. Enqueue again once the holder finished, or use policy Wait (run after it)
 * or Replace (revoke it if it has not started).
 */
export class UniqueKeyHeldError extends EnqueueError {
  override readonly name = "UniqueKeyHeldError";
  /** The refused task's id. */
  readonly taskId: string;
  /** The singleton key. */
  readonly key: string;
  /** The id of the task holding the key. */
  readonly holder: string;
  /** The policy that refused it: always Reject. */
  readonly policy = "Reject" as const;
  constructor(msg: Pick<TaskMessage, "id" | "task">, t: { queue: string; namespace: string }, key: string, holder: string) {
    super(
      `enqueue ${msg.task} (${msg.id}) on queue ${t.namespace}/${t.queue}: unique key "${key}" is held by task ${holder} (policy Reject): not published; ` +
        `enqueue again once that task finished, or pass unique.policy "Wait" (run after it) or "Replace" (revoke it if it has not started)`,
    );
    this.taskId = msg.id;
    this.key = key;
    this.holder = holder;
  }
}

/**
 * Some elements of `enqueueMany` failed. `results` has one entry per element, in order:
 * `{ ok: true, handle }` (stored) or `{ ok: false, error }`; `errors` (AggregateError's) holds the
 * failed elements' errors, in order. Retrying the failed elements with the same `taskId` is safe.
 */
export class EnqueueManyError<H = unknown> extends AggregateError {
  override readonly name = "EnqueueManyError";
  /** One outcome per element of the call, in order. */
  readonly results: ReadonlyArray<{ ok: true; handle: H } | { ok: false; error: Error }>;
  /** Indices (into the call's `tasks`) of the elements that failed. */
  readonly failed: readonly number[];
  constructor(results: ReadonlyArray<{ ok: true; handle: H } | { ok: false; error: Error }>) {
    const failed = results.flatMap((r, i) => (r.ok ? [] : [i]));
    const errors = failed.map((i) => (results[i] as { error: Error }).error);
    const first = errors[0];
    super(errors, `enqueueMany: ${failed.length} of ${results.length} tasks failed (first: tasks[${failed[0]}]: ${first?.message}); the others are stored`);
    this.results = results;
    this.failed = failed;
  }
}

/**
 * The queue has no streams: no Queue resource declares it (a typo, or a Queue not created yet) and
 * the client was not asked to create queues (`createQueues: true`). Nothing was published.
 */
export class QueueNotFoundError extends Error {
  override readonly name = "QueueNotFoundError";
  readonly namespace: string;
  readonly queue: string;
  /** The queues that do exist in the namespace, sorted. */
  readonly existing: readonly string[];
  constructor(namespace: string, queue: string, existing: readonly string[], options?: ErrorOptions) {
    super(queueNotFoundMessage(namespace, queue, existing), options);
    this.namespace = namespace;
    this.queue = queue;
    this.existing = existing;
  }
}

/**
 * The message of a `QueueNotFoundError`. Pure.
 * @example queueNotFoundMessage("default", "thumbnail", ["thumbnails"])
 *   // 'queue "thumbnail" does not exist in namespace "default"; existing queues: thumbnails'
 */
export function queueNotFoundMessage(namespace: string, queue: string, existing: readonly string[]): string {
  const rest = existing.length > 0 ? `existing queues: ${existing.join(", ")}` : `no queues exist in namespace "${namespace}"`;
  return `queue "${queue}" does not exist in namespace "${namespace}"; ${rest}`;
}
