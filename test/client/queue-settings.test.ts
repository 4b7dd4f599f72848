// Tasks enqueued from the client get the Queue's defaults: the operator's Queue reconciler (against
// the in-memory API server and a real nats-server) publishes the Queue's producer settings, and the
// client applies them wherever the caller set nothing.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import type { V1Deployment } from "@kubernetes/client-node";
import { pino } from "pino";
import { connect, type CeleriacClient } from "../../client/index.js";
import { parseTaskMessage, type TaskMessage } from "../../api/message.js";
import { QUEUE_SETTINGS_KEY, queueNames } from "../../api/naming.js";
import { CELERIAC_TYPES, type Queue } from "../../api/objects.js";
import type { QueueSpec } from "../../api/queue.js";
import { parseQueueProducerSettings } from "../../api/queue-settings.js";
import { BUILTIN_TYPES, createObject, getObject, mergePatch, type KubeObject } from "../../kube/k8s-client.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { SharedTenantNats } from "../../operator/credentials/tenant-connections.js";
import { QueueReconciler } from "../../operator/queue/queue-reconciler.js";
import { queueProducerSettings } from "../../operator/queue/queue-settings-publish.js";
import { Informer, type ReconcileContext } from "../../operator/runtime/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { eventually, startCluster, type TestCluster } from "../operator/runtime/cluster.js";
import { queueWith } from "../operator/queue/fixtures.js";

const NS = "default";
const log = pino({ level: "silent" });
const ctx: ReconcileContext = { log, reconcileID: "test", controller: "queue" };

describe("queueProducerSettings", () => {
  const table: Array<[string, QueueSpec, { timeoutSeconds: number; maxAttempts: number; initialSeconds: number }]> = [
    ["the CRD defaults", {}, { timeoutSeconds: 3600, maxAttempts: 3, initialSeconds: 1 }],
    ["a timeout and attempts", { timeoutSeconds: 120, retry: { maxAttempts: 4 } }, { timeoutSeconds: 120, maxAttempts: 4, initialSeconds: 1 }],
    ["a backoff", { retry: { backoff: { initialSeconds: 5 } } }, { timeoutSeconds: 3600, maxAttempts: 3, initialSeconds: 5 }],
  ];
  for (const [what, spec, want] of table) {
    it(`maps ${what} to versioned settings the client can parse`, () => {
      const s = queueProducerSettings(queueWith(spec, "thumbs", "shop"));
      assert.deepEqual([s.v, s.namespace, s.queue, s.generation, s.timeoutSeconds, s.retry.maxAttempts, s.retry.backoff.initialSeconds], [1, "shop", "thumbs", 1, want.timeoutSeconds, want.maxAttempts, want.initialSeconds]);
      assert.deepEqual(parseQueueProducerSettings(JSON.stringify(s)), { settings: s });
    });
  }
  it("adds the producer flow settings of a flow-controlled Queue, and none otherwise", () => {
    assert.equal("flow" in queueProducerSettings(queueWith({}, "plain", "shop")), false);
    const s = queueProducerSettings(queueWith({ priorities: { levels: 5, default: 2 }, concurrencyKeys: { from: "kwargs.tenant", limit: 3 } }, "flow", "shop"));
    assert.deepEqual(s.flow, { levels: 5, defaultPriority: 2, keyFrom: "kwargs.tenant", keys: true });
    assert.deepEqual(queueProducerSettings(queueWith({ rateLimit: { rate: "10/s" } }, "rated", "shop")).flow, { levels: 1, defaultPriority: 0, keys: false });
    assert.deepEqual(parseQueueProducerSettings(JSON.stringify(s)), { settings: s });
  });
  it("refuses another version and names bad fields", () => {
    assert.deepEqual(parseQueueProducerSettings('{"v":2}'), { error: "v: Unsupported value: 2: supported values: 1" });
    assert.match((parseQueueProducerSettings('{"v":1,"namespace":"a","queue":"b","retry":{"maxAttempts":1,"backoff":{"initialSeconds":1,"factor":2,"maxSeconds":1,"jitter":true}}}') as { error: string }).error, /timeoutSeconds/);
  });
});

describe("when the operator manages a Queue and a client enqueues to it", () => {
  let c: TestCluster;
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let queues: Informer<Queue & KubeObject>;
  let deployments: Informer<V1Deployment & KubeObject>;
  let rec: QueueReconciler;
  let client: CeleriacClient;

  before(async () => {
    c = await startCluster(["queues"]);
    nats = await startNatsServer();
    nc = await natsConnect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    queues = new Informer<Queue & KubeObject>({ kc: c.kc, type: CELERIAC_TYPES.Queue, logger: log });
    deployments = new Informer<V1Deployment & KubeObject>({ kc: c.kc, type: BUILTIN_TYPES.Deployment, logger: log });
    queues.start();
    deployments.start();
    await Promise.all([queues.waitForSync(10_000), deployments.waitForSync(10_000)]);
    rec = new QueueReconciler({
      kc: c.kc,
      getQueue: (ns, name) => queues.get(ns, name),
      getDeployment: (ns, name) => deployments.get(ns, name),
      tenants: new SharedTenantNats(nc, jsm),
      events: { event: () => undefined },
      log,
      workerNats: { url: nats.url },
      workerImage: "worker:test",
    });
    client = await connect({ servers: nats.url, settingsRefreshMs: 200 });
  });
  after(async () => {
    await client?.close();
    await rec?.stop();
    await queues?.stop();
    await deployments?.stop();
    await nc?.drain();
    await nats?.cleanup();
    await c?.close();
  });

  const get = (name: string) => getObject<Queue & KubeObject>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });
  /** Creates (or patches) a Queue, waits for the cache, and reconciles it as the controller would. */
  async function reconciled(name: string, spec: QueueSpec, patch = false): Promise<void> {
    if (patch) await mergePatch(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name }, { spec }, "test");
    else await createObject<Queue & KubeObject>(c.kc, CELERIAC_TYPES.Queue, { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name, namespace: NS }, spec }, "test");
    const live = await get(name);
    await eventually(() => queues.get(NS, name)?.metadata.resourceVersion === live.metadata.resourceVersion, 5000, `cache of ${name}`);
    await rec.reconcile({ namespace: NS, name }, ctx);
  }
  /** The last task message published on the queue's work stream. */
  async function lastMessage(queue: string): Promise<TaskMessage> {
    const names = queueNames(NS, queue);
    const sm = await jsm.streams.getMessage(names.stream, { last_by_subj: names.taskSubject });
    const p = parseTaskMessage(sm!.data);
    assert.ok(p.ok, JSON.stringify(p));
    return p.message;
  }

  it("gives an enqueue without options the Queue's timeout and retry policy, not the built-in 3600 s and 3 attempts", async () => {
    const name = uniqueQueue("thumbs");
    await reconciled(name, { timeoutSeconds: 120, retry: { maxAttempts: 4, backoff: { initialSeconds: 2 } } });
    await client.enqueue("images.resize", [1], {}, { queue: name });
    const m = await lastMessage(name);
    assert.equal(m.timeoutSeconds, 120);
    assert.deepEqual(m.retry, { maxAttempts: 4, backoff: { initialSeconds: 2, factor: 2, maxSeconds: 600, jitter: true } });
  });

  it("keeps what the caller set, field by field", async () => {
    const name = uniqueQueue("thumbs");
    await reconciled(name, { timeoutSeconds: 120, retry: { maxAttempts: 4, backoff: { initialSeconds: 2 } } });
    await client.enqueue("images.resize", [1], {}, { queue: name, timeoutSeconds: 5, retry: { maxAttempts: 1 } });
    const m = await lastMessage(name);
    assert.equal(m.timeoutSeconds, 5);
    assert.deepEqual(m.retry, { maxAttempts: 1, backoff: { initialSeconds: 2, factor: 2, maxSeconds: 600, jitter: true } });
  });

  it("publishes the settings as versioned JSON under queue.settings, and rewrites them when the Queue changes", async () => {
    const name = uniqueQueue("thumbs");
    await reconciled(name, { timeoutSeconds: 120, retry: { maxAttempts: 4 } });
    const kv = await new Kvm(js).open(queueNames(NS, name).resultsBucket);
    const first = await kv.get(QUEUE_SETTINGS_KEY);
    assert.deepEqual(first?.json(), {
      v: 1, namespace: NS, queue: name, generation: 1, timeoutSeconds: 120,
      retry: { maxAttempts: 4, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 600, jitter: true } },
    });
    await rec.reconcile({ namespace: NS, name }, ctx);
    assert.equal((await kv.get(QUEUE_SETTINGS_KEY))?.revision, first?.revision, "a second reconcile writes nothing");

    await client.enqueue("images.resize", [], {}, { queue: name });
    await reconciled(name, { timeoutSeconds: 30 }, true);
    assert.equal((await kv.get(QUEUE_SETTINGS_KEY))?.json<{ timeoutSeconds: number }>().timeoutSeconds, 30);
    // the client re-reads within its refresh interval (200 ms here), in the background
    await waitFor("the new timeout on enqueued tasks", async () => {
      await client.enqueue("images.resize", [], {}, { queue: name });
      return (await lastMessage(name)).timeoutSeconds === 30;
    }, 5000, 100);
  });

  it("keeps the built-in defaults on a standalone queue (no settings key)", async () => {
    const name = uniqueQueue("alone");
    await ensureQueueResources(jsm, queueNames(NS, name), queueSettings({ storage: "memory" }));
    await client.enqueue("images.resize", [], {}, { queue: name });
    const m = await lastMessage(name);
    assert.equal(m.timeoutSeconds, 3600);
    assert.equal(m.retry.maxAttempts, 3);
  });
});
