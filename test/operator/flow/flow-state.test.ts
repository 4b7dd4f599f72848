import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueFlowSpec } from "../../../api/flow.js";
import { FlowState, flowPolicy, type FlowPolicy, type HeldTask } from "../../../operator/flow/flow-state.js";

const T0 = 1_700_000_000_000;

let seq = 0;
/** A held task; id defaults to a fresh one, ref to its id. */
function task(over: Partial<HeldTask<string>> = {}): HeldTask<string> {
  const id = over.id ?? `t${++seq}`;
  return { id, task: "work", priority: 0, heldAtMs: T0, ref: id, ...over };
}

/** A state with `spec`'s policy at T0. */
function state(spec: QueueFlowSpec, defaults?: ReadonlyMap<string, number>): FlowState<string> {
  return new FlowState<string>(flowPolicy(spec, defaults), T0);
}

/** Releases one at a time, finishing each at once, `n` times: the keys (or "-") in order. */
function releaseOneByOne(fs: FlowState<string>, n: number, nowMs = T0): HeldTask<string>[] {
  const out: HeldTask<string>[] = [];
  for (let i = 0; i < n; i++) {
    const r = fs.next(nowMs, 1);
    if (r.release.length === 0) break;
    for (const t of r.release) {
      out.push(t);
      fs.finished(t.id);
    }
  }
  return out;
}

/** A deterministic PRNG (mulberry32) for jittered clocks. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Most of `times` (sorted, ms) in any closed window [t, t + windowMs]. */
function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  let j = 0;
  for (let i = 0; i < times.length; i++) {
    while (times[j]! < times[i]! - windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe("when a Queue spec is resolved into a flow policy", () => {
  it("parses the rates (per second), with the default burst 1", () => {
    const p = flowPolicy({ rateLimit: { rate: "120/m" }, rateLimits: { "emails.send": "100/m", fast: "5" } });
    assert.deepEqual(p.queueRate, { perSecond: 2, burst: 1 });
    assert.ok(Math.abs(p.taskRates.get("emails.send")! - 100 / 60) < 1e-12);
    assert.equal(p.taskRates.get("fast"), 5);
    assert.equal(p.keyLimit, undefined);
    assert.equal(p.fairness, "RoundRobin");
    assert.equal(p.levels, 1);
    assert.equal(p.starvationGuardPercent, 10);
  });

  it("takes the workers' task defaults, and spec.rateLimits wins over them", () => {
    const p = flowPolicy({ rateLimits: { a: "1/s" } }, new Map([["a", 50], ["b", 0.5]]));
    assert.equal(p.taskRates.get("a"), 1);
    assert.equal(p.taskRates.get("b"), 0.5);
  });

  it("resolves keys, overrides, weights, fairness and priorities", () => {
    const p = flowPolicy({ concurrencyKeys: { limit: 2, overrides: { big: 10, off: 0 }, fairness: "Weighted", weights: { big: 3 } }, priorities: { levels: 3, starvationGuardPercent: 0 }, rateLimit: { rate: "50/s", burst: 5 } });
    assert.equal(p.keyLimit, 2);
    assert.deepEqual(p.keyOverrides, { big: 10, off: 0 });
    assert.deepEqual(p.weights, { big: 3 });
    assert.equal(p.fairness, "Weighted");
    assert.equal(p.levels, 3);
    assert.equal(p.starvationGuardPercent, 0);
    assert.deepEqual(p.queueRate, { perSecond: 50, burst: 5 });
  });

  /** [case, spec, defaults, error] */
  const bad: Array<[string, QueueFlowSpec, Map<string, number> | undefined, RegExp]> = [
    ["a malformed queue rate", { rateLimit: { rate: "fast" } }, undefined, /^Error: spec\.rateLimit\.rate: "fast" is not a rate/],
    ["a zero queue rate", { rateLimit: { rate: "0/s" } }, undefined, /spec\.rateLimit\.rate/],
    ["a fractional burst", { rateLimit: { rate: "1/s", burst: 1.5 } }, undefined, /spec\.rateLimit\.burst: 1\.5/],
    ["a malformed task rate", { rateLimits: { "emails.send": "10/d" } }, undefined, /spec\.rateLimits\["emails\.send"\]: "10\/d"/],
    ["a task default that is not positive", {}, new Map([["x", -1]]), /rateLimit of task "x"/],
    ["a key limit of 0", { concurrencyKeys: { limit: 0 } }, undefined, /spec\.concurrencyKeys\.limit: 0/],
    ["a negative override", { concurrencyKeys: { limit: 1, overrides: { a: -1 } } }, undefined, /spec\.concurrencyKeys\.overrides\["a"\]: -1/],
    ["a weight of 0", { concurrencyKeys: { limit: 1, weights: { a: 0 } } }, undefined, /spec\.concurrencyKeys\.weights\["a"\]: 0/],
    ["an unknown fairness", { concurrencyKeys: { limit: 1, fairness: "Random" as "RoundRobin" } }, undefined, /spec\.concurrencyKeys\.fairness: "Random"/],
    ["one level", { priorities: { levels: 1 } }, undefined, /spec\.priorities\.levels: 1/],
    ["a guard above 50%", { priorities: { levels: 2, starvationGuardPercent: 80 } }, undefined, /spec\.priorities\.starvationGuardPercent: 80/],
  ];
  for (const [name, spec, defaults, error] of bad) {
    it(`refuses ${name}, naming the field`, () => {
      assert.throws(() => flowPolicy(spec, defaults), (e: Error) => error.test(String(e)));
    });
  }
});

describe("when the queue has a rate limit", () => {
  it("releases the burst at once, then one per token; never more than rate + burst in any 1 s window over 10 s, on average the rate within 1%", () => {
    const fs = state({ rateLimit: { rate: "50/s", burst: 5 } });
    for (let i = 0; i < 2_000; i++) fs.hold(task());
    const times: number[] = [];
    let now = T0;
    while (now <= T0 + 10_000) {
      const r = fs.next(now, 1_000);
      for (const t of r.release) {
        times.push(now);
        fs.finished(t.id);
      }
      assert.ok(r.retryAtMs !== undefined && r.retryAtMs > now, "a rate-limited next says when to come back");
      now = r.retryAtMs;
    }
    assert.equal(times.filter((t) => t === T0).length, 5);
    assert.ok(maxInWindow(times, 1_000) <= 55, `${maxInWindow(times, 1_000)} in a 1 s window`);
    const avg = (times.length - 5) / 10;
    assert.ok(Math.abs(avg - 50) / 50 < 0.01, `average ${avg}/s`);
  });

  it("holds the same bounds when the dispatcher calls at jittered times rather than at retryAtMs", () => {
    const fs = state({ rateLimit: { rate: "50/s", burst: 5 } });
    for (let i = 0; i < 2_000; i++) fs.hold(task());
    const rnd = prng(7);
    const times: number[] = [];
    for (let now = T0; now <= T0 + 10_000; now += Math.floor(rnd() * 13)) {
      for (const t of fs.next(now, 1_000).release) {
        times.push(now);
        fs.finished(t.id);
      }
    }
    assert.ok(maxInWindow(times, 1_000) <= 55, `${maxInWindow(times, 1_000)} in a 1 s window`);
    const avg = (times.length - 5) / 10;
    assert.ok(Math.abs(avg - 50) / 50 < 0.01, `average ${avg}/s`);
  });

  it("takes a token from the queue's and the task name's bucket for each release", () => {
    const fs = state({ rateLimit: { rate: "10/s", burst: 2 }, rateLimits: { a: "1/s" } });
    fs.hold(task({ id: "a1", task: "a" }));
    fs.hold(task({ id: "a2", task: "a" }));
    fs.hold(task({ id: "b1", task: "b" }));
    fs.hold(task({ id: "b2", task: "b" }));
    const r = fs.next(T0, 10);
    assert.deepEqual(r.release.map((t) => t.id), ["a1", "b1"]);
    assert.equal(r.retryAtMs, T0 + 100, "the queue bucket is the one to wait for");
    assert.deepEqual(fs.next(T0 + 100, 10).release.map((t) => t.id), ["b2"]);
    const r3 = fs.next(T0 + 200, 10);
    assert.deepEqual(r3.release, [], "a2 waits for its name's token");
    assert.equal(r3.retryAtMs, T0 + 1_000);
    assert.deepEqual(fs.next(T0 + 1_000, 10).release.map((t) => t.id), ["a2"]);
  });
});

describe("when a task name has a rate limit", () => {
  it("releases its tasks at that rate (capacity 1, as Celery's rate_limit) and in FIFO order", () => {
    const fs = state({ rateLimits: { slow: "3/s" } });
    for (let i = 0; i < 100; i++) fs.hold(task({ id: `s${i}`, task: "slow" }));
    const out: Array<[number, string]> = [];
    let now = T0;
    while (now <= T0 + 10_000) {
      const r = fs.next(now, 100);
      for (const t of r.release) out.push([now, t.id]);
      assert.ok(r.retryAtMs !== undefined);
      now = r.retryAtMs;
    }
    assert.equal(out.length, 31, "1 at once, then 3 per second for 10 s");
    assert.deepEqual(out.map(([, id]) => id), Array.from({ length: 31 }, (_, i) => `s${i}`));
    assert.ok(maxInWindow(out.map(([t]) => t), 1_000) <= 4);
  });

  it("does not block other task names queued behind it, in the same key and across keys", () => {
    const fs = state({ rateLimits: { slow: "1/s" }, concurrencyKeys: { limit: 100 } });
    for (let i = 0; i < 5; i++) fs.hold(task({ id: `s${i}`, task: "slow", key: "k" }));
    for (let i = 0; i < 5; i++) fs.hold(task({ id: `f${i}`, task: "fast", key: "k" }));
    for (let i = 0; i < 5; i++) fs.hold(task({ id: `o${i}`, task: "slow", key: "other" }));
    const r = fs.next(T0, 100);
    assert.deepEqual(r.release.map((t) => t.id).sort(), ["f0", "f1", "f2", "f3", "f4", "s0"]);
    assert.equal(r.retryAtMs, T0 + 1_000);
    const r2 = fs.next(T0 + 999, 100);
    assert.deepEqual(r2.release, []);
    assert.equal(r2.retryAtMs, T0 + 1_000);
    const ids = fs.next(T0 + 1_000, 100).release.map((t) => t.id);
    assert.equal(ids.length, 1);
    assert.ok(ids[0] === "s1" || ids[0] === "o0", `FIFO within the name: ${ids[0]}`);
  });

  it("keeps next cheap while 1,000 keys wait for one task name's rate, and the rate holds", (t) => {
    const fs = state({ rateLimits: { "emails.send": "10/s" }, concurrencyKeys: { limit: 5 } });
    for (let k = 0; k < 1_000; k++) for (let i = 0; i < 5; i++) fs.hold(task({ task: "emails.send", key: `k${k}` }));
    const times: number[] = [];
    const started = performance.now();
    for (let now = T0; now <= T0 + 10_000; now++) {
      if (now % 100 === 0) fs.hold(task({ task: "other", key: `k${now % 1_000}` }));
      for (const x of fs.next(now, 100).release) {
        fs.finished(x.id);
        if (x.task === "emails.send") times.push(now);
        else assert.ok(now % 100 === 0, "another task name is not held back by emails.send's rate");
      }
    }
    const ms = performance.now() - started;
    t.diagnostic(`10,001 next calls over 1,000 rate-blocked keys: ${ms.toFixed(0)} ms`);
    assert.equal(times.length, 101, "1 at once, then 10/s for 10 s");
    assert.ok(maxInWindow(times, 1_000) <= 11);
    assert.ok(ms < 5_000, `${ms.toFixed(0)} ms`);
    assert.equal(fs.snapshot(T0 + 10_000).rateLimited, true);
    const w = fs.waiting(T0 + 10_000, 1_000);
    assert.equal(w.length, 5_000 - 101);
    assert.ok(w.every((x) => x.waiting.reason === "RateLimited" && x.waiting.message === "task emails.send rate limit 10/s"));
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 5 } }), T0 + 10_001);
    assert.equal(fs.next(T0 + 10_001, 10_000).release.length, 5_000 - 101, "the rate lifted: every key's tasks go (limit 5 each)");
  });

  it("returns no retryAtMs when nothing is held back by a rate", () => {
    const fs = state({ concurrencyKeys: { limit: 1 } });
    fs.hold(task({ key: "a" }));
    fs.hold(task({ key: "a" }));
    const r1 = fs.next(T0, 10);
    assert.equal(r1.release.length, 1);
    assert.equal(r1.retryAtMs, undefined);
    const r2 = fs.next(T0, 10);
    assert.deepEqual(r2, { release: [] });
    assert.deepEqual(fs.next(T0, 0), { release: [] });
  });
});

describe("when keys have concurrency limits", () => {
  it("never runs more of a key than its limit (or override), and every key progresses", () => {
    const fs = state({ concurrencyKeys: { limit: 2, overrides: { k4: 4 } } });
    const keys = ["k0", "k1", "k2", "k3", "k4"];
    const limit = (k: string): number => (k === "k4" ? 4 : 2);
    for (let i = 0; i < 300; i++) fs.hold(task({ id: `t${i}`, key: keys[i % 5] }));
    const rnd = prng(42);
    const runningPerKey = new Map<string, number>();
    const runs: Array<{ id: string; key: string; until: number }> = [];
    const started = new Map<string, number[]>();
    let done = 0;
    for (let now = T0; done < 300 && now < T0 + 600_000; now += 5) {
      for (const r of runs.filter((r) => r.until <= now)) {
        runs.splice(runs.indexOf(r), 1);
        runningPerKey.set(r.key, runningPerKey.get(r.key)! - 1);
        assert.equal(fs.finished(r.id), true);
        done++;
      }
      const budget = 24 - runs.length; // 3 workers × concurrency 8
      for (const t of fs.next(now, budget).release) {
        const n = (runningPerKey.get(t.key!) ?? 0) + 1;
        runningPerKey.set(t.key!, n);
        assert.ok(n <= limit(t.key!), `key ${t.key}: ${n} running, limit ${limit(t.key!)}`);
        runs.push({ id: t.id, key: t.key!, until: now + 10 + Math.floor(rnd() * 90) });
        started.set(t.key!, [...(started.get(t.key!) ?? []), now]);
      }
      assert.ok(runs.length <= 24);
    }
    assert.equal(done, 300);
    assert.equal(fs.heldCount, 0);
    assert.equal(fs.releasedCount, 0);
    // every key starts at once, and the small keys are not starved by the big one
    for (const k of keys) assert.equal(started.get(k)![0], T0, `key ${k} starts at once`);
    const firstHalf = [...started.values()].flat().sort((a, b) => a - b)[150]!;
    for (const k of keys.slice(0, 4)) assert.ok(started.get(k)!.filter((t) => t <= firstHalf).length >= 15, `key ${k} progresses`);
  });

  it("holds a key whose override is 0 (paused) until the override changes", () => {
    const spec: QueueFlowSpec = { concurrencyKeys: { limit: 2, overrides: { off: 0 } } };
    const fs = state(spec);
    for (let i = 0; i < 3; i++) fs.hold(task({ id: `off${i}`, key: "off" }));
    fs.hold(task({ id: "on", key: "on" }));
    assert.deepEqual(fs.next(T0, 10).release.map((t) => t.id), ["on"]);
    assert.deepEqual(fs.next(T0 + 1, 10).release, []);
    const s = fs.snapshot(T0 + 1);
    assert.equal(s.runnable, 0);
    assert.deepEqual(s.keys?.find((k) => k.key === "off"), { key: "off", held: 3, running: 0, limit: 0 });
    const w = fs.waiting(T0 + 2_000, 1_000);
    assert.deepEqual(w.map((x) => [x.id, x.waiting.reason, x.waiting.message]), [
      ["off0", "ConcurrencyLimited", "key off is paused (limit 0)"],
      ["off1", "ConcurrencyLimited", "key off is paused (limit 0)"],
      ["off2", "ConcurrencyLimited", "key off is paused (limit 0)"],
    ]);
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 2, overrides: { off: 1 } } }), T0 + 3_000);
    assert.deepEqual(fs.next(T0 + 3_000, 10).release.map((t) => t.id), ["off0"]);
    assert.deepEqual(fs.next(T0 + 3_000, 10).release, []);
    fs.finished("off0");
    assert.deepEqual(fs.next(T0 + 3_001, 10).release.map((t) => t.id), ["off1"]);
  });

  it("lets unkeyed tasks run without a limit", () => {
    const fs = state({ concurrencyKeys: { limit: 1 } });
    for (let i = 0; i < 50; i++) fs.hold(task());
    assert.equal(fs.next(T0, 100).release.length, 50);
    assert.equal(fs.releasedCount, 50);
  });
});

describe("when keys share a level (fairness)", () => {
  it("round-robin: key B's 10 tasks, enqueued after key A's 2,000, go out within the next 20 releases", () => {
    const fs = state({ concurrencyKeys: { limit: 1_000 } });
    for (let i = 0; i < 2_000; i++) fs.hold(task({ key: "A" }));
    assert.equal(releaseOneByOne(fs, 100).length, 100);
    for (let i = 0; i < 10; i++) fs.hold(task({ key: "B" }));
    const next20 = releaseOneByOne(fs, 20);
    assert.equal(next20.filter((t) => t.key === "B").length, 10);
    // in one call too
    const fs2 = state({ concurrencyKeys: { limit: 1_000 } });
    for (let i = 0; i < 2_000; i++) fs2.hold(task({ key: "A" }));
    for (let i = 0; i < 10; i++) fs2.hold(task({ key: "B" }));
    assert.equal(fs2.next(T0, 20).release.filter((t) => t.key === "B").length, 10);
  });

  it("round-robin: one task per key in turn, the unkeyed group taking its turn like a key", () => {
    const fs = state({ concurrencyKeys: { limit: 100 } });
    for (let i = 0; i < 10; i++) {
      fs.hold(task({ key: "A" }));
      fs.hold(task({ key: "B" }));
      fs.hold(task({}));
    }
    const out = fs.next(T0, 30).release.map((t) => t.key ?? "-");
    for (let round = 0; round < 10; round++) assert.deepEqual(out.slice(round * 3, round * 3 + 3).sort(), ["-", "A", "B"], `round ${round}: ${out.join("")}`);
  });

  it("round-robin: a key that comes back (its override lifted, a slot freed) takes its turn, without a catch-up burst", () => {
    const fs = state({ concurrencyKeys: { limit: 100, overrides: { A: 0 } } });
    for (let i = 0; i < 50; i++) {
      fs.hold(task({ key: "A" }));
      fs.hold(task({ key: "B" }));
    }
    assert.deepEqual(fs.next(T0, 20).release.map((t) => t.key), new Array(20).fill("B"));
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 100 } }), T0);
    assert.equal(fs.next(T0, 10).release.filter((t) => t.key === "A").length, 5);
  });

  it("weighted: shares follow the weights (default 1) and interleave", () => {
    const fs = state({ concurrencyKeys: { limit: 10_000, fairness: "Weighted", weights: { A: 3 } } });
    for (let i = 0; i < 1_000; i++) {
      fs.hold(task({ key: "A" }));
      fs.hold(task({ key: "B" }));
      fs.hold(task({ key: "C" }));
    }
    const out = releaseOneByOne(fs, 500).map((t) => t.key!);
    const count = (k: string): number => out.filter((x) => x === k).length;
    assert.ok(Math.abs(count("A") - 300) <= 2, `A ${count("A")}`);
    assert.ok(Math.abs(count("B") - 100) <= 2, `B ${count("B")}`);
    assert.ok(Math.abs(count("C") - 100) <= 2, `C ${count("C")}`);
    let run = 0;
    let longest = 0;
    for (let i = 0; i < out.length; i++) {
      run = i > 0 && out[i] === out[i - 1] ? run + 1 : 1;
      longest = Math.max(longest, run);
    }
    assert.ok(longest <= 3, `longest run ${longest}`);
  });

  it("keeps FIFO order within a key", () => {
    const fs = state({ concurrencyKeys: { limit: 100 } });
    for (let i = 0; i < 20; i++) fs.hold(task({ id: `a${i}`, key: "A" }));
    for (let i = 0; i < 20; i++) fs.hold(task({ id: `b${i}`, key: "B" }));
    const out = fs.next(T0, 40).release.map((t) => t.id);
    assert.deepEqual(out.filter((id) => id.startsWith("a")), Array.from({ length: 20 }, (_, i) => `a${i}`));
    assert.deepEqual(out.filter((id) => id.startsWith("b")), Array.from({ length: 20 }, (_, i) => `b${i}`));
  });
});

describe("when tasks have priorities", () => {
  it("releases higher levels first: 20 high after 1,000 low all go before 50 more low (guard 10%)", () => {
    const fs = state({ priorities: { levels: 3 } });
    for (let i = 0; i < 1_000; i++) fs.hold(task({ priority: 0 }));
    assert.equal(releaseOneByOne(fs, 10).length, 10);
    for (let i = 0; i < 20; i++) fs.hold(task({ priority: 2, heldAtMs: T0 + 1 }));
    const out = releaseOneByOne(fs, 200, T0 + 1);
    const lastHigh = out.map((t) => t.priority).lastIndexOf(2);
    const lowBefore = out.slice(0, lastHigh).filter((t) => t.priority === 0).length;
    assert.ok(lowBefore < 50, `${lowBefore} low before the last high`);
    assert.ok(lowBefore <= 3, `the guard's share only: ${lowBefore}`);
  });

  it("keeps low priorities progressing at the guard's share under a steady stream of high ones", () => {
    const fs = state({ priorities: { levels: 2, starvationGuardPercent: 10 } });
    for (let i = 0; i < 500; i++) fs.hold(task({ priority: 0 }));
    let low = 0;
    for (let i = 0; i < 1_000; i++) {
      fs.hold(task({ priority: 1, heldAtMs: T0 + i }));
      fs.hold(task({ priority: 1, heldAtMs: T0 + i }));
      for (const t of fs.next(T0 + i, 1).release) {
        if (t.priority === 0) low++;
        fs.finished(t.id);
      }
    }
    assert.ok(low >= 90 && low <= 110, `${low} of 1,000 releases went to low`);
  });

  it("strict priority (guard 0) releases nothing low while high tasks are releasable", () => {
    const fs = state({ priorities: { levels: 2, starvationGuardPercent: 0 } });
    for (let i = 0; i < 100; i++) fs.hold(task({ priority: 0 }));
    for (let i = 0; i < 100; i++) fs.hold(task({ priority: 1 }));
    const out = fs.next(T0, 150).release;
    assert.deepEqual(out.slice(0, 100).map((t) => t.priority), new Array(100).fill(1));
    assert.equal(out.length, 150);
  });

  it("the guard's release goes to the longest-waiting task of any lower level", () => {
    const fs = state({ priorities: { levels: 3, starvationGuardPercent: 50 } });
    fs.hold(task({ id: "mid", priority: 1, heldAtMs: T0 + 5 }));
    fs.hold(task({ id: "old-low", priority: 0, heldAtMs: T0 }));
    for (let i = 0; i < 10; i++) fs.hold(task({ id: `h${i}`, priority: 2, heldAtMs: T0 + 10 }));
    const out = fs.next(T0 + 20, 4).release.map((t) => t.id);
    assert.deepEqual(out, ["h0", "old-low", "h1", "mid"]);
  });

  it("a key's slots are shared by its tasks of every level", () => {
    const fs = state({ priorities: { levels: 2, starvationGuardPercent: 50 }, concurrencyKeys: { limit: 1 } });
    fs.hold(task({ id: "low-a1", priority: 0, key: "a" }));
    fs.hold(task({ id: "low-a2", priority: 0, key: "a" }));
    fs.hold(task({ id: "high-a", priority: 1, key: "a" }));
    for (let i = 0; i < 5; i++) fs.hold(task({ id: `high${i}`, priority: 1 }));
    const out = fs.next(T0, 10).release.map((t) => t.id);
    assert.equal(out.filter((id) => id.startsWith("low")).length + out.filter((id) => id === "high-a").length, 1, "one slot for key a");
    assert.equal(out.filter((id) => /^high[0-9]/.test(id)).length, 5);
  });
});

describe("when releases are published, fail or finish (bookkeeping)", () => {
  it("unrelease puts the task back at the head of its key and gives its slot back, not its token", () => {
    const fs = state({ concurrencyKeys: { limit: 1 }, rateLimit: { rate: "1/s", burst: 2 } });
    fs.hold(task({ id: "a1", key: "a" }));
    fs.hold(task({ id: "a2", key: "a" }));
    const r = fs.next(T0, 1);
    assert.deepEqual(r.release.map((t) => t.id), ["a1"]);
    assert.equal(fs.releasedCount, 1);
    assert.deepEqual(fs.next(T0, 5), { release: [] }, "key a at its limit");
    fs.unrelease(r.release[0]!);
    assert.equal(fs.releasedCount, 0);
    assert.equal(fs.heldCount, 2);
    assert.deepEqual(fs.next(T0, 5).release.map((t) => t.id), ["a1"], "back at the head, its slot free again: the burst's second token");
    fs.unrelease(r.release[0]!);
    const r3 = fs.next(T0, 5);
    assert.deepEqual(r3.release, [], "the tokens it took are not given back");
    assert.equal(r3.retryAtMs, T0 + 1_000);
    assert.deepEqual(fs.next(T0 + 1_000, 5).release.map((t) => t.id), ["a1"]);
    fs.finished("a1");
    assert.deepEqual(fs.next(T0 + 2_000, 5).release.map((t) => t.id), ["a2"]);
  });

  it("unrelease keeps the key's FIFO: the failed task is the key's next", () => {
    const fs = state({ concurrencyKeys: { limit: 5 } });
    for (let i = 0; i < 5; i++) fs.hold(task({ id: `a${i}`, key: "a" }));
    const out = fs.next(T0, 3).release;
    assert.deepEqual(out.map((t) => t.id), ["a0", "a1", "a2"]);
    fs.unrelease(out[1]!);
    fs.unrelease(out[0]!);
    assert.deepEqual(fs.next(T0, 10).release.map((t) => t.id), ["a0", "a1", "a3", "a4"]);
  });

  it("finished frees the slot once and says whether the task was tracked", () => {
    const fs = state({ concurrencyKeys: { limit: 1 } });
    fs.hold(task({ id: "a1", key: "a" }));
    fs.hold(task({ id: "a2", key: "a" }));
    assert.deepEqual(fs.next(T0, 5).release.map((t) => t.id), ["a1"]);
    assert.deepEqual(fs.next(T0, 5).release, []);
    assert.equal(fs.finished("a1"), true);
    assert.equal(fs.finished("a1"), false);
    assert.equal(fs.finished("nope"), false);
    assert.deepEqual(fs.next(T0, 5).release.map((t) => t.id), ["a2"]);
    assert.equal(fs.finished("a2"), true);
    assert.equal(fs.releasedCount, 0);
    assert.deepEqual(fs.snapshot(T0), { held: 0, runnable: 0, rateLimited: false }, "an idle key is forgotten");
  });

  it("running (found unfinished at start) occupies its key's slot until finished", () => {
    const fs = state({ concurrencyKeys: { limit: 1 } });
    fs.running("w1", "a", T0);
    fs.running("w2", undefined, T0);
    assert.equal(fs.releasedCount, 2);
    fs.hold(task({ id: "a1", key: "a" }));
    assert.deepEqual(fs.next(T0, 5).release, []);
    assert.deepEqual(fs.snapshot(T0).keys, [{ key: "a", held: 1, running: 1, limit: 1 }]);
    assert.equal(fs.finished("w1"), true);
    assert.deepEqual(fs.next(T0, 5).release.map((t) => t.id), ["a1"]);
  });

  it("a held copy of a running or released task is released again first, without a slot or token", () => {
    const fs = state({ concurrencyKeys: { limit: 1 }, rateLimit: { rate: "1/s" } });
    fs.hold(task({ id: "a1", key: "a", ref: "held-copy" }));
    fs.running("a1", "a", T0); // the work stream shows it: the held copy is a repeat
    fs.hold(task({ id: "a2", key: "a" }));
    const r = fs.next(T0, 5);
    assert.deepEqual(r.release.map((t) => [t.id, t.ref]), [["a1", "held-copy"]], "the repeat goes out although key a is at its limit; a2 waits");
    assert.equal(fs.releasedCount, 1);
    assert.deepEqual(fs.snapshot(T0).keys, [{ key: "a", held: 1, running: 1, limit: 1 }]);
    // a redelivered held copy of a task we released (its ack was lost)
    fs.finished("a1");
    const r2 = fs.next(T0 + 1_000, 5);
    assert.deepEqual(r2.release.map((t) => t.id), ["a2"]);
    fs.hold(task({ id: "a2", key: "a", ref: "again" }));
    assert.equal(fs.heldCount, 1);
    const r3 = fs.next(T0 + 1_001, 5);
    assert.deepEqual(r3.release.map((t) => t.ref), ["again"], "no token needed, slot not taken twice");
    assert.deepEqual(fs.snapshot(T0 + 1_001).keys, [{ key: "a", held: 0, running: 1, limit: 1 }]);
    fs.unrelease(r3.release[0]!); // its publish failed: it is a repeat again, the slot stays
    assert.deepEqual(fs.next(T0 + 1_002, 5).release.map((t) => t.ref), ["again"]);
    assert.equal(fs.finished("a2"), true);
    assert.equal(fs.releasedCount, 0);
  });

  it("a second hold of a held id replaces its ref and keeps its place", () => {
    const fs = state({});
    fs.hold(task({ id: "a", ref: "r1" }));
    fs.hold(task({ id: "b" }));
    fs.hold(task({ id: "a", ref: "r2" }));
    assert.equal(fs.heldCount, 2);
    assert.deepEqual(fs.next(T0, 5).release.map((t) => [t.id, t.ref]), [["a", "r2"], ["b", "b"]]);
  });

  it("drop forgets a held task without a slot", () => {
    const fs = state({ concurrencyKeys: { limit: 1 } });
    fs.hold(task({ id: "a1", key: "a" }));
    fs.hold(task({ id: "a2", key: "a" }));
    fs.hold(task({ id: "a3", key: "a" }));
    assert.equal(fs.drop("a2")?.id, "a2");
    assert.equal(fs.drop("a2"), undefined);
    assert.equal(fs.drop("nope"), undefined);
    assert.equal(fs.heldCount, 2);
    assert.equal(fs.drop("a1")?.id, "a1");
    assert.deepEqual(fs.next(T0, 5).release.map((t) => t.id), ["a3"]);
    assert.equal(fs.drop("a3"), undefined, "released is not held");
    assert.equal(fs.heldCount, 0);
  });

  it("unfinishedOlderThan lists released tasks without a finish for ageMs and restarts their clocks", () => {
    const fs = state({});
    fs.hold(task({ id: "a" }));
    fs.next(T0, 5);
    fs.running("w", undefined, T0 + 500);
    assert.deepEqual(fs.unfinishedOlderThan(T0 + 999, 1_000), []);
    assert.deepEqual(fs.unfinishedOlderThan(T0 + 1_000, 1_000), ["a"]);
    assert.deepEqual(fs.unfinishedOlderThan(T0 + 1_500, 1_000), ["w"]);
    assert.deepEqual(fs.unfinishedOlderThan(T0 + 1_999, 1_000), []);
    assert.deepEqual(fs.unfinishedOlderThan(T0 + 2_000, 1_000), ["a"]);
    fs.finished("a");
    assert.deepEqual(fs.unfinishedOlderThan(T0 + 10_000, 1_000), ["w"]);
  });
});

describe("when the policy changes", () => {
  it("keeps held tasks, running slots and earned tokens", () => {
    const fs = state({ concurrencyKeys: { limit: 1 }, rateLimit: { rate: "1/s", burst: 1 } });
    for (let i = 0; i < 5; i++) fs.hold(task({ id: `a${i}`, key: "a" }));
    assert.deepEqual(fs.next(T0, 5).release.map((t) => t.id), ["a0"]);
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 3 }, rateLimit: { rate: "10/s", burst: 5 } }), T0 + 500);
    assert.equal(fs.heldCount, 4);
    assert.equal(fs.releasedCount, 1);
    // half a token earned at 1/s, then 10/s: the next token at +50 ms
    const r = fs.next(T0 + 500, 5);
    assert.deepEqual(r.release, []);
    assert.equal(r.retryAtMs, T0 + 550);
    assert.deepEqual(fs.next(T0 + 550, 5).release.map((t) => t.id), ["a1"]);
    assert.deepEqual(fs.next(T0 + 650, 5).release.map((t) => t.id), ["a2"], "3 running: the key's new limit");
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 1 } }), T0 + 700);
    fs.finished("a0");
    assert.deepEqual(fs.next(T0 + 700, 5).release, [], "2 still running above the lowered limit");
    fs.finished("a1");
    fs.finished("a2");
    assert.deepEqual(fs.next(T0 + 700, 5).release.map((t) => t.id), ["a3"], "no rate limit any more");
  });

  it("starts the starvation guard for tasks already held when priorities are added", () => {
    const fs = state({ concurrencyKeys: { limit: 100 } });
    for (let i = 0; i < 10; i++) fs.hold(task({ id: `low${i}`, priority: 0, heldAtMs: T0 + i }));
    for (let i = 0; i < 10; i++) fs.hold(task({ id: `high${i}`, priority: 2, heldAtMs: T0 + 100 + i }));
    assert.deepEqual(fs.next(T0 + 200, 4).release.map((t) => t.id), ["high0", "high1", "high2", "high3"], "one level in the policy: no guard");
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 100 }, priorities: { levels: 3, starvationGuardPercent: 50 } }), T0 + 200);
    assert.deepEqual(fs.next(T0 + 200, 4).release.map((t) => t.id), ["high4", "low0", "high5", "low1"]);
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 100 }, priorities: { levels: 3, starvationGuardPercent: 0 } }), T0 + 200);
    assert.deepEqual(fs.next(T0 + 200, 5).release.map((t) => t.id), ["high6", "high7", "high8", "high9", "low2"]);
  });

  it("applies new weights to the keys already held", () => {
    const fs = state({ concurrencyKeys: { limit: 10_000 } });
    for (let i = 0; i < 500; i++) {
      fs.hold(task({ key: "A" }));
      fs.hold(task({ key: "B" }));
    }
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 10_000, fairness: "Weighted", weights: { B: 4 } } }), T0);
    const out = releaseOneByOne(fs, 100);
    assert.ok(Math.abs(out.filter((t) => t.key === "B").length - 80) <= 2);
  });
});

describe("when the dispatcher reports status", () => {
  it("snapshot: held, runnable (free slots only, capped by the queue rate), rateLimited and the top keys", () => {
    const fs = state({ concurrencyKeys: { limit: 2 } });
    for (let k = 1; k <= 12; k++) for (let i = 0; i < k; i++) fs.hold(task({ key: `k${String(k).padStart(2, "0")}` }));
    for (let i = 0; i < 3; i++) fs.hold(task());
    let s = fs.snapshot(T0);
    assert.equal(s.held, 78 + 3);
    assert.equal(s.runnable, 1 + 2 * 11 + 3, "k01 has 1 held; the others 2 free slots each; 3 unkeyed");
    assert.equal(s.rateLimited, false);
    assert.deepEqual(s.keys?.map((k) => k.key), ["k12", "k11", "k10", "k09", "k08", "k07", "k06", "k05", "k04", "k03"]);
    assert.deepEqual(s.keys?.[0], { key: "k12", held: 12, running: 0, limit: 2 });
    fs.next(T0, 1_000);
    s = fs.snapshot(T0);
    assert.equal(s.held, 78 - 23);
    assert.equal(s.runnable, 0, "every key at its limit");
    assert.deepEqual(s.keys?.[0], { key: "k12", held: 10, running: 2, limit: 2 });

    const rated = state({ rateLimit: { rate: "2/s", burst: 1 } });
    for (let i = 0; i < 20; i++) rated.hold(task());
    assert.equal(rated.snapshot(T0).runnable, 3, "ceil(2/s × 1 s) + burst 1");
    assert.equal(rated.snapshot(T0).rateLimited, false);
    rated.next(T0, 10);
    assert.equal(rated.snapshot(T0).rateLimited, true);
    assert.equal(rated.snapshot(T0).keys, undefined);
    let now = T0;
    while (rated.heldCount > 0) {
      now += 500;
      rated.next(now, 10);
    }
    assert.equal(rated.snapshot(now).rateLimited, false, "nothing held: not rate-limited");
  });

  it("waiting: reports each task held at least minHeldMs once, with its reason and since", () => {
    const fs = state({ rateLimit: { rate: "1/s" }, rateLimits: { slow: "30/m" }, concurrencyKeys: { limit: 1 }, priorities: { levels: 2 } });
    fs.running("w", "busy", T0);
    fs.hold(task({ id: "keyed", key: "busy", heldAtMs: T0 }));
    fs.hold(task({ id: "first", heldAtMs: T0 }));
    fs.hold(task({ id: "queue-rate", heldAtMs: T0 }));
    fs.hold(task({ id: "slow1", task: "slow", priority: 1, heldAtMs: T0 + 100 }));
    fs.hold(task({ id: "young", heldAtMs: T0 + 900 }));
    assert.deepEqual(fs.next(T0 + 100, 10).release.map((t) => t.id), ["slow1"]);
    fs.hold(task({ id: "slow2", task: "slow", priority: 1, heldAtMs: T0 + 100 }));
    assert.deepEqual(fs.waiting(T0 + 500, 1_000), []);
    const w = fs.waiting(T0 + 1_100, 1_000);
    assert.deepEqual(
      w.map((x) => [x.id, x.ref, x.waiting.reason, x.waiting.message, x.waiting.since]),
      [
        ["keyed", "keyed", "ConcurrencyLimited", "key busy: 1 of 1 running", new Date(T0).toISOString()],
        ["first", "first", "Priority", "1 task of higher priority first", new Date(T0).toISOString()],
        ["queue-rate", "queue-rate", "Priority", "1 task of higher priority first", new Date(T0).toISOString()],
        ["slow2", "slow2", "RateLimited", "task slow rate limit 30/m", new Date(T0 + 100).toISOString()],
      ],
    );
    assert.deepEqual(fs.waiting(T0 + 1_200, 1_000), [], "once per task");
    fs.drop("slow2");
    const w2 = fs.waiting(T0 + 2_000, 1_000);
    assert.deepEqual(w2.map((x) => [x.id, x.waiting.reason, x.waiting.message]), [["young", "RateLimited", "queue rate limit 1/s"]]);
  });

  it("waiting: a task held only because the work stream is full has no flow reason and is not reported", () => {
    const fs = state({ concurrencyKeys: { limit: 10 } });
    fs.hold(task({ id: "a", key: "a" }));
    assert.deepEqual(fs.waiting(T0 + 5_000, 1_000), []);
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 10, overrides: { a: 0 } } }), T0 + 5_000);
    assert.deepEqual(fs.waiting(T0 + 5_000, 1_000).map((x) => x.waiting.reason), ["ConcurrencyLimited"]);
  });
});

describe("when the held set is large", () => {
  it("holds and releases 100,000 tasks over 1,000 keys in well under a second (bound: 5 s)", (t) => {
    const policy: FlowPolicy = flowPolicy({ concurrencyKeys: { limit: 5 }, priorities: { levels: 3 }, rateLimit: { rate: "1000000/s", burst: 1000 } });
    const fs = new FlowState<number>(policy, T0);
    const started = performance.now();
    for (let i = 0; i < 100_000; i++) fs.hold({ id: `t${i}`, task: i % 7 === 0 ? "x" : "y", priority: i % 3, key: `k${i % 1_000}`, heldAtMs: T0 + Math.floor(i / 100), ref: i });
    const held = performance.now();
    let released = 0;
    let now = T0;
    while (released < 100_000) {
      now += 1;
      const r = fs.next(now, 512);
      for (const x of r.release) fs.finished(x.id);
      released += r.release.length;
      assert.ok(now < T0 + 1_000_000);
    }
    const ms = performance.now() - started;
    t.diagnostic(`hold 100,000: ${(held - started).toFixed(0)} ms; hold + release: ${ms.toFixed(0)} ms`);
    assert.equal(fs.heldCount, 0);
    assert.equal(fs.releasedCount, 0);
    assert.ok(ms < 5_000, `${ms.toFixed(0)} ms`);
  });
});

/** A set with O(1) random pick. */
class Bag<T> {
  readonly #items: T[] = [];
  readonly #index = new Map<T, number>();
  get size(): number {
    return this.#items.length;
  }
  has(x: T): boolean {
    return this.#index.has(x);
  }
  add(x: T): void {
    if (this.#index.has(x)) return;
    this.#index.set(x, this.#items.length);
    this.#items.push(x);
  }
  delete(x: T): void {
    const i = this.#index.get(x);
    if (i === undefined) return;
    const last = this.#items.pop()!;
    if (last !== x) {
      this.#items[i] = last;
      this.#index.set(last, i);
    }
    this.#index.delete(x);
  }
  pick(rnd: () => number): T | undefined {
    return this.#items[Math.floor(rnd() * this.#items.length)];
  }
  values(): T[] {
    return [...this.#items];
  }
}

describe("when holds, releases, finishes, failures and drops come in any order", () => {
  it("keeps its counts, never releases a task twice or above a key's limit, and releases everything once the limits lift", () => {
    const rnd = prng(2026);
    const spec: QueueFlowSpec = { concurrencyKeys: { limit: 3, overrides: { k7: 1 }, fairness: "Weighted", weights: { k1: 5 } }, priorities: { levels: 3, starvationGuardPercent: 20 }, rateLimits: { c: "20/s" }, rateLimit: { rate: "400/s", burst: 20 } };
    const fs = state(spec);
    const tasks = new Map<string, HeldTask<string>>();
    const held = new Bag<string>();
    const released = new Bag<string>(); // by next: may be unreleased
    const running = new Bag<string>(); // by running()
    const runningPerKey = new Map<string, number>();
    const limit = (k: string): number => (k === "k7" ? 1 : 3);
    const bump = (k: string | undefined, d: number): void => {
      if (k !== undefined) runningPerKey.set(k, (runningPerKey.get(k) ?? 0) + d);
    };
    let now = T0;
    let n = 0;
    for (let step = 0; step < 20_000; step++) {
      now += Math.floor(rnd() * 4);
      const r = rnd();
      if (r < 0.4) {
        const keyN = Math.floor(rnd() * 60);
        const t = task({ id: `f${++n}`, key: keyN < 50 ? `k${keyN}` : undefined, priority: Math.floor(rnd() * 3), task: ["a", "b", "c"][Math.floor(rnd() * 3)]!, heldAtMs: now });
        tasks.set(t.id, t);
        held.add(t.id);
        fs.hold(t);
      } else if (r < 0.45) {
        const id = held.pick(rnd);
        if (id) fs.hold({ ...tasks.get(id)!, ref: `again-${step}` });
      } else if (r < 0.75) {
        for (const t of fs.next(now, 1 + Math.floor(rnd() * 20)).release) {
          assert.ok(held.has(t.id), `${t.id} released while not held`);
          held.delete(t.id);
          released.add(t.id);
          bump(t.key, 1);
          if (t.key !== undefined) assert.ok(runningPerKey.get(t.key)! <= limit(t.key), `key ${t.key} above its limit`);
        }
      } else if (r < 0.9) {
        const id = rnd() < 0.9 ? released.pick(rnd) : running.pick(rnd);
        if (id) {
          assert.equal(fs.finished(id), true);
          released.delete(id);
          running.delete(id);
          bump(tasks.get(id)!.key, -1);
        }
      } else if (r < 0.93) {
        const id = released.pick(rnd);
        if (id) {
          fs.unrelease(tasks.get(id)!);
          released.delete(id);
          held.add(id);
          bump(tasks.get(id)!.key, -1);
        }
      } else if (r < 0.96) {
        const id = held.pick(rnd);
        if (id) {
          assert.equal(fs.drop(id)?.id, id);
          held.delete(id);
        }
      } else if (r < 0.97) {
        const t = task({ id: `w${++n}`, key: `k${Math.floor(rnd() * 50)}` });
        tasks.set(t.id, t);
        fs.running(t.id, t.key, now);
        running.add(t.id);
        bump(t.key, 1);
      } else {
        assert.equal(fs.finished(`nope${step}`), false);
        const s = fs.snapshot(now);
        assert.equal(s.held, held.size);
        assert.ok(s.runnable <= s.held);
        for (const k of s.keys ?? []) assert.equal(k.running, runningPerKey.get(k.key) ?? 0, `key ${k.key} running`);
        fs.waiting(now, 50);
      }
      assert.equal(fs.heldCount, held.size, `held count at step ${step}`);
      assert.equal(fs.releasedCount, released.size + running.size, `released count at step ${step}`);
    }
    assert.ok(held.size > 100, `a backlog remains to drain: ${held.size}`);
    for (const id of [...released.values(), ...running.values()]) fs.finished(id);
    fs.setPolicy(flowPolicy({ concurrencyKeys: { limit: 100_000 }, priorities: { levels: 3 } }), now);
    const rest = new Set(held.values());
    const out = fs.next(now + 1, 1_000_000).release.map((t) => t.id);
    assert.equal(out.length, rest.size);
    assert.deepEqual(new Set(out), rest);
    assert.equal(fs.heldCount, 0);
  });
});
