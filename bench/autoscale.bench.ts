/**
 * Autoscaling latency on the dev platform (operator + nats-server + in-memory API server + process
 * kubelet running workers as local processes):
 *
 *   npm run build && node dist/bench/autoscale.bench.js [--rounds 3] [--poll 2]
 *
 * For a Queue with min 0, max 5, target 10 and the default polling interval (2 s), each round
 * enqueues at a random phase of the polling cycle and measures from the enqueue:
 * - 0→1 (one task): to the Deployment's `spec.replicas` ≥ 1 (the operator's decision), to a Running
 *   Pod (process started), to a Ready Pod, and to the task's handler starting;
 * - 0→max (100 tasks): to `spec.replicas` = 5, and to 5 Running / Ready Pods.
 * Between rounds the queue returns to zero (scale-down window 8 s and cooldown 6 s, so Pods live
 * long enough to pass a readiness probe). Samples the API server every 25 ms.
 * Workers pull from NATS whether or not their Pod is Ready; readiness only follows the worker
 * template's `/readyz` probe (period 5 s, first probe as the process starts, so usually at +5 s).
 * Prints one JSON line with p50/max of each, and the same figures for KEDA with its defaults
 * (modelled, see `kedaDefaults`). Bounded: gives up after 240 s.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type TaskHandle } from "../client/index.js";
import { isAlive } from "../devcluster/platform/state.js";
import { waitFor } from "../test/helpers/k8s-tools.js";
import { startE2E, type E2E } from "../test/e2e/helpers.js";
import { firstAfter, sampler } from "../test/e2e/scale-sampler.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg("rounds", 3);
const POLL = arg("poll", 2);
const MAX = 5;
/** Long enough for a worker Pod to pass its first readiness probe (period 5 s) before scale-to-zero. */
const COOLDOWN = 6;
const NS = "default";
const QUEUE = "bench";
const TOTAL_LIMIT_MS = 240_000;

function stats(xs: Array<number | undefined>): { p50: number; max: number; n: number } | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return { p50: v[Math.floor((v.length - 1) / 2)]!, max: v[v.length - 1]!, n: v.length };
}

function queueYaml(eventsLog: string): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Queue
metadata: {name: ${QUEUE}}
spec:
  worker:
    image: celeriac-e2e:dev
    command: ["celeriac", "worker"]
    env:
      - {name: CELERIAC_TASKS, value: dist/test/fixtures/e2e/tasks.js}
      - {name: CELERIAC_E2E_LOG, value: ${eventsLog}}
  autoscaling:
    minReplicas: 0
    maxReplicas: ${MAX}
    targetBacklogPerReplica: 10
    pollingIntervalSeconds: ${POLL}
    scaleDownStabilizationSeconds: 8
    cooldownSeconds: ${COOLDOWN}
`;
}

/**
 * KEDA with its defaults, modelled: KEDA polls the scaler every `pollingInterval` (30 s) and does
 * 0→1 itself on the first poll that sees lag; 1→N is the HPA's job, which reads KEDA's metric on its
 * own `--horizontal-pod-autoscaler-sync-period` (15 s). The backlog arrives at a uniformly random
 * phase of both loops, so the wait for each is uniform on [0, period]: mean period/2, worst period.
 */
function kedaDefaults(): Record<string, unknown> {
  const poll = 30;
  const sync = 15;
  return {
    pollingIntervalSeconds: poll,
    hpaSyncPeriodSeconds: sync,
    zeroToOneDesiredS: { typical: poll / 2, worst: poll },
    zeroToMaxDesiredS: { typical: poll / 2 + sync / 2, worst: poll + sync },
    note: "0→1 waits for KEDA's next poll (uniform 0–30 s: typical 15, worst 30). Reaching more than 1 also waits for the HPA's next sync after activation (uniform 0–15 s: +7.5 typical, +15 worst), so 0→N is typical 22.5 s, worst 45 s — before any pod starts. Celeriac's loop reads the backlog every pollingIntervalSeconds (2 s) and goes 0→N in that one read.",
  };
}

async function round(e: E2E, client: Awaited<ReturnType<typeof connect>>, n: number, s: ReturnType<typeof sampler>) {
  // start at a random phase of the operator's polling cycle
  await sleep(Math.random() * POLL * 1000);
  const t0 = Date.now();
  const handles: TaskHandle[] = await Promise.all(Array.from({ length: n }, () => client.enqueue("e2e.sleep", [], { ms: 200 }, { queue: QUEUE, namespace: NS })));
  const want = Math.min(MAX, Math.ceil(n / 10));
  await waitFor(`${want} running workers`, () => s.samples.some((x) => x.at >= t0 && x.running >= want), 30_000, 10);
  // readiness is reported, not required: a round whose Pods never pass a probe records no toReadyMs
  await waitFor(`${want} ready workers`, () => s.samples.some((x) => x.at >= t0 && x.ready >= want), 15_000, 10).catch(() => undefined);
  const firstStart = e.events().filter((x) => x.event === "start" && x.at >= t0).map((x) => x.at).sort((a, b) => a - b)[0];
  const r = {
    toDesiredMs: firstAfter(s.samples, t0, (x) => x.spec >= want),
    toRunningMs: firstAfter(s.samples, t0, (x) => x.running >= want),
    toReadyMs: firstAfter(s.samples, t0, (x) => x.ready >= want),
    toFirstTaskStartMs: firstStart !== undefined ? firstStart - t0 : undefined,
  };
  await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
  const done = Date.now();
  await waitFor("back to zero", () => s.samples.some((x) => x.at >= done && x.spec === 0 && x.running === 0), 30_000, 50);
  // The dev API server deletes Pods at once while their processes drain; a draining worker can still
  // take a message from its last pull, so the next round starts only when every process has exited.
  const pids = new Set(s.samples.filter((x) => x.at >= t0).flatMap((x) => x.pids));
  await waitFor("worker processes exited", () => [...pids].every((pid) => !isAlive(pid)), 30_000, 50);
  return r;
}

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`autoscale bench: gave up after ${TOTAL_LIMIT_MS} ms`);
    process.exit(2);
  }, TOTAL_LIMIT_MS);
  limit.unref();
  const e = await startE2E();
  const client = await connect({ servers: e.platform.natsUrl, createQueues: false });
  const s = sampler(e.platform.apiUrl, QUEUE, 25, NS);
  try {
    const a = await e.apply(queueYaml(e.eventsLog));
    if (a.code !== 0) throw new Error(`apply queue: ${a.stderr}`);
    await waitFor("the queue's stream and Deployment at 0", async () => {
      const q = await e.kubectl(["get", "queue", QUEUE, "-o", "jsonpath={.status.conditions[?(@.type==\"StreamReady\")].status}"]);
      const d = await e.kubectl(["get", "deployment", `${QUEUE}-workers`, "-o", "jsonpath={.spec.replicas}"]);
      return q.stdout === "True" && d.code === 0 && d.stdout === "0";
    }, 30_000, 100);
    const one: Array<Awaited<ReturnType<typeof round>>> = [];
    const max: Array<Awaited<ReturnType<typeof round>>> = [];
    for (let i = 0; i < ROUNDS; i++) {
      one.push(await round(e, client, 1, s));
      max.push(await round(e, client, 100, s));
    }
    const summarise = (rs: typeof one) => ({
      toDesiredMs: stats(rs.map((r) => r.toDesiredMs)),
      toRunningMs: stats(rs.map((r) => r.toRunningMs)),
      toReadyMs: stats(rs.map((r) => r.toReadyMs)),
      toFirstTaskStartMs: stats(rs.map((r) => r.toFirstTaskStartMs)),
    });
    console.log(JSON.stringify({
      bench: "autoscale",
      platform: "dev (process kubelet: a worker Pod is a local node process)",
      pollingIntervalSeconds: POLL,
      maxReplicas: MAX,
      rounds: ROUNDS,
      celeriac: { zeroToOne: summarise(one), zeroToMax: summarise(max) },
      kedaDefaults: kedaDefaults(),
    }));
  } finally {
    await s.stop();
    await client.close();
    await e.stop();
  }
}

await main();
