// Queue pause as workers see it (worker/pause.ts), against a real nats-server: with tasks queued,
// a pause stops the pulling (the running tasks finish, nothing starts while paused, a worker started
// while paused pulls nothing) and a resume starts everything promptly.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kvm, type KV } from "@nats-io/kv";
import { defineTask } from "../../worker/index.js";
import { pauseQueue, resumeQueue } from "../../nats/queue-pause.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

describe("when a queue with tasks queued is paused and resumed", { timeout: 60_000 }, () => {
  let srv: NatsServer;
  let f: Fixture;
  let kv: KV;
  /** Start times of each task id, ms. */
  const started = new Map<string, number>();
  const done = new Set<string>();
  let releaseFirst!: () => void;
  const firstGate = new Promise<void>((r) => (releaseFirst = r));

  before(async () => {
    srv = await startNatsServer();
    const work = defineTask("pause.work", async (args: unknown[], _kw, ctx) => {
      const n = args[0] as number;
      started.set(ctx.taskId, Date.now());
      if (n < 2) await firstGate; // the first two block until released: running while the queue is paused
      done.add(ctx.taskId);
      return n;
    });
    f = await fixture(srv, [work], { concurrency: 2 });
    await f.startWorker();
    kv = await new Kvm(f.nc).open(f.names.resultsBucket);
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  it("finishes the running tasks, starts none while paused, and runs all after the resume within 1 s", async () => {
    const handles = [];
    for (let i = 0; i < 2; i++) handles.push(await f.client.enqueue("pause.work", [i]));
    await waitFor("the first two running", () => started.size === 2, 10_000);

    const p = await pauseQueue(kv, { reason: "test" });
    assert.ok("paused" in p, "paused");
    for (let i = 2; i < 8; i++) handles.push(await f.client.enqueue("pause.work", [i]));
    // a worker started while paused reads the pause before its first pull
    const late = await f.startWorker({ concurrency: 4 });
    assert.equal(late.inFlight, 0);

    releaseFirst();
    await waitFor("the two running tasks finished while paused", () => done.size === 2, 10_000);
    // a pull opened before the pause expires within fetchExpiresMs (1 s): watch well past it
    const watchUntil = Date.now() + 2500;
    await waitFor("the watch window", () => Date.now() >= watchUntil, 5000, 50);
    assert.equal(started.size, 2, `nothing started while paused (started: ${started.size})`);
    const ci = await f.jsm.consumers.info(f.names.stream, f.names.workerConsumer);
    assert.equal(ci.num_pending + ci.num_ack_pending, 6, "the 6 wait in the stream (or parked unstarted in a worker)");

    const t0 = Date.now();
    assert.ok(await resumeQueue(kv), "a pause was lifted");
    await waitFor("a task starts after the resume", () => started.size > 2, 5000, 5);
    const latency = Date.now() - t0;
    console.log(`# resume → first start: ${latency} ms`);
    assert.ok(latency < 1000, `resumed within 1 s (${latency} ms)`);
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 15_000 })));
    assert.deepEqual(results, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(started.size, 8, "each ran once");
  });

  it("says so when the queue is paused twice or resumed while running", async () => {
    const first = await pauseQueue(kv, { reason: "one" });
    assert.ok("paused" in first);
    const second = await pauseQueue(kv, { reason: "two" });
    assert.ok("already" in second);
    assert.equal(second.already.reason, "one", "the first pause is kept");
    assert.ok(await resumeQueue(kv));
    assert.equal(await resumeQueue(kv), undefined, "resuming a running queue changes nothing");
  });

  it("does not run a task that a pull opened before the pause delivers; it runs after the resume", async () => {
    const idle = await f.startWorker({ concurrency: 4, fetchExpiresMs: 5000 }); // idle: a 5 s pull is open
    await waitFor("a pull waiting", async () => (await f.jsm.consumers.info(f.names.stream, f.names.workerConsumer)).num_waiting > 0, 5000);
    const before = started.size;
    assert.ok("paused" in (await pauseQueue(kv)));
    const hs = [];
    for (let i = 10; i < 13; i++) hs.push(await f.client.enqueue("pause.work", [i]));
    const until = Date.now() + 2000;
    await waitFor("the watch window", () => Date.now() >= until, 5000, 50);
    assert.equal(started.size, before, "none of the three started while paused");
    assert.ok(await resumeQueue(kv));
    assert.deepEqual(await Promise.all(hs.map((h) => h.result({ timeoutMs: 10_000 }))), [10, 11, 12]);
    assert.ok(idle.ready);
  });
});
