/**
 * Cost of flow control (issue 15), against a real nats-server started for the run:
 *
 *   npm run build && node dist/bench/flow-control.bench.js [--count 10000] [--rounds 2] [--rate 500] [--seconds 4]
 *
 * Per configuration, in interleaved rounds, each on a fresh queue with 2 `celeriac worker` processes ×
 * 256 slots, the no-op task `add`, tasks published as producers do (`publishTaskMessage`, `msg.flow`
 * set for flow-controlled queues, 1,000 in flight) and complete when their record is stored
 * (one KV watch of the results bucket):
 * - `off`: no flow control (the work stream directly);
 * - `rate`: `rateLimit: {rate: "1000000/s", burst: 100000}` (on, never binding);
 * - `keys`: `concurrencyKeys: {limit: 10}`, 100 keys round robin;
 * - `priorities`: `priorities: {levels: 3}`, tasks spread over the 3 levels.
 * For each: e2e tasks/s of `--count` tasks and p50/p99 latency (publish → record stored) at
 * `--rate`/s for `--seconds`; the best round's throughput and the median round's latency; ratios to `off`.
 * Fairness latency: key A has 10,000 tasks held (limit 10 per key, each task 20 ms), then keys B1…B20
 * enqueue one task each, 0.25 s apart: each one's publish → record stored, p50/p99.
 * Bounded: every wait has a deadline; the server, workers and temp dirs are removed at the end.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { connect as natsConnect } from "@nats-io/transport-node";
import { pino } from "pino";
import type { MessageFlow } from "../api/flow.js";
import type { TaskRecord } from "../api/message.js";
import { queueNames } from "../api/naming.js";
import type { QueueSpec } from "../api/queue.js";
import { newTaskMessage } from "../api/task-message.js";
import { ensureQueueResources } from "../nats/queue-resources.js";
import { publishTaskMessage } from "../nats/task-publish.js";
import { Dispatcher } from "../operator/flow/dispatcher.js";
import { queueSettingsFromSpec } from "../operator/queue/queue-settings.js";
import { startNatsServer, type NatsServer } from "../test/helpers/nats-server.js";
import { numberArg as arg } from "./throughput-phases.js";

const COUNT = arg("count", 10_000);
const ROUNDS = arg("rounds", 2);
const RATE = arg("rate", 500);
const SECONDS = arg("seconds", 4);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TASKS = fileURLToPath(new URL("./flow-bench-tasks.js", import.meta.url));
const LIMIT_MS = 120_000;
const log = pino({ level: "warn" });

interface Config {
  name: string;
  spec: QueueSpec;
  flow: ((i: number) => MessageFlow) | undefined;
}

const CONFIGS: Config[] = [
  { name: "off", spec: {}, flow: undefined },
  { name: "rate", spec: { rateLimit: { rate: "1000000/s", burst: 100000 } }, flow: () => ({ priority: 0 }) },
  { name: "keys", spec: { concurrencyKeys: { limit: 10 } }, flow: (i) => ({ priority: 0, key: `k${i % 100}` }) },
  { name: "priorities", spec: { priorities: { levels: 3 } }, flow: (i) => ({ priority: i % 3 }) },
];

let queueSeq = 0;

/** A queue with its workers (and dispatcher when flow-controlled), and a watch of its records. */
async function setUp(srv: NatsServer, js: JetStreamClient, spec: QueueSpec, concurrency: number, task: "add" | "nap") {
  const names = queueNames("default", `flowbench-${process.pid}-${queueSeq++}`);
  const full: QueueSpec = { ...spec, concurrency };
  await ensureQueueResources(await jetstreamManager((js as unknown as { nc: Parameters<typeof jetstreamManager>[0] }).nc), names, queueSettingsFromSpec(full), { updateOnDrift: true });
  const dispatcher = spec.rateLimit || spec.concurrencyKeys || spec.priorities ? new Dispatcher({ js, names, spec: full, log }) : undefined;
  await dispatcher?.start();
  const workers: ChildProcess[] = [];
  for (let i = 0; i < 2; i++) {
    const p = spawn(process.execPath, ["bin/celeriac.js", "worker", "--tasks", TASKS, "--queue", names.queue, "--nats", srv.url, "--port", "0", "--concurrency", String(concurrency)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const end = Date.now() + 20_000;
    while (!out.includes('"msg":"Worker started"')) {
      if (Date.now() > end || p.exitCode !== null) throw new Error(`worker did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    workers.push(p);
  }
  const kv = await new Kvm(js).open(names.resultsBucket);
  const done = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
  void (async () => {
    for await (const e of watch) {
      if (e.key.includes(".") || e.operation !== "PUT") continue;
      if (e.json<TaskRecord>().status?.phase !== "Succeeded") continue;
      done.set(e.key, performance.now());
      waiters.get(e.key)?.();
    }
  })().catch(() => undefined);
  let seq = 0;
  const publish = async (flow: MessageFlow | undefined, args: unknown[]): Promise<{ id: string; at: number }> => {
    const id = `b${seq++}`;
    const at = performance.now();
    const msg = newTaskMessage({ id, task: task === "add" ? "add" : "nap", args, queue: names.queue, namespace: "default", origin: { kind: "Client" }, ...(flow ? { flow } : {}) }, new Date());
    await publishTaskMessage(js, names, msg);
    return { id, at };
  };
  const until = (id: string): Promise<number> =>
    done.has(id)
      ? Promise.resolve(done.get(id)!)
      : new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`task ${id} not stored within ${LIMIT_MS} ms`)), LIMIT_MS);
        waiters.set(id, () => {
          clearTimeout(t);
          waiters.delete(id);
          resolve(done.get(id)!);
        });
      });
  return {
    names,
    publish,
    until,
    async close(): Promise<void> {
      watch.stop();
      await dispatcher?.stop();
      for (const w of workers) w.kill("SIGTERM");
      await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once("exit", r)))));
    },
  };
}

async function throughput(srv: NatsServer, js: JetStreamClient, c: Config): Promise<number> {
  const q = await setUp(srv, js, c.spec, 256, "add");
  try {
    for (let i = 0; i < 200; i++) await q.until((await q.publish(c.flow?.(i), [1, 2])).id); // warm-up, sequential
    const t0 = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 1000 }, async () => {
      while (next < COUNT) {
        const i = next++;
        ids.push((await q.publish(c.flow?.(i), [i, 1])).id);
      }
    }));
    let last = 0;
    for (const id of ids) last = Math.max(last, await q.until(id));
    return COUNT / ((last - t0) / 1000);
  } finally {
    await q.close();
  }
}

async function latency(srv: NatsServer, js: JetStreamClient, c: Config): Promise<{ p50: number; p99: number }> {
  const q = await setUp(srv, js, c.spec, 256, "add");
  try {
    for (let i = 0; i < 200; i++) await q.until((await q.publish(c.flow?.(i), [1, 2])).id);
    const n = RATE * SECONDS;
    const t0 = performance.now();
    const lat: Promise<number>[] = [];
    for (let i = 0; i < n; i++) {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      lat.push(q.publish(c.flow?.(i), [i, 1]).then(async (p) => (await q.until(p.id)) - p.at));
    }
    const xs = (await Promise.all(lat)).sort((a, b) => a - b);
    return { p50: xs[Math.floor(xs.length * 0.5)]!, p99: xs[Math.floor(xs.length * 0.99)]! };
  } finally {
    await q.close();
  }
}

async function fairness(srv: NatsServer, js: JetStreamClient): Promise<number[]> {
  const q = await setUp(srv, js, { concurrencyKeys: { limit: 10 } }, 16, "nap");
  try {
    await Promise.all(Array.from({ length: 10_000 }, (_, i) => q.publish({ priority: 0, key: "A" }, [20, i])));
    const out: number[] = [];
    for (let b = 1; b <= 20; b++) {
      const p = await q.publish({ priority: 0, key: `B${b}` }, [20, b]);
      out.push((await q.until(p.id)) - p.at);
      await new Promise((r) => setTimeout(r, 250));
    }
    return out.sort((a, b) => a - b);
  } finally {
    await q.close();
  }
}

async function main(): Promise<void> {
  const srv = await startNatsServer();
  const nc = await natsConnect({ servers: srv.url });
  const js = jetstream(nc);
  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ");
  try {
    console.log(`flow-control bench: ${COUNT} tasks per throughput run, ${RATE}/s for ${SECONDS} s, ${ROUNDS} rounds; load ${load()}`);
    const best = new Map<string, number>();
    const lats = new Map<string, Array<{ p50: number; p99: number }>>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of CONFIGS) {
        const t = await throughput(srv, js, c);
        const l = await latency(srv, js, c);
        best.set(c.name, Math.max(best.get(c.name) ?? 0, t));
        lats.set(c.name, [...(lats.get(c.name) ?? []), l]);
        console.log(`round ${r + 1} ${c.name.padEnd(10)} ${t.toFixed(0)} tasks/s · p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} ms · load ${load()}`);
      }
    }
    const off = best.get("off")!;
    console.log("\n| flow control | e2e tasks/s (best of rounds) | × off | p50 / p99 ms at rate (median round) |\n|---|--:|--:|--:|");
    for (const c of CONFIGS) {
      const ls = lats.get(c.name)!.sort((a, b) => a.p99 - b.p99);
      const m = ls[Math.floor(ls.length / 2)]!;
      console.log(`| ${c.name} | ${best.get(c.name)!.toFixed(0)} | ${(best.get(c.name)! / off).toFixed(2)}× | ${m.p50.toFixed(2)} / ${m.p99.toFixed(2)} |`);
    }
    const f = await fairness(srv, js);
    console.log(`\nfairness: key B's task behind key A's 10,000 held (limit 10, 20 ms tasks), publish → stored, n = ${f.length}: p50 ${f[Math.floor(f.length / 2)]!.toFixed(1)} ms, p99 ${f[f.length - 1]!.toFixed(1)} ms; load ${load()}`);
  } finally {
    await nc.close();
    await srv.cleanup();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
