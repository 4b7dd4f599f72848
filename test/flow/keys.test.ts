/**
 * Per-key concurrency across all workers: 3 worker processes × concurrency 8, 300 tasks over 5 keys,
 * limit 2 per key and 4 for one key. From the per-execution log: never more running per key than its
 * limit, and every key makes progress. Then a worker SIGKILLed while it holds key slots: the keys
 * progress again within the ack wait (the slots are not leaked).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueSpec } from "../../api/queue.js";
import { waitFor } from "../helpers/nats-server.js";
import { firstStarts, peakRunning, startFlowHarness, type FlowHarness } from "./harness.js";

const KEYS = ["k0", "k1", "k2", "k3", "k4"];
const LIMIT = 2;
const OVERRIDES: Record<string, number> = { k0: 4 };

describe("when a queue limits tasks running per key", () => {
  let h: FlowHarness;
  before(async () => {
    const spec: QueueSpec = { concurrency: 8, concurrencyKeys: { limit: LIMIT, overrides: OVERRIDES } };
    h = await startFlowHarness({ spec, workers: 3 });
  });
  after(async () => {
    await h?.close();
  });

  it("never runs more per key than its limit, and every key progresses", async () => {
    const t0 = Date.now();
    await h.publish(300, (i) => ({ sleepMs: 40, label: KEYS[i % KEYS.length]!, flow: { priority: 0, key: KEYS[i % KEYS.length]! } }));
    await waitFor("all tasks done", () => h.runs().filter((r) => r.event === "done").length >= 300, 60_000, 100);
    const runs = h.runs();
    const peak = peakRunning(runs);
    for (const k of KEYS) {
      const limit = OVERRIDES[k] ?? LIMIT;
      assert.ok((peak.get(k) ?? 0) <= limit, `key ${k} ran ${peak.get(k)} at once (limit ${limit})`);
    }
    // every key starts within the first second: no key waits for another's backlog
    const starts = firstStarts(runs);
    for (const k of KEYS) {
      const first = Math.min(...runs.filter((r) => r.label === k && r.event === "start").map((r) => r.at));
      assert.ok(first - t0 < 2000, `key ${k} first started ${first - t0} ms after the enqueue`);
    }
    assert.equal(starts.size, 300);
    assert.equal(peak.get("k0"), OVERRIDES.k0, "the override's key used its 4 slots");
  });
});

describe("when a worker holding key slots is SIGKILLed", () => {
  let h: FlowHarness;
  const ACK_WAIT_S = 3;
  before(async () => {
    const spec: QueueSpec = { concurrency: 8, ackWaitSeconds: ACK_WAIT_S, concurrencyKeys: { limit: LIMIT } };
    h = await startFlowHarness({ spec, workers: 3 });
  });
  after(async () => {
    await h?.close();
  });

  it("gives the slots back within the ack wait: the keys progress again", async (t) => {
    const keys = ["a", "b"];
    const n = 8;
    await h.publish(n * keys.length, (i) => ({ sleepMs: 1000, label: keys[i % 2]!, flow: { priority: 0, key: keys[i % 2]! } }));
    // a worker running keyed tasks (all four slots are taken at once)
    const open = () => {
      const o = new Map<string, { pid: number; label: string }>();
      for (const r of h.runs()) {
        const k = `${r.pid} ${r.id} ${r.attempt}`;
        if (r.event === "start") o.set(k, r);
        else o.delete(k);
      }
      return [...o.values()];
    };
    await waitFor("four keyed tasks running", () => open().length === 4, 15_000, 20);
    const byPid = new Map<number, string[]>();
    for (const r of open()) byPid.set(r.pid, [...(byPid.get(r.pid) ?? []), r.label]);
    const [pid, labels] = [...byPid].sort((a, b) => b[1].length - a[1].length)[0]!;
    const victim = h.workers.find((w) => w.proc.pid === pid)!;
    const killedAt = Date.now();
    victim.proc.kill("SIGKILL");
    await victim.exited;

    await waitFor("all tasks done", () => new Set(h.runs().filter((r) => r.event === "done").map((r) => r.id)).size >= n * keys.length, 60_000, 100);
    const runs = h.runs();
    const killedIds = new Set(runs.filter((r) => r.pid === pid && r.event === "start").map((r) => r.id));
    for (const id of killedIds) {
      const again = runs.find((r) => r.id === id && r.pid !== pid && r.event === "start");
      assert.ok(again, `task ${id} of the killed worker never ran again`);
      // redelivered after the ack wait, then started (a task whose worker was lost runs alone on its next worker: a little later)
      t.diagnostic(`task ${id} of the killed worker started again ${again.at - killedAt} ms after the kill`);
      assert.ok(again.at - killedAt <= ACK_WAIT_S * 1000 + 2500, `task ${id} started again ${again.at - killedAt} ms after the kill (ack wait ${ACK_WAIT_S} s)`);
    }
    // no slot leaked: runs started after the kill reach each key's full limit again
    const after = new Set(runs.filter((r) => r.event === "start" && r.at > killedAt).map((r) => `${r.pid} ${r.id} ${r.attempt}`));
    const peakAfter = peakRunning(runs.filter((r) => after.has(`${r.pid} ${r.id} ${r.attempt}`)));
    for (const k of new Set(labels)) assert.equal(peakAfter.get(k), LIMIT, `key ${k} never ran ${LIMIT} at once again after the kill`);
    const peak = peakRunning(runs, new Map([[pid, killedAt]]));
    for (const k of keys) assert.ok((peak.get(k) ?? 0) <= LIMIT, `key ${k} ran ${peak.get(k)} at once (limit ${LIMIT})`);
  });
});
