/**
 * Semantics 5 (timing), the latency half: a chain of 10 no-op steps completes (client.apply →
 * result()) in at most 10× the single-task enqueue → result latency plus 5 ms per step, at the
 * median, against a real nats-server and one real worker process. Both measured back to back,
 * sequentially, after a warm-up; p50 and p99 of both are reported. (The throughput half — a
 * 10,000-task group at ≥ 80% of plain-enqueue throughput — is a bench, not a test.)
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chain, signature } from "../../../client/index.js";
import { startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";

const STEPS = 10;
const SAMPLES = 40;

/** The `p`-th percentile (0–100) of `xs`, nearest rank. */
function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

describe("when a chain of 10 no-op steps runs", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 30, concurrency: 4 }, "lat");
    await h.startWorker(q, 4);
  });
  after(async () => {
    await h?.close();
  });

  it("completes within 10× a single task's enqueue → result latency plus 5 ms per step (p50)", { timeout: 60_000 }, async (t) => {
    const single = async () => {
      const t0 = performance.now();
      await (await h.client.enqueue("sem.echo", ["x"], {}, { queue: q.name })).result({ timeoutMs: 10_000 });
      return performance.now() - t0;
    };
    const tenSteps = async () => {
      const t0 = performance.now();
      const c = chain(signature("sem.echo", ["x"]), ...Array.from({ length: STEPS - 1 }, () => signature("sem.echo")));
      assert.equal(await (await h.client.apply(c, { queue: q.name })).result({ timeoutMs: 10_000 }), "x");
      return performance.now() - t0;
    };
    for (let i = 0; i < 10; i++) {
      await single();
      await tenSteps();
    }
    const one: number[] = [];
    const ten: number[] = [];
    // interleaved, so a slow moment of the machine weighs on both
    for (let i = 0; i < SAMPLES; i++) {
      one.push(await single());
      ten.push(await tenSteps());
    }
    const [p50One, p99One, p50Ten, p99Ten] = [percentile(one, 50), percentile(one, 99), percentile(ten, 50), percentile(ten, 99)];
    const bound = STEPS * p50One + 5 * STEPS;
    t.diagnostic(`single task: p50 ${p50One.toFixed(1)} ms, p99 ${p99One.toFixed(1)} ms; chain of ${STEPS}: p50 ${p50Ten.toFixed(1)} ms, p99 ${p99Ten.toFixed(1)} ms (bound at p50 ${bound.toFixed(1)} ms; ${(p50Ten / STEPS).toFixed(1)} ms per step)`);
    assert.ok(p50Ten <= bound, `a chain of ${STEPS} took ${p50Ten.toFixed(1)} ms at the median, above ${STEPS} × ${p50One.toFixed(1)} ms + ${5 * STEPS} ms`);
  });
});
