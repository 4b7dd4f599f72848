/**
 * The worker's writes to Task resources end to end: a real nats-server, a worker with the Task
 * sink, and the in-memory API server holding the Tasks.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { defineTask, UnrecoverableError } from "../../worker/index.js";
import { TaskResourceSink } from "../../worker/task-resource-sink.js";
import { HEADERS, type TaskMessage, type TaskRecord } from "../../api/message.js";
import type { Task } from "../../api/objects.js";
import { TaskStatusSchema } from "../../api/task.js";
import { publishTaskMessage } from "../../nats/task-publish.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { capturingLogger, startTaskCluster, type TaskCluster } from "./cluster.js";
import { fixture, type Fixture } from "./fixture.js";

const NS = "default";
let n = 0;
const uniqueName = (p = "t") => `${p}-${Date.now().toString(36)}-${n++}`;

/** `<task id>/<step>`: when the "steps" handler reported it, and whether the test saw it. */
const stepAt = new Map<string, number>();
const stepSeen = new Set<string>();

const tasks = [
  defineTask("echo", (args) => args[0]),
  defineTask("flaky", (args, _k, ctx) => {
    if (ctx.attempt === 1) ctx.retry({ countdownSeconds: 0.2, message: "not yet" });
    return args[0];
  }),
  // reports 3 steps, each waiting until the test saw it on the Task (or 5 s)
  defineTask("steps", async (_a, _k, ctx) => {
    for (let i = 1; i <= 3; i++) {
      stepAt.set(`${ctx.taskId}/${i}`, Date.now());
      ctx.progress({ done: i, total: 3 }, { stage: `step-${i}` });
      const end = Date.now() + 5000;
      while (!stepSeen.has(`${ctx.taskId}/${i}`) && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    }
    return "done";
  }),
  defineTask("broken", () => {
    throw new UnrecoverableError("cannot do it");
  }),
];

describe("when a worker writes the status of Task resources", () => {
  let srv: NatsServer;
  let c: TaskCluster;
  let f: Fixture;
  const logged = capturingLogger();
  const message = (t: Task, task: string, args: unknown[], over: Partial<TaskMessage> = {}): TaskMessage => ({
    v: 1,
    id: t.metadata.uid ?? randomUUID(),
    task,
    args,
    kwargs: {},
    queue: f.queue,
    namespace: NS,
    origin: { kind: "Task", namespace: NS, name: t.metadata.name, uid: t.metadata.uid ?? "" },
    timeoutSeconds: 30,
    retry: { maxAttempts: 3, backoff: { initialSeconds: 0.1, factor: 1, maxSeconds: 0.1, jitter: false } },
    createdAt: new Date().toISOString(),
    ...over,
  });
  const publish = (m: TaskMessage) => publishTaskMessage(jetstream(f.nc), f.names, m);
  const kvRecord = async (id: string): Promise<TaskRecord | undefined> => {
    const kv = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    const e = await kv.get(id);
    return e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  };
  const finished = (name: string) => waitFor(`Task ${name} finished`, async () => {
    const t = await c.getTask(NS, name);
    return ["Succeeded", "Failed"].includes(t.status?.phase ?? "") ? t : undefined;
  });

  before(async () => {
    srv = await startNatsServer();
    c = await startTaskCluster();
    f = await fixture(srv, tasks);
    // the sink is built once the queue (and so its results bucket name) is known
    await f.startWorker({ runningRecordDelayMs: 0, logger: logged.log, extraSinks: [new TaskResourceSink(c.kc, f.names.resultsBucket, { namespace: NS, log: logged.log })] });
  });
  after(async () => {
    await f?.close();
    await c?.close();
    await srv?.cleanup();
  });

  it("makes status.result the stored result exactly, nulls kept, over every write of a retried task", async () => {
    const t = await c.createTask(NS, uniqueName(), { queue: f.queue, task: "flaky" });
    const result = { ratio: null, nested: { x: null, y: [null, 2] }, rows: [{ a: null }], ok: true };
    await publish(message(t, "flaky", [result]));
    const done = await finished(t.metadata.name);
    const rec = await kvRecord(t.metadata.uid ?? "");
    assert.equal(done.status?.phase, "Succeeded");
    assert.equal(done.status?.attempts, 2);
    assert.deepEqual(rec?.status.result, result);
    assert.deepEqual(done.status?.result, rec?.status.result);
    assert.equal(done.status?.error, undefined, "the retried attempt's error is gone");
    assert.equal(done.status?.nextRetryTime, undefined);
  });

  it("keeps startTime at the first attempt's start, records a Retrying Event with the error and the delay", async () => {
    const t = await c.createTask(NS, uniqueName(), { queue: f.queue, task: "flaky" });
    await publish(message(t, "flaky", ["x"]));
    const done = await finished(t.metadata.name);
    const rec = await kvRecord(t.metadata.uid ?? "");
    assert.ok(done.status?.startTime && rec?.status.startTime);
    assert.ok(Date.parse(done.status.startTime) < Date.parse(rec.status.startTime), `Task startTime ${done.status.startTime} is not before the last attempt's ${rec.status.startTime}`);
    const last = (done.status as Record<string, unknown>).lastAttemptStartTime;
    if ("lastAttemptStartTime" in TaskStatusSchema.properties) assert.equal(last, rec.status.startTime);
    const events = await waitFor("Retrying event", async () => {
      const es = (await c.events(NS)).filter((e) => (e.involvedObject as { uid?: string }).uid === t.metadata.uid);
      return es.some((e) => e.reason === "Retrying") ? es : undefined;
    });
    const retrying = events.find((e) => e.reason === "Retrying") as Record<string, unknown>;
    assert.equal(retrying.type, "Warning");
    assert.match(String(retrying.message), /^Attempt 1 failed: RetryError: not yet; retrying in 0\.2 s/);
    assert.equal(retrying.reportingComponent, "celeriac-worker");
    assert.deepEqual(retrying.source, { component: "celeriac-worker" });
    assert.deepEqual(retrying.involvedObject && { ...(retrying.involvedObject as object), resourceVersion: undefined }, { apiVersion: "celeriac.io/v1alpha1", kind: "Task", name: t.metadata.name, namespace: NS, uid: t.metadata.uid, resourceVersion: undefined });
  });

  it("records Expired on a Task whose message expired before it started", async () => {
    const t = await c.createTask(NS, uniqueName(), { queue: f.queue, task: "echo" });
    await publish(message(t, "echo", ["x"], { expires: new Date(Date.now() - 1000).toISOString() }));
    await waitFor("Expired", async () => (await c.getTask(NS, t.metadata.name)).status?.phase === "Expired");
    const es = await waitFor("Expired event", async () => {
      const found = (await c.events(NS)).filter((e) => (e.involvedObject as { uid?: string }).uid === t.metadata.uid && e.reason === "Expired");
      return found.length > 0 ? found : undefined;
    });
    assert.equal(es.length, 1);
  });

  describe("when a message names a finished Task it does not belong to", () => {
    it("stores its record in the results bucket but leaves the Task as it was, and warns", async () => {
      const t = await c.createTask(NS, uniqueName("thumb-cat"), { queue: f.queue, task: "echo" });
      await publish(message(t, "echo", [{ thumb: "cat.png" }]));
      const done = await finished(t.metadata.name);
      // the reported attack: origin names the Task, no uid, another id and result
      const rogue = message(t, "echo", [{ thumb: "evil.png", ratio: null }], { id: randomUUID(), origin: { kind: "Task", namespace: NS, name: t.metadata.name } });
      await publish(rogue);
      const rec = await waitFor("rogue record", () => kvRecord(rogue.id));
      assert.deepEqual(rec.status.result, { thumb: "evil.png", ratio: null });
      await waitFor("warning", () => logged.lines.find((l) => l.msg === "Task status not written" && l.taskId === rogue.id));
      const live = await c.getTask(NS, t.metadata.name);
      assert.deepEqual(live.status, done.status);
      assert.deepEqual(live.status?.result, { thumb: "cat.png" });
    });
  });

  describe("when an envelope's queue disagrees with the subject it came on", () => {
    it("dead-letters it as InvalidMessage with the reason, and records nothing", async () => {
      const t = await c.createTask(NS, uniqueName(), { queue: f.queue, task: "echo" });
      const m = message(t, "echo", ["x"], { queue: "another-queue" });
      await publish(m);
      const dead = await waitFor("dead letter", async () => {
        const info = await f.jsm.streams.info(f.names.deadLetterStream);
        for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
          const d = await f.jsm.streams.getMessage(f.names.deadLetterStream, { seq });
          if (d && (JSON.parse(new TextDecoder().decode(d.data)) as TaskMessage).id === m.id) return d;
        }
        return undefined;
      });
      assert.equal(dead.header.get(HEADERS.deadReason), "InvalidMessage");
      assert.match(dead.header.get(HEADERS.deadDetail), /envelope queue\/namespace "default\/another-queue" does not match the subject it came on/);
      assert.equal(await kvRecord(m.id), undefined);
      assert.equal((await c.getTask(NS, t.metadata.name)).status?.phase, "Queued");
    });
  });

  it("shows each ctx.progress report on status.progress within 1 s, and keeps the last in the final status", async () => {
    const t = await c.createTask(NS, uniqueName(), { queue: f.queue, task: "steps" });
    const id = t.metadata.uid ?? "";
    await publish(message(t, "steps", []));
    for (let i = 1; i <= 3; i++) {
      const live = await waitFor(`step ${i} on the Task`, async () => {
        const p = (await c.getTask(NS, t.metadata.name)).status?.progress;
        return p?.done !== undefined && p.done >= i ? p : undefined;
      }, 5000, 10);
      const lag = Date.now() - (stepAt.get(`${id}/${i}`) ?? 0);
      stepSeen.add(`${id}/${i}`);
      assert.deepEqual({ done: live.done, total: live.total, display: live.display, meta: live.meta }, { done: i, total: 3, display: `${i}/3`, meta: { stage: `step-${i}` } });
      assert.ok(lag < 1000, `step ${i} reached the Task ${lag} ms after it was reported`);
    }
    const done = await finished(t.metadata.name);
    assert.equal(done.status?.progress?.display, "3/3");
    assert.deepEqual(done.status?.progress, (await kvRecord(id))?.status.progress, "the Task's progress is the record's");
  });

  it("sets a Failed condition when the task fails", async () => {
    const t = await c.createTask(NS, uniqueName(), { queue: f.queue, task: "broken" });
    await publish(message(t, "broken", []));
    const done = await finished(t.metadata.name);
    assert.equal(done.status?.phase, "Failed");
    assert.equal(done.status?.conditions?.find((x) => x.type === "Failed")?.status, "True");
    const reasons = await waitFor("events", async () => {
      const rs = (await c.events(NS)).filter((e) => (e.involvedObject as { uid?: string }).uid === t.metadata.uid).map((e) => e.reason);
      return rs.includes("DeadLettered") ? rs : undefined;
    });
    assert.deepEqual(reasons.sort(), ["DeadLettered", "Failed"]);
  });
});
