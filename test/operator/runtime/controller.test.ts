import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { Registry } from "prom-client";
import {
  BUILTIN_TYPES, Controller, EventRecorder, Informer, TerminalError, applyChild, controllerRef, createObject, getObject,
  keyString, listObjects, mergePatch, ownerKeys, parseKey, patchStatus,
} from "../../../operator/runtime/index.js";
import type { KubeObject, ReconcileKey } from "../../../operator/runtime/index.js";
import { QUEUES, TASKS, eventually, queueObject, startCluster, taskObject, type TestCluster } from "./cluster.js";

const silent = pino({ level: "silent" });

describe("when keys are built and parsed", () => {
  const table: Array<[ReconcileKey, string]> = [
    [{ namespace: "default", name: "x" }, "default/x"],
    [{ namespace: "", name: "cluster-thing" }, "cluster-thing"],
  ];
  for (const [k, s] of table) {
    it(`round-trips ${s}`, () => {
      assert.equal(keyString(k), s);
      assert.deepEqual(parseKey(s), k);
    });
  }
  it("maps a child to its controller owner of the right kind only", () => {
    const child: KubeObject = {
      metadata: {
        namespace: "ns",
        name: "c",
        ownerReferences: [
          { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", name: "q", uid: "1", controller: true },
          { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", name: "not-controller", uid: "2" },
          { apiVersion: "v1", kind: "Other", name: "o", uid: "3", controller: true },
        ],
      },
    };
    assert.deepEqual(ownerKeys(child, "Queue"), [{ namespace: "ns", name: "q" }]);
  });
});

async function metricValue(reg: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await reg.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe("when a controller runs against the in-memory API server", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks", "queues"]);
    for (const ns of ["ctl-a", "ctl-b", "ctl-c", "ctl-d", "ctl-e"]) {
      await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: ns } }, "test");
    }
  });
  after(async () => {
    await c.close();
  });

  it("reconciles with the current object, writes status, and honours requeueAfter", async () => {
    const ns = "ctl-a";
    const reg = new Registry();
    const calls: Array<{ key: string; concurrency?: number; gen?: number }> = [];
    const informer = new Informer({ kc: c.kc, type: QUEUES, namespace: ns, logger: silent });
    const ctl = new Controller({
      name: "task-a",
      for: informer,
      logger: silent,
      registry: reg,
      workers: 2,
      async reconcile(key, ctx) {
        assert.ok(ctx.reconcileID.length > 0);
        const obj = await getObject<KubeObject & { spec: { concurrency?: number } }>(c.kc, { ...QUEUES, ...key });
        calls.push({ key: keyString(key), concurrency: obj.spec.concurrency, gen: obj.metadata?.generation });
        await patchStatus(c.kc, { ...QUEUES, ...key }, { observedGeneration: obj.metadata?.generation }, "celeriac-operator");
        return key.name === "periodic" ? { requeueAfterMs: 100 } : undefined;
      },
    });
    await createObject(c.kc, QUEUES, queueObject(ns, "one"), "test");
    await ctl.start();
    try {
      assert.equal(ctl.hasSynced(), true);
      await eventually(() => calls.some((x) => x.key === `${ns}/one`), 5000, "first reconcile");
      // A change is reconciled with the new spec (level-triggered: reads the current object).
      await mergePatch(c.kc, { ...QUEUES, namespace: ns, name: "one" }, { spec: { concurrency: 7 } }, "test");
      await eventually(() => calls.some((x) => x.key === `${ns}/one` && x.concurrency === 7 && x.gen === 2), 5000, "reconcile of the change");
      const live = await getObject<KubeObject & { status?: { observedGeneration?: number } }>(c.kc, { ...QUEUES, namespace: ns, name: "one" });
      await eventually(async () => {
        const l = await getObject<KubeObject & { status?: { observedGeneration?: number } }>(c.kc, { ...QUEUES, namespace: ns, name: "one" });
        return l.status?.observedGeneration === 2;
      }, 5000, "status written");
      assert.equal(live.metadata?.generation, 2, "status writes do not bump generation");
      // requeueAfter: the periodic one is reconciled again and again without changes.
      await createObject(c.kc, QUEUES, queueObject(ns, "periodic"), "test");
      await eventually(() => calls.filter((x) => x.key === `${ns}/periodic`).length >= 4, 5000, "periodic requeues");
      assert.ok((await metricValue(reg, "celeriac_reconcile_total", { controller: "task-a", result: "requeue" })) >= 3);
      assert.ok((await metricValue(reg, "celeriac_reconcile_total", { controller: "task-a", result: "success" })) >= 1);
      const text = await reg.metrics();
      assert.match(text, /celeriac_reconcile_time_seconds_count\{controller="task-a"\} \d+/);
      assert.match(text, /celeriac_workqueue_depth\{name="task-a"\} \d+/);
    } finally {
      await ctl.stop();
    }
  });

  it("does not retry a TerminalError and records a Warning event", async () => {
    const ns = "ctl-b";
    const reg = new Registry();
    let calls = 0;
    const informer = new Informer({ kc: c.kc, type: TASKS, namespace: ns, logger: silent });
    const ctl = new Controller({
      name: "task-b",
      for: informer,
      logger: silent,
      registry: reg,
      recorder: new EventRecorder({ kc: c.kc, logger: silent }),
      queue: { backoff: { baseDelayMs: 5 } },
      async reconcile() {
        calls++;
        throw new TerminalError("args exceed 256 KiB", { reason: "ArgsTooLarge" });
      },
    });
    await createObject(c.kc, TASKS, taskObject(ns, "bad"), "test");
    await ctl.start();
    try {
      await eventually(() => calls === 1, 5000, "one reconcile");
      const events = await eventually(async () => {
        const l = await listObjects(c.kc, BUILTIN_TYPES.Event, { namespace: ns });
        return l.items.length > 0 ? l.items : undefined;
      }, 5000, "warning event");
      const ev = (events ?? [])[0] as KubeObject & Record<string, unknown>;
      assert.equal(ev.type, "Warning");
      assert.equal(ev.reason, "ArgsTooLarge");
      assert.equal((ev.involvedObject as { name: string }).name, "bad");
      assert.equal((ev.source as { component: string }).component, "celeriac-operator");
      // Give a retry every chance to happen (back-off starts at 5 ms), then check none did.
      await eventually(async () => (await metricValue(reg, "celeriac_reconcile_total", { controller: "task-b", result: "terminal" })) === 1, 2000);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(calls, 1, "terminal errors are not retried");
      assert.equal(ctl.queue.numRequeues(`${ns}/bad`), 0);
    } finally {
      await ctl.stop();
    }
  });

  it("records the same terminal failure once, however often a resync reconciles it again", async () => {
    const ns = "ctl-f";
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: ns } }, "test");
    let calls = 0;
    const informer = new Informer({ kc: c.kc, type: TASKS, namespace: ns, logger: silent });
    const ctl = new Controller({
      name: "task-f",
      for: informer,
      logger: silent,
      registry: new Registry(),
      recorder: new EventRecorder({ kc: c.kc, logger: silent }),
      resyncPeriodMs: 20,
      async reconcile() {
        calls++;
        throw new TerminalError("Spec is invalid", { reason: "InvalidSpec" });
      },
    });
    await createObject(c.kc, TASKS, taskObject(ns, "bad"), "test");
    await ctl.start();
    try {
      await eventually(() => calls >= 4, 5000, "resyncs");
      await new Promise((r) => setTimeout(r, 50));
      const events = (await listObjects(c.kc, BUILTIN_TYPES.Event, { namespace: ns })).items as Array<KubeObject & { reason?: string; count?: number }>;
      assert.deepEqual(events.map((e) => [e.reason, e.count]), [["InvalidSpec", 1]]);
    } finally {
      await ctl.stop();
    }
  });

  it("retries other errors with growing back-off until success", async () => {
    const ns = "ctl-c";
    const reg = new Registry();
    const times: number[] = [];
    const informer = new Informer({ kc: c.kc, type: TASKS, namespace: ns, logger: silent });
    const ctl = new Controller({
      name: "task-c",
      for: informer,
      logger: silent,
      registry: reg,
      queue: { backoff: { baseDelayMs: 20 } },
      async reconcile() {
        times.push(Date.now());
        if (times.length < 4) throw new Error("create stream ORDERS", { cause: new Error("nats down") });
      },
    });
    await createObject(c.kc, TASKS, taskObject(ns, "flaky"), "test");
    await ctl.start();
    try {
      await eventually(() => times.length >= 4, 5000, "fourth attempt");
      const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
      // Back-off 20, 40, 80 ms: each gap at least its delay, and growing overall.
      assert.ok((gaps[0] as number) >= 15, `gaps ${gaps}`);
      assert.ok((gaps[1] as number) >= 35, `gaps ${gaps}`);
      assert.ok((gaps[2] as number) >= 75, `gaps ${gaps}`);
      assert.equal(await metricValue(reg, "celeriac_reconcile_total", { controller: "task-c", result: "error" }), 3);
      await eventually(async () => (await metricValue(reg, "celeriac_reconcile_total", { controller: "task-c", result: "success" })) === 1, 2000);
      assert.equal(ctl.queue.numRequeues(`${ns}/flaky`), 0, "forgotten after success");
    } finally {
      await ctl.stop();
    }
  });

  it("enqueues the owner when an owned child changes", async () => {
    const ns = "ctl-d";
    const reconciled: string[] = [];
    const tasks = new Informer({ kc: c.kc, type: TASKS, namespace: ns, logger: silent });
    const deployments = new Informer({ kc: c.kc, type: BUILTIN_TYPES.Deployment, namespace: ns, logger: silent });
    const ctl = new Controller({
      name: "task-d",
      for: tasks,
      owns: [{ informer: deployments, ownerKind: "Task" }],
      logger: silent,
      registry: new Registry(),
      async reconcile(key) {
        reconciled.push(key.name);
      },
    });
    const owner = await createObject(c.kc, TASKS, taskObject(ns, "owner"), "test");
    await ctl.start();
    try {
      await eventually(() => reconciled.includes("owner"), 5000, "owner reconciled");
      const before1 = reconciled.length;
      await applyChild(c.kc, BUILTIN_TYPES.Deployment, {
        metadata: { name: "owner-workers", namespace: ns, ownerReferences: [controllerRef(owner)] },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "w" } },
          template: { metadata: { labels: { app: "w" } }, spec: { containers: [{ name: "w", image: "busybox:1" }] } },
        },
      }, "celeriac-operator");
      await eventually(() => reconciled.length > before1, 5000, "owner enqueued by child event");
      assert.ok(reconciled.slice(before1).every((n) => n === "owner"));
    } finally {
      await ctl.stop();
    }
  });

  it("never runs two reconciles of one key at once with several workers", async () => {
    const ns = "ctl-e";
    let active = 0;
    let overlap = 0;
    let count = 0;
    const informer = new Informer({ kc: c.kc, type: TASKS, namespace: ns, logger: silent });
    const ctl = new Controller({
      name: "task-e",
      for: informer,
      workers: 4,
      logger: silent,
      registry: new Registry(),
      async reconcile() {
        active++;
        if (active > 1) overlap++;
        await new Promise((r) => setTimeout(r, 20));
        active--;
        count++;
      },
    });
    await createObject(c.kc, TASKS, taskObject(ns, "hot"), "test");
    await ctl.start();
    try {
      for (let i = 0; i < 10; i++) {
        await mergePatch(c.kc, { ...TASKS, namespace: ns, name: "hot" }, { metadata: { labels: { i: String(i) } } }, "test");
      }
      await eventually(() => count >= 2 && ctl.queue.len() === 0 && !ctl.queue.isProcessing(`${ns}/hot`), 5000, "settled");
      assert.equal(overlap, 0);
      assert.ok(count < 11, `changes coalesced (${count} reconciles for 11 events)`);
    } finally {
      await ctl.stop();
    }
  });
});
