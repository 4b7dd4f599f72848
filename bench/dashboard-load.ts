/**
 * The dashboard under load (issue 19: "usable at 10,000 tasks/s aggregate"), against a real
 * nats-server started for the run, on loopback only.
 *
 *   npm run build && node dist/bench/dashboard-load.js [--rate 10000] [--seconds 20] [--queues 10]
 *
 * What runs:
 * - `--queues` Queues with the platform's real stream and consumer layout (`ensureQueueResources`:
 *   work stream, `workers` consumer, delayed and dead-letter streams, results bucket);
 * - a load generator in a worker thread offering `--rate` tasks/s aggregate for `--seconds`
 *   (bounded: rate × seconds messages at most): task messages as an enqueue publishes them
 *   (Celeriac's pipelined publisher, `Nats-Msg-Id`, task headers) spread over the queues, each
 *   consumed from the queue's `workers` consumer and acked at once. A Celeriac worker (no-op task,
 *   result stored) reaches about 6,700 tasks/s on this 2-core machine when it is quiet
 *   (worker-throughput.bench.ts), so 10,000/s is offered as publish + consume + ack, which is what
 *   the dashboard reads (stream and consumer state), without the per-task results-bucket write;
 * - the built `celeriac dashboard --port 0` as its own process (default 1 s sampling);
 * - one SSE client reading `/api/events` (bytes and arrival time of each tick);
 * - headless Chromium (Debian's, playwright-core) on the Overview page, read over CDP.
 *
 * Measures, over the loaded window (after a warm-up of {@link WARMUP_S} s): the achieved rate
 * (acks/s, and the sum of the page's Rate /s column at the end); SSE bytes per tick; the dashboard
 * process's CPU % (utime + stime from /proc); the sampler period (SSE event to SSE event) p50/p99
 * and from it the sampler's tick duration (period − 1,000 ms: the sampler waits 1 s after each
 * tick); the page's main-thread time per tick (CDP `Performance.getMetrics` TaskDuration and
 * ScriptDuration deltas ÷ ticks); the DOM node count and JS heap every 5 s, and the node count
 * (attached or not) and heap after a forced GC at the window's start and end (stable: no growth
 * per task). Prints one JSON summary.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, headers as natsHeaders } from "@nats-io/transport-node";
import { HEADERS } from "../api/message.js";
import { queueNames } from "../api/naming.js";
import { buildTaskMessage } from "../client/index.js";
import { ensureQueueResources, natsConnectionOptions, natsSettingsFrom, PipelinedPublisher, queueSettings } from "../nats/index.js";
import { startNatsServer } from "../test/helpers/nats-server.js";
import { BIN, cleanEnv, openBrowser, openPage } from "../test/dashboard/browser.js";
import { numberArg as arg } from "./throughput-phases.js";

/** Seconds of load before measuring (queues fill, rates settle). */
export const WARMUP_S = 3;
/** Most publishes waiting for their PubAck; beyond it the generator falls behind (and says so). */
export const MAX_IN_FLIGHT = 20_000;
/** The loop's pacing step, ms. */
const STEP_MS = 5;

/** What the load generator thread is given. */
interface LoadInput {
  url: string;
  queues: string[];
  rate: number;
  seconds: number;
}

/** What the load generator thread reports, every second and at the end. */
interface LoadReport {
  kind: "second" | "done";
  published: number;
  acked: number;
  /** Publishes not made because {@link MAX_IN_FLIGHT} were waiting. */
  skipped: number;
  failed: number;
  elapsedMs: number;
}

/** The load generator: publishes at `rate` for `seconds`, consumes and acks everything. */
async function generate(o: LoadInput): Promise<void> {
  const opts = natsConnectionOptions(natsSettingsFrom({ url: o.url }, {}));
  const pnc = await natsConnect(opts);
  const cnc = await natsConnect(opts);
  const js = jetstream(cnc);
  const names = o.queues.map((q) => queueNames("default", q));
  let acked = 0;
  const consumers = await Promise.all(names.map(async (n) => (await js.consumers.get(n.stream, n.workerConsumer)).consume({ max_messages: 2000 })));
  for (const msgs of consumers) {
    void (async () => {
      for await (const m of msgs) {
        m.ack();
        acked++;
      }
    })();
  }
  // one template per queue: the id differs per message (it is the dedupe key)
  const templates = names.map((n) => {
    const body = JSON.stringify(buildTaskMessage("load.noop", [], {}, { queue: n.queue, namespace: "default" }, new Date()));
    const id = (JSON.parse(body) as { id: string }).id;
    const [head, tail] = body.split(id) as [string, string];
    return { subject: n.taskSubject, head, tail };
  });
  const pub = PipelinedPublisher.for(pnc);
  const total = Math.round(o.rate * o.seconds);
  let published = 0;
  let skipped = 0;
  let failed = 0;
  let inFlight = 0;
  const t0 = performance.now();
  let lastReport = t0;
  const report = (kind: LoadReport["kind"]) => parentPort!.postMessage({ kind, published, acked, skipped, failed, elapsedMs: performance.now() - t0 } satisfies LoadReport);
  let sent = 0; // published + skipped
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor((o.rate * (now - t0)) / 1000)) - sent;
    for (let i = 0; i < due; i++, sent++) {
      if (inFlight >= MAX_IN_FLIGHT) {
        skipped++;
        continue;
      }
      const t = templates[sent % templates.length]!;
      const id = `load-${sent}`;
      const h = natsHeaders();
      h.set(HEADERS.task, "load.noop");
      h.set(HEADERS.version, "1");
      inFlight++;
      published++;
      pub.publish(t.subject, t.head + id + t.tail, { msgID: id, headers: h }).then(
        () => void inFlight--,
        () => {
          inFlight--;
          failed++;
        },
      );
    }
    if (now - lastReport >= 1000) {
      lastReport = now;
      report("second");
    }
    await new Promise((r) => setTimeout(r, STEP_MS));
  }
  // drain: every published message acked, at most 15 s
  const deadline = performance.now() + 15_000;
  while (acked < published - failed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  report("done");
  for (const c of consumers) await c.close();
  await pnc.drain();
  await cnc.drain();
}

/** `p`-th percentile (nearest rank) of `xs`; NaN when empty. Pure. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** CPU time (user + system) of process `pid`, s, from /proc/<pid>/stat (Linux; 100 ticks/s). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const rate = arg("rate", 10_000);
  const seconds = arg("seconds", 20);
  const nQueues = arg("queues", 10);
  if (!(rate > 0 && rate <= 50_000)) throw new Error(`--rate: ${rate} is not from 1 to 50000 tasks/s`);
  if (!(seconds >= WARMUP_S + 5 && seconds <= 120)) throw new Error(`--seconds: ${seconds} is not from ${WARMUP_S + 5} to 120`);
  if (!(Number.isInteger(nQueues) && nQueues >= 1 && nQueues <= 50)) throw new Error(`--queues: ${nQueues} is not a whole number from 1 to 50`);
  const queues = Array.from({ length: nQueues }, (_, i) => `load-${i}`);
  const srv = await startNatsServer();
  const cleanups: Array<() => Promise<unknown> | unknown> = [() => srv.cleanup()];
  try {
    const nc = await natsConnect(natsConnectionOptions(natsSettingsFrom({ url: srv.url }, {})));
    cleanups.unshift(() => nc.close());
    const jsm = await jetstreamManager(nc);
    for (const q of queues) await ensureQueueResources(jsm, queueNames("default", q), queueSettings(), { updateOnDrift: true });

    // the dashboard, as its own process
    const dash = spawn(process.execPath, [BIN, "dashboard", "--port", "0", "--nats", srv.url, "-n", "default"], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    cleanups.unshift(() => dash.kill("SIGTERM"));
    let out = "";
    dash.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    dash.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const url = await until("the dashboard's URL", () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 20_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${out}`);
    });

    // an SSE client: bytes and arrival of each tick
    const sse: Array<{ at: number; bytes: number; items: number }> = [];
    const ac = new AbortController();
    cleanups.unshift(() => ac.abort());
    void (async () => {
      const r = await fetch(`${url}api/events`, { signal: ac.signal });
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i + 2);
          buf = buf.slice(i + 2);
          const data = ev.split("\n").find((l) => l.startsWith("data: "));
          if (data) sse.push({ at: performance.now(), bytes: Buffer.byteLength(ev), items: (JSON.parse(data.slice(6)) as { items: unknown[] }).items.length });
        }
      }
    })().catch(() => undefined);

    // the browser on the Overview, read over CDP
    const b = await openBrowser();
    cleanups.unshift(() => b.browser.close());
    await openPage(b.page, url, "#/overview");
    await b.page.waitForFunction((n) => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll("#queues tr").length === n, nQueues, { timeout: 15_000 });
    const cdp = await b.page.context().newCDPSession(b.page);
    await cdp.send("Performance.enable");
    const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value])) as Record<string, number>;
    const domNodes = () => b.page.evaluate(() => (globalThis as unknown as { document: { getElementsByTagName(t: string): { length: number } } }).document.getElementsByTagName("*").length);

    // the load
    const seconds_: LoadReport[] = [];
    let done: LoadReport | undefined;
    const gen = new Worker(fileURLToPath(import.meta.url), { workerData: { url: srv.url, queues, rate, seconds } satisfies LoadInput });
    cleanups.unshift(() => gen.terminate());
    const ended = new Promise<void>((resolve, reject) => {
      gen.on("message", (m: LoadReport) => {
        if (m.kind === "second") seconds_.push(m);
        else {
          done = m;
          resolve();
        }
      });
      gen.once("error", reject);
      gen.once("exit", (code) => (done ? resolve() : reject(new Error(`load generator exited ${code} before it was done`))));
    });
    ended.catch(() => undefined); // awaited below; a failure before then is not unhandled
    const tLoad = performance.now();
    await sleepUntil(tLoad + WARMUP_S * 1000);
    // the measured window: from the warm-up to the end of publishing
    const gc = async () => {
      await cdp.send("HeapProfiler.collectGarbage");
      const m = await metrics();
      return { nodes: m.Nodes ?? NaN, jsHeapMB: round((m.JSHeapUsedSize ?? NaN) / 2 ** 20) };
    };
    const gcStart = await gc();
    const w0 = { at: performance.now(), cpu: cpuSeconds(dash.pid!), m: await metrics(), sse: sse.length };
    const samples: Array<{ s: number; domNodes: number; cdpNodes: number; jsHeapMB: number }> = [];
    const endAt = tLoad + seconds * 1000;
    while (performance.now() < endAt - 500) {
      const m = await metrics();
      samples.push({ s: round((performance.now() - tLoad) / 1000), domNodes: await domNodes(), cdpNodes: m.Nodes ?? NaN, jsHeapMB: round((m.JSHeapUsedSize ?? NaN) / 2 ** 20) });
      await sleepUntil(Math.min(endAt - 400, performance.now() + 5000));
    }
    const w1 = { at: performance.now(), cpu: cpuSeconds(dash.pid!), m: await metrics(), sse: sse.length };
    const gcEnd = await gc();
    const pageRate = await b.page.evaluate(() => [...(globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<{ textContent: string | null }> } }).document.querySelectorAll('#queues td[data-field="ratePerSecond"]')].reduce((a, td) => a + Number(td.textContent || 0), 0));
    await withTimeout("the load generator", ended, 60_000);

    const windowS = (w1.at - w0.at) / 1000;
    const ticks = sse.slice(w0.sse, w1.sse);
    const periods = ticks.slice(1).map((t, i) => t.at - ticks[i]!.at);
    const nTicks = Math.max(1, w1.sse - w0.sse);
    const d = (k: string) => (w1.m[k] ?? 0) - (w0.m[k] ?? 0);
    // the generator's own reports, once a second, within the measured window
    const inWindow = seconds_.filter((r) => r.elapsedMs >= WARMUP_S * 1000 - 500 && r.elapsedMs <= seconds * 1000 + 500);
    const perSec = inWindow.slice(1).map((r, i) => (r.acked - inWindow[i]!.acked) / ((r.elapsedMs - inWindow[i]!.elapsedMs) / 1000));
    const first = inWindow[0];
    const last = inWindow.at(-1);
    const summary = {
      conditions: { cpus: cpus().length, cpuModel: cpus()[0]?.model, loadAverage1mAtEnd: round(loadavg()[0]!, 2), node: process.version, queues: nQueues, offeredRate: rate, seconds, warmupSeconds: WARMUP_S, what: "publish (pipelined, task message bytes and headers) + consume from each Queue's workers consumer + ack; no results-bucket write" },
      load: {
        published: done?.published, acked: done?.acked, skipped: done?.skipped, failed: done?.failed,
        achievedRate: first && last && last !== first ? round((last.acked - first.acked) / ((last.elapsedMs - first.elapsedMs) / 1000), 0) : NaN,
        ackedPerSecondP50: round(percentile(perSec, 50), 0),
        ackedPerSecondMin: round(Math.min(...perSec), 0),
        pageRateSumAtEnd: round(pageRate, 0),
      },
      sse: { ticks: nTicks, bytesPerTickP50: percentile(ticks.map((t) => t.bytes), 50), bytesPerTickMax: Math.max(...ticks.map((t) => t.bytes)), bytesPerSecond: round(ticks.reduce((a, t) => a + t.bytes, 0) / windowS, 0) },
      dashboardProcess: { cpuPercent: round((100 * (w1.cpu - w0.cpu)) / windowS) },
      sampler: { periodMsP50: round(percentile(periods, 50)), periodMsP99: round(percentile(periods, 99)), tickMsP50: round(percentile(periods, 50) - 1000), tickMsP99: round(percentile(periods, 99) - 1000) },
      page: {
        mainThreadMsPerTick: round((1000 * d("TaskDuration")) / nTicks),
        scriptMsPerTick: round((1000 * d("ScriptDuration")) / nTicks),
        layoutMsPerTick: round((1000 * d("LayoutDuration")) / nTicks),
        styleMsPerTick: round((1000 * d("RecalcStyleDuration")) / nTicks),
        mainThreadPercent: round((100 * d("TaskDuration")) / windowS),
        domNodes: samples.map((s) => s.domNodes),
        cdpNodes: samples.map((s) => s.cdpNodes),
        jsHeapMB: samples.map((s) => s.jsHeapMB),
        afterGc: { start: gcStart, end: gcEnd },
        sampledAtSeconds: samples.map((s) => s.s),
      },
    };
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    for (const c of cleanups) {
      try {
        await c();
      } catch {
        // keep stopping the rest
      }
    }
  }
}

/** Polls `f` every 50 ms until it returns a value. @throws Error naming `what` after `ms` */
async function until<T>(what: string, f: () => T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves at performance.now() ≥ `t`. */
async function sleepUntil(t: number): Promise<void> {
  const ms = t - performance.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** Awaits `p`. @throws Error naming `what` after `ms` */
async function withTimeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: not done within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  generate(workerData as LoadInput).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
