// The Task reconciler on flow-controlled Queues: it publishes the message `flow` resolved from the
// Queue spec and the Task's spec.priority / spec.concurrencyKey, refuses (phase Failed, terminal) a
// Task whose flow options the Queue cannot honour, and takes the singleton lock of spec.unique
// before publishing (Reject and held: phase Failed, UniqueKeyHeld). Against the in-memory API server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { TaskMessage } from "../../../api/message.js";
import { CELERIAC_TYPES, type Queue, type Task } from "../../../api/objects.js";
import { BUILTIN_TYPES, createObject, getObject, isNotFound } from "../../../kube/k8s-client.js";
import { isTerminal, type ReconcileResult } from "../../../operator/runtime/index.js";
import { TaskReconciler, type TaskPublisher, type UniqueClaim, type UniqueClaimSpec } from "../../../operator/task/task-reconciler.js";
import { startCluster, taskObject, type TestCluster } from "../runtime/cluster.js";

const ctx = { log: pino({ level: "silent" }), reconcileID: "test", controller: "task" };
const NS = "tasks-flow";

/** A stand-in for the queue's streams and its singleton locks (key → holder id). */
class FakeStreams implements TaskPublisher {
  readonly messages = new Map<string, TaskMessage>();
  readonly locks = new Map<string, string>();
  readonly revoked = new Set<string>();
  publish(msg: TaskMessage): Promise<void> {
    if (!this.messages.has(msg.id)) this.messages.set(msg.id, msg);
    return Promise.resolve();
  }
  isStored(msg: TaskMessage): Promise<boolean> {
    return Promise.resolve(this.messages.has(msg.id));
  }
  revoke(_namespace: string, _queue: string, id: string): Promise<void> {
    this.revoked.add(id);
    return Promise.resolve();
  }
  /** Tasks marked published in their lock. */
  readonly confirmed = new Set<string>();
  confirmUnique(msg: TaskMessage): Promise<void> {
    this.confirmed.add(msg.id);
    return Promise.resolve();
  }
  claimUnique(msg: TaskMessage, unique: UniqueClaimSpec): Promise<UniqueClaim> {
    const holder = this.locks.get(unique.key);
    if (holder === undefined || holder === msg.id) {
      this.locks.set(unique.key, msg.id);
      return Promise.resolve({ outcome: "claimed" });
    }
    return Promise.resolve(unique.policy === "Reject" ? { outcome: "rejected", holder } : { outcome: "wait", holder });
  }
}

describe("when the Task reconciler publishes to flow-controlled Queues", () => {
  let c: TestCluster;
  const now = new Date();
  before(async () => {
    c = await startCluster(["queues", "tasks"]);
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: NS } }, "test");
    const queue = (name: string, spec: Record<string, unknown>) =>
      createObject<Queue>(c.kc, CELERIAC_TYPES.Queue, { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name, namespace: NS }, spec } as Queue, "test");
    await queue("plain", {});
    await queue("flow", { priorities: { levels: 3, default: 1 }, concurrencyKeys: { from: "kwargs.tenant", limit: 2 } });
    await queue("rated", { rateLimit: { rate: "10/s" } });
  });
  after(() => c?.close());

  const get = (name: string) => getObject<Task>(c.kc, { ...CELERIAC_TYPES.Task, namespace: NS, name });
  /** A reconciler whose caches are the API server itself. */
  function world(streams = new FakeStreams()): { streams: FakeStreams; events: string[]; reconcile(name: string): Promise<ReconcileResult> } {
    const events: string[] = [];
    let cachedTask: Task | undefined;
    const queues = new Map<string, Queue>();
    const rec = new TaskReconciler({
      kc: c.kc,
      getTask: () => cachedTask,
      getQueue: (_ns, name) => queues.get(name),
      publisher: streams,
      events: { event: (_o, type, reason) => void events.push(`${type}/${reason}`) },
      now: () => now,
      random: () => 0.5,
    });
    return {
      streams,
      events,
      async reconcile(name) {
        cachedTask = await get(name).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
        queues.clear();
        for (const q of ["plain", "flow", "rated"]) queues.set(q, await getObject<Queue>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: q }));
        return rec.reconcile({ namespace: NS, name }, ctx);
      },
    };
  }
  const create = (name: string, spec: Record<string, unknown>) =>
    createObject<Task>(c.kc, CELERIAC_TYPES.Task, taskObject(NS, name, { spec: { task: "demo.add", args: [1, 2], ...spec } }) as Task, "test");

  it("publishes the Task's priority and its key from the Queue's concurrencyKeys.from", async () => {
    const w = world();
    const t = await create("prio", { queue: "flow", priority: 2, kwargs: { tenant: "acme" } });
    await w.reconcile("prio");
    assert.equal((await get("prio")).status?.phase, "Queued");
    assert.deepEqual(w.streams.messages.get(t.metadata.uid!)?.flow, { priority: 2, key: "acme" });
  });

  it("gives a Task without flow options the Queue's default priority, and its explicit key over kwargs", async () => {
    const w = world();
    const a = await create("default-prio", { queue: "flow" });
    const b = await create("explicit-key", { queue: "flow", concurrencyKey: "tenant-b", kwargs: { tenant: "acme" } });
    await w.reconcile("default-prio");
    await w.reconcile("explicit-key");
    assert.deepEqual(w.streams.messages.get(a.metadata.uid!)?.flow, { priority: 1 });
    assert.deepEqual(w.streams.messages.get(b.metadata.uid!)?.flow, { priority: 1, key: "tenant-b" });
  });

  it("sets flow priority 0 on a rate-limited Queue without priorities, and no flow on a plain Queue", async () => {
    const w = world();
    const r = await create("rated-task", { queue: "rated" });
    const p = await create("plain-task", { queue: "plain" });
    await w.reconcile("rated-task");
    await w.reconcile("plain-task");
    assert.deepEqual(w.streams.messages.get(r.metadata.uid!)?.flow, { priority: 0 });
    const plain = w.streams.messages.get(p.metadata.uid!);
    assert.ok(plain, "published");
    assert.equal("flow" in plain, false, "no flow field on a queue without flow control");
  });

  const refused: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ["a priority at or above the Queue's levels", "prio-too-high", { queue: "flow", priority: 3 }, /^spec\.priority: 3 is not a level of queue "flow": use an integer 0 … 2/],
    ["a priority on a Queue without flow control", "prio-plain", { queue: "plain", priority: 1 }, /^spec\.priority: queue "plain" has no spec\.priorities: add priorities to the Queue/],
    ["a concurrency key on a Queue without concurrencyKeys", "key-rated", { queue: "rated", concurrencyKey: "acme" }, /^spec\.concurrencyKey: queue "rated" has no spec\.concurrencyKeys: add concurrencyKeys \(limit\)/],
  ];
  for (const [what, name, spec, message] of refused) {
    it(`fails a Task with ${what}: phase Failed, InvalidFlowOptions, terminal, nothing published`, async () => {
      const w = world();
      await create(name, spec);
      await assert.rejects(w.reconcile(name), (err: unknown) => isTerminal(err) && (err as { reason?: string }).reason === "InvalidFlowOptions" && message.test((err as Error).message));
      const failed = await get(name);
      assert.equal(failed.status?.phase, "Failed");
      const accepted = failed.status?.conditions?.find((x) => x.type === "Accepted");
      assert.deepEqual([accepted?.status, accepted?.reason], ["False", "InvalidFlowOptions"]);
      assert.match(accepted?.message ?? "", message);
      assert.equal(failed.status?.error?.type, "InvalidFlowOptions");
      assert.equal(failed.metadata.finalizers, undefined, "refused before the finalizer: nothing to revoke");
      await w.reconcile(name); // Failed is terminal: nothing is thrown or published
      assert.equal(w.streams.messages.size, 0);
    });
  }

  it("takes the unique lock before publishing, and fails a second Task whose key is held (Reject), naming the holder", async () => {
    const w = world();
    const first = await create("unique-1", { queue: "plain", unique: { key: "nightly" } });
    const second = await create("unique-2", { queue: "plain", unique: { key: "nightly", policy: "Reject" } });
    await w.reconcile("unique-1");
    assert.equal((await get("unique-1")).status?.phase, "Queued");
    assert.deepEqual(w.streams.messages.get(first.metadata.uid!)?.unique, { key: "nightly", policy: "Reject" });
    assert.ok(w.streams.confirmed.has(first.metadata.uid!), "marked published in its lock after the PubAck");
    await w.reconcile("unique-1"); // again: its own lock, no change
    await w.reconcile("unique-2");
    await w.reconcile("unique-2");
    const refusedTask = await get("unique-2");
    assert.equal(refusedTask.status?.phase, "Failed");
    const accepted = refusedTask.status?.conditions?.find((x) => x.type === "Accepted");
    assert.equal(accepted?.reason, "UniqueKeyHeld");
    assert.match(accepted?.message ?? "", new RegExp(`held by task ${first.metadata.uid} \\(policy Reject\\)`));
    assert.equal(w.streams.messages.has(second.metadata.uid!), false, "not published");
    assert.deepEqual(w.events, ["Warning/UniqueKeyHeld"], "one Warning Event");
  });

  it("publishes a Task whose key is held when its policy is Wait", async () => {
    const w = world();
    await create("wait-1", { queue: "plain", unique: { key: "sync" } });
    const second = await create("wait-2", { queue: "plain", unique: { key: "sync", policy: "Wait" } });
    await w.reconcile("wait-1");
    await w.reconcile("wait-2");
    assert.equal((await get("wait-2")).status?.phase, "Queued");
    assert.deepEqual(w.streams.messages.get(second.metadata.uid!)?.unique, { key: "sync", policy: "Wait" });
  });
});
