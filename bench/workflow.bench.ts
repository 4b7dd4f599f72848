/**
 * Workflow bench (issue 17) on the local platform (in-memory API server, nats-server, one operator
 * process, worker pods of the process kubelet):
 *
 *   npm run bench:workflow [-- --items 1000 --steps 20 --chains 5 --rounds 3 --out <file.json>]
 *
 * One Queue, 2 worker pods × 128 slots running bench/workflow-bench-tasks.ts. In each round:
 * - fan-out: a Workflow `gen` (wfb.range(--items)) → `fan` (forEach over gen's result, wfb.noop per
 *   item) → `total` (wfb.count of fan's list). Measured: create → Succeeded (50 ms polls), the fan
 *   step's items/s (its status startTime → completionTime), the fan-in's start after the last item
 *   finished (records), and the object's size at the end: the bytes `kubectl get -o json` prints
 *   (the real kubectl when test/helpers/k8s-tools.ts finds one, else the same JSON with 4-space
 *   indent and no managedFields; target < 100 KiB) and compact;
 * - chains: `--chains` Workflows of `--steps` wfb.noop steps, each depending on the one before,
 *   one at a time. Step start latency = the step task's record `startTime` − its dependency's
 *   record `completionTime` (results bucket, ms precision; target p50 ≤ 50 ms), split into the
 *   operator's part (the step's `status.steps[].startTime`, its publish, − the dependency's
 *   completion) and the rest (the worker taking the message).
 * Prints one line per round and a table; writes the figures as JSON to `--out` (default
 * bench/results/workflow-<time>.json). Bounded: every wait has a deadline; the platform and its temp
 * dir are removed at the end.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { mapLimited } from "../api/limited.js";
import type { TaskRecord } from "../api/message.js";
import { queueNames } from "../api/naming.js";
import { CELERIAC_TYPES } from "../api/objects.js";
import { workflowTaskId, type WorkflowSpec, type WorkflowStatus } from "../api/workflow.js";
import { startPlatform, type Platform } from "../devcluster/platform/platform.js";
import { createObject, getObject, type KubeObject } from "../kube/k8s-client.js";
import { loadKubeConfig } from "../kube/kubeconfig.js";
import { workerPods } from "./faults/cr-path.js";
import { pollUntil } from "./faults/harness.js";
import { k8sTools, runTool } from "../test/helpers/k8s-tools.js";
import { numberArg as arg } from "./throughput-phases.js";

const ITEMS = arg("items", 1000);
const STEPS = arg("steps", 20);
const CHAINS = arg("chains", 5);
const ROUNDS = arg("rounds", 3);
const OUT = process.argv.includes("--out") ? process.argv[process.argv.indexOf("--out") + 1]! : undefined;
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const TASKS = fileURLToPath(new URL("./workflow-bench-tasks.js", import.meta.url));
const NS = "default";
const QUEUE = "wfbench";
const LIMIT_MS = 180_000;
const MANAGER = "workflow-bench";

type Wf = KubeObject & { metadata: { uid: string; name: string }; status?: WorkflowStatus };

const pct = (xs: number[], p: number): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! : NaN);
const median = (xs: number[]): number => pct(xs, 0.5);
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ");
const ms = (iso: string | undefined): number => (iso ? Date.parse(iso) : NaN);
const TERMINAL = new Set(["Succeeded", "Failed", "Cancelled"]);

/** Figures of one fan-out run. */
interface FanOut {
  totalMs: number;
  itemsPerSecond: number;
  fanInDelayMs: number;
  kubectlJsonBytes: number;
  compactJsonBytes: number;
}

/** Figures of the chains of one round: every step's latencies, ms. */
interface Chains {
  startLatencyMs: number[];
  publishLatencyMs: number[];
  pickupLatencyMs: number[];
  totalMs: number[];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-wfbench-"));
  let platform: Platform | undefined;
  try {
    platform = await startPlatform({
      dir,
      restartBackoffBaseMs: 200,
      processRestartBackoffBaseMs: 200,
      kubeletLog: pino({ name: "dev-kubelet" }, pino.destination({ dest: join(dir, "kubelet.log"), mkdir: true, sync: true })),
    });
    const kc = loadKubeConfig({ kubeconfig: platform.kubeconfigPath, env: {} });
    await createObject(kc, CELERIAC_TYPES.Queue, queueObject(), MANAGER);
    const deadline = Date.now() + 60_000;
    await pollUntil(`Queue ${QUEUE} Ready`, deadline, async () => {
      const q = await getObject<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: QUEUE });
      return q.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    }, 200);
    await pollUntil("2 worker pods running", deadline, async () => (await workerPods(kc, QUEUE)).length >= 2, 200);
    const nc = await connect({ servers: platform.natsUrl });
    const kv = await new Kvm(nc).open(queueNames(NS, QUEUE).resultsBucket);
    let seq = 0;
    const run = async (spec: Omit<WorkflowSpec, "queue">): Promise<{ wf: Wf; totalMs: number }> => {
      const name = `wfb-${seq++}`;
      const t0 = performance.now();
      await createObject(kc, CELERIAC_TYPES.Workflow, { metadata: { namespace: NS, name }, spec: { queue: QUEUE, ...spec } }, MANAGER);
      const wf = await pollUntil(`Workflow ${name} finished`, Date.now() + LIMIT_MS, async () => {
        const w = await getObject<Wf>(kc, { ...CELERIAC_TYPES.Workflow, namespace: NS, name });
        return w.status?.phase && TERMINAL.has(w.status.phase) ? w : undefined;
      }, 50);
      const totalMs = performance.now() - t0;
      if (wf.status?.phase !== "Succeeded") throw new Error(`Workflow ${name} ended ${wf.status?.phase}: ${wf.status?.message ?? ""}`);
      return { wf, totalMs };
    };
    console.log(`workflow bench: fan-out of ${ITEMS}, ${CHAINS} chains of ${STEPS} steps, ${ROUNDS} rounds; ${cpus().length} cores; load ${load()}`);
    await run(chainSpec(5)); // warm-up: workers, operator, informers
    await run(fanOutSpec(50));
    const fanOuts: FanOut[] = [];
    const chains: Chains[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const f = await fanOut(run, kv, platform.kubeconfigPath);
      fanOuts.push(f);
      const c: Chains = { startLatencyMs: [], publishLatencyMs: [], pickupLatencyMs: [], totalMs: [] };
      for (let i = 0; i < CHAINS; i++) {
        const { wf, totalMs } = await run(chainSpec(STEPS));
        c.totalMs.push(totalMs);
        const recs = await Promise.all(Array.from({ length: STEPS }, (_, s) => record(kv, workflowTaskId(wf.metadata.uid, `s${s}`))));
        for (let s = 1; s < STEPS; s++) {
          const depEnd = ms(recs[s - 1]!.status.completionTime);
          const start = ms(recs[s]!.status.startTime);
          const published = ms(wf.status?.steps?.find((x) => x.name === `s${s}`)?.startTime);
          c.startLatencyMs.push(start - depEnd);
          if (Number.isFinite(published)) {
            c.publishLatencyMs.push(published - depEnd);
            c.pickupLatencyMs.push(start - published);
          }
        }
      }
      chains.push(c);
      console.log(
        `round ${r + 1}: fan-out of ${ITEMS} ${f.totalMs.toFixed(0)} ms (${f.itemsPerSecond.toFixed(0)} items/s, fan-in ${f.fanInDelayMs.toFixed(0)} ms after the last item), object ${(f.kubectlJsonBytes / 1024).toFixed(1)} KiB · ` +
          `chain step start latency p50 ${median(c.startLatencyMs).toFixed(1)} p90 ${pct(c.startLatencyMs, 0.9).toFixed(1)} max ${Math.max(...c.startLatencyMs).toFixed(1)} ms (publish p50 ${median(c.publishLatencyMs).toFixed(1)} ms) · chain of ${STEPS} ${median(c.totalMs).toFixed(0)} ms · load ${load()}`,
      );
    }
    await nc.close();
    const all = chains.flatMap((c) => c.startLatencyMs);
    const pub = chains.flatMap((c) => c.publishLatencyMs);
    const pick = chains.flatMap((c) => c.pickupLatencyMs);
    const size = Math.max(...fanOuts.map((f) => f.kubectlJsonBytes));
    const summary = {
      fanOutItems: ITEMS,
      fanOutTotalMsMedian: median(fanOuts.map((f) => f.totalMs)),
      fanOutItemsPerSecondBest: Math.max(...fanOuts.map((f) => f.itemsPerSecond)),
      fanInDelayMsMedian: median(fanOuts.map((f) => f.fanInDelayMs)),
      objectBytesKubectlJsonMax: size,
      objectBytesCompactMax: Math.max(...fanOuts.map((f) => f.compactJsonBytes)),
      objectTargetMet: size < 100 * 1024,
      chainSteps: STEPS,
      stepStartLatencySamples: all.length,
      stepStartLatencyMs: { p50: median(all), p90: pct(all, 0.9), p99: pct(all, 0.99), max: Math.max(...all) },
      publishLatencyMs: { p50: median(pub), p90: pct(pub, 0.9) },
      pickupLatencyMs: { p50: median(pick), p90: pct(pick, 0.9) },
      stepStartLatencyTargetMet: median(all) <= 50,
      chainTotalMsMedian: median(chains.flatMap((c) => c.totalMs)),
    };
    console.log("\n| measure | result | target |\n|---|---|---|");
    console.log(`| fan-out of ${ITEMS} (range → forEach noop → count), create → Succeeded | ${summary.fanOutTotalMsMedian.toFixed(0)} ms median; fan step ${summary.fanOutItemsPerSecondBest.toFixed(0)} items/s best; fan-in started ${summary.fanInDelayMsMedian.toFixed(0)} ms after the last item | — |`);
    console.log(`| its object at the end, kubectl get -o json | ${(size / 1024).toFixed(1)} KiB (compact ${(summary.objectBytesCompactMax / 1024).toFixed(1)} KiB) | < 100 KiB: ${summary.objectTargetMet ? "met" : "NOT met"} |`);
    console.log(`| step start after its dependency finished (record startTime − dependency's completionTime), ${all.length} steps | p50 ${summary.stepStartLatencyMs.p50.toFixed(1)} ms, p90 ${summary.stepStartLatencyMs.p90.toFixed(1)} ms, p99 ${summary.stepStartLatencyMs.p99.toFixed(1)} ms | p50 ≤ 50 ms: ${summary.stepStartLatencyTargetMet ? "met" : "NOT met"} |`);
    console.log(`| of which: operator publish (status.steps[].startTime − dependency's completion) / worker pickup | p50 ${summary.publishLatencyMs.p50.toFixed(1)} ms / ${summary.pickupLatencyMs.p50.toFixed(1)} ms | — |`);
    console.log(`| chain of ${STEPS} no-op steps, create → Succeeded | ${summary.chainTotalMsMedian.toFixed(0)} ms median | — |`);
    const doc = { bench: "workflow", date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, loadavg: loadavg(), params: { items: ITEMS, steps: STEPS, chains: CHAINS, rounds: ROUNDS }, summary, rounds: fanOuts.map((f, i) => ({ fanOut: f, chains: chains[i] })) };
    const file = OUT ?? join(ROOT, "bench", "results", `workflow-${doc.date.replace(/[:]/g, "-").replace(/\..*$/, "")}.json`);
    if (!existsSync(dirname(file))) mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
    console.log(`written: ${file}`);
  } finally {
    await platform?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench Queue: 2 worker pods × 128 slots on the bench tasks module. */
function queueObject(): KubeObject {
  return {
    metadata: { namespace: NS, name: QUEUE },
    spec: {
      worker: { image: "celeriac-bench:dev", command: ["celeriac", "worker"], env: [{ name: "CELERIAC_TASKS", value: TASKS }, { name: "CELERIAC_LOG_LEVEL", value: "warn" }] },
      concurrency: 128,
      autoscaling: { minReplicas: 2, maxReplicas: 2 },
    },
  };
}

/** `n` no-op steps s0 → s1 → … → s(n-1). */
function chainSpec(n: number): Omit<WorkflowSpec, "queue"> {
  return { steps: Array.from({ length: n }, (_, i) => ({ name: `s${i}`, task: "wfb.noop", ...(i > 0 ? { dependsOn: [`s${i - 1}`] } : {}) })) };
}

/** gen (a list of `n`) → fan (forEach noop) → total (count). */
function fanOutSpec(n: number): Omit<WorkflowSpec, "queue"> {
  return {
    steps: [
      { name: "gen", task: "wfb.range", args: [n] },
      { name: "fan", task: "wfb.noop", dependsOn: ["gen"], forEach: { fromStep: "gen" } },
      { name: "total", task: "wfb.count", args: ["fan"], dependsOn: ["fan"] },
    ],
  };
}

async function record(kv: KV, id: string): Promise<TaskRecord> {
  const e = await kv.get(id);
  if (!e || e.length === 0) throw new Error(`no record for task ${id} in the results bucket`);
  return e.json<TaskRecord>();
}

/** Bytes of `kubectl get workflow <name> -o json` (kubectl hides managedFields), or its equivalent without kubectl. */
async function kubectlJsonBytes(kubeconfig: string, wf: Wf): Promise<number> {
  const tools = k8sTools();
  const bin = tools.kubectl132 ?? tools.kubectl134;
  if (bin) {
    const r = await runTool(bin, ["get", "workflow", wf.metadata.name, "-n", NS, "-o", "json"], { KUBECONFIG: kubeconfig });
    if (r.code === 0) return Buffer.byteLength(r.stdout);
  }
  const { managedFields: _hidden, ...metadata } = wf.metadata as Wf["metadata"] & { managedFields?: unknown };
  return Buffer.byteLength(JSON.stringify({ ...wf, metadata }, null, 4) + "\n");
}

async function fanOut(run: (spec: Omit<WorkflowSpec, "queue">) => Promise<{ wf: Wf; totalMs: number }>, kv: KV, kubeconfig: string): Promise<FanOut> {
  const { wf, totalMs } = await run(fanOutSpec(ITEMS));
  if (wf.status?.result !== ITEMS) throw new Error(`fan-in counted ${JSON.stringify(wf.status?.result)}, not ${ITEMS}`);
  const fan = wf.status?.steps?.find((s) => s.name === "fan");
  const uid = wf.metadata.uid;
  const items = await mapLimited(Array.from({ length: ITEMS }, (_, i) => i), 64, (i) => record(kv, workflowTaskId(uid, "fan", 0, i)));
  const lastItem = Math.max(...items.map((r) => ms(r.status.completionTime)));
  const totalRec = await record(kv, workflowTaskId(uid, "total"));
  return {
    totalMs,
    itemsPerSecond: ITEMS / ((ms(fan?.completionTime) - ms(fan?.startTime)) / 1000),
    fanInDelayMs: ms(totalRec.status.startTime) - lastItem,
    kubectlJsonBytes: await kubectlJsonBytes(kubeconfig, wf),
    compactJsonBytes: Buffer.byteLength(JSON.stringify(wf)),
  };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
