/**
 * Error types a handler throws (or the worker uses) to say what should happen next. Outcomes are
 * expressed as error classes, BullMQ-style: a plain throw retries, `UnrecoverableError` fails at
 * once, `RetryError` retries after an explicit countdown.
 */

/** Thrown by a handler: the task fails now, with no further attempts, and is dead-lettered. */
export class UnrecoverableError extends Error {
  override readonly name: string = "UnrecoverableError";
}

/**
 * A handler's result too large for its task's record: the record is one results-bucket value, which
 * NATS limits to the server's `max_payload` (1 MiB by default). The task ends Failed at once (no
 * retry: the same input would give the same result); return a reference (an object-store key)
 * to a large result instead.
 */
export class ResultTooLargeError extends UnrecoverableError {
  override readonly name: string = "ResultTooLargeError";
}

/**
 * Thrown by a handler (or by `ctx.retry()`) to ask for another attempt after `countdownSeconds`
 * instead of the computed backoff (Celery's `self.retry(countdown=…)`). It still uses up an
 * attempt: when none is left the task is dead-lettered with reason `MaxAttemptsExceeded`.
 */
export class RetryError extends Error {
  override readonly name: string = "RetryError";
  /** Delay before the next attempt, in seconds; undefined = the policy's backoff. */
  readonly countdownSeconds: number | undefined;
  constructor(message = "retry requested", opts: { countdownSeconds?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.countdownSeconds = opts.countdownSeconds;
  }
}

/** The handler exceeded its `timeoutSeconds` (its signal was aborted with this error). Retried like any error. */
export class TimeoutError extends Error {
  override readonly name: string = "TimeoutError";
}

/** The task was revoked while running (its signal was aborted with this error); it ends `Cancelled`. */
export class CancelledError extends Error {
  override readonly name: string = "CancelledError";
}

/** The message names a task no handler is registered for; it is dead-lettered with reason `UnknownTask`. */
export class UnknownTaskError extends Error {
  override readonly name: string = "UnknownTaskError";
}

/** A worker died (or was killed) during an attempt; recorded when the redelivery exceeds `maxAttempts`. */
export class WorkerLostError extends Error {
  override readonly name: string = "WorkerLostError";
}

/**
 * Used by the worker to abort handlers (their signal's reason) when it is forced to stop: the
 * attempt is not recorded, and its message is handed back for another worker.
 */
export class WorkerShutdownError extends Error {
  override readonly name = "WorkerShutdownError";
}
