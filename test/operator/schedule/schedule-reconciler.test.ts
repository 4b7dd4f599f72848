import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { CELERIAC_TYPES } from "../../../api/objects.js";
import { createObject, getObject, isConflict, listObjects } from "../../../kube/k8s-client.js";
import type { Schedule as ScheduleResource, Task as TaskLike } from "../../../api/objects.js";
import { ScheduleReconciler, statusPatch } from "../../../operator/schedule/schedule-reconciler.js";
import { startCluster, type TestCluster } from "../runtime/cluster.js";

const SCHEDULES = CELERIAC_TYPES.Schedule;
const TASKS = CELERIAC_TYPES.Task;

describe("statusPatch", () => {
  const cases: Array<[string, Record<string, unknown> | undefined, Record<string, unknown>, Record<string, unknown> | undefined]> = [
    ["nothing changes", { missedRuns: 1, active: [] }, { missedRuns: 1, active: [] }, undefined],
    ["from no status", undefined, { missedRuns: 0 }, { missedRuns: 0 }],
    ["only changed fields", { missedRuns: 1, lastScheduleTime: "2026-01-01T00:00:00Z" }, { missedRuns: 2, lastScheduleTime: "2026-01-01T00:00:00Z" }, { missedRuns: 2 }],
    ["a dropped field becomes null", { nextScheduleTime: "2026-01-01T00:00:00Z", missedRuns: 0 }, { missedRuns: 0 }, { nextScheduleTime: null }],
  ];
  for (const [what, live, desired, want] of cases) {
    it(`when ${what}`, () => assert.deepEqual(statusPatch(live, desired), want));
  }
});

const ctx = { log: pino({ level: "silent" }), reconcileID: "test", controller: "schedule" };

describe("when the Schedule reconciler plans from a stale cache", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks", "schedules"]);
  });
  after(() => c?.close());

  async function setup(name: string): Promise<{ cached: ScheduleResource; now: Date; tasks: () => Promise<TaskLike[]> }> {
    const cached = await createObject<ScheduleResource>(c.kc, SCHEDULES, {
      apiVersion: "celeriac.io/v1alpha1",
      kind: "Schedule",
      metadata: { name, namespace: "default" },
      spec: { schedule: "@every 1s", taskTemplate: { spec: { queue: "q", task: "t" } } },
    }, "test");
    // 5.5 s after creation (whole seconds): 5 runs due; RunLatest starts the newest, 4 are missed.
    const now = new Date(Date.parse(cached.metadata.creationTimestamp!) + 5500);
    const tasks = async () => (await listObjects<TaskLike>(c.kc, TASKS, { namespace: "default" })).items.filter((t) => t.metadata.name.startsWith(`${name}-`));
    return { cached, now, tasks };
  }

  function reconciler(get: () => ScheduleResource, tasks: TaskLike[], now: Date): ScheduleReconciler {
    return new ScheduleReconciler({
      kc: c.kc,
      getSchedule: () => get(),
      tasksOf: () => tasks,
      events: { event: () => undefined },
      startedAt: new Date(0),
      now: () => now,
    });
  }

  it("creates the newest due run and writes the missed ones to status", async () => {
    const { cached, now, tasks } = await setup("first");
    const r = await reconciler(() => cached, await tasks(), now).reconcile({ namespace: "default", name: "first" }, ctx);
    assert.equal(r?.requeueAfterMs, 500, "exactly until the next run");
    const live = await getObject<ScheduleResource>(c.kc, { ...SCHEDULES, namespace: "default", name: "first" });
    assert.equal(live.status?.missedRuns, 4);
    assert.deepEqual((await tasks()).map((t) => t.metadata?.name), [`first-${Date.parse(cached.metadata.creationTimestamp!) / 1000 + 5}`]);
  });

  it("plans from the object it wrote while the cache still shows the version it planned from", async () => {
    const { cached, now, tasks } = await setup("expect");
    let taskCache: TaskLike[] = await tasks();
    const rec = new ScheduleReconciler({
      kc: c.kc, getSchedule: () => cached, tasksOf: () => taskCache, events: { event: () => undefined }, startedAt: new Date(0), now: () => now,
    });
    await rec.reconcile({ namespace: "default", name: "expect" }, ctx);
    taskCache = await tasks();
    assert.equal(taskCache.length, 1);
    // The cache still holds `cached` (no status): the reconcile plans from the written object, so its
    // status write (the active Task's uid, now known) is not refused and keeps the count.
    await rec.reconcile({ namespace: "default", name: "expect" }, ctx);
    const live = await getObject<ScheduleResource>(c.kc, { ...SCHEDULES, namespace: "default", name: "expect" });
    assert.equal(live.status?.missedRuns, 4, "the count is not lost");
    assert.deepEqual(live.status?.active, [{ name: taskCache[0]!.metadata!.name!, uid: taskCache[0]!.metadata!.uid! }]);
    await rec.reconcile({ namespace: "default", name: "expect" }, ctx); // and again, from the second write
    assert.equal((await tasks()).length, 1, "no second Task");
  });

  it("refuses to overwrite a status it has not seen (409 Conflict, so the controller requeues)", async () => {
    const { cached, now, tasks } = await setup("conflict");
    await reconciler(() => cached, await tasks(), now).reconcile({ namespace: "default", name: "conflict" }, ctx);
    // A fresh reconciler (another incarnation) with the stale cached object and no Tasks in its cache.
    await assert.rejects(reconciler(() => cached, [], now).reconcile({ namespace: "default", name: "conflict" }, ctx), (err: unknown) => isConflict(err));
    const live = await getObject<ScheduleResource>(c.kc, { ...SCHEDULES, namespace: "default", name: "conflict" });
    assert.equal(live.status?.missedRuns, 4);
  });
});
