/**
 * Semantics 1 (exactly-once join) under crashes: 200 chords × 20 header tasks (each sleeping a
 * random 0–30 ms) on queue A, served by 3 real worker processes that are SIGKILLed at random
 * moments — one kill every 200–400 ms while header tasks are still unfinished, 10 in all, a
 * replacement spawned after each — and the bodies on queue B (signature option `queue`), served by one worker
 * that is never killed. Queue A's ack wait is 2 s, so what a killed worker held (a task mid-handler,
 * or mid-settle: its final record written but the join bit, the body publish or the ack not) is
 * redelivered within seconds and replayed.
 *
 * From the per-execution log and the records: every body ran exactly once, with its 20 header
 * results in order; every chord's result() resolved to that list; every header task finished
 * (Succeeded); and the kills did hit work in flight (some header task started more than once, and
 * some finished one was redelivered and replayed). Then the same for 60 nested canvases — a chord
 * whose header is a chord, a group and a chain ending in a group — whose inner joins fill the outer
 * join's slots: every inner and outer body ran once, with the nested results in order.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { chain, chord, group, signature, type CanvasHandle } from "../../../client/index.js";
import { byId, countLogged, killWorkersRandomly, queueDrained, startSemHarness, type HarnessQueue, type SemHarness } from "./harness.js";

const CHORDS = 200;
const HEADER = 20;
const HEADER_WORKERS = 3;
const MIN_KILLS = 6;
/** Kills in all: each costs a worker start (~0.5 s of CPU), and CI has 2 cores. */
const MAX_KILLS = 10;
/**
 * Attempts of a header task. A kill counts against a task only when it ran alone on its process (a
 * delivery whose previous one was lost with its worker runs alone: worker/attribution.ts); with a
 * kill every ~300 ms one task can be caught alone more than the default 3 times, and the test is
 * about the join, not about dead-lettering.
 */
const HEADER_RETRY = { maxAttempts: 20 };

describe("when header workers are SIGKILLed while chords run", () => {
  let h: SemHarness;
  let a: HarnessQueue;
  let b: HarnessQueue;
  before(async () => {
    h = await startSemHarness();
    a = await h.queue({ ackWaitSeconds: 2, concurrency: 8 }, "hdr");
    b = await h.queue({ ackWaitSeconds: 30, concurrency: 32 }, "body");
    await Promise.all([...Array.from({ length: HEADER_WORKERS }, () => h.startWorker(a, 8)), h.startWorker(b, 32)]);
  });
  after(async () => {
    await h?.close();
  });

  it("runs every body exactly once with its 20 header results in order", { timeout: 90_000 }, async (t) => {
    const started = Date.now();
    const handles: CanvasHandle<unknown>[] = [];
    const expected = (c: number) => Array.from({ length: HEADER }, (_, i) => `${c}.${i}`);
    // applied in 20 batches of 10, 125 ms apart, so header work lasts for several kill periods
    const applying = (async () => {
      for (let c0 = 0; c0 < CHORDS; c0 += 10) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, (_, k) => {
            const c = c0 + k;
            const header = expected(c).map((v) => signature("sem.echo", [v], { sleepMs: Math.floor(Math.random() * 31) }, { retry: HEADER_RETRY }));
            return h.client.apply(chord(header, signature("sem.collect", [], {}, { queue: b.name })), { queue: a.name, taskId: `k${c}-${started.toString(36)}` });
          }),
        );
        handles.push(...batch);
        await sleep(125);
      }
    })();

    // the killer: while header tasks are unfinished, SIGKILL a random started header worker every
    // 200–400 ms (MAX_KILLS in all) and spawn a replacement at once
    const headerIds = () => handles.flatMap((hd) => Array.from({ length: HEADER }, (_, i) => `${hd.id}-${i}`));
    let applied = false;
    void applying.then(() => (applied = true));
    const headersDone = () => {
      if (!applied) return false;
      const done = new Set(h.runs().filter((r) => r.event === "done").map((r) => r.id));
      return headerIds().every((id) => done.has(id));
    };
    const kills = await killWorkersRandomly(h, a, { concurrency: 8, maxKills: MAX_KILLS, until: headersDone, forMs: 60_000 });
    await applying;

    const results = await Promise.all(handles.map((hd) => hd.result({ timeoutMs: Math.max(1000, 80_000 - (Date.now() - started)) })));
    const resolvedMs = Date.now() - started;
    // whatever the kills left unacked is redelivered and replayed; then nothing more is published
    await queueDrained(h, a, 20_000);
    await queueDrained(h, b, 20_000);

    const runs = h.runs();
    const by = byId(runs);
    const lastHeaderDone = Math.max(...headerIds().map((id) => Math.max(...(by.get(id) ?? []).filter((r) => r.event === "done").map((r) => r.at))));
    const killsMidHeader = kills.filter((k) => k.at < lastHeaderDone).length;
    const rerun = headerIds().filter((id) => (by.get(id) ?? []).filter((r) => r.event === "start").length > 1).length;
    // a delivery whose final record was already written (its worker died mid-settle: after the
    // record, before the ack — around the join write) is replayed: the worker logs this
    const replays = countLogged(h, a, "Redelivered task already finished; acked");
    t.diagnostic(`${CHORDS} chords resolved in ${resolvedMs} ms; ${kills.length} kills (${killsMidHeader} before the last header task finished); ${rerun} header tasks started more than once; ${replays} replays of a finished task`);

    assert.ok(killsMidHeader >= MIN_KILLS, `only ${killsMidHeader} kills happened while header tasks ran: the test proves nothing`);
    assert.ok(rerun > 0, "no header task was started twice: the kills hit no work in flight");
    assert.ok(replays > 0, "no finished header task was redelivered: no kill hit a settle (record written, join and ack not)");
    for (const [c, hd] of handles.entries()) {
      assert.deepEqual(results[c], expected(c), `chord ${c}'s result()`);
      const body = (by.get(`${hd.id}-b`) ?? []).filter((r) => r.event === "start");
      assert.equal(body.length, 1, `body of chord ${c} ran ${body.length} times`);
      assert.deepEqual(body[0]!.data, expected(c), `body of chord ${c} got its header results in order`);
    }
    const missing = headerIds().filter((id) => !(by.get(id) ?? []).some((r) => r.event === "done"));
    assert.deepEqual(missing, [], "every header task finished");
    const phases = await Promise.all(headerIds().map(async (id) => (await h.client.get(id, { queue: a.name }).status())?.phase));
    assert.deepEqual(phases.filter((p) => p !== "Succeeded"), [], "every header task's record is Succeeded");
    const bodyWorkers = h.workers.filter((w) => w.queue === b.name);
    assert.ok(bodyWorkers.length === 1 && bodyWorkers[0]!.alive(), "the body worker was never killed");
  });

  it("continues nested joins exactly once: a chord of (chord, group, chain ending in a group)", { timeout: 90_000 }, async (t) => {
    const N = 60;
    const t0 = Date.now();
    const echo = (v?: string) => signature("sem.echo", v === undefined ? [] : [v], { sleepMs: Math.floor(Math.random() * 31) }, { retry: HEADER_RETRY });
    const expected = (c: number) => [Array.from({ length: 5 }, (_, i) => `${c}.a${i}`), Array.from({ length: 5 }, (_, i) => `${c}.g${i}`), [`${c}.s`, `${c}.s`, `${c}.s`]];
    const handles: CanvasHandle<unknown>[] = [];
    let applied = false;
    const applying = (async () => {
      for (let c0 = 0; c0 < N; c0 += 5) {
        const batch = await Promise.all(
          Array.from({ length: 5 }, (_, k) => {
            const c = c0 + k;
            const [a5, g5] = expected(c);
            const inner = [chord(a5!.map(echo), signature("sem.collect")), group(g5!.map(echo)), chain(echo(`${c}.s`), group(echo(), echo(), echo()))];
            return h.client.apply(chord(inner, signature("sem.collect", [], {}, { queue: b.name })), { queue: a.name, taskId: `n${c}-${t0.toString(36)}` });
          }),
        );
        handles.push(...batch);
        await sleep(250);
      }
    })().finally(() => (applied = true));
    const bodiesStarted = () => applied && handles.every((hd) => h.runs().some((r) => r.id === `${hd.id}-b` && r.event === "start"));
    const kills = await killWorkersRandomly(h, a, { concurrency: 8, maxKills: MAX_KILLS, until: bodiesStarted, forMs: 60_000 });
    await applying;
    const results = await Promise.all(handles.map((hd) => hd.result({ timeoutMs: Math.max(1000, 80_000 - (Date.now() - t0)) })));
    await queueDrained(h, a, 20_000);
    await queueDrained(h, b, 20_000);
    const by = byId(h.runs());
    const lastBody = Math.max(...handles.map((hd) => by.get(`${hd.id}-b`)?.[0]?.at ?? 0));
    const killsMid = kills.filter((k) => k.at < lastBody).length;
    t.diagnostic(`${N} nested canvases resolved in ${Date.now() - t0} ms; ${kills.length} kills (${killsMid} before the last outer body started)`);
    assert.ok(killsMid >= MIN_KILLS, `only ${killsMid} kills happened while the canvases ran: the test proves nothing`);
    for (const [c, hd] of handles.entries()) {
      assert.deepEqual(results[c], expected(c), `canvas ${c}'s result()`);
      for (const body of [`${hd.id}-b`, `${hd.id}-0-b`]) {
        const starts = (by.get(body) ?? []).filter((r) => r.event === "start");
        assert.equal(starts.length, 1, `${body} ran ${starts.length} times`);
      }
      assert.deepEqual(by.get(`${hd.id}-b`)![0]!.data, expected(c), `canvas ${c}'s outer body got the nested results in order`);
    }
  });
});
