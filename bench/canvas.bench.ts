/**
 * Canvas bench (issue 16), against a real nats-server started for the run:
 *
 *   npm run bench:canvas [-- --runs 200 --count 10000 --rounds 3]
 *
 * One queue, 2 `celeriac worker` processes × 256 slots running the no-op `noop` task of
 * bench/canvas-bench-tasks.ts; the client of `celeriac/client` in this process. In interleaved
 * rounds:
 * - single: `client.enqueue(noop)` → `handle.result()`, one at a time, `--runs` times: p50/p99 ms;
 * - chain10: `client.apply(chain(noop.s() × 10))` → `result()`, one at a time, `--runs` times:
 *   p50/p99 ms, against the bound 10 × single p50 + 5 ms × 10 steps;
 * - enqueueMany: `--count` no-op tasks with `client.enqueueMany`, until every record is stored
 *   (one KV watch): tasks/s;
 * - group: `client.apply(group(noop.s() × --count))` → `result()` (the list): tasks/s, and its ratio
 *   to enqueueMany of the same round (issue bound ≥ 0.8);
 * - chord: `client.apply(chord(noop.s() × --count, count.s()))` → `result()`: tasks/s (header and
 *   body) and the body's delay after the last header task.
 * Best round's throughput, median round's latency. Bounded: every wait has a deadline; the server,
 * workers and temp dirs are removed at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import type { TaskRecord } from "../api/message.js";
import { queueNames } from "../api/naming.js";
import { chain, chord, connect, group, signature, type CeleriacClient } from "../client/index.js";
import { startNatsServer, type NatsServer } from "../test/helpers/nats-server.js";
import { numberArg as arg } from "./throughput-phases.js";

const RUNS = arg("runs", 200);
const COUNT = arg("count", 10_000);
const ROUNDS = arg("rounds", 3);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TASKS = fileURLToPath(new URL("./canvas-bench-tasks.js", import.meta.url));
const LIMIT_MS = 300_000;

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const median = (xs: number[]): number => pct(xs, 0.5);

async function startWorkers(srv: NatsServer, queue: string): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  for (let i = 0; i < 2; i++) {
    const p = spawn(process.execPath, ["bin/celeriac.js", "worker", "--tasks", TASKS, "--queue", queue, "--nats", srv.url, "--port", "0", "--concurrency", "256"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    p.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const end = Date.now() + 20_000;
    while (!out.includes('"msg":"Worker started"')) {
      if (Date.now() > end || p.exitCode !== null) throw new Error(`worker did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    workers.push(p);
  }
  return workers;
}

async function latencies(n: number, once: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Tasks/s of `count` tasks sent with enqueueMany, until the last record is stored. */
async function enqueueManyRate(client: CeleriacClient, queue: string, round: number): Promise<number> {
  const kv = await new Kvm(client.connection).open(queueNames("default", queue).resultsBucket);
  const pending = new Set<string>();
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => (resolveAll = r));
  const ids = Array.from({ length: COUNT }, (_, i) => `em-${round}-${i}`);
  for (const id of ids) pending.add(id);
  const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT" || !pending.has(e.key)) continue;
      if (e.json<TaskRecord>().status?.phase !== "Succeeded") continue;
      pending.delete(e.key);
      if (pending.size === 0) resolveAll();
    }
  })().catch(() => undefined);
  const t0 = performance.now();
  await client.enqueueMany(ids.map((taskId) => ({ name: "noop", options: { taskId } })));
  const deadline = setTimeout(() => resolveAll(), LIMIT_MS);
  await all;
  clearTimeout(deadline);
  watch.stop();
  if (pending.size > 0) throw new Error(`${pending.size} enqueueMany tasks not stored within ${LIMIT_MS} ms`);
  return COUNT / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const srv = await startNatsServer();
  const queue = "canvasbench";
  const client = await connect({ servers: srv.url, queue, createQueues: true });
  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ");
  let workers: ChildProcess[] = [];
  try {
    await client.enqueue("noop").then((h) => h.result({ timeoutMs: 1000 })).catch(() => undefined); // creates the queue
    workers = await startWorkers(srv, queue);
    console.log(`canvas bench: ${RUNS} runs per latency, ${COUNT} tasks per group/chord, ${ROUNDS} rounds; load ${load()}`);
    const noop = signature("noop");
    await latencies(50, async () => (await client.enqueue("noop")).result({ timeoutMs: LIMIT_MS })); // warm-up
    await latencies(20, async () => (await client.apply(chain(...Array.from({ length: 10 }, () => noop)))).result({ timeoutMs: LIMIT_MS }));
    const single: number[][] = [];
    const chain10: number[][] = [];
    const many: number[] = [];
    const groups: number[] = [];
    const chords: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      single.push(await latencies(RUNS, async () => (await client.enqueue("noop")).result({ timeoutMs: LIMIT_MS })));
      chain10.push(await latencies(RUNS, async () => (await client.apply(chain(...Array.from({ length: 10 }, () => noop)))).result({ timeoutMs: LIMIT_MS })));
      const em = await enqueueManyRate(client, queue, r);
      many.push(em);
      let t0 = performance.now();
      const gh = await client.apply(group(Array.from({ length: COUNT }, () => noop)));
      const applied = performance.now() - t0;
      const gres = (await gh.result({ timeoutMs: LIMIT_MS })) as unknown[];
      const waited = performance.now() - t0 - applied;
      if (gres.length !== COUNT) throw new Error(`group result has ${gres.length} entries, not ${COUNT}`);
      const g = COUNT / ((performance.now() - t0) / 1000);
      groups.push(g);
      t0 = performance.now();
      const n = await (await client.apply(chord(Array.from({ length: COUNT }, () => noop), signature("count")))).result({ timeoutMs: LIMIT_MS });
      if (n !== COUNT) throw new Error(`chord body counted ${String(n)}, not ${COUNT}`);
      const c = COUNT / ((performance.now() - t0) / 1000);
      chords.push(c);
      const s = single[r]!;
      const ch = chain10[r]!;
      console.log(
        `round ${r + 1}: single p50 ${median(s).toFixed(2)} p99 ${pct(s, 0.99).toFixed(2)} ms · chain of 10 p50 ${median(ch).toFixed(2)} p99 ${pct(ch, 0.99).toFixed(2)} ms · ` +
          `enqueueMany ${em.toFixed(0)}/s · group ${g.toFixed(0)}/s (${(g / em).toFixed(2)}×, apply ${applied.toFixed(0)} ms + result ${waited.toFixed(0)} ms) · chord ${c.toFixed(0)}/s (${(c / em).toFixed(2)}×) · load ${load()}`,
      );
    }
    const s50 = median(single.map((s) => median(s)));
    const s99 = median(single.map((s) => pct(s, 0.99)));
    const c50 = median(chain10.map((s) => median(s)));
    const c99 = median(chain10.map((s) => pct(s, 0.99)));
    const bound = 10 * s50 + 5 * 10;
    const bestMany = Math.max(...many);
    console.log("\n| measure | result |\n|---|---|");
    console.log(`| single task enqueue → result | p50 ${s50.toFixed(2)} ms, p99 ${s99.toFixed(2)} ms |`);
    console.log(`| chain of 10 no-op steps → result | p50 ${c50.toFixed(2)} ms, p99 ${c99.toFixed(2)} ms (bound 10 × ${s50.toFixed(2)} + 50 = ${bound.toFixed(1)} ms: ${c50 <= bound ? "met" : "NOT met"}) |`);
    console.log(`| enqueueMany of ${COUNT} | ${bestMany.toFixed(0)} tasks/s |`);
    console.log(`| group of ${COUNT} → result list | ${Math.max(...groups).toFixed(0)} tasks/s, ${(Math.max(...groups) / bestMany).toFixed(2)}× enqueueMany (per round: ${groups.map((g, i) => (g / many[i]!).toFixed(2)).join(", ")}) |`);
    console.log(`| chord of ${COUNT} + body → result | ${Math.max(...chords).toFixed(0)} tasks/s, ${(Math.max(...chords) / bestMany).toFixed(2)}× enqueueMany |`);
  } finally {
    for (const w of workers) w.kill("SIGTERM");
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once("exit", r)))));
    await client.close();
    await srv.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
