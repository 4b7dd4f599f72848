/**
 * Benchmark of Schedule firing lateness: how long after a run's nominal time its Task exists.
 * Starts the dev platform (in-memory API server, nats-server, one operator child process with leader
 * election), applies SCHEDULES Schedules `@every 1s` and watches Tasks for WINDOW_MS (stopping early
 * once TARGET_RUNS runs were seen); target p99 < 1 s (CronJob's controller looks every 10 s).
 *
 * How lateness is measured: `metadata.creationTimestamp` has 1 s resolution, so it cannot measure
 * sub-second lateness. The bench instead watches Tasks itself and takes, per Task, the wall-clock
 * time its ADDED watch event arrives minus its `celeriac.io/scheduled-at` annotation (millisecond
 * RFC 3339). That includes the API server's write and watch delivery, so it is an upper bound of the
 * operator's own lateness; same machine, same clock. The operator's `celeriac_schedule_lateness_seconds`
 * histogram (nominal time → create call returned) is scraped from its /metrics for comparison.
 * The Tasks target a Queue that does not exist: no workers run, the Task controller still reconciles
 * each Task (Pending/QueueNotFound), so the operator is not idle.
 *
 * Run: `npm run build && node dist/bench/schedule-lateness.bench.js`. Prints figures and one JSON line.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPlatform } from "../devcluster/platform/platform.js";

const SCHEDULES = 20;
const WINDOW_MS = 11_000;
const TARGET_RUNS = 220;
const SCHEDULED_AT = "celeriac.io/scheduled-at";
const BASE = "/apis/celeriac.io/v1alpha1/namespaces/default";

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The operator's lateness histogram: count, sum and cumulative bucket counts. */
function parseHistogram(text: string): { count: number; sumS: number; buckets: Record<string, number> } {
  const buckets: Record<string, number> = {};
  let count = 0;
  let sumS = 0;
  for (const line of text.split("\n")) {
    const b = /^celeriac_schedule_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)/.exec(line);
    if (b) buckets[b[1]!] = Number(b[2]);
    const c = /^celeriac_schedule_lateness_seconds_count (\S+)/.exec(line);
    if (c) count = Number(c[1]);
    const s = /^celeriac_schedule_lateness_seconds_sum (\S+)/.exec(line);
    if (s) sumS = Number(s[1]);
  }
  return { count, sumS, buckets };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-bench-schedule-"));
  const platform = await startPlatform({ dir });
  const ctrl = new AbortController();
  try {
    const opLog = join(dir, "logs", "operator-0.log");
    const logLines = () => (existsSync(opLog) ? readFileSync(opLog, "utf8").split("\n") : []);
    await waitFor("the operator's controllers", () => (logLines().some((l) => l.includes("Started controllers")) ? true : undefined), 30_000);
    const port = await waitFor("the operator's port", () => {
      const l = logLines().find((x) => x.includes('"Operator started"'));
      return l ? (JSON.parse(l) as { port: number }).port : undefined;
    }, 30_000);

    // Watch Tasks from here: the arrival time of each ADDED event.
    const lateness: number[] = [];
    const seen = new Set<string>();
    const res = await fetch(`${platform.apiUrl}${BASE}/tasks?watch=true`, { signal: ctrl.signal });
    const watching = (async () => {
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const at = Date.now();
        buf += dec.decode(value, { stream: true });
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (const line of lines) {
          if (!line.trim()) continue;
          const ev = JSON.parse(line) as { type: string; object: { metadata: { name: string; annotations?: Record<string, string> } } };
          const nominal = ev.object.metadata.annotations?.[SCHEDULED_AT];
          if (ev.type !== "ADDED" || !nominal || seen.has(ev.object.metadata.name)) continue;
          seen.add(ev.object.metadata.name);
          lateness.push(at - Date.parse(nominal));
        }
      }
    })().catch((err: unknown) => {
      if (!ctrl.signal.aborted) throw err;
    });

    const t0 = Date.now();
    for (let i = 0; i < SCHEDULES; i++) {
      const body = {
        apiVersion: "celeriac.io/v1alpha1",
        kind: "Schedule",
        metadata: { name: `bench-${i}` },
        spec: { schedule: "@every 1s", taskTemplate: { spec: { queue: "nowhere", task: "bench.noop" } } },
      };
      const r = await fetch(`${platform.apiUrl}${BASE}/schedules`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      if (r.status !== 201) throw new Error(`create Schedule bench-${i}: HTTP ${r.status} ${await r.text()}`);
    }
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        if (lateness.length >= TARGET_RUNS || Date.now() - t0 >= WINDOW_MS) {
          clearInterval(tick);
          resolve();
        }
      }, 50);
    });
    const metricsText = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (process.env.BENCH_DEBUG) console.log(metricsText.split("\n").filter((l) => /reconcile|workqueue/.test(l) && !l.startsWith("#") && !l.includes("_bucket")).join("\n"));
    const metrics = parseHistogram(metricsText);
    ctrl.abort();
    await watching;
    // Runs the operator recorded as missed (a run more than an interval late lets RunLatest start only the newer one).
    const list = (await (await fetch(`${platform.apiUrl}${BASE}/schedules`)).json()) as { items: Array<{ status?: { missedRuns?: number } }> };
    const missedRuns = list.items.reduce((n, x) => n + (x.status?.missedRuns ?? 0), 0);

    const sorted = [...lateness].sort((a, b) => a - b);
    const fig = {
      bench: "schedule-lateness",
      method: "watch ADDED arrival − scheduled-at",
      schedules: SCHEDULES,
      interval: "1s",
      n: sorted.length,
      p50Ms: Math.round(quantile(sorted, 0.5)),
      p90Ms: Math.round(quantile(sorted, 0.9)),
      p99Ms: Math.round(quantile(sorted, 0.99)),
      maxMs: Math.round(sorted[sorted.length - 1] ?? NaN),
      minMs: Math.round(sorted[0] ?? NaN),
      over1sCount: sorted.filter((x) => x >= 1000).length,
      missedRuns,
      targetP99Ms: 1000,
      operatorHistogram: {
        count: metrics.count,
        meanMs: metrics.count > 0 ? Math.round((metrics.sumS / metrics.count) * 1000) : null,
        le100ms: metrics.buckets["0.1"] ?? null,
        le250ms: metrics.buckets["0.25"] ?? null,
        le1s: metrics.buckets["1"] ?? null,
      },
    };
    console.log(`${fig.n} runs of ${SCHEDULES} Schedules @every 1s in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${missedRuns} recorded as missed`);
    console.log(`lateness (nominal → Task ADDED at a watcher): p50 ${fig.p50Ms} ms, p90 ${fig.p90Ms} ms, p99 ${fig.p99Ms} ms, max ${fig.maxMs} ms (target p99 < 1000 ms)`);
    console.log(`operator histogram (nominal → create returned): ${metrics.count} runs, mean ${fig.operatorHistogram.meanMs} ms, ≤ 100 ms: ${fig.operatorHistogram.le100ms}, ≤ 1 s: ${fig.operatorHistogram.le1s}`);
    console.log(JSON.stringify(fig));
    if (fig.n < 200) process.exitCode = 1;
  } finally {
    ctrl.abort();
    await platform.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
