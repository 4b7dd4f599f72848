import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TaskResourceSink, formatDuration, taskEvents, taskStatusApply } from "../../worker/task-resource-sink.js";
import { taskRecord, type TaskRecord } from "../../api/message.js";
import { TaskStatusSchema, type TaskStatus } from "../../api/task.js";
import type { Task } from "../../api/objects.js";
import { capturingLogger, startTaskCluster, type TaskCluster } from "./cluster.js";

const NS = "default";
let n = 0;
const uniqueName = () => `t-${Date.now().toString(36)}-${n++}`;

const record = (task: Task, status: TaskStatus, origin: Partial<TaskRecord["origin"]> = {}): TaskRecord =>
  taskRecord(
    { id: task.metadata.uid ?? "x", task: "hello", queue: "q", namespace: NS, origin: { kind: "Task", namespace: task.metadata.namespace ?? NS, name: task.metadata.name, uid: task.metadata.uid ?? "", ...origin } },
    status,
  );

const succeeded = (result: unknown): TaskStatus => ({ phase: "Succeeded", attempts: 1, worker: "w", startTime: "2026-01-01T00:00:01Z", completionTime: "2026-01-01T00:00:02Z", result });

describe("when the worker writes a Task's status", () => {
  let c: TaskCluster;
  let sink: TaskResourceSink;
  const logged = capturingLogger();
  before(async () => {
    c = await startTaskCluster();
    sink = new TaskResourceSink(c.kc, "KV_q", { namespace: NS, log: logged.log });
  });
  after(async () => c?.close());

  it("applies its own fields and conditions under celeriac-worker and leaves the operator's Accepted alone", async () => {
    const t = await c.createTask(NS, uniqueName());
    await sink.write(record(t, { phase: "Running", attempts: 1, worker: "w", startTime: "2026-01-01T00:00:01Z" }));
    await sink.write(record(t, { phase: "Retrying", attempts: 1, worker: "w", startTime: "2026-01-01T00:00:01Z", nextRetryTime: "2026-01-01T00:00:09Z", error: { type: "Error", message: "boom" } }));
    await sink.write(record(t, { phase: "Running", attempts: 2, worker: "w", startTime: "2026-01-01T00:00:10Z" }));
    const live = await c.getTask(NS, t.metadata.name);
    assert.equal(live.status?.phase, "Running");
    assert.equal(live.status?.nextRetryTime, undefined, "a field the worker left out is removed");
    assert.equal(live.status?.error, undefined);
    assert.deepEqual(live.status?.conditions?.map((x) => [x.type, x.status]), [["Accepted", "True"], ["Running", "True"]]);
    assert.equal(live.status?.startTime, "2026-01-01T00:00:01Z", "startTime is the first attempt's");
    const managers = (live.metadata.managedFields as { manager: string; operation: string; subresource?: string }[]).map((m) => `${m.manager}/${m.operation}/${m.subresource ?? ""}`);
    assert.ok(managers.includes("celeriac-worker/Apply/status"), managers.join(", "));
    assert.ok(managers.includes("celeriac-operator/Apply/status"), managers.join(", "));
  });

  it("sets a Failed condition on a final failure", async () => {
    const t = await c.createTask(NS, uniqueName());
    await sink.write(record(t, { phase: "Failed", attempts: 3, worker: "w", completionTime: "2026-01-01T00:00:02Z", error: { type: "Error", message: "boom" }, deadLettered: true }));
    const live = await c.getTask(NS, t.metadata.name);
    const failed = live.status?.conditions?.find((x) => x.type === "Failed");
    assert.equal(failed?.status, "True");
    assert.equal(failed?.reason, "HandlerFailed");
    assert.equal(live.status?.conditions?.find((x) => x.type === "Succeeded")?.status, "False");
  });

  describe("when the result holds nulls and an earlier write left other keys", () => {
    it("makes status.result exactly the stored result: nulls kept, nothing merged in", async () => {
      const t = await c.createTask(NS, uniqueName());
      // an earlier write of this Task's status with a result of other keys
      await sink.write(record(t, { phase: "Running", attempts: 1, worker: "w", result: { old: 1, ratio: 0.5, nested: { x: 1, z: 2 } } }));
      const result = { ratio: null, nested: { x: null, y: [null, 1] }, list: [{ a: null }], s: "ok" };
      const rec = record(t, succeeded(result));
      await sink.write(rec);
      const live = await c.getTask(NS, t.metadata.name);
      assert.deepEqual(live.status?.result, rec.status.result);
    });

    const nullable = (TaskStatusSchema.properties.result as { nullable?: boolean }).nullable === true;
    it("records a null result as null", { skip: nullable ? false : "needs `nullable: true` on status.result in api/task.ts (else the API server prunes a null)" }, async () => {
      const t = await c.createTask(NS, uniqueName());
      await sink.write(record(t, succeeded(null)));
      const live = await c.getTask(NS, t.metadata.name);
      assert.ok(live.status && "result" in live.status);
      assert.equal(live.status.result, null);
    });
  });

  describe("when the message does not belong to the Task", () => {
    const cases: [string, (t: Task) => Partial<TaskRecord["origin"]>, RegExp][] = [
      ["an origin without a uid", () => ({ uid: undefined }), /without a uid/],
      ["an origin with another uid", () => ({ uid: "00000000-0000-0000-0000-000000000000" }), /is not the Task's uid/],
    ];
    for (const [what, origin, reason] of cases) {
      it(`writes nothing for ${what}, and logs why`, async () => {
        const t = await c.createTask(NS, uniqueName());
        const before = await c.getTask(NS, t.metadata.name);
        await sink.write(record(t, succeeded({ evil: true }), origin(t)));
        const live = await c.getTask(NS, t.metadata.name);
        assert.deepEqual(live.status, before.status);
        const warn = logged.lines.find((l) => l.msg === "Task status not written" && l.task === `${NS}/${t.metadata.name}`);
        assert.match(String(warn?.reason), reason);
      });
    }

    it("writes nothing to a Task outside the worker's namespace", async () => {
      await c.createTask("kube-system", "alien").catch(() => undefined);
      const t = await c.getTask("kube-system", "alien");
      const before = t.status;
      await sink.write(record(t, succeeded({ evil: true })));
      assert.deepEqual((await c.getTask("kube-system", "alien")).status, before);
      assert.ok(logged.lines.some((l) => l.msg === "Task status not written" && /not the worker's namespace/.test(String(l.reason))));
    });
  });

  describe("when the Task already finished", () => {
    it("never changes its status again; a replay of the same record is silent", async () => {
      const t = await c.createTask(NS, uniqueName());
      const first = record(t, succeeded({ thumb: "cat.png" }));
      await sink.write(first);
      const done = await c.getTask(NS, t.metadata.name);
      const warnings = () => logged.lines.filter((l) => l.msg === "Task status not written" && l.task === `${NS}/${t.metadata.name}`).length;
      await sink.write(first);
      assert.equal(warnings(), 0, "a replay is not a warning");
      await sink.write(record(t, { phase: "Failed", attempts: 2, worker: "w2", error: { type: "Error", message: "late" } }));
      await sink.write(record(t, { phase: "Running", attempts: 2, worker: "w2" }));
      const live = await c.getTask(NS, t.metadata.name);
      assert.deepEqual(live.status, done.status);
      assert.equal(live.metadata.resourceVersion, done.metadata.resourceVersion);
      assert.equal(warnings(), 2);
    });
  });
});

describe("when deciding a Task's Events from a record", () => {
  const rec = (status: TaskStatus): TaskRecord => ({ id: "t", task: "hello", queue: "q", namespace: NS, origin: { kind: "Task" }, status, updatedAt: "2026-01-01T00:00:00.000Z" });
  const err = { type: "Error", message: "boom" };
  const cases: [string, TaskStatus, [string, string][]][] = [
    ["Running records none", { phase: "Running", attempts: 1 }, []],
    ["Succeeded records none", { phase: "Succeeded", attempts: 1, result: 1 }, []],
    ["Retrying records Retrying", { phase: "Retrying", attempts: 1, error: err, nextRetryTime: "2026-01-01T00:00:02.500Z" }, [["Warning", "Retrying"]]],
    ["a dead-lettered failure records Failed and DeadLettered", { phase: "Failed", attempts: 3, error: err, deadLettered: true }, [["Warning", "Failed"], ["Warning", "DeadLettered"]]],
    ["Expired records Expired", { phase: "Expired", error: { type: "ExpiredError", message: "late" } }, [["Warning", "Expired"]]],
    ["Cancelled records Cancelled", { phase: "Cancelled", error: { type: "CancelledError", message: "revoked before it started" } }, [["Normal", "Cancelled"]]],
  ];
  for (const [name, status, want] of cases) it(name, () => assert.deepEqual(taskEvents(rec(status)).map((e) => [e.type, e.reason]), want));

  it("says the error and the delay of a retry", () => {
    const [e] = taskEvents(rec({ phase: "Retrying", attempts: 2, error: err, nextRetryTime: "2026-01-01T00:00:02.500Z" }));
    assert.equal(e?.message, "Attempt 2 failed: Error: boom; retrying in 2.5 s (at 2026-01-01T00:00:02.500Z)");
  });
});

describe("when a finished Task's duration is shown", () => {
  const table: Array<[number, string]> = [[-5, "0s"], [0, "0s"], [850, "850ms"], [1500, "1.5s"], [12_340, "12.3s"], [123_000, "2m3s"], [3_720_000, "1h2m"]];
  for (const [ms, text] of table) it(`prints ${ms} ms as ${text}`, () => assert.equal(formatDuration(ms), text));

  it("writes duration from the first attempt's start to completion, only when the task is finished", () => {
    const live: TaskStatus = { startTime: "2026-01-01T00:00:00Z" };
    const status = (phase: TaskStatus["phase"], extra: Partial<TaskStatus> = {}) =>
      taskStatusApply(taskRecord({ id: "t1", task: "demo.add", queue: "default", namespace: "default", origin: { kind: "Client" } }, { phase, attempts: 2, startTime: "2026-01-01T00:00:05Z", ...extra }), { bucket: "b", live, lastAttemptStartTime: true, now: new Date("2026-01-01T00:00:10Z") });
    assert.equal(status("Running").duration, undefined);
    const done = status("Succeeded", { completionTime: "2026-01-01T00:00:07.5Z" });
    assert.equal(done.startTime, "2026-01-01T00:00:00Z", "startTime stays the first attempt's");
    assert.equal(done.lastAttemptStartTime, "2026-01-01T00:00:05Z");
    assert.equal(done.duration, "7.5s");
  });
});
