/**
 * Worker throughput and latency benchmark, against a real nats-server started for the run.
 *
 *   npm run build && node dist/bench/worker-throughput.bench.js [--count 5000] [--rate 500] [--seconds 5]
 *
 * Measures, on the same server in the same run:
 * 1. ceiling A: raw JetStream publish + consume + ack;
 * 2. ceiling B: the same plus one KV put per message (what a task needs at minimum: run + record);
 *    both ceilings move the same bytes as Celeriac — a real task message with its headers and
 *    `Nats-Msg-Id`, and a record-sized KV value under the task id — so the ratio measures
 *    Celeriac's overhead, not a difference in payload;
 * 3. Celeriac: no-op task throughput, `client.enqueue` → result stored in the results bucket;
 * 4. Celeriac latency p50/p99 (enqueue → stored result) at a fixed offered rate (default 500/s).
 * Throughput phases run `--rounds` times, interleaved (A, B, Celeriac, A, B, …), and the best of
 * each is reported, so a noisy neighbour on a small machine hits all three alike.
 * Prints figures and ratios. Bounded: every phase stops after 60 s.
 */
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { buildTaskMessage, connect } from "../client/index.js";
import { HEADERS } from "../api/message.js";
import { defineTask, Worker } from "../worker/index.js";
import { startNatsServer } from "../test/helpers/nats-server.js";
import { natsConnectionOptions, natsSettingsFrom } from "../nats/index.js";

/** Every connection (ceilings, worker, client) uses Celeriac's connection options. */
const natsOpts = (url: string) => natsConnectionOptions(natsSettingsFrom({ url }, {}));

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const COUNT = arg("count", 20_000);
const ROUNDS = arg("rounds", 2);
const RATE = arg("rate", 500);
const SECONDS = arg("seconds", 5);
const PHASE_LIMIT_MS = 60_000;
const WINDOW = 1000; // publishes in flight at once
const CONCURRENCY = arg("concurrency", 256);

async function withDeadline<T>(what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: over ${PHASE_LIMIT_MS} ms`)), PHASE_LIMIT_MS)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

async function publishAll(n: number, publish: (i: number) => Promise<unknown>): Promise<void> {
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < n; i++) {
    const p = publish(i).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

/** Ceiling: publish n, consume and ack them (optionally with one KV put each); msgs/s. */
async function ceiling(nc: NatsConnection, name: string, withKv: boolean): Promise<number> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(name, { durable_name: "c", ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  const kv: KV | undefined = withKv ? await new Kvm(js).create(`${name}_KV`, { history: 1 }) : undefined;
  const consumer = await js.consumers.get(name, "c");
  const t0 = performance.now();
  let done = 0;
  const consumed = (async () => {
    const msgs = await consumer.consume({ max_messages: 1000 });
    await new Promise<void>((resolve) => {
      void (async () => {
        for await (const m of msgs) {
          if (kv) {
            void kv.put(m.headers?.get("Nats-Msg-Id") ?? `k${m.seq}`, RECORD).then(() => {
              m.ack();
              if (++done === COUNT) resolve();
            });
          } else {
            m.ack();
            if (++done === COUNT) resolve();
          }
        }
      })();
    });
    await msgs.close();
  })();
  await publishAll(COUNT, (i) => js.publish(`${name}.x`, PAYLOADS[i]!.data, { msgID: PAYLOADS[i]!.id, headers: PAYLOADS[i]!.h }));
  await withDeadline(name, consumed);
  return COUNT / ((performance.now() - t0) / 1000);
}

/** Task messages built before timing: the ceilings publish the same bytes and headers as an enqueue. */
const PAYLOADS = Array.from({ length: COUNT }, () => {
  const msg = buildTaskMessage("bench.noop", [], {}, { queue: "bench", namespace: "default" }, new Date());
  const h = natsHeaders();
  h.set(HEADERS.task, "bench.noop");
  h.set(HEADERS.version, "1");
  return { id: msg.id, data: JSON.stringify(msg), h };
});

/** A results-bucket record of the size a no-op task's record has. */
const RECORD = JSON.stringify({
  id: "00000000-0000-4000-8000-000000000000",
  task: "bench.noop",
  queue: "bench-throughput-0",
  namespace: "default",
  origin: { kind: "Client" },
  status: { attempts: 1, queuedTime: new Date().toISOString(), worker: "host:12345", phase: "Succeeded", startTime: new Date().toISOString(), completionTime: new Date().toISOString(), result: null },
  updatedAt: new Date().toISOString(),
});

const noop = defineTask("bench.noop", () => null);

async function celeriac(url: string, queue: string, concurrency: number): Promise<{ run: (n: number, rateHz?: number) => Promise<{ perSecond: number; latencies: number[] }>; close: () => Promise<void> }> {
  const wnc = await natsConnect(natsOpts(url));
  let onStored: (id: string) => void = () => undefined;
  // runs right after the results-bucket put resolved: the moment the result is stored
  const counter = { name: "bench-counter", write: async (r: { id: string; status: { phase?: string } }) => void (r.status.phase === "Succeeded" && onStored(r.id)) };
  const worker = new Worker({ nc: wnc, tasks: [noop], queue, concurrency, logger: pino({ level: "warn" }), extraSinks: [counter] });
  await worker.start();
  const client = await connect({ servers: url, queue });
  return {
    async run(n, rateHz) {
      const sent = new Map<string, number>();
      const latencies: number[] = [];
      let resolveAll: () => void = () => undefined;
      const allDone = new Promise<void>((r) => (resolveAll = r));
      onStored = (id) => {
        const t = sent.get(id);
        if (t === undefined) return;
        latencies.push(performance.now() - t);
        sent.delete(id);
        if (latencies.length === n) resolveAll();
      };
      const t0 = performance.now();
      if (rateHz) {
        const interval = 1000 / rateHz;
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < n; i++) {
          const due = t0 + i * interval;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          const id = `lat-${i}-${Math.random().toString(36).slice(2, 8)}`;
          sent.set(id, performance.now());
          pending.push(client.enqueue("bench.noop", [], {}, { taskId: id }));
        }
        await Promise.all(pending);
      } else {
        await publishAll(n, (i) => {
          const id = `thr-${i}-${Math.random().toString(36).slice(2, 8)}`;
          sent.set(id, performance.now());
          return client.enqueue("bench.noop", [], {}, { taskId: id });
        });
      }
      await withDeadline(`celeriac ${n}`, allDone);
      const perSecond = n / ((performance.now() - t0) / 1000);
      return { perSecond, latencies };
    },
    async close() {
      await worker.close();
      await client.close();
      await wnc.close();
    },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const srv = await startNatsServer();
  const nc = await natsConnect(natsOpts(srv.url));
  try {
    const lat = await celeriac(srv.url, "bench-latency", 16);
    await lat.run(200, 200); // warm-up
    const l = await lat.run(RATE * SECONDS, RATE);
    await lat.close();
    let raw = 0;
    let rawKv = 0;
    let best = 0;
    for (let r = 0; r < ROUNDS; r++) {
      raw = Math.max(raw, await ceiling(nc, `BENCH_RAW${r}`, false));
      rawKv = Math.max(rawKv, await ceiling(nc, `BENCH_RAWKV${r}`, true));
      const thr = await celeriac(srv.url, `bench-throughput-${r}`, CONCURRENCY);
      best = Math.max(best, (await thr.run(COUNT)).perSecond);
      await thr.close();
    }
    const t = { perSecond: best };
    const f = (x: number) => x.toFixed(0).padStart(8);
    console.log(`nats-server ${"2.9"} · ${COUNT} messages per throughput phase · node ${process.version}`);
    console.log(`ceiling A  publish+consume+ack          ${f(raw)} msg/s`);
    console.log(`ceiling B  publish+consume+ack+KV put   ${f(rawKv)} msg/s`);
    console.log(`celeriac   enqueue → stored result      ${f(t.perSecond)} tasks/s   = ${((100 * t.perSecond) / raw).toFixed(0)}% of A, ${((100 * t.perSecond) / rawKv).toFixed(0)}% of B (target ≥ 70% of B)`);
    console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} CPUs (other processes skew both figures)`);
    console.log(`latency at ${RATE}/s offered for ${SECONDS} s (${l.latencies.length} tasks): p50 ${pct(l.latencies, 50).toFixed(2)} ms, p99 ${pct(l.latencies, 99).toFixed(2)} ms (target p99 < 10 ms)`);
  } finally {
    await nc.close();
    await srv.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
