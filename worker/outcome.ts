/**
 * Pure retry arithmetic and outcome classification: data in, data out, no clocks or I/O.
 */
import type { ResolvedRetryPolicy } from "../api/policies.js";
import type { DeadLetterReason } from "../api/message.js";
import { CancelledError, RetryError, TimeoutError, UnrecoverableError } from "./errors.js";

/**
 * Delay before the attempt after `attempt`, in milliseconds:
 * `min(maxSeconds, initialSeconds × factor^(attempt-1))`, then with jitter a uniform value between
 * half of it and all of it ("equal jitter").
 * @param attempt the attempt that just failed, 1-based
 * @param policy the resolved retry policy (seconds)
 * @param random a source of [0, 1) numbers (Math.random in production; fixed in tests)
 */
export function backoffDelay(attempt: number, policy: ResolvedRetryPolicy, random: () => number = Math.random): number {
  const { initialSeconds, factor, maxSeconds, jitter } = policy.backoff;
  const n = Math.max(1, Math.floor(attempt));
  const raw = Math.min(maxSeconds, initialSeconds * Math.pow(factor, n - 1));
  const seconds = jitter ? raw / 2 + random() * (raw / 2) : raw;
  return Math.round(seconds * 1000);
}

/** What to do with a task message after an attempt. */
export type Outcome =
  | { action: "ack"; phase: "Succeeded" }
  | { action: "retry"; delayMs: number }
  | { action: "fail"; phase: "Cancelled" }
  | { action: "deadLetter"; reason: DeadLetterReason };

/**
 * Classifies the end of an attempt.
 * - no error → ack, Succeeded;
 * - `CancelledError` (revoked) → fail, Cancelled (acked, not dead-lettered);
 * - `UnrecoverableError` → deadLetter `Unrecoverable` at once;
 * - any other error with attempts left → retry after `RetryError.countdownSeconds` or the backoff;
 * - attempts exhausted → deadLetter `TimedOut` for a `TimeoutError`, else `MaxAttemptsExceeded`.
 * @param err the error the attempt ended with, or undefined when it succeeded
 * @param attempt this attempt's number, 1-based (the JetStream delivery count)
 * @param policy the resolved retry policy
 * @param random jitter source, see `backoffDelay`
 */
export function classifyOutcome(err: unknown, attempt: number, policy: ResolvedRetryPolicy, random: () => number = Math.random): Outcome {
  if (err === undefined) return { action: "ack", phase: "Succeeded" };
  if (err instanceof CancelledError) return { action: "fail", phase: "Cancelled" };
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
 * the stack (at most 2 KiB). Non-Error values are stringified.
 */
export function describeError(err: unknown): { type: string; message: string; stack?: string } {
  if (err instanceof Error) {
    const out: { type: string; message: string; stack?: string } = { type: err.name || err.constructor.name, message: err.message };
    if (err.stack) out.stack = err.stack.slice(0, 2048);
    return out;
  }
  return { type: "Error", message: typeof err === "string" ? err : JSON.stringify(err) ?? String(err) };
}
