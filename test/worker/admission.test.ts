import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { admit, type AdmissionInput } from "../../worker/admission.js";
import { endingStatus, type Ending } from "../../worker/settle.js";
import { defineTask, type Outcome } from "../../worker/index.js";
import { parseTaskMessage, type TaskMessage } from "../../api/message.js";
import type { DeliveryTrace, TracedRecord } from "../../worker/attribution.js";

const NOW = Date.parse("2026-01-01T00:00:00Z");

const message = (over: Partial<TaskMessage> = {}): TaskMessage => ({
  v: 1,
  id: "t1",
  task: "hello",
  args: [],
  kwargs: {},
  queue: "q",
  namespace: "default",
  origin: { kind: "Client" },
  timeoutSeconds: 60,
  retry: { maxAttempts: 3, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 10, jitter: false } },
  createdAt: "2025-12-31T23:59:00Z",
  ...over,
});

const finished = (phase: "Succeeded" | "Running" | "Retrying", attempts = 1, delivery?: DeliveryTrace): TracedRecord => ({
  id: "t1",
  task: "hello",
  queue: "q",
  namespace: "default",
  origin: { kind: "Client" },
  status: { phase, attempts },
  updatedAt: "2025-12-31T23:59:30Z",
  ...(delivery ? { delivery } : {}),
});
/** The record of attempt 3 running alone (delivery 5), whose worker was then lost. */
const lostAlone = finished("Running", 3, { count: 5, alone: true, workerLost: 3, workerLostAlone: 2 });

const input = (over: Partial<AdmissionInput> & { msg?: TaskMessage | string } = {}): AdmissionInput => {
  const { msg = message(), ...rest } = over;
  return {
    parsed: parseTaskMessage(typeof msg === "string" ? msg : JSON.stringify(msg)),
    attempt: 1,
    headers: { id: "t1", task: "hello" },
    queue: "q",
    namespace: "default",
    tasks: new Map([["hello", defineTask("hello", () => "hi")]]),
    isRevoked: () => false,
    nowMs: NOW,
    ...rest,
  };
};

/** The outcome admission settles with, "run" when it admits, or "replay". */
const decision = (i: AdmissionInput): Outcome | "run" | "replay" => {
  const a = admit(i);
  if ("run" in a) return "run";
  return "replay" in a.settle ? "replay" : a.settle.outcome;
};

describe("when admitting a delivered message", () => {
  const cases: [string, AdmissionInput, Outcome | "run" | "replay"][] = [
    ["a valid message for a registered task runs", input(), "run"],
    ["a body that is not JSON dead-letters as InvalidMessage", input({ msg: "{nope" }), { action: "deadLetter", reason: "InvalidMessage" }],
    ["a body that fails the schema dead-letters as InvalidMessage", input({ msg: JSON.stringify({ v: 1, id: "t1" }) }), { action: "deadLetter", reason: "InvalidMessage" }],
    ["an invalid task id dead-letters as InvalidMessage", input({ msg: message({ id: "no spaces allowed" }) }), { action: "deadLetter", reason: "InvalidMessage" }],
    ["a revoked task is cancelled", input({ isRevoked: (id) => id === "t1" }), { action: "cancel", phase: "Cancelled" }],
    ["a task past its expiry expires", input({ msg: message({ expires: "2025-12-31T23:59:59Z" }) }), { action: "expire", phase: "Expired" }],
    ["a task not yet expired runs", input({ msg: message({ expires: "2026-01-01T00:00:01Z" }) }), "run"],
    ["an unknown task dead-letters as UnknownTask", input({ msg: message({ task: "nobody.home" }) }), { action: "deadLetter", reason: "UnknownTask" }],
    ["the last allowed attempt runs", input({ attempt: 3 }), "run"],
    ["a delivery after an older worker's Running record of the last attempt dead-letters as MaxAttemptsExceeded (the old rule)", input({ attempt: 4, previous: finished("Running", 3) }), { action: "deadLetter", reason: "MaxAttemptsExceeded" }],
    ["a delivery after the last attempt's worker was lost while it ran alone dead-letters as MaxAttemptsExceeded", input({ attempt: 6, previous: lostAlone }), { action: "deadLetter", reason: "MaxAttemptsExceeded" }],
    ["a fourth delivery with no record runs (the crashes were beside other tasks)", input({ attempt: 4 }), "run"],
    ["a redelivery of a finished task replays its record", input({ attempt: 2, previous: finished("Succeeded") }), "replay"],
    ["a redelivery whose record is not final runs", input({ attempt: 2, previous: finished("Running") }), "run"],
    ["a finished record wins over a revocation", input({ attempt: 2, previous: finished("Succeeded"), isRevoked: () => true }), "replay"],
    ["an envelope naming another queue than its subject's dead-letters as InvalidMessage", input({ msg: message({ queue: "other" }) }), { action: "deadLetter", reason: "InvalidMessage" }],
    ["an envelope naming another namespace than its subject's dead-letters as InvalidMessage", input({ msg: message({ namespace: "prod" }) }), { action: "deadLetter", reason: "InvalidMessage" }],
    ["revocation is checked before expiry", input({ isRevoked: () => true, msg: message({ expires: "2025-12-31T23:59:59Z" }) }), { action: "cancel", phase: "Cancelled" }],
  ];
  for (const [name, i, want] of cases) {
    it(name, () => assert.deepEqual(decision(i), want));
  }

  it("records an unparseable body under its Nats-Msg-Id, with the worker's queue", () => {
    const a = admit(input({ msg: "{nope", headers: { id: "t9", task: undefined } }));
    assert.ok("settle" in a && !("replay" in a.settle));
    const e = a.settle as Ending;
    assert.deepEqual(e.identity, { id: "t9", task: "unknown", queue: "q", namespace: "default", origin: { kind: "Client" } });
    assert.equal(e.error?.type, "InvalidMessage");
  });

  it("records nothing for a message whose id is not a task id", () => {
    const a = admit(input({ msg: message({ id: "no spaces allowed" }) }));
    assert.ok("settle" in a && !("replay" in a.settle));
    assert.equal((a.settle as Ending).identity, undefined);
  });

  it("records nothing for an envelope whose queue/namespace disagree with its subject, and says why", () => {
    const a = admit(input({ msg: message({ namespace: "prod" }), subject: "celeriac.default.q.tasks" }));
    assert.ok("settle" in a && !("replay" in a.settle));
    const e = a.settle as Ending;
    assert.equal(e.identity, undefined);
    assert.match(e.detail ?? "", /envelope queue\/namespace "prod\/q" does not match the subject it came on \(celeriac\.default\.q\.tasks\)/);
  });

  it("records the attempts actually made, and says the task killed its worker, when its last alone attempt's worker was lost", () => {
    const a = admit(input({ attempt: 6, previous: lostAlone }));
    assert.ok("settle" in a && !("replay" in a.settle));
    const e = a.settle as Ending;
    assert.equal(e.attempts, 3);
    assert.equal(e.error?.type, "WorkerLostError");
    assert.match(e.error?.message ?? "", /attempt 3 of 3 did not finish: its worker was lost while the task ran alone on it \(3 of 4 worker losses/);
    assert.deepEqual(e.trace, { count: 6, alone: true, workerLost: 4, workerLostAlone: 3, workerLostWaiting: 0 });
  });

  it("runs a redelivery whose worker was lost beside other tasks alone, with the same attempt number", () => {
    const a = admit(input({ attempt: 2, previous: finished("Running", 1, { count: 1, alone: false, workerLost: 0, workerLostAlone: 0 }) }));
    assert.ok("run" in a);
    assert.equal(a.run.attempt, 1);
    assert.equal(a.run.alone, true);
    assert.deepEqual(a.run.trace, { count: 2, alone: true, workerLost: 1, workerLostAlone: 0, workerLostWaiting: 0 });
  });

  it("dead-letters a task whose worker was lost beside others more than MAX_UNCOUNTED_WORKER_LOSSES times", () => {
    const a = admit(input({ attempt: 13, previous: finished("Running", 1, { count: 12, alone: false, workerLost: 10, workerLostAlone: 0 }) }));
    assert.ok("settle" in a && !("replay" in a.settle));
    assert.match((a.settle as Ending).error?.message ?? "", /its worker was lost 11 times \(11 while it ran beside other tasks, more than 10\)/);
  });

  it("runs an innocent task with maxAttempts 1 that was lost once beside a poison task and then 10 times while it waited to run alone", () => {
    // the new-user trial's case: without workerLostWaiting this was dead-lettered "lost 11 times (11 beside other tasks)"
    const a = admit(input({ attempt: 12, msg: message({ retry: { maxAttempts: 1, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 10, jitter: false } } }), previous: finished("Running", 1, { count: 1, alone: false, workerLost: 0, workerLostAlone: 0 }) }));
    assert.ok("run" in a, JSON.stringify(a));
    assert.equal(a.run.attempt, 1);
    assert.deepEqual(a.run.trace, { count: 12, alone: true, workerLost: 11, workerLostAlone: 0, workerLostWaiting: 10 });
  });

  it("dead-letters a task lost more than MAX_WAITING_WORKER_LOSSES times before it started, saying no task explains it", () => {
    const a = admit(input({ attempt: 103, previous: finished("Running", 1, { count: 1, alone: false, workerLost: 0, workerLostAlone: 0 }) }));
    assert.ok("settle" in a && !("replay" in a.settle));
    assert.match((a.settle as Ending).error?.message ?? "", /its worker was lost 102 times \(101 before it started, while it waited to run alone; more than 100\)/);
  });
});

describe("when recording an ending", () => {
  const now = new Date(NOW);
  const base = { identity: message(), task: "hello", attempts: 2, queuedTime: "2025-12-31T23:59:00Z" };
  const err = { type: "Error", message: "x" };
  const cases: [string, Ending, Record<string, unknown>][] = [
    ["succeed records the result", { ...base, outcome: { action: "succeed", phase: "Succeeded" }, startTime: "2025-12-31T23:59:58Z", result: 5 },
      { attempts: 2, queuedTime: base.queuedTime, worker: "w", phase: "Succeeded", startTime: "2025-12-31T23:59:58Z", completionTime: "2026-01-01T00:00:00.000Z", result: 5 }],
    ["an undefined result is recorded as null", { ...base, outcome: { action: "succeed", phase: "Succeeded" } },
      { attempts: 2, queuedTime: base.queuedTime, worker: "w", phase: "Succeeded", completionTime: "2026-01-01T00:00:00.000Z", result: null }],
    ["retry records the next attempt's time and no completion", { ...base, outcome: { action: "retry", delayMs: 1500 }, error: err },
      { attempts: 2, queuedTime: base.queuedTime, worker: "w", phase: "Retrying", nextRetryTime: "2026-01-01T00:00:01.500Z", error: err }],
    ["deadLetter records Failed and deadLettered", { ...base, outcome: { action: "deadLetter", reason: "Unrecoverable" }, error: err },
      { attempts: 2, queuedTime: base.queuedTime, worker: "w", phase: "Failed", completionTime: "2026-01-01T00:00:00.000Z", error: err, deadLettered: true }],
    ["cancel records Cancelled", { ...base, outcome: { action: "cancel", phase: "Cancelled" }, error: err },
      { attempts: 2, queuedTime: base.queuedTime, worker: "w", phase: "Cancelled", completionTime: "2026-01-01T00:00:00.000Z", error: err }],
    ["expire records Expired", { ...base, outcome: { action: "expire", phase: "Expired" }, error: err },
      { attempts: 2, queuedTime: base.queuedTime, worker: "w", phase: "Expired", completionTime: "2026-01-01T00:00:00.000Z", error: err }],
  ];
  for (const [name, e, want] of cases) {
    it(name, () => assert.deepEqual(endingStatus(e, "w", now), want));
  }
});
