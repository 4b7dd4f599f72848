import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueStatus } from "../../../api/queue.js";
import {
  KEDA_MISSING_MESSAGE,
  invalidSpecStatus,
  queueStatus,
  statusChanges,
  workersCondition,
  type QueueStatusInput,
  type StepCondition,
  type WorkersFacts,
} from "../../../operator/queue/queue-status.js";

const T0 = new Date("2026-01-01T00:00:00Z");
const T1 = new Date("2026-01-01T00:05:00Z");
const streamOk: StepCondition = { type: "StreamReady", status: "True", reason: "Reconciled", message: "stream S and consumers are in place" };
const streamBad: StepCondition = { type: "StreamReady", status: "False", reason: "StreamError", message: "create stream S: boom" };
const workersOk: StepCondition = { type: "WorkersReady", status: "True", reason: "WorkersAvailable", message: "2 of 2 workers ready" };
const workersBad: StepCondition = { type: "WorkersReady", status: "False", reason: "WorkersUnavailable", message: "0 of 2 workers ready" };

describe("workersCondition", () => {
  const base: WorkersFacts = { provider: "builtin", kedaMissing: false, suspended: false, desired: 2, ready: 1 };
  const cases: Array<[string, Partial<WorkersFacts>, Pick<StepCondition, "status" | "reason" | "message">]> = [
    ["when KEDA is missing", { provider: "keda", kedaMissing: true, suspended: true }, { status: "False", reason: "KedaNotInstalled", message: KEDA_MISSING_MESSAGE }],
    ["when suspended", { suspended: true, desired: 0 }, { status: "True", reason: "Suspended", message: "the queue is suspended: no workers run and tasks wait in the stream" }],
    ["when scaled to zero (builtin)", { desired: 0, ready: 0 }, { status: "True", reason: "ScaledToZero", message: "no backlog: workers are scaled to zero and start when tasks arrive" }],
    ["when scaled to zero (keda)", { provider: "keda", desired: 0, ready: 0 }, { status: "True", reason: "ScaledToZero", message: "KEDA scales the workers; none run now" }],
    ["when some workers are ready", {}, { status: "True", reason: "WorkersAvailable", message: "1 of 2 workers ready" }],
    ["when no worker is ready", { ready: 0 }, { status: "False", reason: "WorkersUnavailable", message: "0 of 2 workers ready" }],
  ];
  for (const [what, facts, want] of cases) {
    it(what, () => assert.deepEqual(workersCondition({ ...base, ...facts }), { type: "WorkersReady", ...want }));
  }
});

describe("queueStatus", () => {
  const input = (over: Partial<QueueStatusInput>): QueueStatusInput => ({
    current: undefined, generation: 3, now: T0, streamName: "S", stream: streamOk, workers: workersOk, suspended: false, replicas: 2, readyReplicas: 2, ...over,
  });
  const ready = (s: QueueStatus) => s.conditions?.find((c) => c.type === "Ready");
  const cases: Array<[string, Partial<QueueStatusInput>, { status: string; reason: string; message: string }]> = [
    ["when stream and workers are ready", {}, { status: "True", reason: "Reconciled", message: "the queue accepts and runs tasks" }],
    ["when suspended", { suspended: true }, { status: "True", reason: "Reconciled", message: "the queue is suspended" }],
    ["when the stream failed", { stream: streamBad }, { status: "False", reason: "StreamError", message: "waiting for the stream and workers" }],
    ["when the workers are not ready", { workers: workersBad }, { status: "False", reason: "WorkersUnavailable", message: "waiting for the stream and workers" }],
    ["when both failed", { stream: streamBad, workers: workersBad }, { status: "False", reason: "StreamError", message: "waiting for the stream and workers" }],
  ];
  for (const [what, over, want] of cases) {
    it(`sets Ready ${what}`, () => {
      const s = queueStatus(input(over));
      const r = ready(s)!;
      assert.deepEqual({ status: r.status, reason: r.reason, message: r.message }, want);
      assert.deepEqual(s.conditions?.map((c) => [c.type, c.observedGeneration, c.lastTransitionTime]), [
        ["StreamReady", 3, "2026-01-01T00:00:00Z"], ["WorkersReady", 3, "2026-01-01T00:00:00Z"], ["Ready", 3, "2026-01-01T00:00:00Z"],
      ]);
    });
  }

  it("writes only the reconcile's fields, lastScaleTime only when given", () => {
    assert.deepEqual(Object.keys(queueStatus(input({}))), ["conditions", "observedGeneration", "streamName", "replicas", "readyReplicas"]);
    assert.equal(queueStatus(input({ lastScaleTime: "2026-01-01T00:00:00Z" })).lastScaleTime, "2026-01-01T00:00:00Z");
  });

  it("keeps transition times when nothing flips, so the same world gives no change", () => {
    const first = queueStatus(input({}));
    const again = queueStatus(input({ current: { ...first, backlog: 7 }, now: T1 }));
    assert.deepEqual(again, first);
    assert.equal(statusChanges({ ...first, backlog: 7 }, again), undefined);
  });

  it("moves the transition time only of the condition that flips", () => {
    const first = queueStatus(input({}));
    const flipped = queueStatus(input({ current: first, now: T1, workers: workersBad }));
    assert.deepEqual(flipped.conditions?.map((c) => [c.type, c.status, c.lastTransitionTime]), [
      ["StreamReady", "True", "2026-01-01T00:00:00Z"], ["WorkersReady", "False", "2026-01-01T00:05:00Z"], ["Ready", "False", "2026-01-01T00:05:00Z"],
    ]);
  });
});

describe("invalidSpecStatus", () => {
  it("sets Ready False InvalidSpec and keeps the other conditions", () => {
    const before = queueStatus({ current: undefined, generation: 1, now: T0, streamName: "S", stream: streamOk, workers: workersOk, suspended: false, replicas: 1, readyReplicas: 1 });
    const s = invalidSpecStatus(before, 2, "spec.autoscaling.minReplicas (3) must not exceed maxReplicas (1)", T1);
    assert.deepEqual(s.conditions?.map((c) => [c.type, c.status, c.reason]), [["StreamReady", "True", "Reconciled"], ["WorkersReady", "True", "WorkersAvailable"], ["Ready", "False", "InvalidSpec"]]);
    assert.equal(s.observedGeneration, 2);
    assert.deepEqual(Object.keys(s), ["conditions", "observedGeneration"]);
  });
});

describe("statusChanges", () => {
  const cases: Array<[string, QueueStatus | undefined, QueueStatus, Partial<QueueStatus> | undefined]> = [
    ["when nothing changed", { backlog: 1, desiredReplicas: 2, replicas: 9 }, { backlog: 1, desiredReplicas: 2 }, undefined],
    ["when there was no status", undefined, { backlog: 0 }, { backlog: 0 }],
    ["when one field changed", { backlog: 1, inFlight: 0 }, { backlog: 2, inFlight: 0 }, { backlog: 2 }],
    ["when only key order differs", { conditions: [{ type: "A", status: "True", reason: "R", message: "m", lastTransitionTime: "t" }] }, { conditions: [{ lastTransitionTime: "t", message: "m", reason: "R", status: "True", type: "A" }] }, undefined],
    ["when a field is left out (never nulled)", { backlog: 1, lastScaleTime: "t" }, { backlog: 1 }, undefined],
  ];
  for (const [what, current, desired, want] of cases) it(what, () => assert.deepEqual(statusChanges(current, desired), want));
});
