/**
 * Semantics 2 (failure propagates as documented), against a real nats-server and 2 real worker
 * processes, from the per-execution log and the records: a chord header task failing after its
 * retries (2 attempts) fails the chord — the body never runs and ends Cancelled naming the failed
 * task, the chord's linkError runs exactly once with `[failedTaskId, error]` even when two header
 * tasks fail; a failing chain step stops the rest (a nested group included), which end Cancelled
 * with `status.canvas.failedStep` naming it; `result()` rejects with that step's TaskFailedError.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chain, chord, group, signature, TaskFailedError } from "../../../client/index.js";
import type { TaskStatus } from "../../../api/task.js";
import { waitFor } from "../../helpers/nats-server.js";
import { queueDrained, runsOf, startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";

/** Two attempts, 100 ms apart: the retry happens (the log shows attempt 2) but costs little. */
const RETRY_TWICE = { maxAttempts: 2, backoff: { initialSeconds: 0.1, factor: 1, jitter: false } };

describe("when a canvas step fails after its retries", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 5 }, "fail");
    await Promise.all([h.startWorker(q, 4), h.startWorker(q, 4)]);
  });
  after(async () => {
    await h?.close();
  });

  const status = async (id: string): Promise<TaskStatus | undefined> => h.client.get(id, { queue: q.name }).status();

  it("fails the chord: the body never runs, linkError runs once with [failedTaskId, error]", async () => {
    const header = [
      signature("sem.echo", ["a"], { sleepMs: 20 }),
      signature("sem.fail", [], { message: "header boom" }, { retry: RETRY_TWICE }),
      signature("sem.echo", ["b"], { sleepMs: 20 }),
    ];
    const c = chord(header, signature("sem.collect")).linkError(signature("sem.errback", ["chord-err"]));
    const handle = await h.client.apply(c, { queue: q.name });
    const failed = `${handle.id}-1`;
    const body = `${handle.id}-b`;
    const errback = `${handle.id}-e0`;

    await assert.rejects(handle.result({ timeoutMs: 20_000 }), (e: unknown) => e instanceof TaskFailedError && e.record.id === failed && e.phase === "Failed" && /header boom/.test(e.message));
    await waitFor("the errback ran", () => runsOf(h.runs(), errback, "done").length > 0, 15_000);
    await waitFor("the body cancelled", async () => (await status(body))?.phase === "Cancelled", 15_000);
    await queueDrained(h, q);

    const runs = h.runs();
    assert.deepEqual(runsOf(runs, failed, "start").map((r) => r.attempt), [1, 2], "the failing header task ran its 2 attempts");
    assert.equal((await status(failed))?.phase, "Failed");
    assert.equal(runsOf(runs, body).length, 0, "the body never ran");
    const b = await status(body);
    assert.deepEqual(b?.canvas?.failedStep, { id: failed, task: "sem.fail" });
    assert.match(b?.error?.message ?? "", new RegExp(failed));
    const calls = runsOf(runs, errback, "start");
    assert.equal(calls.length, 1, "linkError ran exactly once");
    assert.deepEqual(calls[0]!.data, { failedTaskId: failed, type: "Error", message: "header boom", rest: ["chord-err"] });
  });

  it("runs linkError once when two header tasks fail on two workers", async () => {
    const boom = (m: string) => signature("sem.fail", [], { message: m }, { retry: RETRY_TWICE });
    const c = chord([boom("first"), signature("sem.echo", [1]), boom("second")], signature("sem.collect")).linkError(signature("sem.errback"));
    const handle = await h.client.apply(c, { queue: q.name });
    const errback = `${handle.id}-e0`;
    await assert.rejects(handle.result({ timeoutMs: 20_000 }), TaskFailedError);
    await waitFor("both failing tasks final", async () => (await status(`${handle.id}-0`))?.phase === "Failed" && (await status(`${handle.id}-2`))?.phase === "Failed", 15_000);
    await waitFor("the errback ran", () => runsOf(h.runs(), errback, "done").length > 0, 15_000);
    await queueDrained(h, q);
    const runs = h.runs();
    const calls = runsOf(runs, errback, "start");
    assert.equal(calls.length, 1, "linkError ran exactly once");
    const first = calls[0]!.data as { failedTaskId: string; message: string };
    assert.ok([`${handle.id}-0`, `${handle.id}-2`].includes(first.failedTaskId), `linkError names a failed header task, got ${first.failedTaskId}`);
    assert.equal(first.message, first.failedTaskId.endsWith("-0") ? "first" : "second");
    assert.equal(runsOf(runs, `${handle.id}-b`).length, 0, "the body never ran");
  });

  it("stops a chain at the failed step: the rest end Cancelled naming it, result() rejects with its error", async () => {
    const c = chain(
      signature("sem.echo", [1]),
      signature("sem.fail", [], { message: "step two broke" }, { retry: RETRY_TWICE }),
      signature("sem.echo"),
      group(signature("sem.echo", [], { sleepMs: 1 }), signature("sem.echo")),
      signature("sem.echo"),
    );
    const handle = await h.client.apply(c, { queue: q.name });
    const failed = `${handle.id}-1`;
    await assert.rejects(handle.result({ timeoutMs: 20_000 }), (e: unknown) => e instanceof TaskFailedError && e.record.id === failed && e.type === "Error" && /step two broke/.test(e.message));
    const later = [`${handle.id}-2`, `${handle.id}-3-0`, `${handle.id}-3-1`, `${handle.id}-4`];
    const st = await waitFor("every later step Cancelled", async () => {
      const s = await Promise.all(later.map(status));
      return s.every((x) => x?.phase === "Cancelled") ? s : undefined;
    }, 15_000);
    await queueDrained(h, q);
    const runs = h.runs();
    assert.equal(runsOf(runs, `${handle.id}-0`, "done").length, 1, "the first step ran");
    assert.deepEqual(runsOf(runs, failed, "start").map((r) => r.attempt), [1, 2]);
    for (const [i, s] of st.entries()) {
      assert.deepEqual(s?.canvas?.failedStep, { id: failed, task: "sem.fail" }, `${later[i]} names the failed step`);
      assert.match(s?.error?.message ?? "", new RegExp(`${failed} \\(sem\\.fail\\) failed`), `${later[i]}'s reason names the failed step`);
      assert.equal(runsOf(runs, later[i]!).length, 0, `${later[i]} never ran`);
    }
    const children = await handle.children();
    assert.deepEqual(children.map((k) => k.state?.phase), ["Succeeded", "Failed", "Cancelled", "Cancelled", "Cancelled", "Cancelled"]);
  });
});
