/**
 * Queue rate limit across all workers: 3 worker processes, rateLimit 50/s with burst 5, 500 tasks
 * held at once. From the per-execution log: the overall start rate is within 5% of 50/s and no
 * 1 s window holds more than rate + burst starts (after 20 warm-up tasks; the 500 are published
 * while the dispatcher is stopped and released by a fresh one, whose bucket is full).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueSpec } from "../../api/queue.js";
import { waitFor } from "../helpers/nats-server.js";
import { firstStarts, startFlowHarness, type FlowHarness } from "./harness.js";

const RATE = 50;
const BURST = 5;
const N = 500;

describe("when a queue has a rate limit of 50/s and 3 workers", () => {
  let h: FlowHarness;
  before(async () => {
    const spec: QueueSpec = { concurrency: 8, rateLimit: { rate: `${RATE}/s`, burst: BURST } };
    h = await startFlowHarness({ spec, workers: 3 });
  });
  after(async () => {
    await h?.close();
  });

  it("starts tasks at 50/s overall, never more than the burst above it in any second", async (t) => {
    // warm the worker processes up first (a cold worker's first tasks start late, bunched with the
    // next ones)
    await h.publish(20, () => ({ sleepMs: 5, label: "warm", flow: { priority: 0 } }));
    await waitFor("warm-up done", () => h.runs().filter((r) => r.event === "done").length >= 20, 20_000, 50);
    // the 500 are held before a fresh dispatcher (full bucket) sees them, so no enqueue traffic
    // delays the first deliveries behind the later ones
    await h.stopDispatcher();
    await h.publish(N, () => ({ sleepMs: 5, label: "-", flow: { priority: 0 } }));
    await h.restartDispatcher();
    await waitFor("all tasks done", () => h.runs().filter((r) => r.event === "done" && r.label === "-").length >= N, 40_000, 100);
    const starts = [...firstStarts(h.runs().filter((r) => r.label === "-")).values()].sort((a, b) => a - b);
    assert.equal(starts.length, N, "every task started once");
    const first = starts[0]!;
    const last = starts.at(-1)!;
    // the first BURST starts come from the full bucket; the rest at the refill rate
    const rate = (N - BURST) / ((last - first) / 1000);
    assert.ok(Math.abs(rate - RATE) / RATE <= 0.05, `overall start rate ${rate.toFixed(2)}/s is not within 5% of ${RATE}/s`);
    let worst = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (j < starts.length && starts[j]! < starts[i]! + 1000) j++;
      worst = Math.max(worst, j - i);
    }
    t.diagnostic(`overall start rate ${rate.toFixed(2)}/s; busiest 1 s window ${worst} starts`);
    // the dispatcher rate-limits releases; these are handler starts, which add each delivery's
    // jitter: a release held up a few tens of ms under load starts in the next window (a
    // fresh-clone run saw 56), so the window allows JITTER_STARTS more than rate + burst
    const JITTER_STARTS = 3;
    assert.ok(worst <= RATE + BURST + JITTER_STARTS, `a 1 s window held ${worst} starts (limit ${RATE} + burst ${BURST} + ${JITTER_STARTS} for delivery jitter)`);
    const status = h.dispatcher.status;
    assert.ok(status, "the dispatcher reports a flow status");
  });
});
