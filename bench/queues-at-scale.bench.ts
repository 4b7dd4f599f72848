/**
 * Queues at scale on the local platform (in-memory API server + nats-server + the operator as a child
 * process + the process kubelet):
 *
 *   npm run build && node dist/bench/queues-at-scale.bench.js [--queues 300] [--steady 30] [--tasks 0] [--cpu-prof DIR] [--keep]
 *
 * 1. Optionally stores `--tasks` Task objects first (in their own namespace, naming a Queue that does not
 *    exist, so they stay waiting and only load the caches and lists — the "10,000 Tasks stored" case).
 * 2. Creates `--queues` Queues at once (32 creates in flight; scale-to-zero workers, so no worker
 *    process starts) and watches them until every one has condition `Ready=True`: reports the time
 *    from the first create to the last Ready and Queues/s.
 * 3. Steady state: after 5 s of settling, samples the operator process's CPU (utime+stime from
 *    `/proc/<pid>/stat`) over `--steady` seconds, as % of one core, and its RSS (`/proc/<pid>/status`
 *    VmRSS, VmHWM).
 * The bench starts the operator itself (one replica, no leader election), so that with `--cpu-prof DIR`
 * it runs under `node --cpu-prof` and writes its profile to DIR on exit
 * (the whole run: burst and steady state).
 * `--keep` keeps the temp dir (operator.log, platform logs). Prints one JSON line with `os.loadavg()`
 * beside the figures. Bounded: gives up after 15 min.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CELERIAC_TYPES } from "../api/objects.js";
import { freePort } from "../devcluster/platform/nats-process.js";
import { REPO_ROOT, startPlatform } from "../devcluster/platform/platform.js";
import { BUILTIN_TYPES, createObject, kubeRequest, resourcePath, type KubeObject } from "../kube/k8s-client.js";
import { loadKubeConfig } from "../kube/kubeconfig.js";

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const strArg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const QUEUES = arg("queues", 300);
const STEADY_S = arg("steady", 30);
const TASKS = arg("tasks", 0);
const CPU_PROF = strArg("cpu-prof");
const NS = "default";
const TASK_NS = "stored";
const IN_FLIGHT = 32;
const TOTAL_LIMIT_MS = 15 * 60_000;
const CLK_TCK = 100;

/** A Queue of the bench: scale to zero, one no-op worker template (never started). Pure. */
function queueObject(i: number): KubeObject {
  return {
    apiVersion: "celeriac.io/v1alpha1",
    kind: "Queue",
    metadata: { namespace: NS, name: `q${String(i).padStart(4, "0")}` },
    spec: {
      worker: { image: "celeriac-e2e:dev", command: ["celeriac", "worker"], env: [{ name: "CELERIAC_TASKS", value: "dist/test/fixtures/e2e/tasks.js" }] },
      autoscaling: { minReplicas: 0, maxReplicas: 2 },
    },
  };
}

/** Runs `f` over `items` with at most `n` calls in flight. */
async function pool<T>(items: T[], n: number, f: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await f(items[next++]!);
  }));
}

/** utime+stime of `pid`, in s. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** VmRSS and VmHWM of `pid`, in MiB. */
function memMiB(pid: number): { rss: number; hwm: number } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
  return { rss: Math.round(kb("VmRSS") / 1024), hwm: Math.round(kb("VmHWM") / 1024) };
}

type QueueEvent = { type: string; object: { metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } } };

/**
 * Watches the Queues of NS from now on and calls `onReady` (name, ms since the epoch) for each Queue
 * first seen with Ready=True.
 * @returns a function that ends the watch
 */
function watchReady(apiUrl: string, onReady: (name: string, at: number) => void): () => void {
  const ac = new AbortController();
  const ready = new Set<string>();
  void (async () => {
    const res = await fetch(`${apiUrl}/apis/celeriac.io/v1alpha1/namespaces/${NS}/queues?watch=true`, { signal: ac.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line) as QueueEvent;
        const name = e.object?.metadata?.name;
        if (!name || ready.has(name)) continue;
        if (e.object.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
          ready.add(name);
          onReady(name, Date.now());
        }
      }
    }
  })().catch((err: unknown) => {
    if (!ac.signal.aborted) console.error("queue watch failed:", err);
  });
  return () => ac.abort();
}

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`queues-at-scale bench: gave up after ${TOTAL_LIMIT_MS} ms`);
    process.exit(2);
  }, TOTAL_LIMIT_MS);
  limit.unref();
  const dir = mkdtempSync(join(tmpdir(), "celeriac-qscale-"));
  // The platform without its operator: the bench runs the operator itself, so it can add node flags.
  const platform = await startPlatform({ dir, restartBackoffBaseMs: 200, operatorReplicas: 0 });
  let stopWatch = () => {};
  let operator: ChildProcess | undefined;
  try {
    const kc = loadKubeConfig({ kubeconfig: platform.kubeconfigPath, env: {} });
    const port = await freePort();
    const log = createWriteStream(join(dir, "operator.log"));
    operator = spawn(
      process.execPath,
      [...(CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${resolve(CPU_PROF)}`] : []), join(REPO_ROOT, "bin", "celeriac.js"), "operator", "--kubeconfig", platform.kubeconfigPath, "--nats", platform.natsUrl, "--port", String(port)],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: platform.kubeconfigPath } },
    );
    operator.stdout!.pipe(log, { end: false });
    operator.stderr!.pipe(log, { end: false });
    const pid = operator.pid!;
    const readyBy = Date.now() + 120_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > readyBy || operator.exitCode !== null) throw new Error(`operator not ready (see ${dir}/operator.log)`);
      await sleep(100);
    }
    const out: Record<string, unknown> = { bench: "queues-at-scale", queues: QUEUES, tasksStored: TASKS, loadavgAtStart: loadavg() };

    if (TASKS > 0) {
      await createObject(kc, BUILTIN_TYPES.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name: TASK_NS } }, "bench");
      const t0 = Date.now();
      await pool(Array.from({ length: TASKS }, (_, i) => i), IN_FLIGHT, (i) => createObject(kc, CELERIAC_TYPES.Task, {
        apiVersion: "celeriac.io/v1alpha1", kind: "Task",
        metadata: { namespace: TASK_NS, name: `t${i}` },
        spec: { queue: "absent", task: "e2e.add", args: [1, 2] },
      }, "bench"));
      out.storeTasksMs = Date.now() - t0;
      // let the operator's task controller settle on them before the burst
      await sleep(10_000);
    }

    const cpuBefore = cpuSeconds(pid);
    let lastReady = 0;
    let readyCount = 0;
    stopWatch = watchReady(platform.apiUrl, (_name, at) => {
      readyCount++;
      lastReady = at;
    });
    await sleep(200); // the watch is open before the first create
    const t0 = Date.now();
    await pool(Array.from({ length: QUEUES }, (_, i) => i), IN_FLIGHT, (i) => createObject(kc, CELERIAC_TYPES.Queue, queueObject(i), "bench"));
    const createdMs = Date.now() - t0;
    const deadline = Date.now() + 10 * 60_000;
    while (readyCount < QUEUES) {
      if (Date.now() > deadline) throw new Error(`only ${readyCount} of ${QUEUES} Queues Ready after 10 min`);
      await sleep(50);
    }
    const allReadyMs = lastReady - t0;
    const burstCpuS = cpuSeconds(pid) - cpuBefore;
    Object.assign(out, {
      createdMs, allReadyMs, queuesPerSecond: Math.round((QUEUES / (allReadyMs / 1000)) * 100) / 100,
      burstOperatorCpuS: Math.round(burstCpuS * 100) / 100, loadavgAfterBurst: loadavg(), memAfterBurstMiB: memMiB(pid),
    });

    await sleep(5_000);
    const c0 = cpuSeconds(pid);
    const w0 = Date.now();
    await sleep(STEADY_S * 1000);
    const c1 = cpuSeconds(pid);
    const wall = (Date.now() - w0) / 1000;
    Object.assign(out, {
      steadySeconds: Math.round(wall),
      steadyOperatorCpuPercentOfOneCore: Math.round(((c1 - c0) / wall) * 1000) / 10,
      steadyMemMiB: memMiB(pid),
      loadavgAfterSteady: loadavg(),
    });
    const q = await kubeRequest<{ items: unknown[] }>(kc, { method: "GET", path: resourcePath(CELERIAC_TYPES.Queue, NS) });
    out.queuesListed = q.items.length;
    console.log(JSON.stringify(out));
  } finally {
    stopWatch();
    if (operator && operator.exitCode === null) {
      const exited = new Promise((r) => operator!.once("exit", r));
      operator.kill("SIGTERM");
      await Promise.race([exited, sleep(20_000)]);
      if (operator.exitCode === null) operator.kill("SIGKILL");
    }
    await platform.stop();
    if (!CPU_PROF && !process.argv.includes("--keep")) rmSync(dir, { recursive: true, force: true });
    else console.error(`kept ${dir} (operator.log, platform logs under logs/)`);
  }
}

await main();
