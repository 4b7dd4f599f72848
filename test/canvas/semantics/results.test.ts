/**
 * Semantics 4 (results pass between steps by value up to the args size limit, by reference above
 * it, transparently), against a real nats-server and 2 real worker processes of 256 slots each: a
 * chain step returning 100 KiB – 600 KiB (MAX_ARGS_BYTES is 256 KiB: a message carrying it by value
 * could not be built) hands the next step the whole value; chord header results above the join
 * slot's value size reach the body whole; and a chord of 10,000 no-op header tasks (each returning
 * its index) gives its body the list 0..9999, in order, exactly once. References are read from the
 * queue of the task that made the result (steps and header tasks on another queue); an empty map
 * gives [] on. From the per-execution log.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MAX_ARGS_BYTES } from "../../../api/constants.js";
import { chain, chord, map, signature } from "../../../client/index.js";
import { queueDrained, byId, runsOf, startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";
import { bigString } from "./tasks.js";

const KiB = 1024;
const digest = (s: string) => ({ type: "string", length: s.length, sha256: createHash("sha256").update(s).digest("hex") });

describe("when canvas steps pass results on", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  let other: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 30, concurrency: 256 }, "res");
    other = await h.queue({ ackWaitSeconds: 30, concurrency: 8 }, "other");
    await Promise.all([h.startWorker(q, 256), h.startWorker(q, 256), h.startWorker(other, 8)]);
  });
  after(async () => {
    await h?.close();
  });

  it("hands a chain step its parent's result whole, by value or by reference", { timeout: 30_000 }, async () => {
    const sizes = [100 * KiB, 200 * KiB, MAX_ARGS_BYTES + 44 * KiB, 600 * KiB];
    const handles = await Promise.all(sizes.map((bytes) => h.client.apply(chain(signature("sem.big", [], { bytes }), signature("sem.measure")), { queue: q.name })));
    for (const [i, handle] of handles.entries()) {
      const want = digest(bigString(sizes[i]!));
      assert.deepEqual(await handle.result({ timeoutMs: 20_000 }), want, `${sizes[i]! / KiB} KiB`);
      assert.deepEqual(runsOf(h.runs(), `${handle.id}-1`, "start")[0]?.data, want, `the next step received all ${sizes[i]! / KiB} KiB`);
    }
  });

  it("hands a chord body header results above the slot value size whole", { timeout: 30_000 }, async () => {
    const sizes = [10, 40 * KiB, 300 * KiB, 3];
    const header = sizes.map((bytes) => signature("sem.big", [], { bytes }));
    const handle = await h.client.apply(chord(header, signature("sem.measure")), { queue: q.name });
    const want = sizes.map((n) => digest(bigString(n)));
    assert.deepEqual(await handle.result({ timeoutMs: 20_000 }), want);
  });

  it("reads a reference from the queue of the task that produced it", { timeout: 30_000 }, async () => {
    const on = { queue: other.name };
    // a chain step after a large result made on the other queue, and back
    const there = await h.client.apply(chain(signature("sem.big", [], { bytes: 300 * KiB }, on), signature("sem.measure"), signature("sem.big", [], { bytes: 290 * KiB }), signature("sem.measure", [], {}, on)), { queue: q.name });
    assert.deepEqual(await there.result({ timeoutMs: 20_000 }), digest(bigString(290 * KiB)));
    assert.deepEqual(runsOf(h.runs(), `${there.id}-1`, "start")[0]?.data, digest(bigString(300 * KiB)));
    // chord header results above the slot value size, made on the other queue (slot refs), body on it too
    const sizes = [40 * KiB, 5, 300 * KiB];
    const c = await h.client.apply(chord(sizes.map((bytes, i) => signature("sem.big", [], { bytes }, i === 1 ? {} : on)), signature("sem.measure", [], {}, on)), { queue: q.name });
    assert.deepEqual(await c.result({ timeoutMs: 20_000 }), sizes.map((n) => digest(bigString(n))));
  });

  it("gives an empty map's chord body [] and a chain continues past an empty map", { timeout: 30_000 }, async () => {
    const empty = await h.client.apply(chain(map(signature("sem.echo"), []), signature("sem.collect")), { queue: q.name });
    assert.deepEqual(await empty.result({ timeoutMs: 15_000 }), []);
    const past = await h.client.apply(chain(signature("sem.echo", ["x"]), map(signature("sem.echo"), []), signature("sem.collect")), { queue: q.name });
    assert.deepEqual(await past.result({ timeoutMs: 15_000 }), []);
  });

  it("gives a 10,000-task chord's body all 10,000 results in order, once", { timeout: 60_000 }, async (t) => {
    const N = 10_000;
    const items = Array.from({ length: N }, (_, i) => i);
    const t0 = Date.now();
    const handle = await h.client.apply(chord(items.map((i) => signature("sem.echo", [i])), signature("sem.collect", [], { summary: true })), { queue: q.name });
    const applied = Date.now() - t0;
    assert.deepEqual(await handle.result({ timeoutMs: 50_000 }), { n: N, sum: (N * (N - 1)) / 2 });
    const total = Date.now() - t0;
    await queueDrained(h, q);
    const by = byId(h.runs());
    const body = (by.get(`${handle.id}-b`) ?? []).filter((r) => r.event === "start");
    assert.equal(body.length, 1, `the body ran ${body.length} times`);
    assert.deepEqual(body[0]!.data, items, "the body received 0..9999 in order");
    const missing = items.filter((i) => !(by.get(`${handle.id}-${i}`) ?? []).some((r) => r.event === "done"));
    assert.deepEqual(missing, [], "every header task ran");
    t.diagnostic(`10,000-task chord: applied in ${applied} ms, body result after ${total} ms`);
  });
});
