/**
 * Semantics 3 (revoke), against a real nats-server and 2 real worker processes (2 slots each), from
 * the per-execution log and the records: `handle.revoke()` of a chain whose first step runs, of a
 * group with more long tasks than slots, and of a chord whose header runs — the running tasks get
 * their signal aborted (the log shows `abort`), nothing not yet started ever runs (checked once the
 * queue has delivered and acked everything), and every step ends Cancelled. Then 40 canvases
 * (a chain of a chord of 5 and 2 steps) revoked at random moments: every step ends Succeeded or
 * Cancelled, never Succeeded after a Cancelled one (see the KNOWN GAP below for the strict form).
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

/**
 * KNOWN GAP (reported, not fixed here): a worker learns of a revocation from its watch of the
 * `revoked.<id>` markers, and admits a delivery by that cache alone (worker/admission.ts); the
 * marker reaches it a few ms (seen: up to ~20 ms under load) after `revoke()` resolved. A step
 * delivered in that window still starts; it is aborted when the marker arrives (a short step may
 * even finish its handler) and records Cancelled, and nothing after it runs. The strict property is
 * kept below as a `todo` test so it shows in every run; the fix belongs to the worker's admission
 * (read the marker or the record of a canvas task before its handler starts), the same race as a
 * plain task's `revoke()`.
 */
describe("when canvases are revoked at random moments while they run", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  /** Steps whose first start came after their canvas's revoke() resolved, with what the log says of them. */
  const late: string[] = [];
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 5, concurrency: 8 }, "revrace");
    await Promise.all([h.startWorker(q, 8), h.startWorker(q, 8)]);
  });
  after(async () => {
    await h?.close();
  });

  it("ends every step Succeeded or Cancelled, none Succeeded after a Cancelled one", { timeout: 60_000 }, async (t) => {
    const N = 40;
    const echo = () => signature("sem.echo", ["x"], { sleepMs: Math.floor(Math.random() * 60) });
    const canvas = () => chain(chord([echo(), echo(), echo(), echo(), echo()], signature("sem.collect")), echo(), echo());
    // revokes spread over three times the time one canvas takes on this machine now (measured, so a loaded
    // machine still sees some canvases finish before their revoke and some cut short)
    const t0 = Date.now();
    const probe = await h.client.apply(canvas(), { queue: q.name });
    await waitFor("the probe canvas finished", async () => {
      const k = await probe.children();
      return k.length > 0 && k.every((c) => c.state?.phase === "Succeeded") ? k : undefined;
    }, 30_000, 20);
    const spreadMs = Math.max(1000, 3 * (Date.now() - t0));
    t.diagnostic(`one canvas took ${Date.now() - t0} ms: revokes spread over ${spreadMs} ms`);
    const revoked = await Promise.all(
      Array.from({ length: N }, async () => {
        const handle = await h.client.apply(canvas(), { queue: q.name });
        await new Promise((r) => setTimeout(r, Math.random() * spreadMs));
        await handle.revoke();
        return { handle, at: Date.now() };
      }),
    );
    const kids = await Promise.all(
      revoked.map(({ handle }) =>
        waitFor(`canvas ${handle.id} settled`, async () => {
          const k = await handle.children();
          return k.every((c) => c.state?.phase === "Succeeded" || c.state?.phase === "Cancelled") ? k : undefined;
        }, 30_000, 100),
      ),
    );
    await queueDrained(h, q);
    const runs = h.runs();
    let cancelled = 0;
    let finished = 0;
    for (const [i, { handle, at }] of revoked.entries()) {
      const phases = kids[i]!.map((k) => k.state?.phase);
      cancelled += phases.filter((p) => p === "Cancelled").length;
      if (phases.every((p) => p === "Succeeded")) finished++;
      for (const k of kids[i]!) {
        const start = runsOf(runs, k.id, "start")[0];
        if (start && start.at > at) late.push(`${k.id} (${k.state?.phase}) started ${start.at - at} ms after its canvas's revoke() resolved; log: ${runsOf(runs, k.id).map((r) => `${r.event}@+${r.at - at}ms`).join(" ")}`);
      }
      // children: header 0..4, body, then the two chain steps
      const ok = (j: number) => phases[j] === "Succeeded";
      const consistent = (!ok(5) || [0, 1, 2, 3, 4].every(ok)) && (!ok(6) || ok(5)) && (!ok(7) || ok(6));
      assert.ok(consistent, `canvas ${handle.id}: a step Succeeded after a Cancelled one: ${phases.join(",")}`);
    }
    t.diagnostic(`${N} canvases: ${finished} had finished before their revoke, ${cancelled} steps Cancelled, ${late.length} steps started after their revoke() resolved`);
    assert.ok(cancelled > N, "hardly anything was cancelled: the revokes came too late to prove anything");
    assert.ok(finished > 0 && finished < N, `${finished} of ${N} canvases finished before their revoke: the revokes did not spread over the runs`);
  });

  it("never starts a step after revoke() resolved", { todo: "revocation marker propagation race in worker admission (see KNOWN GAP above)" }, (t) => {
    for (const l of late) t.diagnostic(l);
    assert.deepEqual(late, [], `${late.length} steps started after their canvas's revoke() resolved`);
  });
});
