import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../../worker/index.js";
import { TaskFailedError } from "../../client/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const runs = new Map<string, number>();
const startedAt = new Map<string, number>();
const runningBy = new Map<string, number>();
let maxRunning = 0;
const byWorker = new Map<string, number>();

const tasks = [
  defineTask("count", (_a, _k, ctx) => {
    runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
    startedAt.set(ctx.taskId, Date.now());
    return ctx.attempt;
  }),
  defineTask("long", async (args, _k, ctx) => {
    runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
    await sleep(Number(args[0]), undefined, { signal: ctx.signal });
    return "done";
  }),
  defineTask("ignores.signal", async (args, _k, ctx) => {
    runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
    await sleep(Number(args[0])); // no signal: keeps running after the timeout
    return "late";
  }),
  defineTask("busy", async (args, _k, ctx) => {
    runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
    const w = ctx.log.bindings().worker as string;
    runningBy.set(w, (runningBy.get(w) ?? 0) + 1);
    maxRunning = Math.max(maxRunning, runningBy.get(w)!);
    const who = String(args[1]);
    try {
      await sleep(Number(args[0]));
    } finally {
      runningBy.set(w, runningBy.get(w)! - 1);
    }
    byWorker.set(ctx.log.bindings().worker as string, (byWorker.get(ctx.log.bindings().worker as string) ?? 0) + 1);
    return who;
  }),
];

const noRetry = { maxAttempts: 1 };

describe("when tasks need heartbeats, timeouts, delays, expiry and revocation", () => {
  let srv: NatsServer;
  let f: Fixture;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { settings: { ackWaitSeconds: 1 } });
    await f.startWorker({ workerName: "w1", concurrency: 4 });
    await f.startWorker({ workerName: "w2", concurrency: 4 });
  });
  after(async () => {
    await f.close();
    await srv.cleanup();
  });

  it("heartbeats a task running several ack waits so it is never redelivered", async () => {
    const h = await f.client.enqueue("long", [3500], {}, { retry: noRetry });
    assert.equal(await h.result({ timeoutMs: 10_000 }), "done");
    assert.equal(runs.get(h.id), 1);
    assert.equal((await h.status())?.attempts, 1);
  });

  it("aborts the signal at the time limit and dead-letters a timed-out task with no attempts left", async () => {
    const t0 = Date.now();
    const h = await f.client.enqueue("long", [10_000], {}, { timeoutSeconds: 1, retry: noRetry });
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.type, "TimeoutError");
    assert.equal(err.record.status.deadLettered, true);
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
  });

  it("fails a handler that ignores its signal at deadline + grace and frees its slot", async () => {
    const t0 = Date.now();
    const h = await f.client.enqueue("ignores.signal", [6000], {}, { timeoutSeconds: 1, retry: noRetry });
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    const took = Date.now() - t0;
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.type, "TimeoutError");
    // timeout 1 s + abort grace 1 s, long before the handler's 6 s
    assert.ok(took >= 1900 && took < 4000, `took ${took} ms`);
    await waitFor("slot freed", () => f.workers.every((w) => w.inFlight === 0), 2000);
  });

  it("runs a countdown task when due, within 1 s, without dedupe dropping the move", async () => {
    const t0 = Date.now();
    const h = await f.client.enqueue("count", [], {}, { countdownSeconds: 1.5 });
    assert.equal(await h.result({ timeoutMs: 10_000 }), 1);
    const late = startedAt.get(h.id)! - (t0 + 1500);
    assert.ok(late >= -5 && late < 1000, `started ${late} ms after due`);
  });

  it("runs an eta task when due, within 1 s", async () => {
    const eta = new Date(Date.now() + 1200);
    const h = await f.client.enqueue("count", [], {}, { eta });
    await h.result({ timeoutMs: 10_000 });
    const late = startedAt.get(h.id)! - eta.getTime();
    assert.ok(late >= -5 && late < 1000, `started ${late} ms after due`);
  });

  it("does not run a task that starts after it expired, and records Expired", async () => {
    const h = await f.client.enqueue("count", [], {}, { countdownSeconds: 1, expires: 0.3 });
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.phase, "Expired");
    assert.equal(runs.get(h.id), undefined);
  });

  it("never runs a revoked task that has not started", async () => {
    const h = await f.client.enqueue("count", [], {}, { countdownSeconds: 1 });
    await h.revoke();
    assert.equal((await h.status())?.phase, "Cancelled");
    await sleep(1800); // past its due time: the worker sees it and must skip it
    assert.equal(runs.get(h.id), undefined);
    assert.equal((await h.status())?.phase, "Cancelled");
  });

  it("aborts a running revoked task within 1 s and records Cancelled", async () => {
    const h = await f.client.enqueue("long", [20_000], {}, { retry: noRetry });
    await waitFor("running", () => runs.get(h.id) === 1);
    const t0 = Date.now();
    await h.revoke();
    const err = await h.result({ timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.phase, "Cancelled");
    assert.ok(Date.now() - t0 < 1000, `cancel took ${Date.now() - t0} ms`);
  });

  it("runs a task once when the same taskId is enqueued twice within the duplicate window", async () => {
    const taskId = `dup-${Date.now()}`;
    const a = await f.client.enqueue("count", [], {}, { taskId });
    const b = await f.client.enqueue("count", [], {}, { taskId });
    assert.equal(await a.result({ timeoutMs: 5000 }), 1);
    await b.result({ timeoutMs: 5000 });
    const c = await f.client.enqueue("count", [], {}, { taskId });
    await sleep(500);
    assert.equal(runs.get(taskId), 1);
    void c;
  });

  it("resolves result() as soon as the record is written, waiting by watch", async () => {
    const h = await f.client.enqueue("long", [400], {});
    const t0 = Date.now();
    const waiting = h.result({ timeoutMs: 5000 });
    assert.equal(await waiting, "done");
    assert.ok(Date.now() - t0 < 1000);
  });

  it("keeps at most `concurrency` handlers per worker, and shared-consumer workers run each task once", async () => {
    maxRunning = 0;
    byWorker.clear();
    const hs = await Promise.all(Array.from({ length: 24 }, (_, i) => f.client.enqueue("busy", [150, i])));
    await Promise.all(hs.map((h) => h.result({ timeoutMs: 15_000 })));
    for (const h of hs) assert.equal(runs.get(h.id), 1);
    assert.equal(maxRunning, 4, `max ${maxRunning} running in one worker (concurrency 4)`);
    assert.deepEqual([...byWorker.keys()].sort(), ["w1", "w2"]);
  });
});

describe("when a task is revoked before any worker is running", () => {
  let srv: NatsServer;
  let f: Fixture;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks);
  });
  after(async () => {
    await f.close();
    await srv.cleanup();
  });

  it("a worker started later never runs it", async () => {
    const h = await f.client.enqueue("count", []);
    const other = await f.client.enqueue("count", []);
    await h.revoke();
    await f.startWorker();
    assert.equal(await other.result({ timeoutMs: 5000 }), 1);
    assert.equal((await h.status())?.phase, "Cancelled");
    assert.equal(runs.get(h.id), undefined);
  });
});
