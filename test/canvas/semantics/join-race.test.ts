/**
 * Semantics 1 (exactly-once join), the race: a chord of 2 whose header tasks run on 2 different
 * worker processes (2 workers with 1 slot each, both tasks blocking) and wait on one barrier (a file
 * the test creates), so both return within about a millisecond and their two processes set the
 * join's bits at the same time — compare-and-set on one revision, one of them retried. 30 times;
 * from the per-execution log: every body ran exactly once, with both results in order.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chord, signature } from "../../../client/index.js";
import { waitFor } from "../../helpers/nats-server.js";
import { queueDrained, runsOf, startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";

const ROUNDS = 30;

describe("when a chord's two header tasks finish at the same instant on two workers", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 10, concurrency: 1 }, "race");
    await Promise.all([h.startWorker(q, 1), h.startWorker(q, 1)]);
  });
  after(async () => {
    await h?.close();
  });

  it("runs the body once each time", { timeout: 60_000 }, async (t) => {
    const skews: number[] = [];
    const bodies: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const file = join(h.dir, `barrier-${round}`);
      const header = [signature("sem.barrier", [`${round}a`], { file }), signature("sem.barrier", [`${round}b`], { file })];
      const handle = await h.client.apply(chord(header, signature("sem.collect")), { queue: q.name });
      const ids = [`${handle.id}-0`, `${handle.id}-1`];
      await waitFor("both header tasks waiting at the barrier", () => ids.every((id) => runsOf(h.runs(), id, "start").length > 0), 15_000, 5);
      writeFileSync(file, "go");
      assert.deepEqual(await handle.result({ timeoutMs: 15_000 }), [`${round}a`, `${round}b`]);
      const runs = h.runs();
      const [d0, d1] = ids.map((id) => runsOf(runs, id, "done")[0]!);
      assert.notEqual(d0!.pid, d1!.pid, `round ${round}: the header tasks ran on two processes`);
      skews.push(Math.abs(d0!.at - d1!.at));
      if (round === 0) {
        // status.canvas on every record: the canvas, the parent whose result it received, the step
        const st = await Promise.all([...ids, `${handle.id}-b`].map((id) => h.client.get(id, { queue: q.name }).status()));
        assert.deepEqual(st.map((x) => x?.canvas), [{ root: handle.id, step: 0 }, { root: handle.id, step: 1 }, { root: handle.id, parent: handle.id, step: 0 }]);
      }
      bodies.push(`${handle.id}-b`);
    }
    await queueDrained(h, q);
    const runs = h.runs();
    for (const [round, body] of bodies.entries()) {
      const starts = runsOf(runs, body, "start");
      assert.equal(starts.length, 1, `round ${round}: the body ran ${starts.length} times`);
    }
    skews.sort((x, y) => x - y);
    const median = skews[Math.floor(skews.length / 2)]!;
    t.diagnostic(`header finish skew across the 2 processes: median ${median} ms, max ${skews.at(-1)} ms`);
    assert.ok(median <= 10, `the header tasks finished ${median} ms apart (median): not at the same instant, the test proves little`);
  });
});
