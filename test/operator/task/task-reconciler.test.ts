import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { FIELD_MANAGERS, FINALIZERS, PUBLISH_INTENT_ANNOTATION } from "../../../api/constants.js";
import type { TaskMessage, TaskRecord } from "../../../api/message.js";
import { PURGED_ERROR } from "../../../api/queue-ops.js";
import { CELERIAC_TYPES, type Queue, type Task } from "../../../api/objects.js";
import { BUILTIN_TYPES, createObject, deleteObject, getObject, isNotFound, mergePatch, patchStatus, setFinalizer } from "../../../kube/k8s-client.js";
import { isTerminal, type ReconcileResult } from "../../../operator/runtime/index.js";
import { TaskReconciler, blindRepublishMs, publishRetryDelayMs, type TaskPublisher } from "../../../operator/task/task-reconciler.js";
import { startCluster, taskObject, type TestCluster } from "../runtime/cluster.js";

const ctx = { log: pino({ level: "silent" }), reconcileID: "test", controller: "task" };
const NS = "tasks-unit";

/** A stand-in for the queue's streams: messages by id (Nats-Msg-Id dedupe) and revoked ids. */
class FakeStreams implements TaskPublisher {
  readonly messages = new Map<string, TaskMessage>();
  readonly revoked = new Set<string>();
  /** Publish calls that reached the server. */
  publishes = 0;
  /** While set, every publish fails with this error (NATS down). */
  down: Error | undefined;
  publish(msg: TaskMessage): Promise<void> {
    if (this.down) return Promise.reject(this.down);
    this.publishes++;
    if (!this.messages.has(msg.id)) this.messages.set(msg.id, msg);
    return Promise.resolve();
  }
  isStored(msg: TaskMessage): Promise<boolean> {
    if (this.down) return Promise.reject(this.down);
    return Promise.resolve(this.messages.has(msg.id));
  }
  revoke(_namespace: string, _queue: string, id: string): Promise<void> {
    this.revoked.add(id);
    return Promise.resolve();
  }
  claimUnique(): Promise<{ outcome: "claimed" }> {
    return Promise.resolve({ outcome: "claimed" });
  }
  confirmUnique(): Promise<void> {
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
  function world(streams = new FakeStreams(), clock: () => Date = () => now): { streams: FakeStreams; events: string[]; reconciler: TaskReconciler; reconcile(name: string, cached?: Task): Promise<ReconcileResult> } {
    const events: string[] = [];
    let cachedTask: Task | undefined;
    const cache = new Map<string, Queue>();
    const rec = new TaskReconciler({
      kc: c.kc,
      getTask: () => cachedTask,
      getQueue: (_ns, name) => cache.get(name),
      publisher: streams,
      events: { event: (_o, type, reason) => void events.push(`${type}/${reason}`) },
      now: clock,
      random: () => 0.5,
    });
    return {
      streams,
      events,
      reconciler: rec,
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

  it("adds its finalizer, then publishes once and writes Queued after the PubAck; reconciling again changes nothing", async () => {
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

  it("writes the finalizer and the publish intent in one write before it publishes, then Queued: two writes in all", async () => {
    const w = world();
    const created = await create("two-writes");
    await w.reconcile("two-writes");
    const queued = await get("two-writes");
    assert.equal(Number(queued.metadata.resourceVersion) - Number(created.metadata.resourceVersion), 2, "one metadata patch, one status write");
    assert.deepEqual(queued.metadata.finalizers, [FINALIZERS.task]);
    assert.ok(queued.metadata.annotations?.[PUBLISH_INTENT_ANNOTATION]);
    assert.equal(queued.status?.phase, "Queued");
    assert.equal(w.streams.publishes, 1);
    assert.deepEqual(w.events, [], "no Event per queued Task: the Accepted condition says it");
  });

  it("keeps the finalizer of a finished Task until it is deleted, then lets it go without revoking", async () => {
    const w = world();
    await create("finished");
    await w.reconcile("finished");
    await patchStatus(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "finished" }, { phase: "Succeeded", completionTime: now.toISOString() }, FIELD_MANAGERS.worker);
    const done = await get("finished");
    await w.reconcile("finished");
    assert.equal((await get("finished")).metadata.resourceVersion, done.metadata.resourceVersion, "no write when a Task finishes");
    await deleteObject(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "finished" });
    await w.reconcile("finished");
    await assert.rejects(get("finished"), (err: unknown) => isNotFound(err));
    assert.equal(w.streams.revoked.size, 0, "a finished task is not revoked");
  });

  it("puts no finalizer on a Task waiting for its Queue, so deleting it is immediate", async () => {
    const w = world();
    await create("waits", { queue: "absent" });
    await w.reconcile("waits");
    assert.equal((await get("waits")).metadata.finalizers, undefined);
    await deleteObject(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name: "waits" });
    await assert.rejects(get("waits"), (err: unknown) => isNotFound(err));
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
    const cached = await get("stale"); // as the cache had it before a worker's write

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
    // checked before the finalizer: nothing is published, so the Task never needs one
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
  describe("when NATS is unavailable", () => {
    it("keeps the Task Pending with Accepted=False NatsUnavailable and the error, requeued with back-off, never Queued", async () => {
      const w = world();
      w.streams.down = new Error("not connected to NATS at 127.0.0.1:4222 (reconnecting)");
      await create("nats-down");
      await w.reconcile("nats-down"); // finalizer and intent, then the publish fails
      const r1 = await w.reconcile("nats-down"); // before the back-off is due: nothing attempted
      assert.deepEqual(r1, { requeueAfterMs: 500 }, "first back-off");
      const pending = await get("nats-down");
      assert.equal(pending.status?.phase, "Pending");
      const accepted = pending.status?.conditions?.find((x) => x.type === "Accepted");
      assert.equal(accepted?.status, "False");
      assert.equal(accepted?.reason, "NatsUnavailable");
      assert.match(accepted?.message ?? "", /not connected to NATS/);
      assert.ok(pending.metadata.annotations?.[PUBLISH_INTENT_ANNOTATION], "publish intent recorded");
      assert.deepEqual(w.events, ["Warning/NatsUnavailable"]);
      // the next reconcile before the back-off is due attempts nothing and writes nothing
      const r2 = await w.reconcile("nats-down");
      assert.ok(r2 && typeof r2.requeueAfterMs === "number" && r2.requeueAfterMs > 0);
      assert.equal((await get("nats-down")).metadata.resourceVersion, pending.metadata.resourceVersion);

      w.streams.down = undefined;
      w.reconciler.resetBackoff();
      assert.deepEqual(await w.reconcile("nats-down"), {});
      const queued = await get("nats-down");
      assert.equal(queued.status?.phase, "Queued");
      assert.equal(queued.status?.conditions?.find((x) => x.type === "Accepted")?.reason, "Queued");
      assert.equal(w.streams.publishes, 1);
    });

    it("doubles the back-off per failure up to 30 s, with jitter", () => {
      assert.deepEqual([1, 2, 3, 7, 20].map((n) => publishRetryDelayMs(n, 0.5)), [500, 1000, 2000, 30_000, 30_000]);
      assert.equal(publishRetryDelayMs(1, 0), 400);
      assert.equal(blindRepublishMs({ spec: { stream: { duplicateWindow: "2m" } } } as Queue), 60_000);
    });
  });

  describe("when an operator died between the publish and the status write", () => {
    /** A Task with the finalizer and a publish intent `ageMs` old, as a dead operator left it. */
    async function leftBehind(name: string, ageMs: number): Promise<Task> {
      const created = await create(name);
      await setFinalizer(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name }, created, FINALIZERS.task, true, FIELD_MANAGERS.operator);
      return mergePatch<Task>(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name }, { metadata: { annotations: { [PUBLISH_INTENT_ANNOTATION]: new Date(now.getTime() - ageMs).toISOString() } } }, FIELD_MANAGERS.operator);
    }

    it("beyond the duplicate window, finds the message in NATS and confirms Queued without publishing again", async () => {
      const t = await leftBehind("died-published", 10 * 60_000);
      const streams = new FakeStreams();
      streams.messages.set(t.metadata.uid!, {} as TaskMessage); // the dead operator's publish landed
      const w = world(streams);
      assert.deepEqual(await w.reconcile("died-published"), {});
      assert.equal((await get("died-published")).status?.phase, "Queued");
      assert.equal(streams.publishes, 0, "not published again");
    });

    it("beyond the duplicate window, publishes a task NATS does not hold", async () => {
      const t = await leftBehind("died-unpublished", 10 * 60_000);
      const w = world();
      await w.reconcile("died-unpublished");
      assert.equal((await get("died-unpublished")).status?.phase, "Queued");
      assert.equal(w.streams.publishes, 1);
      assert.equal(w.streams.messages.get(t.metadata.uid!)?.createdAt, new Date(now.getTime() - 10 * 60_000).toISOString(), "the message built at the intent time");
    });

    it("within the duplicate window, publishes again (JetStream drops the repeat)", async () => {
      await leftBehind("died-recent", 5_000);
      const w = world();
      await w.reconcile("died-recent");
      assert.equal((await get("died-recent")).status?.phase, "Queued");
      assert.equal(w.streams.publishes, 1);
    });
  });

  describe("when the Queue of a Queued Task is deleted", () => {
    it("marks the Task Accepted=False QueueDeleted with a Warning Event naming the Queue, once", async () => {
      const w = world();
      await createObject<Queue>(c.kc, CELERIAC_TYPES.Queue, { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "doomed", namespace: NS }, spec: {} }, "test");
      await create("orphan", { queue: "doomed" });
      const queues = new Map<string, Queue>();
      queues.set("doomed", await getObject<Queue>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: "doomed" }));
      const events: string[] = [];
      const rec = new TaskReconciler({
        kc: c.kc, getTask: () => cached, getQueue: (_ns, n) => queues.get(n), publisher: w.streams, now: () => now,
        events: { event: (_o, type, reason, message) => void events.push(`${type}/${reason}: ${message}`) },
      });
      let cached: Task | undefined;
      const run = async () => {
        cached = await get("orphan");
        return rec.reconcile({ namespace: NS, name: "orphan" }, ctx);
      };
      await run();
      await run();
      assert.equal((await get("orphan")).status?.phase, "Queued");
      queues.clear();
      await deleteObject(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: "doomed" });
      await run();
      await run();
      const orphan = await get("orphan");
      assert.equal(orphan.status?.phase, "Queued");
      const accepted = orphan.status?.conditions?.find((x) => x.type === "Accepted");
      assert.equal(accepted?.reason, "QueueDeleted");
      assert.match(accepted?.message ?? "", /queue "doomed" was deleted/);
      assert.deepEqual(events.filter((e) => e.startsWith("Warning/")), [`Warning/QueueDeleted: ${accepted?.message}`]);
    });
  });

  describe("when the queue of a Queued Task is purged (a purge notice, a Cancelled record)", () => {
    /** A reconciler with purge notices at `purgeAt` (undefined: none) and records by task id. */
    function purgeWorld(notice: () => number | undefined) {
      const w = world();
      const records = new Map<string, TaskRecord>();
      const reads: string[] = [];
      const watched: string[] = [];
      const streams = Object.assign(w.streams, {
        record: (_ns: string, _q: string, id: string) => {
          reads.push(id);
          return Promise.resolve(records.get(id));
        },
      });
      const events: string[] = [];
      let cached: Task | undefined;
      const rec = new TaskReconciler({
        kc: c.kc, getTask: () => cached, publisher: streams, now: () => now,
        getQueue: () => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "default", namespace: NS }, spec: {} }) as Queue,
        events: { event: (_o, type, reason, message) => void events.push(`${type}/${reason}: ${message}`) },
        purges: { watch: (ns, q) => void watched.push(`${ns}/${q}`), lastPurgeMs: () => notice() },
      });
      const run = async (name: string) => {
        cached = await get(name);
        return rec.reconcile({ namespace: NS, name }, ctx);
      };
      return { records, reads, watched, events, run };
    }

    it("ends the Task Cancelled: Succeeded=False reason Purged, the record's error and completionTime, Accepted and queuedTime kept, a Normal Event; once", async () => {
      let purgeAt: number | undefined = undefined;
      const p = purgeWorld(() => purgeAt);
      await create("purged");
      await p.run("purged");
      await p.run("purged");
      const queued = await get("purged");
      assert.equal(queued.status?.phase, "Queued");
      assert.deepEqual(p.reads, [], "no purge notice: the record is not read");
      assert.deepEqual(p.watched, [`${NS}/default`], "the queue's purge notice is watched");
      purgeAt = Date.now();
      p.records.set(queued.metadata.uid!, {
        id: queued.metadata.uid!, task: "demo.add", queue: "default", namespace: NS, origin: { kind: "Task", namespace: NS, name: "purged", uid: queued.metadata.uid },
        status: { phase: "Cancelled", completionTime: "2026-01-01T00:00:01.000Z", error: { ...PURGED_ERROR } }, updatedAt: "2026-01-01T00:00:01.000Z",
      });
      await p.run("purged");
      const t = await get("purged");
      assert.equal(t.status?.phase, "Cancelled");
      assert.equal(t.status?.completionTime, "2026-01-01T00:00:01.000Z");
      assert.deepEqual(t.status?.error, PURGED_ERROR);
      assert.equal(t.status?.queuedTime, queued.status?.queuedTime, "queuedTime kept");
      const succeeded = t.status?.conditions?.find((x) => x.type === "Succeeded");
      assert.deepEqual([succeeded?.status, succeeded?.reason], ["False", "Purged"]);
      assert.match(succeeded?.message ?? "", /removed from queue "default" by a queue purge/);
      const accepted = t.status?.conditions?.find((x) => x.type === "Accepted");
      assert.deepEqual([accepted?.status, accepted?.reason], ["True", "Queued"]);
      assert.deepEqual(p.events, [`Normal/Cancelled: Cancelled: ${succeeded?.message}`]);
      await p.run("purged");
      assert.equal((await get("purged")).metadata.resourceVersion, t.metadata.resourceVersion, "a finished Task is not written again");
      assert.equal(p.events.length, 1);
    });

    it("leaves a Task alone when its record is not Cancelled (a worker took it) or the purge came long before the Task", async () => {
      let purgeAt: number | undefined = Date.now();
      const p = purgeWorld(() => purgeAt);
      await create("taken");
      await p.run("taken");
      await p.run("taken");
      const taken = await get("taken");
      assert.equal(taken.status?.phase, "Queued", "no record: still Queued");
      p.records.set(taken.metadata.uid!, { id: taken.metadata.uid!, task: "demo.add", queue: "default", namespace: NS, origin: { kind: "Task" }, status: { phase: "Running" }, updatedAt: "x" });
      await p.run("taken");
      assert.equal((await get("taken")).status?.phase, "Queued", "record Running: the worker writes the Task");
      const reads = p.reads.length;
      purgeAt = Date.parse(taken.metadata.creationTimestamp!) - 10 * 60_000;
      await p.run("taken");
      assert.equal(p.reads.length, reads, "a purge 10 min before the Task was created: its record is not read");
      assert.deepEqual(p.events, []);
    });

    it("says Revoked when the Cancelled record is a revoke's (then the purge removed its message)", async () => {
      const p = purgeWorld(() => Date.now());
      await create("revoked-then-purged");
      await p.run("revoked-then-purged");
      await p.run("revoked-then-purged");
      const t0 = await get("revoked-then-purged");
      p.records.set(t0.metadata.uid!, { id: t0.metadata.uid!, task: "demo.add", queue: "default", namespace: NS, origin: { kind: "Task" }, status: { phase: "Cancelled", error: { type: "CancelledError", message: "revoked before it started" } }, updatedAt: "x" });
      await p.run("revoked-then-purged");
      const t = await get("revoked-then-purged");
      assert.equal(t.status?.phase, "Cancelled");
      assert.equal(t.status?.conditions?.find((x) => x.type === "Succeeded")?.reason, "Revoked");
    });
  });
});
