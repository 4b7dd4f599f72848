import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, classifyOutcome, CancelledError, RetryError, TimeoutError, UnrecoverableError } from "../../worker/index.js";
import type { ResolvedRetryPolicy } from "../../api/policies.js";

const policy = (maxAttempts: number, jitter = false): ResolvedRetryPolicy => ({ maxAttempts, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 10, jitter } });

describe("when computing the backoff delay", () => {
  const cases: [string, number, ResolvedRetryPolicy, number, number][] = [
    ["first retry waits the initial delay", 1, policy(5), 0.5, 1000],
    ["second retry doubles it", 2, policy(5), 0.5, 2000],
    ["fourth retry is 8 s", 4, policy(5), 0.5, 8000],
    ["caps at maxSeconds", 6, policy(9), 0.5, 10_000],
    ["jitter with random 0 gives half", 3, policy(5, true), 0, 2000],
    ["jitter with random ~1 gives nearly all", 3, policy(5, true), 0.999999, 4000],
    ["jitter applies after the cap", 10, policy(20, true), 0, 5000],
    ["factor 1 is a constant delay", 5, { maxAttempts: 9, backoff: { initialSeconds: 0.25, factor: 1, maxSeconds: 10, jitter: false } }, 0.3, 250],
    ["attempt below 1 is treated as 1", 0, policy(5), 0.5, 1000],
  ];
  for (const [name, attempt, p, r, want] of cases) {
    it(name, () => assert.equal(backoffDelay(attempt, p, () => r), want));
  }
});

describe("when classifying the end of an attempt", () => {
  const cases: [string, unknown, number, number, ReturnType<typeof classifyOutcome>][] = [
    ["success acks", undefined, 1, 3, { action: "succeed", phase: "Succeeded" }],
    ["success on the last attempt acks", undefined, 3, 3, { action: "succeed", phase: "Succeeded" }],
    ["a plain error with attempts left retries with backoff", new Error("x"), 1, 3, { action: "retry", delayMs: 1000 }],
    ["the second failure backs off longer", new Error("x"), 2, 3, { action: "retry", delayMs: 2000 }],
    ["a plain error on the last attempt dead-letters", new Error("x"), 3, 3, { action: "deadLetter", reason: "MaxAttemptsExceeded" }],
    ["a thrown non-Error is an error too", "oops", 1, 1, { action: "deadLetter", reason: "MaxAttemptsExceeded" }],
    ["UnrecoverableError dead-letters at once", new UnrecoverableError("x"), 1, 5, { action: "deadLetter", reason: "Unrecoverable" }],
    ["RetryError uses its countdown", new RetryError("r", { countdownSeconds: 7.5 }), 1, 3, { action: "retry", delayMs: 7500 }],
    ["RetryError without countdown uses the backoff", new RetryError("r"), 2, 3, { action: "retry", delayMs: 2000 }],
    ["RetryError on the last attempt dead-letters", new RetryError("r", { countdownSeconds: 1 }), 3, 3, { action: "deadLetter", reason: "MaxAttemptsExceeded" }],
    ["TimeoutError with attempts left retries", new TimeoutError("t"), 1, 2, { action: "retry", delayMs: 1000 }],
    ["TimeoutError on the last attempt dead-letters as TimedOut", new TimeoutError("t"), 2, 2, { action: "deadLetter", reason: "TimedOut" }],
    ["CancelledError ends Cancelled without dead-lettering", new CancelledError("c"), 1, 3, { action: "cancel", phase: "Cancelled" }],
    ["a redelivery past maxAttempts dead-letters", new Error("x"), 4, 3, { action: "deadLetter", reason: "MaxAttemptsExceeded" }],
  ];
  for (const [name, err, attempt, max, want] of cases) {
    it(name, () => assert.deepEqual(classifyOutcome(err, attempt, policy(max), () => 0.5), want));
  }
});
