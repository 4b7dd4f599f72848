/**
 * Pure retry arithmetic and outcome classification: data in, data out, no clocks or I/O.
 */
import type { ResolvedRetryPolicy } from "../api/policies.js";
import type { DeadLetterReason } from "../api/message.js";
import { CancelledError, RetryError, TimeoutError, UnrecoverableError } from "./errors.js";

/**
 * Delay before the attempt after `attempt`, in milliseconds:
 * `min(maxSeconds, initialSeconds × factor^(attempt-1))`, then with jitter a uniform value between
 * half of it and all of it ("equal jitter"). The one backoff rule of the worker: task retries use the
 * task's policy; the worker's own retries (a failed pull, a failed status write) use `PULL_BACKOFF`
 * and `STATUS_WRITE_BACKOFF`. Never throws.
 * @param attempt the attempt that just failed, 1-based (values below 1 count as 1)
 * @param policy the backoff to apply (seconds), e.g. a resolved retry policy
 * @param random a source of [0, 1) numbers (Math.random in production; fixed in tests)
 * @returns the delay in ms, rounded to a whole ms
 */
export function backoffDelay(attempt: number, policy: Pick<ResolvedRetryPolicy, "backoff">, random: () => number = Math.random): number {
  const { initialSeconds, factor, maxSeconds, jitter } = policy.backoff;
  const n = Math.max(1, Math.floor(attempt));
  const raw = Math.min(maxSeconds, initialSeconds * Math.pow(factor, n - 1));
  const seconds = jitter ? raw / 2 + random() * (raw / 2) : raw;
  return Math.round(seconds * 1000);
}

/** Backoff between failed pulls: 200 ms, doubling, at most 2 s, no jitter (`backoffDelay(failures, PULL_BACKOFF)`). */
export const PULL_BACKOFF: Pick<ResolvedRetryPolicy, "backoff"> = Object.freeze({ backoff: Object.freeze({ initialSeconds: 0.2, factor: 2, maxSeconds: 2, jitter: false }) });

/** Backoff between tries of a failing status write: 50 ms, doubling, at most 2 s, no jitter (`backoffDelay(tries, STATUS_WRITE_BACKOFF)`). */
export const STATUS_WRITE_BACKOFF: Pick<ResolvedRetryPolicy, "backoff"> = Object.freeze({ backoff: Object.freeze({ initialSeconds: 0.05, factor: 2, maxSeconds: 2, jitter: false }) });

/**
 * What the worker does with a task message, whether decided before the handler (`admit`) or after it
 * (`classifyOutcome`); `settle` acts on it. A closed set:
 * - `succeed`: record `Succeeded` with the result, ack;
 * - `cancel`: record `Cancelled` (revoked), ack;
 * - `expire`: record `Expired` (not started before `expires`), ack;
 * - `retry`: record `Retrying`, nak with `delayMs` (milliseconds, ≥ 0);
 * - `deadLetter`: publish to the dead-letter stream with `reason`, record `Failed`, term;
 * - `wait`: the task may not start yet (its unique key is held by another task): record `Queued` with
 *   `status.waiting`, nak with `delayMs` (ms). Not an attempt, not an outcome: decided at admission.
 */
export type Outcome =
  | { action: "succeed"; phase: "Succeeded" }
  | { action: "cancel"; phase: "Cancelled" }
  | { action: "expire"; phase: "Expired" }
  | { action: "retry"; delayMs: number }
  | { action: "deadLetter"; reason: DeadLetterReason }
  | { action: "wait"; phase: "Queued"; delayMs: number };

/**
 * Classifies the end of an attempt (the handler ran). Never returns `expire`: expiry is decided at
 * admission. Pure; never throws.
 * - no error → succeed;
 * - `CancelledError` (revoked while running) → cancel (acked, not dead-lettered);
 * - `UnrecoverableError` → deadLetter `Unrecoverable` at once;
 * - any other error with attempts left → retry after `RetryError.countdownSeconds` or the backoff;
 * - attempts exhausted → deadLetter `TimedOut` for a `TimeoutError`, else `MaxAttemptsExceeded`.
 * @param err the error the attempt ended with, or undefined when it succeeded
 * @param attempt this attempt's number, 1-based (the JetStream delivery count)
 * @param policy the resolved retry policy
 * @param random jitter source, see `backoffDelay`
 * @returns the outcome; a retry's `delayMs` is in milliseconds
 */
export function classifyOutcome(err: unknown, attempt: number, policy: ResolvedRetryPolicy, random: () => number = Math.random): Outcome {
  if (err === undefined) return { action: "succeed", phase: "Succeeded" };
  if (err instanceof CancelledError) return { action: "cancel", phase: "Cancelled" };
  if (err instanceof UnrecoverableError) return { action: "deadLetter", reason: "Unrecoverable" };
  if (attempt >= policy.maxAttempts) {
    return { action: "deadLetter", reason: err instanceof TimeoutError ? "TimedOut" : "MaxAttemptsExceeded" };
  }
  if (err instanceof RetryError && err.countdownSeconds !== undefined) {
    return { action: "retry", delayMs: Math.max(0, Math.round(err.countdownSeconds * 1000)) };
  }
  return { action: "retry", delayMs: backoffDelay(attempt, policy, random) };
}

/**
 * The `{type, message, stack}` recorded for an error: class name, message, and the first lines of
 * the stack (at most 2 KiB). Non-Error values are stringified (type `Error`). Never throws.
 */
export function describeError(err: unknown): { type: string; message: string; stack?: string } {
  if (err instanceof Error) {
    const out: { type: string; message: string; stack?: string } = { type: err.name || err.constructor.name, message: err.message };
    if (err.stack) out.stack = err.stack.slice(0, 2048);
    return out;
  }
  return { type: "Error", message: typeof err === "string" ? err : JSON.stringify(err) ?? String(err) };
}
