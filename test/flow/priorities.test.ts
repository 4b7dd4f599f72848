/**
 * Priorities: 1,000 low-priority tasks held, then 20 high: all 20 start before 50 more low ones do.
 * Under a steady stream of high-priority tasks the low ones still start (the starvation guard's
 * share) and all finish. From the per-execution log.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueSpec } from "../../api/queue.js";
import { waitFor } from "../helpers/nats-server.js";
import { firstStarts, startFlowHarness, type FlowHarness } from "./harness.js";

const LOW = 0;
const HIGH = 2;

describe("when high-priority tasks arrive behind a low-priority backlog", () => {
  let h: FlowHarness;
  before(async () => {
    const spec: QueueSpec = { concurrency: 4, priorities: { levels: 3, default: 0, starvationGuardPercent: 10 } };
    h = await startFlowHarness({ spec, workers: 3 });
  });
  after(async () => {
    await h?.close();
  });

  it("starts the high ones before 50 more low ones, and the low ones still finish under a stream of high ones", async (tc) => {
    const low = await h.publish(1000, () => ({ sleepMs: 50, label: "lo", flow: { priority: LOW } }));
    await waitFor("the low backlog held and running", () => h.dispatcher.heldCount >= 500 && h.runs().some((r) => r.label === "lo"), 20_000, 20);
    const t = Date.now();
    const high = await h.publish(20, () => ({ sleepMs: 20, label: "hi", flow: { priority: HIGH } }));
    await waitFor("the high tasks started", () => high.every((id) => firstStarts(h.runs()).has(id)), 20_000, 20);
    let starts = firstStarts(h.runs());
    const lastHigh = Math.max(...high.map((id) => starts.get(id)!));
    const lowBetween = low.filter((id) => (starts.get(id) ?? Infinity) > t && starts.get(id)! <= lastHigh).length;
    assert.ok(lowBetween < 50, `${lowBetween} low tasks started between the high enqueue and the last high start`);

    // a steady stream of high tasks, more than the workers run, for 2 s
    const streamStart = Date.now();
    const streamed: string[] = [];
    while (Date.now() - streamStart < 2000) {
      streamed.push(...(await h.publish(20, () => ({ sleepMs: 20, label: "hi", flow: { priority: HIGH } }))));
      await new Promise((r) => setTimeout(r, 40));
    }
    const streamEnd = Date.now();
    await waitFor("every task done", () => new Set(h.runs().filter((r) => r.event === "done").map((r) => r.id)).size >= 1020 + streamed.length, 60_000, 100);
    starts = firstStarts(h.runs());
    const inWindow = [...starts].filter(([, at]) => at > streamStart + 500 && at <= streamEnd);
    const lowShare = inWindow.filter(([id]) => id.endsWith("-lo")).length / Math.max(1, inWindow.length);
    const highLeft = streamed.filter((id) => (starts.get(id) ?? Infinity) > streamEnd).length;
    tc.diagnostic(`${lowBetween} low started before the last of the 20 high; low share under the high stream ${(lowShare * 100).toFixed(1)}% (${inWindow.length} starts), ${highLeft} high still held when the stream ended`);
    assert.ok(highLeft > 0, "the high stream never exceeded what the workers ran: the test proves nothing");
    assert.ok(lowShare >= 0.04, `low tasks got ${(lowShare * 100).toFixed(1)}% of the starts under the high stream (guard 10%)`);
    assert.ok(low.every((id) => starts.has(id)), "every low task started");
  });
});
