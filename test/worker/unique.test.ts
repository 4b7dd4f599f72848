/**
 * Singleton tasks end to end on a real nats-server: producers claim the key (nats/unique.ts
 * `claimUnique`) and publish, workers check the lock before running and release it at the final
 * settle. The same key enqueued 10 times while the first runs, per policy; a holder whose worker
 * process is SIGKILLed; and the pure worker-side rules (wait delay, waiting ending, attribution).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { UniquePolicy } from "../../api/flow.js";
import { newTaskMessage } from "../../api/task-message.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import type { TaskRecord } from "../../api/message.js";
import { ensureQueueResources, publishTaskMessage, queueSettings } from "../../nats/index.js";
import { claimUnique, confirmUnique, uniqueLockKey, type ClaimOutcome } from "../../nats/unique.js";
import { defineTask } from "../../worker/index.js";
import { uniqueWaitDelayMs, uniqueWaiting, type Admitted } from "../../worker/admission.js";
import { attributeDelivery, type TracedRecord } from "../../worker/attribution.js";
import { endingStatus } from "../../worker/settle.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";
import { events, startWorkerChild, workerStarted, type WorkerChild } from "./child.js";

/** One execution of the handler: task id, attempt, start and end (ms since the epoch). */
interface Execution {
  id: string;
  attempt: number;
  start: number;
  end: number;
}
const executions: Execution[] = [];
const tasks = [
  defineTask("u.run", async (args, _k, ctx) => {
    const start = Date.now();
    await new Promise((r) => setTimeout(r, Number(args[0])));
    executions.push({ id: ctx.taskId, attempt: ctx.attempt, start, end: Date.now() });
    return ctx.taskId;
  }),
];

/** A producer: builds the message, claims its key, publishes unless rejected and confirms (what the client does). */
async function enqueue(js: JetStreamClient, kv: KV, names: QueueNames, id: string, key: string, policy: UniquePolicy, runMs: number, task = "u.run"): Promise<ClaimOutcome> {
  const msg = newTaskMessage({ id, task, args: [runMs], queue: names.queue, namespace: names.namespace, origin: { kind: "Client" }, unique: { key, policy }, retry: { maxAttempts: 1 } }, new Date());
  const out = await claimUnique(kv, msg, msg.unique!);
  if (out.outcome !== "rejected") {
    await publishTaskMessage(js, names, msg);
    await confirmUnique(kv, msg);
  }
  return out;
}

const record = async (kv: KV, id: string): Promise<TaskRecord | undefined> => {
  const e = await kv.get(id);
  return e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
};

/** Asserts that no two executions overlap in time. */
function assertOneAtATime(runs: Execution[]): void {
  const sorted = [...runs].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    assert.ok(sorted[i]!.start >= sorted[i - 1]!.end, `${sorted[i]!.id} started at ${sorted[i]!.start} before ${sorted[i - 1]!.id} ended at ${sorted[i - 1]!.end}`);
  }
}

describe("when the same unique key is enqueued 10 times while the first task runs", () => {
  let srv: NatsServer;
  let f: Fixture;
  let js: JetStreamClient;
  let kv: KV;
  const ids = (p: string) => Array.from({ length: 10 }, (_, i) => `${p}-${i}-${Math.random().toString(36).slice(2, 8)}`);
  const runsOf = (all: string[]) => executions.filter((e) => all.includes(e.id));
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks);
    // two workers of 4 slots: without the lock, up to 8 of the tasks would run at once
    await f.startWorker({ concurrency: 4 });
    await f.startWorker({ concurrency: 4 });
    js = jetstream(f.nc);
    kv = await new Kvm(js).open(f.names.resultsBucket);
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  /** Enqueues the first, waits until it runs (its Running record), then enqueues the other 9 at once. */
  async function scenario(policy: UniquePolicy, all: string[], firstMs: number, restMs: number): Promise<ClaimOutcome[]> {
    const key = `report-${policy}`;
    assert.deepEqual(await enqueue(js, kv, f.names, all[0]!, key, policy, firstMs), { outcome: "claimed" });
    await waitFor("the first task running", async () => (await record(kv, all[0]!))?.status.phase === "Running", 10_000);
    return Promise.all(all.slice(1).map((id) => enqueue(js, kv, f.names, id, key, policy, restMs)));
  }

  it("Reject: the 9 are refused naming the holder; only the first runs; the lock is gone after it", async () => {
    const all = ids("rej");
    const out = await scenario("Reject", all, 800, 100);
    assert.deepEqual(out, all.slice(1).map(() => ({ outcome: "rejected", holder: all[0] })));
    await waitFor("the first succeeded", async () => (await record(kv, all[0]!))?.status.phase === "Succeeded", 15_000);
    await waitFor("the lock released", async () => (await kv.get(uniqueLockKey("report-Reject")))?.operation !== "PUT", 5000);
    assert.deepEqual(runsOf(all).map((e) => e.id), [all[0]]);
  });

  it("Replace: each queued task is replaced by the next; only the first and the last run, one after the other", async () => {
    const all = ids("rep");
    const out = await scenario("Replace", all, 1500, 100);
    // the first runs, so no claim replaces it: each claim either queued itself behind it (wait) or
    // replaced the one queued before (concurrent claims: in whatever order their writes landed)
    const replaced = out.flatMap((o) => (o.outcome === "replaced" ? [o.holder] : []));
    assert.equal(out.filter((o) => o.outcome === "wait").length, 1, JSON.stringify(out));
    assert.equal(replaced.length, 8, JSON.stringify(out));
    assert.ok(!replaced.includes(all[0]!), "the running task was replaced");
    const survivors = all.slice(1).filter((id) => !replaced.includes(id));
    assert.equal(survivors.length, 1, `survivors ${survivors.join(", ")}`);
    const last = survivors[0]!;
    await waitFor("all 10 finished", async () => (await Promise.all(all.map((id) => record(kv, id)))).every((r) => r && ["Succeeded", "Cancelled"].includes(r.status.phase ?? "")), 30_000);
    for (const id of replaced) assert.equal((await record(kv, id))?.status.phase, "Cancelled", id);
    assert.equal((await record(kv, last))?.status.phase, "Succeeded");
    const runs = runsOf(all);
    assert.deepEqual(runs.map((e) => e.id), [all[0], last]);
    assertOneAtATime(runs);
    await waitFor("the lock released", async () => (await kv.get(uniqueLockKey("report-Replace")))?.operation !== "PUT", 5000);
  });

  it("Wait: all 10 run, one at a time, each as its first attempt (waiting burns no attempt)", async () => {
    const all = ids("wait");
    const seenWaiting = new Set<string>();
    const out = await scenario("Wait", all, 1000, 200);
    assert.deepEqual(out, all.slice(1).map(() => ({ outcome: "wait", holder: all[0] })));
    await waitFor(
      "all 10 succeeded",
      async () => {
        const recs = await Promise.all(all.map((id) => record(kv, id)));
        for (const r of recs) if (r?.status.waiting?.reason === "UniqueKeyHeld") seenWaiting.add(r.id);
        return recs.every((r) => r?.status.phase === "Succeeded");
      },
      90_000,
      50,
    );
    const runs = runsOf(all);
    assert.equal(runs.length, 10, JSON.stringify(runs));
    assert.deepEqual(new Set(runs.map((e) => e.id)), new Set(all));
    assertOneAtATime(runs);
    // maxAttempts is 1: a waiting delivery counted as an attempt would have dead-lettered the task
    assert.ok(runs.every((e) => e.attempt === 1), JSON.stringify(runs));
    for (const id of all) assert.equal((await record(kv, id))?.status.attempts, 1, id);
    assert.ok(seenWaiting.size > 0, "no waiting task recorded status.waiting UniqueKeyHeld");
    const r = await record(kv, all[9]!);
    assert.equal(r?.status.waiting, undefined, "a finished task still says waiting");
    await waitFor("the lock released", async () => (await kv.get(uniqueLockKey("report-Wait")))?.operation !== "PUT", 5000);
    const gaps = [...runs].sort((a, b) => a.start - b.start).map((e, i, s) => (i ? e.start - s[i - 1]!.end : 0));
    console.log(`unique Wait: 10 runs in ${Math.max(...runs.map((e) => e.end)) - Math.min(...runs.map((e) => e.start))} ms, gaps between runs (ms): ${gaps.slice(1).join(" ")}`);
  });
});

describe("when the worker running a unique task's holder is SIGKILLed", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let dir: string;
  const children: WorkerChild[] = [];
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    dir = mkdtempSync(join(tmpdir(), "celeriac-unique-"));
  });
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited));
    await nc?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes the lock on once the holder's redelivery has finished: not stuck, never two at once", async () => {
    const queue = uniqueQueue("uk");
    const names = queueNames("default", queue);
    const log = join(dir, "events.log");
    const js = jetstream(nc);
    await ensureQueueResources(await jetstreamManager(nc), names, queueSettings({ ackWaitSeconds: 2 }));
    const kv = await new Kvm(js).open(names.resultsBucket);
    const flags = ["--ack-wait-seconds", "2", "--concurrency", "2", "--grace-period-seconds", "1"];
    const a = startWorkerChild(srv.url, queue, log, flags);
    children.push(a);
    await workerStarted(a);
    const holder = `hold-${Date.now()}`;
    const waiter = `wait-${Date.now()}`;
    assert.deepEqual(await enqueue(js, kv, names, holder, "nightly", "Wait", 1500, "test.sleep"), { outcome: "claimed" });
    assert.deepEqual(await enqueue(js, kv, names, waiter, "nightly", "Wait", 100, "test.sleep"), { outcome: "wait", holder });
    await waitFor("the holder started", () => events(log, holder).includes("start 1"), 15_000);
    a.kill("SIGKILL");
    await a.exited;
    const b = startWorkerChild(srv.url, queue, log, flags);
    children.push(b);
    await workerStarted(b);
    await waitFor("both finished", async () => (await record(kv, holder))?.status.phase === "Succeeded" && (await record(kv, waiter))?.status.phase === "Succeeded", 40_000, 50);
    const lines = readFileSync(log, "utf8").split("\n").filter(Boolean);
    const at = (l: string) => lines.indexOf(l);
    // the holder ran again after the kill (its loss beside nothing counted as no attempt) and finished before the waiter started
    assert.deepEqual(events(log, holder), ["start 1", "start 1", "done"]);
    assert.deepEqual(events(log, waiter), ["start 1", "done"]);
    assert.ok(at(`${waiter} start 1`) > at(`${holder} done`), lines.join("\n"));
    await waitFor("the lock released", async () => (await kv.get(uniqueLockKey("nightly")))?.operation !== "PUT", 5000);
  });
});

describe("when a worker holds back a delivery whose unique key is held", () => {
  const msg = newTaskMessage({ id: "w1", task: "u.run", queue: "q", namespace: "default", origin: { kind: "Client" }, unique: { key: "k", policy: "Wait" } }, new Date("2026-01-01T00:00:00Z"));
  const admitted = (attempt: number, count: number): Admitted =>
    ({ message: msg, def: undefined, policy: undefined, attempt, alone: false, trace: { count, alone: false, workerLost: 0, workerLostAlone: 0, workerLostWaiting: 0 } }) as unknown as Admitted;
  const t0 = Date.parse("2026-01-01T00:01:00Z");

  it("naks after at most the time waited so far, 1 s to 5 s (1, 1, 2, 4, 5, 5 …), at least 1 s", () => {
    const d = [0, 500, 2000, 4000, 8000, 60_000].map((w) => uniqueWaitDelayMs(t0, t0 + w, () => 1));
    assert.deepEqual(d, [1000, 1000, 2000, 4000, 5000, 5000]);
    assert.deepEqual([0, 8000].map((w) => uniqueWaitDelayMs(t0, t0 + w, () => 0)), [1000, 1000]);
    assert.equal(uniqueWaitDelayMs(t0, t0 + 8000, () => 0.5), 3000);
    assert.equal(uniqueWaitDelayMs(NaN, t0, () => 1), 1000);
  });

  it("records Queued with waiting UniqueKeyHeld, the attempts made so far, no completion, and keeps since", () => {
    const e = uniqueWaiting(admitted(1, 1), "h9", undefined, t0, () => 1);
    assert.deepEqual(e.outcome, { action: "wait", phase: "Queued", delayMs: 1000 });
    assert.equal(e.attempts, 0);
    assert.deepEqual(e.waiting, { reason: "UniqueKeyHeld", message: "unique key k is held by task h9", since: new Date(t0).toISOString() });
    const s = endingStatus(e, "w", new Date(t0));
    assert.equal(s.phase, "Queued");
    assert.equal(s.completionTime, undefined);
    assert.deepEqual(s.waiting, e.waiting);
    const prev = { id: "w1", task: "u.run", queue: "q", namespace: "default", origin: { kind: "Client" }, status: s, updatedAt: new Date(t0).toISOString(), delivery: e.trace } as TracedRecord;
    const later = uniqueWaiting(admitted(1, 2), "h9", prev, t0 + 3000, () => 1);
    assert.equal(later.waiting?.since, new Date(t0).toISOString());
    assert.equal((later.outcome as { delayMs: number }).delayMs, 3000);
  });

  it("attributes the delivery after a waiting one as the same attempt, not a lost worker", () => {
    const waitingRec = (attempts: number, count: number, alone = false): TracedRecord => ({
      id: "w1", task: "u.run", queue: "q", namespace: "default", origin: { kind: "Client" },
      status: { phase: "Queued", attempts, waiting: { reason: "UniqueKeyHeld", message: "m", since: "2026-01-01T00:00:00Z" } },
      updatedAt: "2026-01-01T00:00:00Z",
      delivery: { count, alone, workerLost: 0, workerLostAlone: 0, workerLostWaiting: 0 },
    });
    assert.deepEqual(attributeDelivery(50, waitingRec(0, 49)), { attempt: 1, alone: false, lost: "none", trace: { count: 50, alone: false, workerLost: 0, workerLostAlone: 0, workerLostWaiting: 0 } });
    // after a retry (attempt 2 made), waiting: attempt 3 next
    assert.equal(attributeDelivery(9, waitingRec(2, 8)).attempt, 3);
    // an alone run that had to wait stays alone
    assert.equal(attributeDelivery(9, waitingRec(1, 8, true)).alone, true);
    // a delivery lost after the waiting one never started (a unique task records Running first): a loss before the start, not alone
    assert.deepEqual(attributeDelivery(11, waitingRec(0, 9)), { attempt: 1, alone: false, lost: "beside", trace: { count: 11, alone: false, workerLost: 1, workerLostAlone: 0, workerLostWaiting: 1 } });
  });
});
