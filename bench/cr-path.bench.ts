/**
 * Benchmark of the CR path on the local platform (in-memory API server, nats-server, one operator
 * process, worker pods of the process kubelet): Task objects created through the API, their
 * progress seen by a watch. Prints, each with `os.loadavg()`:
 *
 * 1. warm single Task create → Succeeded (watch event): p50 / p90 of `WARM` sequential Tasks
 *    (target p50 ≤ 100 ms);
 * 2. a burst of `N` Tasks (default 1,000) created at `RATE`/s (default 300) by `CLIENTS` concurrent
 *    clients (default 4): create rate, Succeeded rate and the time from the last create to the last
 *    Succeeded (target ≤ 1 s);
 * 3. the API writes per Task, counted from the watches: Task MODIFIED events (every committed write
 *    of a Task is one; a no-op write commits nothing and is not counted) and core/v1 Events created
 *    about Tasks, by reason;
 * 4. with `STORED` Tasks (default 10,000) stored — those of parts 1–2 Succeeded, the rest created
 *    for a Queue that does not exist, so they are stored with the operator's Pending status without
 *    running: the operator's VmRSS / VmHWM (target ≤ 180 MiB) and `kubectl get tasks` of all of
 *    them, 3 runs (target ≤ 2 s).
 *
 * Env: `CR_BENCH_N`, `CR_BENCH_RATE`, `CR_BENCH_CLIENTS`, `CR_BENCH_WARM`, `CR_BENCH_STORED`
 * (0 skips part 4), `CR_BENCH_PROFILE=<dir>` (the operator runs with `node --cpu-prof` into
 * `<dir>` for parts 1–3, then stops; part 4 is skipped; profile this process with `node --cpu-prof`
 * yourself for the API server).
 * Bounded: every wait has a deadline; the platform and its temp dir are removed at the end.
 * Run: `npx tsc -p tsconfig.json && node dist/bench/cr-path.bench.js`.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { startPlatform } from "../devcluster/platform/platform.js";
import {  } from "../kube/k8s-client.js";
import { loadKubeConfig } from "../kube/kubeconfig.js";
import { applyQueueAndWait, faultQueue, NS, type CrEnv } from "./faults/cr-path.js";
import { FaultLog, scenarioDir } from "./faults/harness.js";

const N = Number(process.env.CR_BENCH_N ?? 1000);
const RATE = Number(process.env.CR_BENCH_RATE ?? 300);
const CLIENTS = Number(process.env.CR_BENCH_CLIENTS ?? 4);
const WARM = Number(process.env.CR_BENCH_WARM ?? 30);
const STORED = Number(process.env.CR_BENCH_STORED ?? 10_000);
const PROFILE = process.env.CR_BENCH_PROFILE;
const QUEUE = "bench";
/** The Queue the Tasks of part 4 name: never created. */
const PARKED_QUEUE = "parked";

/** Preloaded into the profiled operator: profiles from its start until SIGUSR2, then writes the profile. */
const PRELOAD = `const inspector = require("node:inspector");
const fs = require("node:fs");
const s = new inspector.Session();
s.connect();
s.post("Profiler.enable", () => s.post("Profiler.setSamplingInterval", { interval: 5000 }, () => s.post("Profiler.start")));
const out = ${JSON.stringify(PROFILE ? join(PROFILE, "operator.cpuprofile") : "")};
process.on("SIGUSR2", () => s.post("Profiler.stop", (err, r) => fs.writeFileSync(out + (err ? ".error" : ""), err ? String(err) : JSON.stringify(r.profile))));
`;

const load = (): string => `load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`;

/** What the Task and Event watches saw, per Task name. */
interface Seen {
  /** Task name → ms (performance.now) of the watch event that showed phase Succeeded. */
  succeeded: Map<string, number>;
  /** Task name → MODIFIED events (committed writes after the create). */
  modified: Map<string, number>;
  /** Task name → ms of the DELETED event. */
  deleted: Map<string, number>;
  /** Event reason → count, for Events about Tasks. */
  eventReasons: Map<string, number>;
  /** Task name → Events about it. */
  events: Map<string, number>;
  /** Task name → phase → ms (performance.now) it was first seen in that phase. */
  phases: Map<string, Map<string, number>>;
  /** Task names seen in phase Pending. */
  pending: Set<string>;
  /** Resolves waiters when a Task reaches Succeeded. */
  onSucceeded: Map<string, () => void>;
}

/**
 * The platform as the fault suite starts it (`startCrEnv`) but with the operator's default lease
 * timings: the fault suite's 3 s lease is lost under a burst on a loaded machine, and every restart
 * of the operator (cold start, relist) shows up as burst latency.
 */
async function startBenchEnv(): Promise<CrEnv> {
  const dir = scenarioDir("cr-bench");
  const platform = await startPlatform({
    dir, restartBackoffBaseMs: 200, processRestartBackoffBaseMs: 200,
    kubeletLog: pino({ name: "dev-kubelet" }, pino.destination({ dest: join(dir, "kubelet.log"), mkdir: true, sync: true })),
  });
  let stopping: Promise<void> | undefined;
  return {
    platform, dir, execLog: join(dir, "executions.log"), faults: new FaultLog(),
    kc: loadKubeConfig({ kubeconfig: platform.kubeconfigPath, env: {} }),
    stop: () => (stopping ??= (async () => {
      await platform.stop();
      if (process.env.CELERIAC_FAULTS_KEEP !== "1") rmSync(dir, { recursive: true, force: true });
    })()),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- watch event objects are arbitrary JSON
type J = Record<string, any>;

/** Reads a watch stream line by line until `signal` aborts; calls `fn` per event. */
async function watchLines(url: string, signal: AbortSignal, fn: (type: string, obj: J) => void): Promise<void> {
  const res = await fetch(url, { signal });
  if (!res.ok) throw new Error(`watch ${url}: HTTP ${res.status}`);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let buf = "";
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (!line) continue;
          const e = JSON.parse(line) as { type: string; object: J };
          fn(e.type, e.object);
        }
      }
    } catch {
      /* aborted */
    }
  })();
}

async function startWatches(env: CrEnv, signal: AbortSignal): Promise<Seen> {
  const seen: Seen = { phases: new Map(), pending: new Set(), succeeded: new Map(), modified: new Map(), deleted: new Map(), eventReasons: new Map(), events: new Map(), onSucceeded: new Map() };
  const base = env.platform.apiUrl;
  const rv = ((await (await fetch(`${base}/apis/celeriac.io/v1alpha1/namespaces/${NS}/tasks?limit=1`)).json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  await watchLines(`${base}/apis/celeriac.io/v1alpha1/namespaces/${NS}/tasks?watch=true&resourceVersion=${rv}`, signal, (type, o) => {
    const name = o.metadata?.name as string;
    if (type === "MODIFIED") seen.modified.set(name, (seen.modified.get(name) ?? 0) + 1);
    if (type === "DELETED") seen.deleted.set(name, performance.now());
    if (o.status?.phase === "Pending") seen.pending.add(name);
    const ph = (o.status?.phase as string | undefined) ?? (type === "ADDED" ? "Created" : undefined);
    if (ph) {
      let m = seen.phases.get(name);
      if (!m) seen.phases.set(name, (m = new Map()));
      if (!m.has(ph)) m.set(ph, performance.now());
    }
    if (o.status?.phase === "Succeeded" && !seen.succeeded.has(name)) {
      seen.succeeded.set(name, performance.now());
      seen.onSucceeded.get(name)?.();
    }
  });
  await watchLines(`${base}/api/v1/namespaces/${NS}/events?watch=true&resourceVersion=${rv}`, signal, (type, o) => {
    if (o.involvedObject?.kind !== "Task") return;
    const name = o.involvedObject.name as string;
    const reason = `${o.reason} (${type === "ADDED" ? "create" : "update"})`;
    seen.eventReasons.set(reason, (seen.eventReasons.get(reason) ?? 0) + 1);
    seen.events.set(name, (seen.events.get(name) ?? 0) + 1);
  });
  return seen;
}

async function createTask(env: CrEnv, name: string, queue = QUEUE): Promise<void> {
  const body = { apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { namespace: NS, name }, spec: { queue, task: "faults.work", args: [0] } };
  const r = await fetch(`${env.platform.apiUrl}/apis/celeriac.io/v1alpha1/namespaces/${NS}/tasks`, { method: "POST", headers: { "Content-Type": "application/json", "User-Agent": "cr-bench" }, body: JSON.stringify(body) });
  if (r.status !== 201) throw new Error(`create task ${name}: HTTP ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}

function waitSucceeded(seen: Seen, name: string, ms: number): Promise<void> {
  if (seen.succeeded.has(name)) return Promise.resolve();
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`task ${name} not Succeeded within ${ms} ms`)), ms);
    seen.onSucceeded.set(name, () => {
      clearTimeout(t);
      seen.onSucceeded.delete(name);
      res();
    });
  });
}

async function waitAll(seen: Seen, names: string[], deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (names.every((n) => seen.succeeded.has(n))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/** Creates `names` at `rate`/s total from `clients` concurrent loops; returns create-done times. */
async function burst(env: CrEnv, names: string[], rate: number, clients: number, queue = QUEUE): Promise<{ t0: number; lastCreate: number; errors: number }> {
  const t0 = performance.now();
  let next = 0;
  let errors = 0;
  let lastCreate = t0;
  await Promise.all(Array.from({ length: clients }, async () => {
    const inflight = new Set<Promise<void>>();
    for (;;) {
      const i = next++;
      if (i >= names.length) break;
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const p = createTask(env, names[i]!, queue).then(() => { lastCreate = Math.max(lastCreate, performance.now()); }, () => void errors++).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 8) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }));
  return { t0, lastCreate, errors };
}

/** User + system CPU seconds of process `pid` so far (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

function vm(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

async function main(): Promise<void> {
  if (PROFILE) mkdirSync(PROFILE, { recursive: true });
  const env = await startBenchEnv();
  const ac = new AbortController();
  try {
    if (PROFILE) {
      // restart the operator under the profiler (node refuses --cpu-prof in NODE_OPTIONS: a preload
      // starts the inspector's profiler and writes the profile when the bench asks, by SIGUSR2)
      await env.platform.stopOperator(0);
      const preload = join(PROFILE, "cpu-prof-preload.cjs");
      writeFileSync(preload, PRELOAD);
      process.env.NODE_OPTIONS = `--require ${preload}`;
      env.platform.startOperator(0);
      delete process.env.NODE_OPTIONS;
      await new Promise((r) => setTimeout(r, 3000));
    }
    await applyQueueAndWait(env, faultQueue(QUEUE, env.execLog, { replicas: 2, concurrency: 32 }), 2, Date.now() + 120_000);
    const seen = await startWatches(env, ac.signal);
    console.log(`platform ready; ${load()}`);

    // 1. warm single Task create → Succeeded
    for (let i = 0; i < 5; i++) {
      await createTask(env, `warmup-${i}`);
      await waitSucceeded(seen, `warmup-${i}`, 30_000);
    }
    const lat: number[] = [];
    for (let i = 0; i < WARM; i++) {
      const name = `warm-${i}`;
      const t = performance.now();
      const w = waitSucceeded(seen, name, 30_000);
      await createTask(env, name);
      await w;
      lat.push(performance.now() - t);
    }
    console.log(`warm create → Succeeded (watch), ${WARM} sequential: p50 ${pct(lat, 50).toFixed(1)} ms, p90 ${pct(lat, 90).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms (target p50 ≤ 100 ms); ${load()}`);

    // 2. burst
    const names = Array.from({ length: N }, (_, i) => `burst-${i}`);
    const opPid = env.platform.operators[0]!.pid!;
    const cpu0 = cpuSeconds(opPid);
    const b = await burst(env, names, RATE, CLIENTS);
    await waitAll(seen, names, Date.now() + 300_000);
    const opCpu = env.platform.operators[0]!.pid === opPid ? `${(cpuSeconds(opPid) - cpu0).toFixed(1)} s` : "n/a (restarted)";
    const done = names.filter((n) => seen.succeeded.has(n));
    const lastOk = Math.max(...done.map((n) => seen.succeeded.get(n)!));
    const createS = (b.lastCreate - b.t0) / 1000;
    const allS = (lastOk - b.t0) / 1000;
    console.log(`burst: ${N} Tasks created by ${CLIENTS} clients at ${RATE}/s target: created in ${createS.toFixed(2)} s (${(N / createS).toFixed(0)}/s, ${b.errors} errors); ${done.length} Succeeded, last ${allS.toFixed(2)} s after the first create (${(done.length / allS).toFixed(0)} Tasks/s); last Succeeded ${((lastOk - b.lastCreate) / 1000).toFixed(2)} s after the last create (target ≤ 1 s); ${load()}`);

    const stage = (ph: string): string => {
      const ts = names.map((n) => seen.phases.get(n)?.get(ph)).filter((t): t is number => t !== undefined);
      return ts.length ? `${ph} ${ts.length} Tasks, last at ${((Math.max(...ts) - b.t0) / 1000).toFixed(2)} s` : `${ph} none`;
    };
    console.log(`operator CPU during the burst: ${opCpu} over ${((performance.now() - b.t0) / 1000).toFixed(1)} s; restarts ${JSON.stringify(env.platform.restarts())}`);
    console.log(`burst stages (first seen by the watch, after the first create): ${["Created", "Queued", "Running", "Succeeded"].map(stage).join("; ")}`);

    // 3. writes per Task
    const burstMods = names.map((n) => seen.modified.get(n) ?? 0);
    const burstEvents = names.map((n) => seen.events.get(n) ?? 0);
    const avg = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
    console.log(`API writes per burst Task (after its create): ${avg(burstMods).toFixed(2)} Task writes (min ${Math.min(...burstMods)}, max ${Math.max(...burstMods)}), ${avg(burstEvents).toFixed(2)} Event writes; total ${(avg(burstMods) + avg(burstEvents)).toFixed(2)}`);
    console.log(`Events about Tasks by reason: ${[...seen.eventReasons].map(([r, n]) => `${r} ${n}`).join(", ") || "none"}`);

    if (PROFILE) {
      process.kill(env.platform.operators[0]!.pid!, "SIGUSR2");
      const out = join(PROFILE, "operator.cpuprofile");
      const until = Date.now() + 120_000;
      while (!existsSync(out) && !existsSync(`${out}.error`) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      console.log(`operator profile of parts 1–3 ${existsSync(out) ? `written to ${out}` : "not written within 120 s"}`);
      return;
    }

    // 4. many Tasks stored
    if (STORED > 0) {
      const have = 5 + WARM + N;
      // The rest name a Queue that does not exist: each is stored with the operator's status (Pending,
      // Accepted=False QueueNotFound) without running, so 10,000 are stored in about a minute.
      const more = Array.from({ length: Math.max(0, STORED - have) }, (_, i) => `stored-${i}`);
      const s = await burst(env, more, 1000, CLIENTS, PARKED_QUEUE);
      const until = Date.now() + 300_000;
      while (Date.now() < until && !more.every((n) => seen.pending.has(n))) await new Promise((r) => setTimeout(r, 100));
      const okMore = more.filter((n) => seen.pending.has(n)).length;
      console.log(`stored: ${more.length} more Tasks (queue "${PARKED_QUEUE}", absent) created in ${((s.lastCreate - s.t0) / 1000).toFixed(1)} s, ${okMore} Pending (QueueNotFound) by ${((performance.now() - s.t0) / 1000).toFixed(1)} s; ${load()}`);
      await new Promise((r) => setTimeout(r, 3000));
      const pid = env.platform.operators[0]!.pid!;
      const m = vm(pid);
      console.log(`operator with ${have + more.length} Tasks stored: VmRSS ${m.rss.toFixed(0)} MiB, VmHWM ${m.hwm.toFixed(0)} MiB (target RSS ≤ 180 MiB); ${load()}`);
      const run = promisify(execFile);
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        const { stdout } = await run("kubectl", ["get", "tasks", "-n", NS, "--kubeconfig", env.platform.kubeconfigPath], { maxBuffer: 64 * 1024 * 1024 });
        times.push(performance.now() - t);
        rows = stdout.trim().split("\n").length - 1;
      }
      console.log(`kubectl get tasks (${rows} rows), 3 runs: ${times.map((t) => (t / 1000).toFixed(2)).join(", ")} s (target ≤ 2 s); ${load()}`);
    }
  } finally {
    ac.abort();
    await env.stop();
  }
}

await main();
