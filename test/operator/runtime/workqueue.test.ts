import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { WorkQueue, TokenBucket, exponentialBackoffMs } from "../../../operator/runtime/workqueue.js";
import { ManualClock } from "./manual-clock.js";

/** Takes every ready key without waiting (each becomes processing). */
async function drain(q: WorkQueue): Promise<string[]> {
  const out: string[] = [];
  while (q.len() > 0) {
    const k = await q.get();
    if (k === undefined) break;
    out.push(k);
  }
  return out;
}

describe("when keys are added", () => {
  const cases: Array<{ name: string; adds: string[]; want: string[] }> = [
    { name: "hands out a single key once", adds: ["a"], want: ["a"] },
    { name: "dedupes repeated keys", adds: ["a", "a", "a"], want: ["a"] },
    { name: "keeps first-add order", adds: ["b", "a", "b", "c", "a"], want: ["b", "a", "c"] },
  ];
  for (const c of cases) {
    it(`${c.name}`, async () => {
      const q = new WorkQueue({ clock: new ManualClock(), bucket: false });
      for (const k of c.adds) q.add(k);
      assert.equal(q.len(), c.want.length);
      assert.deepEqual(await drain(q), c.want);
      assert.equal(q.len(), 0);
    });
  }
});

describe("when a key is added while it is processing", () => {
  it("does not hand it to a second worker until done", async () => {
    const q = new WorkQueue({ clock: new ManualClock(), bucket: false });
    q.add("a");
    const first = await q.get();
    assert.equal(first, "a");
    q.add("a");
    q.add("a");
    assert.equal(q.len(), 0, "a processing key is not ready");
    let second: string | undefined | null = null;
    void q.get().then((k) => {
      second = k;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(second, null, "second worker must wait");
    q.done("a");
    await new Promise((r) => setImmediate(r));
    assert.equal(second, "a", "re-queued once after done");
    q.done("a");
    assert.equal(q.len(), 0, "not re-queued again");
  });

  it("never runs two workers on one key under concurrency", async () => {
    const q = new WorkQueue({ bucket: false });
    const active = new Set<string>();
    let overlaps = 0;
    let processed = 0;
    const workers = Array.from({ length: 4 }, async () => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        if (active.has(k)) overlaps++;
        active.add(k);
        await new Promise((r) => setImmediate(r));
        active.delete(k);
        processed++;
        q.done(k);
      }
    });
    for (let i = 0; i < 200; i++) {
      q.add(`k${i % 3}`);
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 5000;
    while ((q.len() > 0 || ["k0", "k1", "k2"].some((k) => q.isProcessing(k))) && Date.now() < deadline) {
      await new Promise((r) => setImmediate(r));
    }
    q.shutDown();
    await Promise.all(workers);
    assert.equal(overlaps, 0);
    assert.ok(processed >= 3);
  });
});

describe("when keys are rate limited", () => {
  it("computes the pure back-off table", () => {
    const table: Array<[number, number]> = [
      [0, 5],
      [1, 10],
      [2, 20],
      [10, 5120],
      [17, 655_360],
      [18, 1_000_000],
      [5000, 1_000_000],
    ];
    for (const [n, want] of table) assert.equal(exponentialBackoffMs(n), want, `failures=${n}`);
  });

  it("grows the per-key delay and resets it on forget", () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, bucket: false });
    assert.deepEqual([q.addRateLimited("a"), q.addRateLimited("a"), q.addRateLimited("a")], [5, 10, 20]);
    assert.equal(q.numRequeues("a"), 3);
    assert.equal(q.addRateLimited("b"), 5, "keys back off independently");
    q.forget("a");
    assert.equal(q.numRequeues("a"), 0);
    assert.equal(q.addRateLimited("a"), 5);
  });

  it("adds the key once its delay has passed", () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, bucket: false });
    q.addRateLimited("a");
    assert.equal(q.len(), 0);
    clock.advance(4);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
  });

  it("limits the overall rate with the token bucket after the burst", () => {
    const clock = new ManualClock();
    const b = new TokenBucket(clock, { qps: 10, burst: 3 });
    assert.deepEqual([b.reserve(), b.reserve(), b.reserve()], [0, 0, 0]);
    assert.equal(b.reserve(), 100);
    assert.equal(b.reserve(), 200);
    clock.advance(1000);
    assert.equal(b.reserve(), 0, "refilled 10 tokens (capped at burst) paid the debt");
  });

  it("uses the larger of the per-key and bucket delays", () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, bucket: { qps: 10, burst: 1 } });
    assert.equal(q.addRateLimited("a"), 5);
    assert.equal(q.addRateLimited("b"), 100);
  });
});

describe("when keys are added after a delay", () => {
  it("adds them in deadline order", async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, bucket: false });
    q.addAfter("late", 300);
    q.addAfter("early", 100);
    q.addAfter("mid", 200);
    q.addAfter("now", 0);
    assert.deepEqual(await drain(q), ["now"]);
    clock.advance(250);
    assert.deepEqual(await drain(q), ["early", "mid"]);
    clock.advance(100);
    assert.deepEqual(await drain(q), ["late"]);
  });

  it("keeps the earliest deadline of a key", () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, bucket: false });
    q.addAfter("a", 500);
    q.addAfter("a", 100);
    q.addAfter("a", 900);
    assert.equal(clock.pending(), 1);
    clock.advance(100);
    assert.equal(q.len(), 1);
    clock.advance(1000);
    assert.equal(q.len(), 1, "no second add from a cancelled deadline");
  });
});

describe("when the queue shuts down", () => {
  it("releases waiting workers, drops delayed keys and ignores adds", async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock, bucket: false });
    const waiting = q.get();
    q.addAfter("x", 100);
    q.shutDown();
    assert.equal(await waiting, undefined);
    assert.equal(clock.pending(), 0);
    q.add("y");
    assert.equal(q.len(), 0);
    assert.equal(await q.get(), undefined);
  });

  it("waits for in-flight keys with shutDownWithDrain", async () => {
    const q = new WorkQueue({ clock: new ManualClock(), bucket: false });
    q.add("a");
    const k = await q.get();
    let drained = false;
    const p = q.shutDownWithDrain().then(() => {
      drained = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false);
    q.done(k as string);
    await p;
    assert.equal(drained, true);
  });

  it("reports depth changes", async () => {
    const depths: number[] = [];
    const q = new WorkQueue({ clock: new ManualClock(), bucket: false, onDepth: (d) => depths.push(d) });
    q.add("a");
    q.add("b");
    await q.get();
    q.shutDown();
    assert.deepEqual(depths, [1, 2, 1, 0]);
  });
});
