// The worker side of `celeriac inspect`: the pure contract helpers (api/control.ts), the report cut
// to max_payload, the registry heartbeat, and in-process workers answering on a real nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { pino } from "pino";
import { controlSubject, isLiveEntry, REGISTRY_STALE_MS, workerRegistryKey, workerToken, type WorkerRegistryEntry, type WorkerReport } from "../../api/control.js";
import { fitReport, isInbox } from "../../worker/control.js";
import { WorkerRegistration } from "../../worker/registry.js";
import { inspectQueue, readWorkerRegistry } from "../../nats/inspect.js";
import { defineTask } from "../../worker/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

describe("the control contract", () => {
  it("names the control subject per queue", () => {
    assert.equal(controlSubject("team-a", "emails"), "celeriac.team-a.emails.control.inspect");
    assert.throws(() => controlSubject("Team_A", "emails"), /namespace "Team_A" is not a DNS-1123 label/);
  });

  it("keeps a pod name as its registry token and hashes a name it had to change", () => {
    assert.equal(workerToken("emails-workers-7d9f-x2"), "emails-workers-7d9f-x2");
    assert.equal(workerRegistryKey("emails-workers-7d9f-x2"), "worker.emails-workers-7d9f-x2");
    assert.match(workerToken("build-3:4242"), /^build-3_4242-[0-9a-f]{8}$/);
    assert.notEqual(workerToken("host:1"), workerToken("host_1"), "a replaced name never collides with the name it became");
    assert.notEqual(workerToken("a.b"), workerToken("a:b"));
    assert.match(workerToken(""), /^-[0-9a-f]{8}$/);
    for (const n of ["x.y.z", "ünï cödé", "a*b>c"]) assert.match(workerRegistryKey(n), /^worker\.[A-Za-z0-9_-]+$/, n);
  });

  it("treats an entry last seen within 30 s as live", () => {
    const now = Date.parse("2026-12-03T12:00:00Z");
    const at = (ms: number) => ({ lastSeen: new Date(now - ms).toISOString() });
    assert.equal(isLiveEntry(at(0), now), true);
    assert.equal(isLiveEntry(at(REGISTRY_STALE_MS), now), true);
    assert.equal(isLiveEntry(at(REGISTRY_STALE_MS + 1), now), false);
    assert.equal(isLiveEntry(at(-5000), now), true, "a clock ahead of ours");
    assert.equal(isLiveEntry({ lastSeen: "yesterday" }, now), false);
  });

  it("answers inbox reply subjects only", () => {
    assert.equal(isInbox("_INBOX.abc.1"), true);
    assert.equal(isInbox("_INBOX_celeriac_team-a.abc"), true);
    assert.equal(isInbox("celeriac.team-b.x.tasks"), false);
    assert.equal(isInbox(undefined), false);
  });
});

describe("fitReport", () => {
  const report = (active: number, metaBytes: number): WorkerReport => ({
    v: 1,
    name: "w",
    host: "h",
    pid: 1,
    queue: "q",
    namespace: "default",
    version: "0.1.0",
    startedAt: "2026-12-03T12:00:00.000Z",
    uptimeSeconds: 1,
    concurrency: active,
    active: Array.from({ length: active }, (_, i) => ({ id: `t${i}`, task: "x", attempt: 1, startedAt: "2026-12-03T12:00:00.000Z", progress: { display: "1%", fraction: 0.01, updatedAt: "2026-12-03T12:00:00.000Z", meta: { pad: "x".repeat(metaBytes) } } })),
    reserved: [],
    registered: ["x"],
    stats: { processed: 0, succeeded: 0, failed: 0, retried: 0, deadLettered: 0, revoked: 0, rssBytes: 1 },
  });
  it("leaves a report that fits as it is", () => {
    const r = report(4, 100);
    assert.equal(fitReport(r, 1024 * 1024), r);
  });
  it("drops progress meta first, then shortens the lists, and says so", () => {
    const r = fitReport(report(200, 4000), 64 * 1024);
    assert.equal(r.truncated, true);
    assert.equal(r.active.length, 200, "without meta all 200 fit");
    assert.ok(r.active.every((a) => a.progress && !a.progress.meta && a.progress.display === "1%"));
    const small = fitReport(report(2000, 10), 16 * 1024);
    assert.ok(small.active.length < 2000 && Buffer.byteLength(JSON.stringify(small)) <= 16 * 1024);
  });
});

describe("WorkerRegistration", () => {
  let srv: NatsServer;
  before(async () => {
    srv = await startNatsServer();
  });
  after(async () => {
    await srv?.cleanup();
  });

  it("writes the entry at start, refreshes lastSeen, and deletes it on stop", async () => {
    const f = await fixture(srv, [defineTask("noop", () => null)]);
    try {
      const kv = await new Kvm(jetstream(f.nc)).create(f.names.resultsBucket);
      const reg = new WorkerRegistration({ kv, log: pino({ level: "silent" }), intervalMs: 100, entry: { name: "pod-a", host: "h", pid: 7, startedAt: new Date().toISOString(), concurrency: 3, version: "0.1.0" } });
      await reg.start();
      const first = (await kv.get("worker.pod-a"))!.json<WorkerRegistryEntry>();
      assert.equal(first.v, 1);
      assert.equal(first.concurrency, 3);
      await waitFor("lastSeen refreshed", async () => (await kv.get("worker.pod-a"))!.json<WorkerRegistryEntry>().lastSeen > first.lastSeen);
      assert.deepEqual((await readWorkerRegistry(kv)).live.map((e) => e.name), ["pod-a"]);
      assert.deepEqual(await readWorkerRegistry(kv, Date.now() + REGISTRY_STALE_MS + 1000), { live: [], stale: 1 });
      await reg.stop();
      assert.equal((await kv.get("worker.pod-a"))?.operation, "DEL");
      assert.deepEqual(await readWorkerRegistry(kv), { live: [], stale: 0 });
    } finally {
      await f.close();
    }
  });
});

describe("when in-process workers answer control requests", () => {
  let srv: NatsServer;
  let f: Fixture;
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const tasks = [
    defineTask("hold", async (_a, _k, ctx) => {
      ctx.progress(0.25, { stage: "held" });
      await released;
      return "done";
    }),
    defineTask("quick", (args) => args),
  ];
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { concurrency: 3 });
    await f.startWorker({ workerName: "in-proc-1" });
    await f.startWorker({ workerName: "in-proc-2" });
  });
  after(async () => {
    release();
    await f?.close();
    await srv?.cleanup();
  });

  it("each worker reports its running attempts with progress, and its counters", async () => {
    await Promise.all([1, 2, 3].map(async (i) => (await f.client.enqueue("quick", [i])).result({ timeoutMs: 10_000 })));
    const held = await Promise.all([0, 1, 2, 3].map((i) => f.client.enqueue("hold", [], {}, { taskId: `hold-${i}` })));
    const kv = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    const subject = controlSubject("default", f.queue);
    const i = await waitFor("four held tasks reported with progress", async () => {
      const r = await inspectQueue(f.nc, kv, subject, "active", 2000);
      const all = r.replies.flatMap((x) => x.report.active);
      return all.length === 4 && all.every((a) => a.progress) ? r : undefined;
    });
    assert.deepEqual(i.replies.map((r) => r.report.name).sort(), ["in-proc-1", "in-proc-2"]);
    assert.deepEqual(i.notAnswering, []);
    assert.equal(i.registry.size, 2);
    assert.deepEqual(i.replies.flatMap((r) => r.report.active.map((a) => a.id)).sort(), held.map((h) => h.id).sort());
    for (const r of i.replies) {
      assert.ok(r.report.active.length <= 3);
      assert.deepEqual(r.report.registered, ["hold", "quick"]);
      assert.equal(r.report.queue, f.queue);
      for (const a of r.report.active) assert.deepEqual([a.task, a.attempt, a.progress?.display, a.progress?.meta], ["hold", 1, "25%", { stage: "held" }]);
    }
    const total = i.replies.reduce((n, r) => n + r.report.stats.succeeded, 0);
    assert.equal(total, 3);
    // both registered workers answered: the request ends before its deadline
    const t0 = performance.now();
    await inspectQueue(f.nc, kv, subject, "ping", 5000);
    assert.ok(performance.now() - t0 < 1000, "ends once every live worker answered");
  });

  it("answers within milliseconds while its handlers run (no I/O on the answering path)", async (t) => {
    const kv = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    const subject = controlSubject("default", f.queue);
    const ms: number[] = [];
    for (let k = 0; k < 50; k++) {
      const r = await inspectQueue(f.nc, kv, subject, "active", 2000);
      assert.equal(r.replies.length, 2);
      ms.push(...r.replies.map((x) => x.replyMs));
    }
    ms.sort((a, b) => a - b);
    const p50 = ms[Math.floor(ms.length / 2)]!;
    const p99 = ms[Math.floor(ms.length * 0.99)]!;
    t.diagnostic(`control reply time over ${ms.length} replies: p50 ${p50} ms, p99 ${p99} ms`);
    assert.ok(p99 < 250, `p99 ${p99} ms`);
    release();
    await waitFor("held tasks finished", () => f.workers.every((w) => w.inFlight === 0));
  });

  it("a closed worker no longer answers and has left the registry", async () => {
    const kv = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    await f.workers[0]!.close();
    const r = await inspectQueue(f.nc, kv, controlSubject("default", f.queue), "ping", 500);
    assert.deepEqual(r.replies.map((x) => x.report.name), ["in-proc-2"]);
    assert.deepEqual(r.notAnswering, []);
  });
});

describe("when a redelivered task waits to run alone", () => {
  let srv: NatsServer;
  let f: Fixture;
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const ran: string[] = [];
  const tasks = [
    defineTask("hold", async (_a, _k, ctx) => {
      ran.push(ctx.taskId);
      await released;
      return "done";
    }),
    defineTask("quick", (args, _k, ctx) => {
      ran.push(ctx.taskId);
      return args;
    }),
  ];
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { concurrency: 2 });
  });
  after(async () => {
    release();
    await f?.close();
    await srv?.cleanup();
  });

  it("reports it as reserved (delivered, not started) until the attempt beside it ends", async () => {
    // a delivery that is never settled (a worker lost with it): redelivered after the 2 s ack wait,
    // it runs alone (attribution.ts), so it waits at the gate while "hold" runs
    const lost = await f.client.enqueue("quick", [1], {}, { taskId: "lost-1" });
    const raw = await jetstream(f.nc).consumers.get(f.names.stream, f.names.workerConsumer);
    for await (const m of await raw.fetch({ max_messages: 1, expires: 2000 })) {
      assert.equal(m.headers?.get("Nats-Msg-Id"), "lost-1");
      break;
    }
    const w = await f.startWorker({ workerName: "gate-1" });
    await f.client.enqueue("hold", [], {}, { taskId: "hold-1" });
    await waitFor("hold-1 running", () => ran.includes("hold-1"));
    const r = await waitFor("lost-1 reserved", () => {
      const rep = w.report();
      return rep.reserved.length === 1 ? rep : undefined;
    }, 10_000);
    assert.deepEqual([r.reserved[0]!.id, r.reserved[0]!.task, r.reserved[0]!.attempt], ["lost-1", "quick", 2]);
    assert.ok(Date.parse(r.reserved[0]!.receivedAt) <= Date.now());
    assert.deepEqual(r.active.map((a) => a.id), ["hold-1"]);
    assert.equal(ran.includes("lost-1"), false);
    release();
    assert.deepEqual(await lost.result({ timeoutMs: 10_000 }), [1]);
    // its record is written before the ack: it leaves the held set just after
    await waitFor("nothing reserved", () => w.report().reserved.length === 0 && w.report().active.length === 0);
  });
});
