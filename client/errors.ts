/**
 * Errors the client rejects with.
 */
import type { TaskRecord } from "../api/message.js";

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
  override readonly name = "EnqueueError";
}
