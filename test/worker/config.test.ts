import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseWorkerConfig } from "../../worker/config.js";
import { parseJsonFlag } from "../../cli/commands/enqueue.js";
import { buildTaskMessage } from "../../client/index.js";
import { parseTaskMessage } from "../../api/message.js";
import { collectTasks, defineTask } from "../../worker/index.js";

describe("when parsing worker configuration", () => {
  it("uses the documented defaults", () => {
    const c = parseWorkerConfig({ tasks: "t.js", queue: "q" }, { POD_NAME: "pod-1" });
    assert.deepEqual(
      { ...c, nats: undefined },
      { tasks: "t.js", queue: "q", namespace: "default", concurrency: 4, port: 8080, ackWaitSeconds: 30, timeoutSeconds: 3600, gracePeriodSeconds: 25, workerName: "pod-1", logLevel: "info", nats: undefined },
    );
    assert.ok(Object.isFrozen(c));
  });
  it("reads every setting from CELERIAC_* when no flag is given, flags winning", () => {
    const env = { CELERIAC_TASKS: "e.js", CELERIAC_QUEUE: "eq", CELERIAC_NAMESPACE: "ns", CELERIAC_CONCURRENCY: "8", CELERIAC_PORT: "0", CELERIAC_ACK_WAIT_SECONDS: "5", CELERIAC_TIMEOUT_SECONDS: "60", CELERIAC_GRACE_PERIOD_SECONDS: "2.5", CELERIAC_WORKER_NAME: "w", CELERIAC_NATS_URL: "nats://e:1" };
    const c = parseWorkerConfig({ concurrency: "2" }, env);
    assert.equal(c.tasks, "e.js");
    assert.equal(c.namespace, "ns");
    assert.equal(c.concurrency, 2);
    assert.equal(c.port, 0);
    assert.equal(c.gracePeriodSeconds, 2.5);
    assert.equal(c.workerName, "w");
    assert.deepEqual(c.nats.servers, ["nats://e:1"]);
  });
  const bad: [string, Record<string, string>, RegExp][] = [
    ["missing tasks", { queue: "q" }, /--tasks \(or CELERIAC_TASKS\) is required/],
    ["missing queue", { tasks: "t" }, /--queue \(or CELERIAC_QUEUE\) is required/],
    ["bad concurrency", { tasks: "t", queue: "q", concurrency: "0" }, /--concurrency \(CELERIAC_CONCURRENCY\): "0" is not an integer ≥ 1/],
    ["bad queue name", { tasks: "t", queue: "Bad_Q" }, /queue "Bad_Q" is not a DNS-1123 label/],
  ];
  for (const [name, flags, re] of bad) it(`rejects ${name}, naming the flag`, () => assert.throws(() => parseWorkerConfig(flags, {}), re));
});

describe("when parsing celeriac enqueue JSON flags", () => {
  it("names the flag and the fix for bad JSON", () => {
    assert.throws(() => parseJsonFlag("--args", "[1,2"), /--args: "\[1,2" is not valid JSON .*quote it for the shell, e\.g\. --args '\[1, "two"\]'/);
  });
  it("requires an array for --args and an object for --kwargs", () => {
    assert.throws(() => parseJsonFlag("--args", "{}"), /--args must be a JSON array/);
    assert.throws(() => parseJsonFlag("--kwargs", "[]"), /--kwargs must be a JSON object/);
    assert.deepEqual(parseJsonFlag("--args", undefined), []);
  });
});

describe("when building a task message", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  const base = { queue: "q", namespace: "default" };
  it("builds a message the worker's parser accepts, with defaults resolved", () => {
    const m = buildTaskMessage("a.b", [1], { k: 2 }, { ...base, countdownSeconds: 10, expires: 60 }, now, () => "id-1");
    assert.equal(parseTaskMessage(JSON.stringify(m)).ok, true);
    assert.equal(m.eta, "2026-01-01T00:00:10.000Z");
    assert.equal(m.expires, "2026-01-01T00:01:00.000Z");
    assert.equal(m.timeoutSeconds, 3600);
    assert.deepEqual(m.retry, { maxAttempts: 3, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true } });
  });
  const bad: [string, () => unknown, RegExp][] = [
    ["countdown and eta together", () => buildTaskMessage("t", [], {}, { ...base, countdownSeconds: 1, eta: now }, now), /exclusive/],
    ["a task id with dots", () => buildTaskMessage("t", [], {}, { ...base, taskId: "a.b" }, now), /taskId "a.b" is invalid/],
    ["a bad eta", () => buildTaskMessage("t", [], {}, { ...base, eta: "tomorrow" }, now), /eta: "tomorrow" is not a date/],
    ["oversized args", () => buildTaskMessage("t", ["x".repeat(300_000)], {}, base, now), /at most 262144/],
  ];
  for (const [name, fn, re] of bad) it(`rejects ${name}`, () => assert.throws(fn, re));
});

describe("when collecting tasks from a module", () => {
  it("registers every defineTask export and rejects duplicates and empty modules", () => {
    const a = defineTask("a", () => 1);
    assert.deepEqual([...collectTasks({ a, other: 3, list: [defineTask("b", () => 2)] }).keys()], ["a", "b"]);
    assert.throws(() => collectTasks({ a, a2: defineTask("a", () => 2) }), /task "a" is defined twice/);
    assert.throws(() => collectTasks({ x: 1 }), /exports no task/);
    assert.throws(() => defineTask("bad name", () => 1), /task name "bad name" is invalid/);
  });
});
