/**
 * Fairness between keys: key A has 2,000 tasks held, then key B enqueues 10. Round-robin dispatch
 * releases B's tasks between A's, so all of B's start within one second of their enqueue (from the
 * per-execution log), however long A's backlog is.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueSpec } from "../../api/queue.js";
import { waitFor } from "../helpers/nats-server.js";
import { firstStarts, startFlowHarness, type FlowHarness } from "./harness.js";

describe("when one key has a long backlog and another key enqueues", () => {
  let h: FlowHarness;
  before(async () => {
    // the key limit does not bind here (3 × 8 worker slots): what is fair is the order of release
    const spec: QueueSpec = { concurrency: 8, concurrencyKeys: { limit: 100, fairness: "RoundRobin" } };
    h = await startFlowHarness({ spec, workers: 3 });
  });
  after(async () => {
    await h?.close();
  });

  it("starts all of the second key's tasks within one second", async (t0) => {
    await h.publish(2000, () => ({ sleepMs: 50, label: "A", flow: { priority: 0, key: "A" } }));
    await waitFor("A's backlog held and running", () => h.dispatcher.heldCount >= 1000 && h.runs().some((r) => r.label === "A"), 20_000, 20);
    const t = Date.now();
    const ids = await h.publish(10, () => ({ sleepMs: 20, label: "B", flow: { priority: 0, key: "B" } }));
    await waitFor("B's tasks started", () => ids.every((id) => firstStarts(h.runs()).has(id)), 20_000, 20);
    const starts = firstStarts(h.runs());
    const lastB = Math.max(...ids.map((id) => starts.get(id)!));
    const aLeft = 2000 - [...starts.keys()].filter((id) => id.endsWith("-A")).length;
    assert.ok(aLeft > 500, `A's backlog ran out first (${aLeft} left): the test proves nothing`);
    t0.diagnostic(`B's last start ${lastB - t} ms after B's enqueue, ${aLeft} of A not started yet`);
    assert.ok(lastB - t <= 1000, `B's last task started ${lastB - t} ms after B enqueued (A had ${aLeft} left)`);
  });
});
