/**
 * Semantics 6 (countdown / eta / expires / priority / rate limits on any signature behave as on a
 * single task), against a real nats-server and real worker processes, from the per-execution log
 * and the records. Timing counts from when the step is published, i.e. when its parent finished
 * (Celery's semantics): a step with countdownSeconds 1 starts ≥ 1 s after its parent's end; a
 * step's eta holds it until then; a relative `expires` counts from its publish, an absolute one that
 * passed before the step could run ends it Expired and the rest Cancelled naming it. On
 * flow-controlled queues (their dispatcher driven directly, as test/flow/harness.ts does; the steps
 * published by the client and by the workers alike): priority on signatures lets a later canvas
 * overtake a low-priority backlog, the queue's rate limit paces a canvas's steps, and a signature's
 * concurrency key limits its steps like a task's. Also: an expired chord header task fails the chord
 * (body Cancelled, no linkError: it did not fail); a step's timeoutSeconds aborts it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueSpec } from "../../../api/queue.js";
import { chain, chord, group, immutableSignature, signature, TaskFailedError } from "../../../client/index.js";
import { waitFor } from "../../helpers/nats-server.js";
import { byId, queueDrained, runsOf, startSemHarness, type HarnessQueue, type Run, type SemHarness } from "./harness.js";

const first = (runs: readonly Run[], id: string, event: Run["event"]): Run => {
  const r = runsOf(runs, id, event)[0];
  assert.ok(r, `${id} has a ${event} line`);
  return r;
};

describe("when canvas signatures carry timing options", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 30, concurrency: 4 }, "timing");
    await h.startWorker(q, 4);
  });
  after(async () => {
    await h?.close();
  });

  it("starts a countdownSeconds 1 step ≥ 1 s after its parent finished, and an eta step no earlier than its eta", { timeout: 30_000 }, async (t) => {
    const eta = new Date(Date.now() + 1500);
    const [cd, at] = await Promise.all([
      h.client.apply(chain(signature("sem.echo", ["p"], { sleepMs: 500 }), signature("sem.echo", [], {}, { countdownSeconds: 1 })), { queue: q.name }),
      h.client.apply(chain(signature("sem.echo", ["p"]), signature("sem.echo", [], {}, { eta: eta.toISOString() })), { queue: q.name }),
    ]);
    assert.equal(await cd.result({ timeoutMs: 20_000 }), "p");
    assert.equal(await at.result({ timeoutMs: 20_000 }), "p");
    const runs = h.runs();
    const gap = first(runs, `${cd.id}-1`, "start").at - first(runs, `${cd.id}-0`, "done").at;
    assert.ok(gap >= 1000, `the countdown step started ${gap} ms after its parent finished`);
    const early = eta.getTime() - first(runs, `${at.id}-1`, "start").at;
    assert.ok(early <= 0, `the eta step started ${early} ms before its eta`);
    assert.ok(first(runs, `${at.id}-0`, "done").at < eta.getTime() - 500, "the eta step's parent finished well before the eta (else the test proves nothing)");
    t.diagnostic(`countdown step: ${gap} ms after its parent; eta step: ${-early} ms after its eta`);
  });

  it("counts a relative expires from the step's publish, and ends a step whose absolute expires passed Expired, the rest Cancelled", { timeout: 30_000 }, async () => {
    // parent 1.5 s; expires 1 s counted from the publish (when the parent finished): runs
    const relative = await h.client.apply(chain(signature("sem.echo", ["r"], { sleepMs: 1500 }), signature("sem.echo", [], {}, { expires: 1 })), { queue: q.name });
    // parent 1.5 s; expires at apply + 0.5 s: passed when the step is published
    const expires = new Date(Date.now() + 500).toISOString();
    const absolute = await h.client.apply(chain(signature("sem.echo", ["a"], { sleepMs: 1500 }), signature("sem.echo", [], {}, { expires }), signature("sem.echo")), { queue: q.name });
    assert.equal(await relative.result({ timeoutMs: 20_000 }), "r");
    const expired = `${absolute.id}-1`;
    await assert.rejects(absolute.result({ timeoutMs: 20_000 }), (e: unknown) => e instanceof TaskFailedError && e.phase === "Expired" && e.record.id === expired);
    const rest = await waitFor("the last step Cancelled", async () => {
      const s = await h.client.get(`${absolute.id}-2`, { queue: q.name }).status();
      return s?.phase === "Cancelled" ? s : undefined;
    }, 10_000);
    assert.deepEqual(rest.canvas?.failedStep, { id: expired, task: "sem.echo" });
    assert.match(rest.error?.message ?? "", new RegExp(`${expired} \\(sem\\.echo\\) expired`));
    await queueDrained(h, q);
    const runs = h.runs();
    assert.equal(runsOf(runs, `${absolute.id}-0`, "done").length, 1);
    assert.equal(runsOf(runs, expired).length, 0, "the expired step never ran");
    assert.equal(runsOf(runs, `${absolute.id}-2`).length, 0, "the step after it never ran");
  });
  it("ends a chord whose header task expired before it could run: body Cancelled naming it, no linkError (it did not fail)", { timeout: 30_000 }, async () => {
    // due 2 s after the publish, expired 1 s after it
    const late = signature("sem.echo", ["late"], {}, { countdownSeconds: 2, expires: 1 });
    const handle = await h.client.apply(chord([signature("sem.echo", ["ok"]), late], signature("sem.collect")).linkError(signature("sem.errback")), { queue: q.name });
    const expired = `${handle.id}-1`;
    await assert.rejects(handle.result({ timeoutMs: 20_000 }), (e: unknown) => e instanceof TaskFailedError && e.phase === "Expired" && e.record.id === expired);
    const body = await waitFor("the body Cancelled", async () => {
      const st = await h.client.get(`${handle.id}-b`, { queue: q.name }).status();
      return st?.phase === "Cancelled" ? st : undefined;
    }, 10_000);
    assert.deepEqual(body.canvas?.failedStep, { id: expired, task: "sem.echo" });
    await queueDrained(h, q);
    const runs = h.runs();
    assert.equal(runsOf(runs, expired).length, 0, "the expired header task never ran");
    assert.equal(runsOf(runs, `${handle.id}-b`).length, 0, "the body never ran");
    assert.equal(runsOf(runs, `${handle.id}-e0`).length, 0, "linkError runs on a failure only");
  });

  it("applies a step's timeoutSeconds: the step is aborted after 1 s and fails, the rest Cancelled", { timeout: 30_000 }, async (t) => {
    const handle = await h.client.apply(chain(signature("sem.echo", ["x"]), signature("sem.hang", [], {}, { timeoutSeconds: 1, retry: { maxAttempts: 1 } }), signature("sem.echo")), { queue: q.name });
    const timed = `${handle.id}-1`;
    await assert.rejects(handle.result({ timeoutMs: 20_000 }), (e: unknown) => e instanceof TaskFailedError && e.phase === "Failed" && e.record.id === timed);
    await waitFor("the last step Cancelled", async () => (await h.client.get(`${handle.id}-2`, { queue: q.name }).status())?.phase === "Cancelled", 10_000);
    const runs = h.runs();
    const ran = first(runs, timed, "abort").at - first(runs, timed, "start").at;
    t.diagnostic(`the step was aborted ${ran} ms after it started`);
    assert.ok(ran >= 900 && ran < 5000, `the step was aborted ${ran} ms after it started (timeout 1 s)`);
    assert.equal(runsOf(runs, `${handle.id}-2`).length, 0, "the step after it never ran");
  });
});

describe("when canvas signatures carry priorities on a flow-controlled queue", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    const spec: QueueSpec = { ackWaitSeconds: 30, concurrency: 1, priorities: { levels: 3, default: 0, starvationGuardPercent: 10 } };
    q = await h.queue(spec, "prio");
    await h.startWorker(q, 1);
  });
  after(async () => {
    await h?.close();
  });

  it("starts a priority-2 canvas's steps before the low-priority backlog", { timeout: 45_000 }, async (t) => {
    const LOW = 80;
    const low = await h.client.apply(group(Array.from({ length: LOW }, (_, i) => signature("sem.echo", [i], { sleepMs: 10 }, { priority: 0 }))), { queue: q.name });
    const lowIds = Array.from({ length: LOW }, (_, i) => `${low.id}-${i}`);
    await waitFor("the low backlog running and held", () => q.dispatcher!.heldCount >= 40 && lowIds.some((id) => runsOf(h.runs(), id, "start").length > 0), 20_000);
    const tHigh = Date.now();
    // the first step is published by the client, the group after it by the worker that ran it
    const high = await h.client.apply(chain(signature("sem.echo", ["h"], {}, { priority: 2 }), group(Array.from({ length: 10 }, () => signature("sem.echo", [], {}, { priority: 2 })))), { queue: q.name });
    assert.deepEqual(await high.result({ timeoutMs: 30_000 }), Array.from({ length: 10 }, () => "h"));
    const by = byId(h.runs());
    const start = (id: string) => by.get(id)?.find((r) => r.event === "start")?.at ?? Infinity;
    const highIds = [`${high.id}-0`, ...Array.from({ length: 10 }, (_, i) => `${high.id}-1-${i}`)];
    const lastHigh = Math.max(...highIds.map(start));
    const groupPublished = by.get(`${high.id}-0`)!.find((r) => r.event === "done")!.at;
    const lowIn = (from: number, to: number) => lowIds.filter((id) => start(id) > from && start(id) <= to).length;
    // each hop (the client's publish of the first step; the worker's publish of the group after it)
    // waits behind at most what the dispatcher had already released: the work stream's ready target
    // (16) and the slot, plus the starvation guard's share
    const hop1 = lowIn(tHigh, start(`${high.id}-0`));
    const hop2 = lowIn(groupPublished, lastHigh);
    const lowAfter = lowIds.filter((id) => start(id) > lastHigh).length;
    t.diagnostic(`low tasks started before the high canvas's first step: ${hop1}; between its publish of the group and the group's last start: ${hop2}; after: ${lowAfter}`);
    assert.ok(hop1 <= 20, `${hop1} low tasks started between the high canvas's apply and its first step`);
    assert.ok(hop2 <= 20, `${hop2} low tasks started between the publish of the high group and its last member`);
    assert.ok(lowAfter >= 20, `only ${lowAfter} low tasks were left after the high canvas: the test proves nothing`);
    await low.result({ timeoutMs: 30_000 });
  });
});

describe("when a canvas runs on a rate-limited queue", () => {
  const RATE = 20;
  const N = 40;
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 30, concurrency: 4, rateLimit: { rate: `${RATE}/s`, burst: 1 } }, "rate");
    await Promise.all([h.startWorker(q, 4), h.startWorker(q, 4)]);
  });
  after(async () => {
    await h?.close();
  });

  it("starts its steps at the queue's rate, whoever publishes them", { timeout: 30_000 }, async (t) => {
    // the group is published by the worker that ran the first step
    const handle = await h.client.apply(chain(signature("sem.echo", ["r"]), group(Array.from({ length: N }, () => signature("sem.echo")))), { queue: q.name });
    assert.equal(((await handle.result({ timeoutMs: 25_000 })) as unknown[]).length, N);
    const by = byId(h.runs());
    const starts = Array.from({ length: N }, (_, i) => by.get(`${handle.id}-1-${i}`)!.find((r) => r.event === "start")!.at).sort((x, y) => x - y);
    const rate = (N - 1) / ((starts.at(-1)! - starts[0]!) / 1000);
    let worst = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (j < starts.length && starts[j]! < starts[i]! + 1000) j++;
      worst = Math.max(worst, j - i);
    }
    t.diagnostic(`group start rate ${rate.toFixed(1)}/s (limit ${RATE}/s); busiest 1 s window ${worst} starts`);
    assert.ok(rate <= RATE * 1.15, `the group's steps started at ${rate.toFixed(1)}/s, above the queue's ${RATE}/s`);
    // tokens are taken at release; a handler's start lags its release by a variable few ms, so a
    // window of starts may hold a little more than rate + burst (test/flow/rate.test.ts allows none
    // over, with 500 tasks and no canvas hop); unlimited, all 40 start within one window
    assert.ok(worst <= RATE + 3, `a 1 s window held ${worst} starts (limit ${RATE}/s, burst 1)`);
  });
});

describe("when canvas signatures carry concurrency keys", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 30, concurrency: 4, concurrencyKeys: { limit: 1 } }, "keys");
    await Promise.all([h.startWorker(q, 4), h.startWorker(q, 4)]);
  });
  after(async () => {
    await h?.close();
  });

  it("runs at most one step of a key at once, keys side by side", { timeout: 30_000 }, async (t) => {
    const keyed = (k: string) => Array.from({ length: 5 }, () => immutableSignature("sem.echo", [k], { sleepMs: 100 }, { concurrencyKey: k }));
    // the group is published by the worker that ran the first step
    const handle = await h.client.apply(chain(signature("sem.echo", ["go"]), group(...keyed("a"), ...keyed("b"))), { queue: q.name });
    assert.deepEqual(await handle.result({ timeoutMs: 25_000 }), [..."aaaaa", ..."bbbbb"]);
    const by = byId(h.runs());
    const events: Array<{ at: number; key: string; d: number }> = [];
    for (let i = 0; i < 10; i++) {
      const r = by.get(`${handle.id}-1-${i}`)!;
      const key = i < 5 ? "a" : "b";
      events.push({ at: r.find((x) => x.event === "start")!.at, key, d: 1 }, { at: r.find((x) => x.event === "done")!.at, key, d: -1 });
    }
    events.sort((x, y) => x.at - y.at || x.d - y.d);
    const now = new Map<string, number>();
    const peak = new Map<string, number>();
    let all = 0;
    let peakAll = 0;
    for (const e of events) {
      now.set(e.key, (now.get(e.key) ?? 0) + e.d);
      peak.set(e.key, Math.max(peak.get(e.key) ?? 0, now.get(e.key)!));
      all += e.d;
      peakAll = Math.max(peakAll, all);
    }
    t.diagnostic(`peak running: key a ${peak.get("a")}, key b ${peak.get("b")}, both ${peakAll}`);
    assert.equal(peak.get("a"), 1, "key a ran more than one step at once");
    assert.equal(peak.get("b"), 1, "key b ran more than one step at once");
    assert.equal(peakAll, 2, "the two keys did not run side by side");
  });
});
