import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { FIELD_MANAGERS, FINALIZERS } from "../../../api/constants.js";
import type { TaskMessage } from "../../../api/message.js";
import { CELERIAC_TYPES, type Queue, type Task } from "../../../api/objects.js";
import { BUILTIN_TYPES, createObject, deleteObject, getObject, isNotFound, patchStatus } from "../../../kube/k8s-client.js";
import { isTerminal, type ReconcileResult } from "../../../operator/runtime/index.js";
import { TaskReconciler, type TaskPublisher } from "../../../operator/task/task-reconciler.js";
import { startCluster, taskObject, type TestCluster } from "../runtime/cluster.js";

const ctx = { log: pino({ level: "silent" }), reconcileID: "test", controller: "task" };
const NS = "tasks-unit";

/** A stand-in for the queue's streams: messages by id (Nats-Msg-Id dedupe) and revoked ids. */
class FakeStreams implements TaskPublisher {
  readonly messages = new Map<string, TaskMessage>();
  readonly revoked = new Set<string>();
  publish(msg: TaskMessage): Promise<void> {
    if (!this.messages.has(msg.id)) this.messages.set(msg.id, msg);
    return Promise.resolve();
  }
  revoke(_namespace: string, _queue: string, id: string): Promise<void> {
    this.revoked.add(id);
    return Promise.resolve();
  }
}

describe("when the Task reconciler runs against the in-memory API server", () => {
  let c: TestCluster;
  const now = new Date();
  before(async () => {
    c = await startCluster(["queues", "tasks"]);
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: NS } }, "test");
    await createObject<Queue>(c.kc, CELERIAC_TYPES.Queue, { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "default", namespace: NS }, spec: { timeoutSeconds: 60 } }, "test");
  });
  after(() => c?.close());

  const get = (name: string) => getObject<Task>(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name });
  /** A reconciler whose caches are the API server itself (always current). */
  function world(): { streams: FakeStreams; events: string[]; reconcile(name: string, cached?: Task): Promise<ReconcileResult> } {
    const streams = new FakeStreams();
    const events: string[] = [];
    let cachedTask: Task | undefined;
    const cache = new Map<string, Queue>();
    const rec = new TaskReconciler({
      kc: c.kc,
      getTask: () => cachedTask,
      getQueue: (_ns, name) => cache.get(name),
      publisher: streams,
      events: { event: (_o, type, reason) => void events.push(`${type}/${reason}`) },
      now: () => now,
    });
    return {
      streams,
      events,
      async reconcile(name, cached) {
        cachedTask = cached ?? (await get(name).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err))));
        cache.clear();
        try {
          cache.set("default", await getObject<Queue>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: "default" }));
        } catch {
          // no queue
        }
        return rec.reconcile({ namespace: NS, name }, ctx);
      },
    };
  }
  const create = (name: string, spec: Record<string, unknown> = {}) =>
    createObject<Task>(c.kc, CELERIAC_TYPES.Task, taskObject(NS, name, { spec: { queue: "default", task: "demo.add", args: [1, 2], ...spec } }) as Task, "test");

  it("adds its finalizer, then writes Queued and publishes once; reconciling again changes nothing", async () => {
    const w = world();
    const created = await create("accept");
    await w.reconcile("accept");
    assert.deepEqual((await get("accept")).metadata.finalizers, [FINALIZERS.task]);
    await w.reconcile("accept");
    const queued = await get("accept");
    assert.equal(queued.status?.phase, "Queued");
    assert.equal(queued.status?.queuedTime, now.toISOString());
    const accepted = queued.status?.conditions?.find((x) => x.type === "Accepted");
    assert.equal(accepted?.status, "True");
    assert.equal(accepted?.reason, "Queued");
    assert.deepEqual([...w.streams.messages.keys()], [created.metadata.uid]);
    const msg = w.streams.messages.get(created.metadata.uid!)!;
    assert.equal(msg.timeoutSeconds, 60, "the Queue's timeout is the default");
    assert.deepEqual(msg.origin, { kind: "Task", namespace: NS, name: "accept", uid: created.metadata.uid });
    const managed = (queued.metadata.managedFields ?? []) as Array<{ manager: string; operation: string; subresource?: string }>;
    assert.ok(managed.some((m) => m.manager === FIELD_MANAGERS.operator && m.operation === "Apply" && m.subresource === "status"), "status written by server-side apply");

    await w.reconcile("accept");
    const again = await get("accept");
    assert.equal(again.metadata.resourceVersion, queued.metadata.resourceVersion, "no write");
    assert.equal(w.streams.messages.size, 1, "no second publish");
  });

  it("leaves a worker's status alone once the Task runs", async () => {
    const w = world();
    await create("running");
    await w.reconcile("running");
    await w.reconcile("running");
    const queued = await get("running");
    const running = {
      phase: "Running",
      attempts: 1,
      conditions: [...(queued.status?.conditions ?? []), { type: "Running", status: "True", reason: "Started", message: "attempt 1", lastTransitionTime: now.toISOString().replace(/\.\d+Z$/, "Z") }],
    };
    await patchStatus(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "running" }, running, FIELD_MANAGERS.worker);
    const before = await get("running");
    await w.reconcile("running");
    await w.reconcile("running");
    const after = await get("running");
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal(after.status?.phase, "Running");
    assert.deepEqual(after.status?.conditions?.map((x) => x.type), ["Accepted", "Running"]);
  });

  it("does not overwrite a newer status when it reconciles a stale cached Task (requeues)", async () => {
    const w = world();
    await create("stale");
    await w.reconcile("stale"); // finalizer
    const cached = await get("stale");
    await patchStatus(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "stale" }, { phase: "Running", attempts: 1 }, FIELD_MANAGERS.worker);
    assert.deepEqual(await w.reconcile("stale", cached), { requeueAfterMs: 0 });
    assert.equal((await get("stale")).status?.phase, "Running");
    assert.equal(w.streams.messages.size, 0);
  });

  it("waits in Pending (QueueNotFound) for a missing Queue, recording it once", async () => {
    const w = world();
    await create("no-queue", { queue: "missing" });
    await w.reconcile("no-queue");
    await w.reconcile("no-queue");
    const first = await get("no-queue");
    assert.equal(first.status?.phase, "Pending");
    assert.equal(first.status?.conditions?.[0]?.reason, "QueueNotFound");
    await w.reconcile("no-queue");
    const second = await get("no-queue");
    assert.equal(second.metadata.resourceVersion, first.metadata.resourceVersion);
    assert.deepEqual(w.events, ["Warning/QueueNotFound"]);
    assert.equal(w.streams.messages.size, 0);
  });

  it("fails a Task whose args are too large with a TerminalError, once", async () => {
    const w = world();
    await create("too-large", { args: ["x".repeat(300_000)] });
    await w.reconcile("too-large");
    await assert.rejects(w.reconcile("too-large"), (err: unknown) => isTerminal(err) && (err as { reason?: string }).reason === "ArgsTooLarge");
    const failed = await get("too-large");
    assert.equal(failed.status?.phase, "Failed");
    assert.equal(failed.status?.error?.type, "ArgsTooLarge");
    assert.match(failed.status?.error?.message ?? "", /at most 262144/);
    await w.reconcile("too-large"); // Failed is terminal: the finalizer goes, nothing is thrown
    const done = await get("too-large");
    assert.equal(done.metadata.finalizers, undefined);
    assert.equal(done.status?.phase, "Failed");
    assert.equal(w.streams.messages.size, 0);
  });

  it("revokes a queued Task when it is deleted, then lets it go", async () => {
    const w = world();
    const created = await create("deleted");
    await w.reconcile("deleted");
    await w.reconcile("deleted");
    await deleteObject(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "deleted" });
    assert.ok((await get("deleted")).metadata.deletionTimestamp, "held by the finalizer");
    await w.reconcile("deleted");
    await assert.rejects(get("deleted"), (err: unknown) => isNotFound(err));
    assert.deepEqual([...w.streams.revoked], [created.metadata.uid]);
    assert.deepEqual(await w.reconcile("deleted"), {});
  });

  it("deletes a finished Task after ttlSecondsAfterFinished", async () => {
    const w = world();
    await create("ttl", { ttlSecondsAfterFinished: 0 });
    await w.reconcile("ttl");
    await patchStatus(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "ttl" }, { phase: "Succeeded", completionTime: new Date(now.getTime() - 1000).toISOString() }, FIELD_MANAGERS.worker);
    await w.reconcile("ttl");
    await assert.rejects(get("ttl"), (err: unknown) => isNotFound(err));
  });
});
