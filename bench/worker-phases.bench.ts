/**
 * Diagnostic companion of worker-throughput.bench.ts: times the enqueue side and the worker side
 * separately (enqueue N with no worker running, then start the worker and drain).
 *   node dist/bench/worker-phases.bench.js [--count 5000] [--concurrency 256]
 */
import { performance } from "node:perf_hooks";
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { pino } from "pino";
import { connect } from "../client/index.js";
import { defineTask, Worker } from "../worker/index.js";
import { startNatsServer } from "../test/helpers/nats-server.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const COUNT = arg("count", 5000);
const CONCURRENCY = arg("concurrency", 256);

async function windowed(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  const inflight = new Set<Promise<unknown>>();
  for (let i = 0; i < n; i++) {
    const p = fn(i).finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 1000) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}

async function main(): Promise<void> {
  const srv = await startNatsServer();
  try {
    const nc = await natsConnect({ servers: srv.url });
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "RAWPUB", subjects: ["rawpub"], retention: RetentionPolicy.Workqueue });
    let t0 = performance.now();
    await windowed(COUNT, (i) => js.publish("rawpub", JSON.stringify({ i, pad: "x".repeat(300) })));
    console.log(`raw publish            ${(COUNT / ((performance.now() - t0) / 1000)).toFixed(0)} msg/s`);
    t0 = performance.now();
    await windowed(COUNT, (i) => js.publish("rawpub", JSON.stringify({ i, pad: "x".repeat(300) }), { msgID: `m${i}` }));
    console.log(`raw publish + msgID    ${(COUNT / ((performance.now() - t0) / 1000)).toFixed(0)} msg/s`);
    {
      // ceiling drain: consume the RAWPUB backlog (2 × COUNT) with one KV put before each ack
      const { Kvm } = await import("@nats-io/kv");
      const kv = await new Kvm(js).create("RAWKV", { history: 1, ttl: 86_400_000 });
      await jsm.consumers.add("RAWPUB", { durable_name: "c", ack_policy: "explicit" as never, max_ack_pending: 10_000 });
      const c = await js.consumers.get("RAWPUB", "c");
      const msgs = await c.consume({ max_messages: 1000 });
      let n = 0;
      const t1 = performance.now();
      await new Promise<void>((res) => {
        void (async () => {
          for await (const m of msgs) void kv.put(`k${m.seq}`, m.data).then(() => (m.ack(), ++n === COUNT * 2 && res()));
        })();
      });
      console.log(`ceiling drain (+KV)    ${((2 * COUNT) / ((performance.now() - t1) / 1000)).toFixed(0)} msg/s`);
      await msgs.close();
    }
    const client = await connect({ servers: srv.url, queue: "phases", createQueues: true });
    await client.enqueue("bench.noop", [], {});
    t0 = performance.now();
    await windowed(COUNT, () => client.enqueue("bench.noop", [], {}));
    console.log(`client.enqueue         ${(COUNT / ((performance.now() - t0) / 1000)).toFixed(0)} tasks/s`);
    let done = 0;
    let resolve: () => void = () => undefined;
    const all = new Promise<void>((r) => (resolve = r));
    const counter = { name: "count", write: async () => void (++done === COUNT + 1 && resolve()) };
    const wnc = await natsConnect({ servers: srv.url });
    const w = new Worker({ nc: wnc, tasks: [defineTask("bench.noop", () => null)], queue: "phases", concurrency: CONCURRENCY, logger: pino({ level: "warn" }), ...(process.env.NOKV ? { sinks: [counter] } : { extraSinks: [counter] }) });
    t0 = performance.now();
    await w.start();
    await all;
    console.log(`worker drain           ${(COUNT / ((performance.now() - t0) / 1000)).toFixed(0)} tasks/s (concurrency ${CONCURRENCY})`);
    await w.close();
    await Promise.all([wnc.close(), client.close(), nc.close()]);
  } finally {
    await srv.cleanup();
  }
}
void main().then(() => process.exit(0), (e: unknown) => (console.error(e), process.exit(1)));
