// The scale loop's hold while a Queue is paused (`celeriac queue pause`): against the in-memory API
// server with a given depth and pause, the loop keeps the worker count (no scale-up on a backlog, no
// scale to zero when idle), writes status.paused, and scales again at once after the resume.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Deployment } from "@kubernetes/client-node";
import { pino } from "pino";
import { CELERIAC_TYPES, type Queue } from "../../../api/objects.js";
import type { QueuePaused } from "../../../api/queue-ops.js";
import { BUILTIN_TYPES, createObject, getObject, type KubeObject } from "../../../kube/k8s-client.js";
import { ScaleLoops } from "../../../operator/queue/scale-loop.js";
import { depthKey, type DepthResults, type QueueDepth } from "../../../operator/queue/queue-nats.js";
import { Informer } from "../../../operator/runtime/index.js";
import { uniqueQueue } from "../../helpers/nats-server.js";
import { eventually, startCluster, type TestCluster } from "../runtime/cluster.js";

const NS = "default";
const log = pino({ level: "silent" });

describe("when a Queue is paused", { timeout: 60_000 }, () => {
  let c: TestCluster;
  let queues: Informer<Queue & KubeObject>;
  let deployments: Informer<V1Deployment & KubeObject>;
  let loops: ScaleLoops;
  const depth = new Map<string, QueueDepth>();
  const pauses = new Map<string, QueuePaused>();

  before(async () => {
    c = await startCluster(["queues"]);
    queues = new Informer<Queue & KubeObject>({ kc: c.kc, type: CELERIAC_TYPES.Queue, logger: log });
    deployments = new Informer<V1Deployment & KubeObject>({ kc: c.kc, type: BUILTIN_TYPES.Deployment, logger: log });
    queues.start();
    deployments.start();
    await Promise.all([queues.waitForSync(10_000), deployments.waitForSync(10_000)]);
    loops = new ScaleLoops({
      kc: c.kc,
      getQueue: (ns, name) => queues.get(ns, name),
      getDeployment: (ns, name) => deployments.get(ns, name),
      nats: {
        depthMany: async (names) => {
          const out: DepthResults = new Map();
          for (const n of names) out.set(depthKey(n), depth.get(n.queue) ?? { pending: 0, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
          return out;
        },
      },
      events: { event: () => undefined },
      log,
      paused: (_ns, name) => pauses.get(name),
    });
  });
  after(async () => {
    await loops?.stop();
    await queues?.stop();
    await deployments?.stop();
    await c?.close();
  });

  const replicas = async (name: string) => (await getObject<V1Deployment & KubeObject>(c.kc, { ...BUILTIN_TYPES.Deployment, namespace: NS, name: `${name}-workers` })).spec?.replicas;
  const status = async (name: string) => (await getObject<Queue & KubeObject>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name })).status;

  /** A Queue (1 s polling, no cooldown, no stabilization) and its worker Deployment at `size` replicas, both in the caches. */
  async function setup(name: string, size: number, suspend = false): Promise<Queue> {
    const q = await createObject<Queue & KubeObject>(c.kc, CELERIAC_TYPES.Queue, {
      apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name, namespace: NS },
      spec: { ...(suspend ? { suspend: true } : {}), autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10, pollingIntervalSeconds: 1, cooldownSeconds: 0, scaleDownStabilizationSeconds: 0 } },
    }, "test");
    await createObject(c.kc, BUILTIN_TYPES.Deployment, {
      apiVersion: "apps/v1", kind: "Deployment", metadata: { name: `${name}-workers`, namespace: NS },
      spec: { replicas: size, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "worker", image: "worker:test" }] } } },
    }, "test");
    await eventually(() => queues.get(NS, name) && deployments.get(NS, `${name}-workers`), 5000, "caches");
    return q;
  }

  it("holds the worker count on a backlog and when idle, says so in status.paused, and scales at once after the resume", async () => {
    const name = uniqueQueue("hold");
    pauses.set(name, { v: 1, paused: true, at: "2026-12-03T10:00:00.000Z", by: "ops@host", reason: "deploy" });
    depth.set(name, { pending: 100, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
    const q = await setup(name, 2);
    loops.request(q);
    const st = (await eventually(async () => {
      const s = await status(name);
      return s?.paused && s.backlog === 100 ? s : undefined;
    }, 5000, "status.paused and the backlog"))!;
    assert.deepEqual(st.paused, { at: "2026-12-03T10:00:00Z", by: "ops@host", reason: "deploy" });
    assert.equal(st.desiredReplicas, 2, "the current count is what it wants while paused");
    // three polling intervals with a backlog of 100 (5 workers if it ran), then idle (0 if it ran)
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await replicas(name), 2, "no scale-up while paused");
    depth.set(name, { pending: 0, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await replicas(name), 2, "no scale to zero while paused");

    depth.set(name, { pending: 100, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
    pauses.delete(name);
    const t0 = Date.now();
    loops.kick(NS, name); // what the operator's pause watch does on the resume
    await eventually(async () => (await replicas(name)) === 5, 3000, "5 replicas after the resume");
    const ms = Date.now() - t0;
    console.log(`# resume → scaled to 5: ${ms} ms`);
    assert.ok(ms < 1000, `scaled at once, not at the next tick (${ms} ms)`);
    await eventually(async () => (await status(name))?.paused === undefined, 3000, "status.paused removed");
  });

  it("still scales a suspended Queue to zero while paused", async () => {
    const name = uniqueQueue("susp");
    pauses.set(name, { v: 1, paused: true, at: "2026-12-03T10:00:00.000Z" });
    loops.request(await setup(name, 2, true));
    await eventually(async () => (await replicas(name)) === 0, 5000, "0 replicas");
  });
});
