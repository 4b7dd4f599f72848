/**
 * Semantics 3 (revoke), against a real nats-server and 2 real worker processes (2 slots each), from
 * the per-execution log and the records: `handle.revoke()` of a chain whose first step runs, of a
 * group with more long tasks than slots, and of a chord whose header runs — the running tasks get
 * their signal aborted (the log shows `abort`), nothing not yet started ever runs (checked once the
 * queue has delivered and acked everything), and every step ends Cancelled.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chain, chord, group, signature, TaskFailedError, type CanvasHandle } from "../../../client/index.js";
import { waitFor } from "../../helpers/nats-server.js";
import { queueDrained, runsOf, startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";

const SLOTS = 4;

describe("when a running canvas is revoked", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 5 }, "revoke");
    await Promise.all([h.startWorker(q, SLOTS / 2), h.startWorker(q, SLOTS / 2)]);
  });
  after(async () => {
    await h?.close();
  });

  /** Revokes, then waits until every step is Cancelled and the queue has nothing left to deliver. */
  const revokeAll = async (handle: CanvasHandle, n: number) => {
    await handle.revoke();
    const kids = await waitFor("every step Cancelled", async () => {
      const k = await handle.children();
      return k.length === n && k.every((c) => c.state?.phase === "Cancelled") ? k : undefined;
    }, 20_000);
    await queueDrained(h, q);
    await assert.rejects(handle.result({ timeoutMs: 5000 }), (e: unknown) => e instanceof TaskFailedError && e.phase === "Cancelled");
    return kids;
  };

  it("aborts a chain's running first step and never runs the steps after it", async () => {
    const handle = await h.client.apply(chain(signature("sem.hang"), signature("sem.echo"), signature("sem.echo")), { queue: q.name });
    const first = `${handle.id}-0`;
    await waitFor("the first step running", () => runsOf(h.runs(), first, "start").length > 0, 15_000);
    await revokeAll(handle, 3);
    const runs = h.runs();
    assert.equal(runsOf(runs, first, "abort").length, 1, "the running step's signal aborted");
    assert.equal(runsOf(runs, first, "done").length, 0);
    for (const id of [`${handle.id}-1`, `${handle.id}-2`]) assert.equal(runsOf(runs, id).length, 0, `${id} never ran`);
  });

  it("aborts a group's running members and never runs the ones not started", async () => {
    const n = SLOTS * 2;
    const handle = await h.client.apply(group(Array.from({ length: n }, () => signature("sem.hang"))), { queue: q.name });
    const ids = Array.from({ length: n }, (_, i) => `${handle.id}-${i}`);
    const running = await waitFor("every slot running a member", () => {
      const r = h.runs();
      const s = ids.filter((id) => runsOf(r, id, "start").length > 0);
      return s.length === SLOTS ? s : undefined;
    }, 15_000);
    await revokeAll(handle, n);
    const runs = h.runs();
    for (const id of running) assert.equal(runsOf(runs, id, "abort").length, 1, `running member ${id} aborted`);
    const waiting = ids.filter((id) => !running.includes(id));
    assert.equal(waiting.length, n - SLOTS);
    for (const id of waiting) assert.equal(runsOf(runs, id).length, 0, `member ${id}, not started at the revoke, never ran`);
  });

  it("aborts a chord's running header and never runs its body", async () => {
    const handle = await h.client.apply(chord([signature("sem.hang"), signature("sem.hang")], signature("sem.collect")), { queue: q.name });
    const header = [`${handle.id}-0`, `${handle.id}-1`];
    await waitFor("the header running", () => header.every((id) => runsOf(h.runs(), id, "start").length > 0), 15_000);
    await revokeAll(handle, 3);
    const runs = h.runs();
    for (const id of header) assert.equal(runsOf(runs, id, "abort").length, 1, `header task ${id} aborted`);
    assert.equal(runsOf(runs, `${handle.id}-b`).length, 0, "the body never ran");
  });
});
