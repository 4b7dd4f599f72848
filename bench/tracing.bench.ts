/**
 * Tracing overhead bench (docs/tracing.md, "Overhead"), against a real nats-server started for the run:
 *
 *   npm run build && node dist/bench/tracing.bench.js [--runs 300 --count 5000 --rounds 3]
 *
 * Runs itself twice as child processes, alternating: `off` (no SDK: Celeriac's spans are the API's
 * no-ops) and `on` (the worker and operator setup, `setupTracing`, exporting OTLP/HTTP to a local
 * receiver that discards the batches: every span recorded, batched and sent). Each child: one
 * in-process Worker (64 slots, no-op task) and client; `single` = enqueue → result() one at a time
 * (p50 ms), `many` = `--count` tasks with enqueueMany until every result is stored (tasks/s).
 * (`--mode=ctx` runs one child with only the AsyncLocalStorage context manager registered.)
 * Prints each mode's best round and the difference per task. Bounded: every wait has a deadline.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { connect } from "../client/index.js";
import { defineTask, Worker } from "../worker/index.js";
import { startNatsServer, uniqueQueue } from "../test/helpers/nats-server.js";
import { numberArg as arg } from "./throughput-phases.js";

const RUNS = arg("runs", 300);
const COUNT = arg("count", 5000);
const ROUNDS = arg("rounds", 3);
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

interface Round {
  mode: string;
  singleP50Ms: number;
  manyPerSecond: number;
  spansExported: number;
}

/** One child run: `mode` off or on. */
async function child(mode: string): Promise<Round> {
  const srv = await startNatsServer();
  let spans = 0;
  const receiver = createServer((req, res) => {
    let n = 0;
    req.on("data", (c: Buffer) => (n += c.length));
    req.on("end", () => {
      spans += n > 0 ? 1 : 0;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const port = (receiver.address() as { port: number }).port;
  // the OTLP exporter reads its endpoint from the environment; imported only when on (`base` runs this file on a tree without tracing/)
  if (mode === "on") process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
  const tracing = mode === "on" ? await (await import("../tracing/setup.js")).setupTracing({ serviceName: "celeriac-bench", log: pino({ level: "warn" }) }) : undefined;
  if (mode === "ctx") {
    // only the AsyncLocalStorage context manager (what every Node SDK setup registers): its share of `on`
    const { AsyncLocalStorageContextManager } = await import("@opentelemetry/context-async-hooks");
    (await import("@opentelemetry/api")).context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  }
  const queue = uniqueQueue("trb");
  const client = await connect({ servers: srv.url, queue, createQueues: true });
  const noop = defineTask("noop", () => null);
  const worker = new Worker({ nc: client.connection, tasks: [noop], queue, concurrency: 64, logger: pino({ level: "warn" }) });
  await worker.start();
  try {
    for (let i = 0; i < 50; i++) await (await client.enqueue(noop, [])).result({ timeoutMs: 10_000 }); // warm-up
    const lat: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await (await client.enqueue(noop, [])).result({ timeoutMs: 10_000 });
      lat.push(performance.now() - t0);
    }
    const t0 = performance.now();
    const handles = await client.enqueueMany(Array.from({ length: COUNT }, () => ({ name: noop })));
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 120_000 })));
    const manyPerSecond = COUNT / ((performance.now() - t0) / 1000);
    await tracing?.shutdown();
    return { mode, singleP50Ms: pct(lat, 0.5), manyPerSecond, spansExported: spans };
  } finally {
    await worker.close();
    await client.close();
    await srv.cleanup();
    receiver.close();
  }
}

async function main(): Promise<void> {
  const mode = process.argv.find((a) => a.startsWith("--mode="))?.slice(7);
  if (mode) {
    console.log(JSON.stringify(await child(mode)));
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of ["off", "on"]) {
      const out = await new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, [self, `--mode=${m}`, ...process.argv.slice(2)], { stdio: ["ignore", "pipe", "inherit"] });
        let s = "";
        p.stdout.on("data", (c: Buffer) => (s += c.toString()));
        const timer = setTimeout(() => p.kill("SIGKILL"), 300_000);
        p.on("exit", (code) => {
          clearTimeout(timer);
          if (code === 0) resolve(s);
          else reject(new Error(`bench child ${m} exited ${code}`));
        });
      });
      const round = JSON.parse(out.trim().split("\n").pop()!) as Round;
      rounds.push(round);
      console.log(`round ${r + 1} ${m}: single p50 ${round.singleP50Ms.toFixed(2)} ms, enqueueMany ${Math.round(round.manyPerSecond)} tasks/s${m === "on" ? `, ${round.spansExported} OTLP batches` : ""}`);
    }
  }
  const best = (m: string) => ({
    p50: Math.min(...rounds.filter((r) => r.mode === m).map((r) => r.singleP50Ms)),
    rate: Math.max(...rounds.filter((r) => r.mode === m).map((r) => r.manyPerSecond)),
  });
  const off = best("off");
  const on = best("on");
  console.log(`best: off ${off.p50.toFixed(2)} ms / ${Math.round(off.rate)} tasks/s; on ${on.p50.toFixed(2)} ms / ${Math.round(on.rate)} tasks/s`);
  console.log(`overhead per task: ${(on.p50 - off.p50).toFixed(3)} ms of single-task latency; ${((1e6 / on.rate - 1e6 / off.rate)).toFixed(1)} µs of throughput time (${(100 * (1 - on.rate / off.rate)).toFixed(1)} % fewer tasks/s)`);
}

await main();
