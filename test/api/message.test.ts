import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseTaskMessage, taskRecord, TaskRecordSchema, type TaskMessage } from "../../api/message.js";
import { newTaskMessage } from "../../api/task-message.js";
import { validateValue, type JSONSchemaProps } from "../../api/validation.js";
import { queueNames } from "../../api/naming.js";
import { setCondition } from "../../api/conditions.js";
import { resolveRetryPolicy } from "../../api/policies.js";

const good: TaskMessage = {
  v: 1, id: "0b7c", task: "reports.generate", args: [1], kwargs: {}, queue: "default", namespace: "default",
  origin: { kind: "Client" }, timeoutSeconds: 60,
  retry: { maxAttempts: 3, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true } },
  createdAt: "2026-11-23T10:00:00Z",
};

describe("when a task message is parsed", () => {
  it("accepts a valid envelope", () => {
    const r = parseTaskMessage(JSON.stringify(good));
    assert.equal(r.ok, true);
  });
  const bad: Array<[string, unknown, string]> = [
    ["not JSON", "{", "body is not JSON"],
    ["missing task", { ...good, task: undefined }, "task: Required value"],
    ["another version", { ...good, v: 2 }, "v: Unsupported value: 2"],
    ["bad eta", { ...good, eta: "later" }, "eta: Invalid value"],
    ["args not array", { ...good, args: "x" }, "args: Invalid value"],
  ];
  for (const [name, body, reason] of bad) {
    it(`rejects ${name} with a reason naming the field`, () => {
      const r = parseTaskMessage(typeof body === "string" ? body : JSON.stringify(body));
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.reason.includes(reason), !r.ok ? r.reason : "");
    });
  }
});

describe("when a results-bucket record is checked against TaskRecordSchema", () => {
  const base = taskRecord(good, { phase: "Running", attempts: 1 }, "2026-11-23T10:00:01Z");
  const check = (v: unknown) => validateValue(TaskRecordSchema as unknown as JSONSchemaProps, v).map((c) => `${c.field}: ${c.message}`);
  it("accepts a record without a delivery trace (revokeTask's, older workers')", () => {
    assert.deepEqual(check(base), []);
  });
  it("accepts a worker's record with its delivery trace", () => {
    assert.deepEqual(check({ ...base, delivery: { count: 3, alone: true, workerLost: 2, workerLostAlone: 1 } }), []);
  });
  it("names the field of a bad delivery trace", () => {
    const causes = check({ ...base, delivery: { count: 0, alone: "yes", workerLost: 0, workerLostAlone: 0 } });
    assert.ok(causes.some((c) => c.includes("delivery.count")) && causes.some((c) => c.includes("delivery.alone")), causes.join("; "));
  });
});

describe("when NATS names are derived for a queue", () => {
  it("keeps namespace and queue apart", () => {
    assert.notEqual(queueNames("a-b", "c").stream, queueNames("a", "b-c").stream);
    assert.equal(queueNames("default", "emails").taskSubject, "celeriac.default.emails.tasks");
  });
  it("rejects names that are not DNS-1123 labels, naming the field", () => {
    assert.throws(() => queueNames("default", "My.Queue"), /queue "My.Queue" is not a DNS-1123 label/);
  });
});

describe("when a condition is set", () => {
  const t0 = new Date("2026-11-23T10:00:00Z");
  const t1 = new Date("2026-11-23T11:00:00Z");
  it("keeps lastTransitionTime when the status does not flip", () => {
    const a = setCondition(undefined, { type: "Ready", status: "True", reason: "A", message: "a" }, t0);
    const b = setCondition(a, { type: "Ready", status: "True", reason: "B", message: "b" }, t1);
    assert.equal(b[0]!.lastTransitionTime, "2026-11-23T10:00:00Z");
    assert.equal(b[0]!.reason, "B");
  });
  it("moves lastTransitionTime on a flip and keeps one entry per type", () => {
    const a = setCondition(undefined, { type: "Ready", status: "True", reason: "A", message: "a" }, t0);
    const b = setCondition(a, { type: "Ready", status: "False", reason: "B", message: "b" }, t1);
    assert.equal(b.length, 1);
    assert.equal(b[0]!.lastTransitionTime, "2026-11-23T11:00:00Z");
  });
});

describe("when a retry policy is resolved", () => {
  it("takes each field from the task, else the queue, else the default", () => {
    assert.deepEqual(resolveRetryPolicy({ maxAttempts: 5 }, { maxAttempts: 2, backoff: { factor: 3 } }), {
      maxAttempts: 5, backoff: { initialSeconds: 1, factor: 3, maxSeconds: 600, jitter: true },
    });
  });
});

describe("when a task message carries a unique key", () => {
  const input = { id: "u1", task: "reports.generate", queue: "default", namespace: "default", origin: { kind: "Client" as const } };
  it("passes it through newTaskMessage and validates it in parseTaskMessage", () => {
    const m = newTaskMessage({ ...input, unique: { key: "report:2026-11", policy: "Wait" } }, new Date("2026-11-23T10:00:00Z"));
    assert.deepEqual(m.unique, { key: "report:2026-11", policy: "Wait" });
    assert.equal(parseTaskMessage(JSON.stringify(m)).ok, true);
    assert.equal(newTaskMessage(input, new Date()).unique, undefined);
  });
  it("refuses a bad key or policy, naming the field", () => {
    const bad: [unknown, string][] = [
      [{ key: "", policy: "Reject" }, "unique.key"],
      [{ key: " padded ", policy: "Reject" }, "unique.key"],
      [{ key: "x".repeat(129), policy: "Reject" }, "unique.key"],
      [{ key: "ok", policy: "Sometimes" }, "unique.policy"],
    ];
    for (const [unique, field] of bad) {
      assert.throws(() => newTaskMessage({ ...input, unique } as Parameters<typeof newTaskMessage>[0], new Date()), (err: Error & { field?: string }) => err.field === field, JSON.stringify(unique));
    }
    const r = parseTaskMessage(JSON.stringify({ ...good, unique: { key: "k", policy: "Sometimes" } }));
    assert.ok(!r.ok && r.reason.includes("unique.policy"), !r.ok ? r.reason : "accepted");
    const noPolicy = parseTaskMessage(JSON.stringify({ ...good, unique: { key: "k" } }));
    assert.equal(noPolicy.ok, false, "a unique without its resolved policy was accepted");
  });
});

describe("when newTaskMessage is given options a worker would refuse", () => {
  const input = { id: "o1", task: "reports.generate", queue: "default", namespace: "default", origin: { kind: "Client" as const } };
  it("refuses them, naming the field, instead of publishing a message the worker dead-letters", () => {
    const bad: [Partial<Parameters<typeof newTaskMessage>[0]>, string][] = [
      [{ timeoutSeconds: 0 }, "timeoutSeconds"],
      [{ timeoutSeconds: 2.5 }, "timeoutSeconds"],
      [{ retry: { maxAttempts: 0 } }, "retry.maxAttempts"],
      [{ retry: { maxAtempts: 5 } as never }, "retry.maxAtempts"],
      [{ retry: { backoff: { initalSeconds: 1 } } as never }, "retry.backoff.initalSeconds"],
      [{ expiresSeconds: -1 }, "expires"],
    ];
    for (const [o, field] of bad) {
      assert.throws(() => newTaskMessage({ ...input, ...o }, new Date()), (err: Error & { field?: string }) => err.field === field && err.message.startsWith(`${field}: `), JSON.stringify(o));
    }
    // what it builds, the worker's parse accepts
    const m = newTaskMessage({ ...input, timeoutSeconds: 1, retry: { maxAttempts: 1000, backoff: { initialSeconds: 0, factor: 1, maxSeconds: 0, jitter: false } } }, new Date());
    assert.equal(parseTaskMessage(JSON.stringify(m)).ok, true);
  });
});
