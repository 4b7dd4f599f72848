/**
 * Semantics 2 (failure propagates as documented) under crashes: 40 chords of 10 header tasks, one
 * of which fails after its 2 attempts, and 40 chains of 5 steps whose middle step fails, all with a
 * linkError callback, on 3 worker processes SIGKILLed every 200–400 ms (10 kills, replacements
 * spawned; ack wait 2 s, so what a killed worker held is redelivered and its settle replayed).
 * From the per-execution log and the records: every linkError ran exactly once, with the failed
 * task's id and its recorded error; no chord body and no step after a failed one ever ran, and each
 * ended Cancelled naming the failed step; every result() rejected with the failed task's error.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { chain, chord, signature, TaskFailedError, type CanvasHandle } from "../../../client/index.js";
import { byId, countLogged, killWorkersRandomly, queueDrained, startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";

const CANVASES = 40;
const HEADER = 10;
const MIN_KILLS = 6;
const RETRY_TWICE = { maxAttempts: 2, backoff: { initialSeconds: 0.1, factor: 1, jitter: false } };
/** See join-kills.test.ts: a kill counts against a task only when it ran alone. */
const RETRY_MANY = { maxAttempts: 20 };

describe("when workers are SIGKILLed while failing chords and chains run", () => {
  let h: SemHarness;
  let q: HarnessQueue;
  let cb: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    q = await h.queue({ ackWaitSeconds: 2, concurrency: 8 }, "failk");
    // the linkError callbacks run on a queue whose worker is never killed: a kill during a
    // callback's own run would (rightly) run it again, which is not what is counted here
    cb = await h.queue({ ackWaitSeconds: 30, concurrency: 16 }, "errback");
    await Promise.all([...Array.from({ length: 3 }, () => h.startWorker(q, 8)), h.startWorker(cb, 16)]);
  });
  after(async () => {
    await h?.close();
  });

  it("runs every linkError once and never runs what follows a failure", { timeout: 90_000 }, async (t) => {
    const t0 = Date.now();
    const echo = () => signature("sem.echo", ["x"], { sleepMs: Math.floor(Math.random() * 31) }, { retry: RETRY_MANY });
    const boom = (m: string) => signature("sem.fail", [], { message: m }, { retry: RETRY_TWICE });
    const chords: Array<{ handle: CanvasHandle; failed: string; label: string }> = [];
    const chains: Array<{ handle: CanvasHandle; failed: string; label: string }> = [];
    let applied = false;
    const applying = (async () => {
      for (let c0 = 0; c0 < CANVASES; c0 += 5) {
        await Promise.all(
          Array.from({ length: 5 }, async (_, k) => {
            const c = c0 + k;
            const at = Math.floor(Math.random() * HEADER);
            const header = Array.from({ length: HEADER }, (_, i) => (i === at ? boom(`chord ${c}`) : echo()));
            const ch = await h.client.apply(chord(header, signature("sem.collect")).linkError(signature("sem.errback", [`chord ${c}`], {}, { queue: cb.name })), { queue: q.name });
            chords.push({ handle: ch, failed: `${ch.id}-${at}`, label: `chord ${c}` });
            const steps = [echo(), echo(), boom(`chain ${c}`), echo(), echo()];
            const cn = await h.client.apply(chain(...steps).linkError(signature("sem.errback", [`chain ${c}`], {}, { queue: cb.name })), { queue: q.name });
            chains.push({ handle: cn, failed: `${cn.id}-2`, label: `chain ${c}` });
          }),
        );
        await sleep(250);
      }
    })().finally(() => (applied = true));

    const failedIds = () => [...chords, ...chains].map((x) => x.failed);
    const allFailed = () => {
      if (!applied) return false;
      const by = byId(h.runs());
      return failedIds().every((id) => (by.get(id) ?? []).filter((r) => r.event === "fail").length >= 2);
    };
    const kills = await killWorkersRandomly(h, q, { concurrency: 8, maxKills: 10, until: allFailed, forMs: 60_000 });
    await applying;

    const left = () => Math.max(1000, 80_000 - (Date.now() - t0));
    for (const { handle, failed } of [...chords, ...chains]) {
      await assert.rejects(handle.result({ timeoutMs: left() }), (e: unknown) => e instanceof TaskFailedError && e.record.id === failed, `canvas ${handle.id} rejects with ${failed}'s error`);
    }
    // the errbacks and Cancelled records come from the failed tasks' settles (replayed after kills)
    const cancelled = [...chords.map((x) => `${x.handle.id}-b`), ...chains.flatMap((x) => [`${x.handle.id}-3`, `${x.handle.id}-4`])];
    const status = (id: string) => h.client.get(id, { queue: q.name }).status();
    await queueDrained(h, q, Math.max(1000, 85_000 - (Date.now() - t0)));
    await queueDrained(h, cb, Math.max(1000, 86_000 - (Date.now() - t0)));
    const runs = h.runs();
    const by = byId(runs);
    const lastFail = Math.max(...failedIds().flatMap((id) => (by.get(id) ?? []).map((r) => r.at)));
    const killsMid = kills.filter((k) => k.at < lastFail).length;
    const replays = countLogged(h, q, "Redelivered task already finished; acked");
    t.diagnostic(`${kills.length} kills (${killsMid} before the last failure); ${replays} replays of a finished task; done in ${Date.now() - t0} ms`);
    assert.ok(killsMid >= MIN_KILLS, `only ${killsMid} kills happened while the canvases ran: the test proves nothing`);

    for (const { handle, failed, label } of [...chords, ...chains]) {
      const rec = await status(failed);
      assert.ok(rec?.phase === "Failed", `${failed} Failed, got ${rec?.phase}`);
      const calls = (by.get(`${handle.id}-e0`) ?? []).filter((r) => r.event === "start");
      assert.equal(calls.length, 1, `canvas ${handle.id}: linkError ran ${calls.length} times`);
      assert.deepEqual(calls[0]!.data, { failedTaskId: failed, type: rec.error?.type, message: rec.error?.message, rest: [label] }, `canvas ${handle.id}: linkError's args`);
    }
    for (const id of cancelled) {
      assert.equal((by.get(id) ?? []).length, 0, `${id} never ran`);
      const s = await status(id);
      assert.equal(s?.phase, "Cancelled", `${id} Cancelled`);
      const owner = [...chords, ...chains].find((x) => id.startsWith(`${x.handle.id}-`))!;
      assert.deepEqual(s?.canvas?.failedStep, { id: owner.failed, task: "sem.fail" }, `${id} names the failed step`);
    }
    for (const { handle } of chains) {
      for (const i of [0, 1]) assert.ok((by.get(`${handle.id}-${i}`) ?? []).some((r) => r.event === "done"), `chain ${handle.id} step ${i} ran`);
    }
  });
});
