// The Queue reconciler against the in-memory API server and a real nats-server: it is called as the
// controller calls it (key + ctx, informer caches), and the assertions are on the world — the
// Deployment, RBAC, streams, status and Events — not on calls.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { V1Deployment } from "@kubernetes/client-node";
import { pino } from "pino";
import { heldNames } from "../../../api/flow.js";
import { queueNames } from "../../../api/naming.js";
import { CELERIAC_TYPES, type Queue } from "../../../api/objects.js";
import type { QueueSpec } from "../../../api/queue.js";
import { newTaskMessage } from "../../../api/task-message.js";
import { publishTaskMessage } from "../../../nats/task-publish.js";
import { pauseQueue, resumeQueue } from "../../../nats/queue-pause.js";
import { BUILTIN_TYPES, createObject, deleteObject, getObject, isNotFound, listObjects, mergePatch, type KubeObject } from "../../../kube/k8s-client.js";
import { SharedTenantNats } from "../../../operator/credentials/tenant-connections.js";
import { QueueReconciler } from "../../../operator/queue/queue-reconciler.js";
import { EventRecorder, Informer, isTerminal, type ReconcileContext, type TerminalError } from "../../../operator/runtime/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../../helpers/nats-server.js";
import { eventually, startCluster, type TestCluster } from "../runtime/cluster.js";

const NS = "default";
const log = pino({ level: "silent" });
const ctx: ReconcileContext = { log, reconcileID: "test", controller: "queue" };

describe("when the Queue reconciler runs against an API server and NATS", () => {
  let c: TestCluster;
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let queues: Informer<Queue & KubeObject>;
  let deployments: Informer<V1Deployment & KubeObject>;
  let rec: QueueReconciler;

  before(async () => {
    c = await startCluster(["queues"]);
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    queues = new Informer<Queue & KubeObject>({ kc: c.kc, type: CELERIAC_TYPES.Queue, logger: log });
    deployments = new Informer<V1Deployment & KubeObject>({ kc: c.kc, type: BUILTIN_TYPES.Deployment, logger: log });
    queues.start();
    deployments.start();
    await Promise.all([queues.waitForSync(10_000), deployments.waitForSync(10_000)]);
    const recorder = new EventRecorder({ kc: c.kc, logger: log });
    rec = new QueueReconciler({
      kc: c.kc,
      getQueue: (ns, name) => queues.get(ns, name),
      getDeployment: (ns, name) => deployments.get(ns, name),
      tenants: new SharedTenantNats(nc, jsm),
      events: { event: (obj, type, reason, message) => void recorder.record(obj, type, reason, message) },
      log,
      workerNats: { url: nats.url },
      workerImage: "worker:test",
    });
  });
  after(async () => {
    await rec?.stop();
    await queues?.stop();
    await deployments?.stop();
    await nc?.drain();
    await nats?.cleanup();
    await c?.close();
  });

  /** Creates a Queue and waits until the cache holds it. */
  async function createQueue(spec: QueueSpec, name = uniqueQueue("rq")): Promise<Queue> {
    const q = await createObject<Queue & KubeObject>(c.kc, CELERIAC_TYPES.Queue, { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name, namespace: NS }, spec }, "test");
    await synced(name);
    return q;
  }
  const get = (name: string) => getObject<Queue & KubeObject>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });
  const getDeployment = (name: string) => getObject<V1Deployment & KubeObject>(c.kc, { ...BUILTIN_TYPES.Deployment, namespace: NS, name: `${name}-workers` });
  /** Waits until the caches show the server's current Queue and Deployment. */
  async function synced(name: string): Promise<void> {
    await eventually(async () => {
      const live = await get(name).catch(() => undefined);
      const d = await getDeployment(name).catch(() => undefined);
      return queues.get(NS, name)?.metadata.resourceVersion === live?.metadata.resourceVersion
        && deployments.get(NS, `${name}-workers`)?.metadata?.resourceVersion === d?.metadata?.resourceVersion;
    }, 5000, `caches of ${name} in sync`);
  }
  /** Everything the reconciler writes for a Queue, with resourceVersions. */
  async function world(name: string): Promise<unknown> {
    const names = queueNames(NS, name);
    const rv = async (t: typeof BUILTIN_TYPES.Role | typeof BUILTIN_TYPES.RoleBinding | typeof BUILTIN_TYPES.ServiceAccount) =>
      (await getObject(c.kc, { ...t, namespace: NS, name: `${name}-worker` })).metadata?.resourceVersion;
    const q = await get(name);
    return {
      queue: { rv: q.metadata.resourceVersion, finalizers: q.metadata.finalizers, status: q.status },
      deployment: (await getDeployment(name)).metadata?.resourceVersion,
      role: await rv(BUILTIN_TYPES.Role), binding: await rv(BUILTIN_TYPES.RoleBinding), sa: await rv(BUILTIN_TYPES.ServiceAccount),
      streams: await Promise.all([names.stream, names.delayedStream, names.deadLetterStream].map(async (s) => (await jsm.streams.info(s)).config)),
    };
  }
  async function events(name: string): Promise<Array<{ reason?: string; message?: string; type?: string; count?: number }>> {
    const list = await listObjects(c.kc, BUILTIN_TYPES.Event, { namespace: NS });
    return list.items.filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === name) as never;
  }

  it("creates the streams, worker RBAC, Deployment and status; a second reconcile changes nothing", async () => {
    const name = uniqueQueue("twice");
    await createQueue({ concurrency: 2, autoscaling: { minReplicas: 0, maxReplicas: 3 } }, name);
    await rec.reconcile({ namespace: NS, name }, ctx);

    const d = await getDeployment(name);
    assert.equal(d.spec?.replicas, 0, "created at the decision for an empty queue");
    const env = d.spec?.template.spec?.containers[0]?.env ?? [];
    assert.deepEqual(["CELERIAC_QUEUE", "CELERIAC_NAMESPACE", "CELERIAC_CONCURRENCY", "CELERIAC_NATS_URL"].map((n) => env.find((e) => e.name === n)?.value), [name, NS, "2", nats.url]);
    assert.equal(d.metadata?.ownerReferences?.[0]?.kind, "Queue");
    const binding = await getObject<KubeObject & { subjects?: Array<{ name: string }> }>(c.kc, { ...BUILTIN_TYPES.RoleBinding, namespace: NS, name: `${name}-worker` });
    assert.deepEqual(binding.subjects?.map((s) => s.name), [`${name}-worker`]);
    const names = queueNames(NS, name);
    assert.equal((await jsm.consumers.info(names.stream, names.workerConsumer)).name, names.workerConsumer);

    // The status: the reconcile's conditions, and the scale loop's first read.
    const q = (await eventually(async () => {
      const live = await get(name);
      return live.status?.desiredReplicas !== undefined ? live : undefined;
    }, 5000, "the scale loop's first read"))!;
    const conds = Object.fromEntries((q.status?.conditions ?? []).map((x) => [x.type, `${x.status}/${x.reason}`]));
    assert.deepEqual(conds, { StreamReady: "True/Reconciled", WorkersReady: "True/ScaledToZero", Ready: "True/Reconciled" });
    assert.deepEqual([q.status?.streamName, q.status?.observedGeneration, q.status?.backlog, q.status?.desiredReplicas, q.status?.replicas], [names.stream, 1, 0, 0, 0]);
    assert.ok(q.status?.lastScaleTime, "the Deployment's creation counts as a scale");

    await synced(name);
    const before = await world(name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    await new Promise((r) => setTimeout(r, 2500)); // one polling interval of the scale loop
    assert.deepEqual(await world(name), before, "nothing was written by the second reconcile or the idle scale loop");
  });

  it("scales the workers from the backlog through the scale subresource, with a Scaled Event and the status", async () => {
    const name = uniqueQueue("scale");
    await createQueue({ autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10, pollingIntervalSeconds: 1 } }, name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    const names = queueNames(NS, name);
    for (let i = 0; i < 25; i++) await js.publish(names.taskSubject, JSON.stringify({ id: `t${i}` }), { msgID: `t${i}` });
    const t0 = Date.now();
    await eventually(async () => (await getDeployment(name)).spec?.replicas === 3, 5000, "3 replicas");
    assert.ok(Date.now() - t0 <= 1500, `decided within one polling interval (${Date.now() - t0} ms)`);
    const q = (await eventually(async () => {
      const live = await get(name);
      // a poll may land while the 25 are still being published (backlog 21-24 also gives 3 replicas)
      return live.status?.desiredReplicas === 3 && live.status?.backlog === 25 ? live : undefined;
    }, 3000, "desiredReplicas 3 and backlog 25 in status"))!;
    assert.equal(q.status?.backlog, 25);
    // A poll may land while the 25 are still being published: an earlier "from 0 to 2" Event may come
    // first, and the decision to 3 may be taken at a backlog of 21-24 already (CI saw "backlog 22"),
    // after which the full 25 changes nothing and writes no Event.
    const ev = (await eventually(async () => (await events(name)).find((e) => e.reason === "Scaled" && / to 3: /.test(e.message ?? "")), 3000, "a Scaled Event to 3"))!;
    assert.match(ev.message ?? "", /^Scaled workers from [0-2] to 3: backlog 2[1-5]$/);
  });

  it("reads at once after a spec change instead of waiting for the next polling interval", async () => {
    const name = uniqueQueue("respec");
    await createQueue({ autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10, pollingIntervalSeconds: 60 } }, name);
    await rec.reconcile({ namespace: NS, name }, ctx); // the first read runs now: empty, 0 workers
    await eventually(async () => (await get(name)).status?.desiredReplicas === 0, 3000, "the first read");
    const names = queueNames(NS, name);
    for (let i = 0; i < 15; i++) await js.publish(names.taskSubject, JSON.stringify({ id: `t${i}` }), { msgID: `t${i}` });
    await mergePatch(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name }, { spec: { autoscaling: { targetBacklogPerReplica: 5 } } }, "test");
    await synced(name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    await eventually(async () => (await getDeployment(name)).spec?.replicas === 3, 3000, "3 replicas well before the 60 s interval");
  });

  it("records a worker template that breaks the restricted profile once, as InvalidSpec, and applies no Deployment", async () => {
    const name = uniqueQueue("bad");
    await createQueue({ worker: { template: { spec: { hostNetwork: true, containers: [{ name: "worker" }] } } } }, name);
    await assert.rejects(rec.reconcile({ namespace: NS, name }, ctx), (err: unknown) => isTerminal(err) && (err as TerminalError).reason === "InvalidSpec");
    const q = await get(name);
    const ready = q.status?.conditions?.find((x) => x.type === "Ready");
    assert.deepEqual([ready?.status, ready?.reason], ["False", "InvalidSpec"]);
    assert.match(ready?.message ?? "", /hostNetwork/);
    await assert.rejects(getDeployment(name), (err: unknown) => isNotFound(err));

    await synced(name);
    assert.equal(await rec.reconcile({ namespace: NS, name }, ctx), undefined, "already recorded: not thrown again for the same generation");
    assert.equal((await get(name)).metadata.resourceVersion, q.metadata.resourceVersion, "and nothing rewritten");

    // A fix is picked up on the next reconcile.
    await mergePatch(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name }, { spec: { worker: { template: null } } }, "test");
    await synced(name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    assert.equal((await get(name)).status?.conditions?.find((x) => x.type === "Ready")?.status, "True");
  });

  it("moves due delayed tasks while the Queue lives, and deletes its streams under deletionPolicy Delete", async () => {
    const name = uniqueQueue("gone");
    await createQueue({ deletionPolicy: "Delete" }, name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    const names = queueNames(NS, name);
    assert.deepEqual((await get(name)).metadata.finalizers, ["celeriac.io/queue-cleanup"]);
    await js.publish(names.delayedSubject, JSON.stringify({ id: "d1", eta: new Date(Date.now() - 1000).toISOString() }), { msgID: "d1" });
    await eventually(async () => (await jsm.streams.info(names.stream)).state.messages === 1, 5000, "the delayed task moved to the work stream");

    await deleteObject(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });
    await eventually(() => queues.get(NS, name)?.metadata.deletionTimestamp, 5000, "deletion seen");
    await rec.reconcile({ namespace: NS, name }, ctx);
    await assert.rejects(jsm.streams.info(names.stream));
    await assert.rejects(jsm.streams.info(names.delayedStream));
    await eventually(async () => (await get(name).catch((err: unknown) => (isNotFound(err) ? "gone" : undefined))) === "gone", 5000, "the Queue released");
    const ev = await events(name);
    assert.ok(ev.some((e) => e.reason === "StreamDeleted"), "a StreamDeleted Event");
  });

  it("runs a flow-controlled Queue's dispatcher: status.flow, no scale-up for held-back work, a drain when flow control is turned off", async () => {
    const name = uniqueQueue("flow");
    await createQueue({ deletionPolicy: "Delete", concurrencyKeys: { limit: 1 }, autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 1, pollingIntervalSeconds: 1 } }, name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    const names = queueNames(NS, name);
    const held = heldNames(names);
    assert.equal((await jsm.consumers.info(held.stream, "dispatch-0")).name, "dispatch-0");
    for (let i = 0; i < 5; i++) {
      const m = newTaskMessage({ id: `f${i}`, task: "t", queue: name, namespace: NS, origin: { kind: "Client" }, flow: { priority: 0, key: "k" } }, new Date());
      await publishTaskMessage(js, names, m);
    }
    // key k runs one at a time (no worker finishes it here): one released, four held back
    const q = (await eventually(async () => {
      const live = await get(name);
      return live.status?.flow?.held === 4 && live.status.backlog === 1 ? live : undefined;
    }, 5000, "status.flow shows the held tasks"))!;
    assert.equal(q.status?.flow?.runnable, 0);
    assert.deepEqual(q.status?.flow?.keys, [{ key: "k", held: 4, running: 1, limit: 1 }]);
    assert.equal((await jsm.streams.info(names.stream)).state.messages, 1);
    await eventually(async () => (await getDeployment(name)).spec?.replicas === 1, 3000, "one worker for the released task");
    await new Promise((r) => setTimeout(r, 1500)); // another polling interval
    assert.equal((await getDeployment(name)).spec?.replicas, 1, "work held back by a key limit does not scale workers up (target 1 per replica)");

    // flow control off: what is held goes to the work stream, and status.flow goes away
    await mergePatch(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name }, { spec: { concurrencyKeys: null } }, "test");
    await synced(name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    await eventually(async () => (await jsm.streams.info(names.stream)).state.messages === 5 && (await jsm.streams.info(held.stream)).state.messages === 0, 5000, "the held tasks released");
    assert.equal(new Set((await Promise.all([1, 2, 3, 4, 5].map((seq) => jsm.streams.getMessage(names.stream, { seq })))).map((m) => m?.json<{ id: string }>().id)).size, 5, "each task once");
    await eventually(async () => (await get(name)).status?.flow === undefined, 5000, "status.flow removed");

    await deleteObject(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });
    await eventually(() => queues.get(NS, name)?.metadata.deletionTimestamp, 5000, "deletion seen");
    await rec.reconcile({ namespace: NS, name }, ctx);
    await assert.rejects(jsm.streams.info(held.stream), "the held stream is deleted with the queue");
  });

  it("re-applies NATS resources and worker RBAC deleted behind its back once recheckMs has passed, not before", async () => {
    const name = uniqueQueue("recheck");
    let clock = Date.now();
    const local = new QueueReconciler({
      kc: c.kc, getQueue: (ns, n) => queues.get(ns, n), getDeployment: (ns, n) => deployments.get(ns, n), tenants: new SharedTenantNats(nc, jsm),
      events: { event: () => undefined }, log, workerNats: { url: nats.url }, workerImage: "worker:test", recheckMs: 10_000, now: () => clock,
    });
    try {
      await createQueue({ autoscaling: { minReplicas: 0, maxReplicas: 2 } }, name);
      await local.reconcile({ namespace: NS, name }, ctx);
      const names = queueNames(NS, name);
      const role = { ...BUILTIN_TYPES.Role, namespace: NS, name: `${name}-worker` };
      await deleteObject(c.kc, role);
      await jsm.streams.delete(names.deadLetterStream);
      await synced(name);
      clock += 5_000;
      await local.reconcile({ namespace: NS, name }, ctx);
      await assert.rejects(getObject(c.kc, role), (err: unknown) => isNotFound(err), "within recheckMs: not applied again");
      await assert.rejects(jsm.streams.info(names.deadLetterStream));
      clock += 5_001;
      await local.reconcile({ namespace: NS, name }, ctx);
      assert.equal((await getObject(c.kc, role)).metadata?.name, `${name}-worker`, "the Role is back");
      assert.equal((await jsm.streams.info(names.deadLetterStream)).config.name, names.deadLetterStream, "the dead-letter stream is back");
    } finally {
      await local.stop();
    }
  });

  it("applies again at once after a spec change", async () => {
    const name = uniqueQueue("respec2");
    const local = new QueueReconciler({
      kc: c.kc, getQueue: (ns, n) => queues.get(ns, n), getDeployment: (ns, n) => deployments.get(ns, n), tenants: new SharedTenantNats(nc, jsm),
      events: { event: () => undefined }, log, workerNats: { url: nats.url }, workerImage: "worker:test", recheckMs: 3_600_000,
    });
    try {
      await createQueue({ ackWaitSeconds: 30 }, name);
      await local.reconcile({ namespace: NS, name }, ctx);
      await mergePatch(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name }, { spec: { ackWaitSeconds: 45 } }, "test");
      await synced(name);
      await local.reconcile({ namespace: NS, name }, ctx);
      const names = queueNames(NS, name);
      assert.equal((await jsm.consumers.info(names.stream, names.workerConsumer)).config.ack_wait, 45_000_000_000);
    } finally {
      await local.stop();
    }
  });

  it("stops moving delayed tasks and scaling once stopped", async () => {
    const name = uniqueQueue("stop");
    const local = new QueueReconciler({
      kc: c.kc, getQueue: (ns, n) => queues.get(ns, n), getDeployment: (ns, n) => deployments.get(ns, n), tenants: new SharedTenantNats(nc, jsm),
      events: { event: () => undefined }, log, workerNats: { url: nats.url }, workerImage: "worker:test",
    });
    await createQueue({ autoscaling: { minReplicas: 0, maxReplicas: 5, pollingIntervalSeconds: 1 } }, name);
    await local.reconcile({ namespace: NS, name }, ctx);
    await local.stop();
    const names = queueNames(NS, name);
    await js.publish(names.delayedSubject, JSON.stringify({ id: "d1", eta: new Date(Date.now() - 1000).toISOString() }), { msgID: "d1" });
    await js.publish(names.taskSubject, JSON.stringify({ id: "t1" }), { msgID: "t1" });
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await jsm.streams.info(names.delayedStream)).state.messages, 1, "the delayed task stayed");
    assert.equal((await getDeployment(name)).spec?.replicas, 0, "not scaled");
  });

  it("holds the worker count while the queue is paused (status.paused) and scales within a moment of the resume", async () => {
    const name = uniqueQueue("paused");
    await createQueue({ autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10, pollingIntervalSeconds: 60 } }, name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    await eventually(async () => (await get(name)).status?.desiredReplicas === 0, 3000, "the first read");
    const names = queueNames(NS, name);
    const kv = await new Kvm(nc).open(names.resultsBucket);
    assert.ok("paused" in (await pauseQueue(kv, { reason: "maintenance" })));
    // the watch kicks the loop: status.paused at once, not at the next (60 s) interval
    const st = (await eventually(async () => (await get(name)).status?.paused, 3000, "status.paused"))!;
    assert.equal(st.reason, "maintenance");
    for (let i = 0; i < 25; i++) await js.publish(names.taskSubject, JSON.stringify({ id: `p${i}` }), { msgID: `p${i}` });
    await mergePatch(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name }, { spec: { autoscaling: { pollingIntervalSeconds: 1 } } }, "test");
    await synced(name);
    await rec.reconcile({ namespace: NS, name }, ctx);
    await eventually(async () => (await get(name)).status?.backlog === 25, 3000, "backlog 25 read");
    await new Promise((r) => setTimeout(r, 1500)); // another interval
    assert.equal((await getDeployment(name)).spec?.replicas, 0, "held at 0 with a backlog of 25");
    const t0 = Date.now();
    await resumeQueue(kv);
    await eventually(async () => (await getDeployment(name)).spec?.replicas === 3, 3000, "3 replicas after the resume");
    assert.ok(Date.now() - t0 < 1500, `scaled ${Date.now() - t0} ms after the resume`);
    await eventually(async () => (await get(name)).status?.paused === undefined, 3000, "status.paused removed");
  });
});
