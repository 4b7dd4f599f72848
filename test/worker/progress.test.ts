/**
 * `ctx.progress`: the checks of a report (pure), the per-sink rate limit (an injected clock), and end
 * to end on a real nats-server — a handler reports, the client's `onProgress` sees it in order
 * within 1 s, the final record keeps the last report.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { defineTask } from "../../worker/index.js";
import { progressReport, ProgressReporter, type ProgressClock, type ProgressValue } from "../../worker/progress.js";
import type { TaskProgress } from "../../api/task.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const NOW = new Date("2026-12-01T10:00:00.000Z");

describe("progressReport", () => {
  const good: [ProgressValue, Partial<TaskProgress>][] = [
    [0, { fraction: 0, display: "0%" }],
    [0.4, { fraction: 0.4, display: "40%" }],
    [0.999, { fraction: 0.999, display: "99%" }],
    [1, { fraction: 1, display: "100%" }],
    [{ done: 4, total: 10 }, { done: 4, total: 10, fraction: 0.4, display: "4/10" }],
    [{ done: 0, total: 0 }, { done: 0, total: 0, display: "0/0" }],
    [{ done: 7 }, { done: 7, display: "7" }],
  ];
  for (const [value, want] of good) {
    it(`reads ${JSON.stringify(value)} as ${want.display}`, () => assert.deepEqual(progressReport(value, undefined, NOW), { ...want, updatedAt: NOW.toISOString() }));
  }
  it("copies meta as JSON", () => {
    const meta = { stage: "resize", file: "a.png", skip: undefined };
    const p = progressReport(0.5, meta, NOW);
    assert.deepEqual(p.meta, { stage: "resize", file: "a.png" });
    assert.notEqual(p.meta, meta);
  });
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const bad: [string, ProgressValue, unknown, RegExp][] = [
    ["NaN", NaN, undefined, /^ctx\.progress\(value\): value is NaN, not a fraction from 0 to 1: pass a fraction/],
    ["a negative fraction", -0.1, undefined, /value is -0\.1, not a fraction from 0 to 1/],
    ["a fraction over 1", 1.5, undefined, /value is 1\.5, not a fraction from 0 to 1/],
    ["Infinity", Infinity, undefined, /value is Infinity/],
    ["done > total", { done: 11, total: 10 }, undefined, /value\.done \(11\) exceeds value\.total \(10\): report done ≤ total/],
    ["a negative done", { done: -1, total: 10 }, undefined, /value\.done is -1, not a non-negative integer/],
    ["a fractional done", { done: 1.5 }, undefined, /value\.done is 1\.5, not a non-negative integer/],
    ["a string total", { done: 1, total: "10" as unknown as number }, undefined, /value\.total is "10", not a non-negative integer: leave it out/],
    ["a string value", "40%" as unknown as number, undefined, /value is string: pass a fraction/],
    ["null", null as unknown as number, undefined, /value is null/],
    ["meta an array", 0.1, [1, 2], /ctx\.progress\(value, meta\): meta is an array, not an object/],
    ["meta circular", 0.1, circular, /meta is not JSON-serialisable \(.*circular.*\): pass plain data/i],
    ["meta with a BigInt", 0.1, { n: 1n }, /meta is not JSON-serialisable/],
    ["meta over 4 KiB", 0.1, { s: "x".repeat(5000) }, /meta is 5008 bytes of JSON, over the 4096-byte limit/],
  ];
  for (const [what, value, meta, re] of bad) {
    it(`throws a TypeError for ${what}`, () => assert.throws(() => progressReport(value, meta as Record<string, unknown>, NOW), (err: unknown) => err instanceof TypeError && re.test(err.message)));
  }
});

/** A manual clock: `advance(ms)` runs the timers due. */
function manualClock(): ProgressClock & { advance(ms: number): void } {
  let now = 0;
  let timers: { at: number; fn: () => void; id: number }[] = [];
  let next = 0;
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = next++;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout(h) {
      timers = timers.filter((t) => t.id !== h);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((t) => t !== due);
        now = due.at;
        due.fn();
      }
      now = end;
    },
  };
}

/** Lets pending promise callbacks run (a write's `finally`). */
const settle = () => new Promise<void>((r) => setImmediate(r));
const at = (f: number): TaskProgress => ({ fraction: f, display: `${f * 100}%`, updatedAt: NOW.toISOString() });

describe("ProgressReporter", () => {
  const setup = () => {
    const clock = manualClock();
    const kv: [number, number | undefined][] = [];
    const task: [number, number | undefined][] = [];
    const errors: unknown[] = [];
    const r = new ProgressReporter(
      [
        { name: "kv", intervalMs: 250, write: async (p) => void kv.push([clock.now(), p.fraction]) },
        { name: "task-resource", intervalMs: 1000, write: async (p) => void task.push([clock.now(), p.fraction]) },
      ],
      (err) => errors.push(err),
      clock,
    );
    return { clock, kv, task, errors, r };
  };

  it("writes the first report at once, then at most once per interval per sink, the last one trailing", async () => {
    const { clock, kv, task, r } = setup();
    r.report(at(0.1));
    await settle();
    for (let i = 2; i <= 20; i++) {
      clock.advance(50); // a report every 50 ms for ~1 s
      r.report(at(i / 100));
      await settle();
    }
    clock.advance(1000);
    await settle();
    assert.deepEqual(kv.map(([t]) => t), [0, 250, 500, 750, 1000], "the results bucket every 250 ms");
    assert.deepEqual(task.map(([t]) => t), [0, 1000], "the Task every second");
    assert.equal(kv.at(-1)?.[1], 0.2, "the last report reached the results bucket");
    assert.equal(task.at(-1)?.[1], 0.2, "and the Task");
    assert.equal(r.latest?.fraction, 0.2);
  });

  it("never has two writes in flight to one sink: a report during a slow write is written after it", async () => {
    const clock = manualClock();
    const writes: number[] = [];
    let release: () => void = () => undefined;
    let inFlight = 0;
    let most = 0;
    const r = new ProgressReporter([{ name: "slow", intervalMs: 100, write: async (p) => {
      inFlight++;
      most = Math.max(most, inFlight);
      writes.push(p.fraction ?? -1);
      await new Promise<void>((res) => (release = res));
      inFlight--;
    } }], () => undefined, clock);
    r.report(at(0.1));
    clock.advance(500);
    r.report(at(0.2));
    r.report(at(0.3));
    await settle();
    assert.deepEqual(writes, [0.1]);
    release();
    await settle();
    await settle();
    assert.deepEqual(writes, [0.1, 0.3], "the latest report, once the first write ended");
    release();
    await r.close();
    assert.equal(most, 1);
  });

  it("passes a failed write to onError, never to the reporter, and writes the next report", async () => {
    const clock = manualClock();
    const errors: unknown[] = [];
    let fail = true;
    const ok: number[] = [];
    const r = new ProgressReporter([{ name: "kv", intervalMs: 250, write: async (p) => {
      if (fail) throw new Error("unavailable");
      ok.push(p.fraction ?? -1);
    } }], (err) => errors.push(err), clock);
    r.report(at(0.1));
    await settle();
    fail = false;
    clock.advance(300);
    r.report(at(0.2));
    await settle();
    assert.equal(errors.length, 1);
    assert.deepEqual(ok, [0.2]);
  });

  it("drops pending writes and ignores reports after close", async () => {
    const { clock, kv, r } = setup();
    r.report(at(0.1));
    clock.advance(10);
    r.report(at(0.2)); // trailing, due at 250
    await r.close();
    r.report(at(0.3));
    clock.advance(2000);
    await settle();
    assert.deepEqual(kv.map(([, f]) => f), [0.1]);
    assert.equal(r.latest?.fraction, 0.2, "the ending carries the last report taken");
  });
});

/** Per task id: the reports the handler made and when, and the gate each waits at. */
const reported = new Map<string, { at: number[]; seen: number }>();
const tasks = [
  // reports done/total for 5 steps, each step waiting until the client saw it (or 3 s)
  defineTask("steps", async (_a, _k, ctx) => {
    const s = { at: [] as number[], seen: 0 };
    reported.set(ctx.taskId, s);
    for (let i = 1; i <= 5; i++) {
      s.at[i] = Date.now();
      ctx.progress({ done: i, total: 5 }, { stage: `step-${i}` });
      const end = Date.now() + 3000;
      while (s.seen < i && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    }
    return "done";
  }),
  // a burst of 200 reports with no pause, then one more after a short while
  defineTask("burst", async (_a, _k, ctx) => {
    for (let i = 1; i <= 200; i++) ctx.progress(i / 200);
    await new Promise((r) => setTimeout(r, 300));
    ctx.progress({ done: 1, total: 1 }, { stage: "finished" });
    return "ok";
  }),
  defineTask("bad-progress", (_a, _k, ctx) => {
    try {
      ctx.progress(NaN);
    } catch (err) {
      return (err as Error).message;
    }
    return "no error";
  }),
];

describe("when a handler reports progress", () => {
  let srv: NatsServer;
  let f: Fixture;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks);
    await f.startWorker();
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  it("the client's onProgress sees every step in order, each within 1 s, and the final record keeps the last", async () => {
    const h = await f.client.enqueue("steps", []);
    const seen: { p: TaskProgress; at: number }[] = [];
    const sub = h.onProgress((p) => {
      seen.push({ p, at: Date.now() });
      const s = reported.get(h.id);
      if (s && p.done !== undefined) s.seen = p.done;
    });
    assert.equal(await h.result({ timeoutMs: 15_000 }), "done");
    const final = await sub.ended;
    assert.equal(final?.status.phase, "Succeeded");
    assert.deepEqual(seen.map((x) => x.p.display), ["1/5", "2/5", "3/5", "4/5", "5/5"]);
    assert.deepEqual(seen.map((x) => x.p.meta), [1, 2, 3, 4, 5].map((i) => ({ stage: `step-${i}` })));
    const s = reported.get(h.id)!;
    for (const [i, x] of seen.entries()) {
      const lag = x.at - (s.at[i + 1] ?? 0);
      assert.ok(lag < 1000, `step ${i + 1} seen ${lag} ms after it was reported`);
    }
    assert.deepEqual((await h.record())?.status.progress, seen.at(-1)?.p, "the final record holds the last report");
    assert.deepEqual(await h.progress(), seen.at(-1)?.p);
  });

  it("a burst is rate-limited: the client sees increasing values, far fewer than reported, and the last one", async () => {
    const h = await f.client.enqueue("burst", []);
    const seen: TaskProgress[] = [];
    const sub = h.onProgress((p) => seen.push(p));
    await h.result({ timeoutMs: 15_000 });
    await sub.ended;
    assert.ok(seen.length >= 2 && seen.length <= 5, `saw ${seen.length} values of 201 reports`);
    const fractions = seen.map((p) => p.fraction ?? 0);
    assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), "in order");
    assert.deepEqual(seen.at(-1), (await h.record())?.status.progress);
    assert.deepEqual(seen.at(-1)?.meta, { stage: "finished" });
  });

  it("onProgress on a finished task delivers its last progress and ends; unsubscribing ends it with undefined", async () => {
    const h = await f.client.enqueue("burst", []);
    await h.result({ timeoutMs: 15_000 });
    const seen: TaskProgress[] = [];
    const sub = h.onProgress((p) => seen.push(p));
    assert.equal((await sub.ended)?.status.phase, "Succeeded");
    assert.deepEqual(seen.map((p) => p.display), ["1/1"]);
    const other = f.client.get("no-such-task").onProgress(() => undefined);
    other();
    other();
    assert.equal(await other.ended, undefined);
  });

  it("a bad report throws a TypeError at the handler that names the argument", async () => {
    const h = await f.client.enqueue("bad-progress", []);
    assert.match(String(await h.result({ timeoutMs: 15_000 })), /^ctx\.progress\(value\): value is NaN/);
    assert.equal(await h.progress(), undefined);
  });

  it("handle.progress() reads the record once", async () => {
    const h = f.client.get("never-enqueued");
    assert.equal(await h.progress(), undefined);
  });
});
