/**
 * A Schedule with a workflowTemplate against the in-memory API server: the Schedule controller wired as
 * operator/main.ts wires it (informers for Schedules, Tasks and Workflows, the Workflows owned by their
 * Schedule) fires a Workflow per run; Forbid skips while a Workflow is active, Replace deletes the
 * active one before creating the next, the history limits delete the oldest finished Workflows, and
 * the CRD refuses both or neither template at apply (the API server and real kubectl).
 * No Workflow controller runs here: a Workflow stays active (no phase) until the test writes its status.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { ANNOTATIONS, LABELS, RESOURCES } from "../../../api/constants.js";
import { CELERIAC_TYPES, type Schedule, type Task, type Workflow } from "../../../api/objects.js";
import { SCHEDULE_TEMPLATE_BOTH_MESSAGE, SCHEDULE_TEMPLATE_REQUIRED_MESSAGE } from "../../../api/schedule.js";
import {
  BUILTIN_TYPES, Controller, EventRecorder, createObject, getObject, isAlreadyExists, isNotFound, listObjects, mergePatch, namespacedInformer, patchStatus,
  type KubeObject, type ResourceType,
} from "../../../operator/runtime/index.js";
import { ScheduleReconciler } from "../../../operator/schedule/schedule-reconciler.js";
import { nominalTimeFromTaskName } from "../../../operator/schedule/task-name.js";
import { k8sTools, runTool } from "../../helpers/k8s-tools.js";
import { eventually, startCluster, type TestCluster } from "../runtime/cluster.js";

const SCHEDULES = CELERIAC_TYPES.Schedule;
const TASKS = CELERIAC_TYPES.Task;
const WORKFLOWS = CELERIAC_TYPES.Workflow;
const silent = pino({ level: "silent" });

/** Polls `fn` until it returns a value (not undefined or false); see eventually. */
async function until<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  return (await eventually(fn, timeoutMs, what)) as T;
}

const workflowTemplate = {
  metadata: { labels: { team: "finance" }, annotations: { note: "from the template" } },
  spec: {
    queue: "reports",
    steps: [
      { name: "fetch", task: "reports.fetch" },
      { name: "render", task: "reports.render", dependsOn: ["fetch"], kwargs: { format: "pdf" } },
    ],
  },
};

function schedule(namespace: string, name: string, spec: Record<string, unknown>): Schedule {
  return { apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: { name, namespace }, spec: { schedule: "@every 1s", workflowTemplate, ...spec } } as Schedule;
}

async function ensureNamespace(c: TestCluster, name: string): Promise<void> {
  await createObject(c.kc, BUILTIN_TYPES.Namespace, { apiVersion: "v1", kind: "Namespace", metadata: { name } }, "test").catch((err: unknown) => {
    if (!isAlreadyExists(err)) throw err;
  });
}

/**
 * The Schedule controller as operator/main.ts runs it, over one namespace, with the Workflow informer
 * and `workflowsOf` the lead wires. Events are recorded for real (core/v1 Events).
 */
async function startScheduleController(c: TestCluster, namespace: string): Promise<{ stop(): Promise<void> }> {
  await ensureNamespace(c, namespace);
  const informer = <T extends KubeObject>(type: ResourceType) => namespacedInformer<T>({ kc: c.kc, type, logger: silent, namespaces: [namespace] });
  const schedules = informer<Schedule>(SCHEDULES);
  const tasks = informer<Task>(TASKS);
  const workflows = informer<Workflow>(WORKFLOWS);
  const recorder = new EventRecorder({ kc: c.kc, logger: silent });
  const reconciler = new ScheduleReconciler({
    kc: c.kc,
    getSchedule: (ns, name) => schedules.get(ns, name),
    tasksOf: (ns, label) => tasks.list(ns).filter((t) => t.metadata.labels?.[LABELS.schedule] === label),
    workflowsOf: (ns, label) => workflows.list(ns).filter((w) => w.metadata.labels?.[LABELS.schedule] === label),
    events: { event: (obj, type, reason, message) => void recorder.record(obj, type, reason, message) },
    startedAt: new Date(),
  });
  const ctl = new Controller({
    name: "schedule", for: schedules, workers: 2, logger: silent, registry: new Registry(), recorder,
    owns: [{ informer: tasks, ownerKind: RESOURCES.Schedule.kind }, { informer: workflows, ownerKind: RESOURCES.Schedule.kind }],
    reconcile: (key, ctx) => reconciler.reconcile(key, ctx),
  });
  await ctl.start();
  return { stop: () => ctl.stop() };
}

describe("when a Schedule has a workflowTemplate", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks", "schedules", "workflows"]);
  });
  after(() => c?.close());

  const workflowsOf = async (ns: string, name: string) =>
    (await listObjects<Workflow>(c.kc, WORKFLOWS, { namespace: ns, labelSelector: `${LABELS.schedule}=${name}` })).items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  const getSchedule = (ns: string, name: string) => getObject<Schedule>(c.kc, { ...SCHEDULES, namespace: ns, name });
  const eventsOf = async (ns: string, name: string) =>
    (await listObjects<KubeObject & { involvedObject?: { name?: string }; reason?: string; message?: string; type?: string }>(c.kc, BUILTIN_TYPES.Event, { namespace: ns })).items
      .filter((e) => e.involvedObject?.name === name);
  const finish = (ns: string, name: string, phase: "Succeeded" | "Failed" | "Cancelled", completionTime = new Date().toISOString().replace(/\.\d+Z$/, "Z")) =>
    patchStatus(c.kc, { ...WORKFLOWS, namespace: ns, name }, { phase, completionTime }, "test");

  it("fires one Workflow per run on @every 1s, named, labelled and owned like a Task, and no Task", async () => {
    const ns = "wf-fire";
    const ctl = await startScheduleController(c, ns);
    try {
      const s = await createObject<Schedule>(c.kc, SCHEDULES, schedule(ns, "nightly", {}), "test");
      const wfs = await until(async () => {
        const l = await workflowsOf(ns, "nightly");
        return l.length >= 3 ? l : undefined;
      }, 10_000, "three Workflows");
      const secs = wfs.map((w) => nominalTimeFromTaskName("nightly", w.metadata.name)!.getTime() / 1000);
      for (let i = 1; i < secs.length; i++) assert.equal(secs[i]! - secs[i - 1]!, 1, `consecutive seconds: ${secs.join(", ")}`);
      for (const w of wfs) {
        assert.equal(w.kind, "Workflow");
        assert.match(w.metadata.name, /^nightly-\d+$/);
        assert.deepEqual(w.spec, workflowTemplate.spec);
        assert.equal(w.metadata.labels?.team, "finance");
        assert.equal(w.metadata.labels?.[LABELS.schedule], "nightly");
        assert.equal(w.metadata.annotations?.note, "from the template");
        assert.equal(Date.parse(w.metadata.annotations![ANNOTATIONS.scheduledAt]!) / 1000, nominalTimeFromTaskName("nightly", w.metadata.name)!.getTime() / 1000);
        assert.deepEqual(w.metadata.ownerReferences, [{ apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", name: "nightly", uid: s.metadata.uid, controller: true, blockOwnerDeletion: true }]);
      }
      assert.deepEqual((await listObjects(c.kc, TASKS, { namespace: ns })).items, [], "no Task is created");
      await eventually(async () => {
        const live = await getSchedule(ns, "nightly");
        const active = live.status?.active ?? [];
        return active.length >= 3 && active.every((a) => a.kind === "Workflow" && a.uid) && live.status?.lastScheduleTime ? live : undefined;
      }, 5000, "status.active lists the Workflows with kind and uid");
      const created = (await eventsOf(ns, "nightly")).filter((e) => e.reason === "SuccessfulCreate");
      assert.ok(created.some((e) => /^Created Workflow nightly-\d+ for the run at /.test(e.message ?? "")), JSON.stringify(created.map((e) => e.message)));
    } finally {
      await ctl.stop();
    }
  });

  it("Forbid: skips runs while a Workflow is active (missedRuns, JobAlreadyActive), and runs again once it Succeeded", async () => {
    const ns = "wf-forbid";
    const ctl = await startScheduleController(c, ns);
    try {
      await createObject<Schedule>(c.kc, SCHEDULES, schedule(ns, "once", { concurrencyPolicy: "Forbid" }), "test");
      const [first] = await until(async () => {
        const l = await workflowsOf(ns, "once");
        return l.length > 0 ? l : undefined;
      }, 5000, "the first Workflow");
      const skipped = await until(async () => {
        const live = await getSchedule(ns, "once");
        return (live.status?.missedRuns ?? 0) >= 2 ? live : undefined;
      }, 6000, "two runs skipped");
      assert.deepEqual((await workflowsOf(ns, "once")).map((w) => w.metadata.name), [first!.metadata.name], "no second Workflow while the first is active");
      assert.ok(skipped.status?.lastMissedTime);
      assert.deepEqual(skipped.status?.active, [{ name: first!.metadata.name, uid: first!.metadata.uid, kind: "Workflow" }]);
      const already = await until(async () => {
        const e = (await eventsOf(ns, "once")).filter((x) => x.reason === "JobAlreadyActive");
        return e.length > 0 ? e : undefined;
      }, 5000, "a JobAlreadyActive Event");
      assert.equal(already[0]!.type, "Warning");
      assert.match(already[0]!.message!, new RegExp(`: Workflow ${first!.metadata.name} is still active and concurrencyPolicy is Forbid$`));

      await finish(ns, first!.metadata.name, "Succeeded", "2026-01-01T00:00:07Z");
      const next = await until(async () => {
        const l = await workflowsOf(ns, "once");
        return l.length === 2 ? l[1] : undefined;
      }, 5000, "the next run after the first Succeeded");
      assert.ok(next!.metadata.name > first!.metadata.name);
      await eventually(async () => (await getSchedule(ns, "once")).status?.lastSuccessfulTime === "2026-01-01T00:00:07Z", 5000, "lastSuccessfulTime from the Workflow's completionTime");
    } finally {
      await ctl.stop();
    }
  });

  it("Replace: deletes the active Workflow (its finalizer holds it until its steps are revoked), then creates the next; never two active", async () => {
    const ns = "wf-replace";
    const ctl = await startScheduleController(c, ns);
    const finalizer = "celeriac.io/workflow-revoke";
    try {
      await createObject<Schedule>(c.kc, SCHEDULES, schedule(ns, "swap", { concurrencyPolicy: "Replace" }), "test");
      const [first] = await until(async () => {
        const l = await workflowsOf(ns, "swap");
        return l.length > 0 ? l : undefined;
      }, 5000, "the first Workflow");
      // What the Workflow controller does: a finalizer, so deletion waits for the revokes.
      await mergePatch(c.kc, { ...WORKFLOWS, namespace: ns, name: first!.metadata.name }, { metadata: { finalizers: [finalizer] } }, "test");
      let maxLive = 0;
      const replaced = await until(async () => {
        const l = await workflowsOf(ns, "swap");
        maxLive = Math.max(maxLive, l.filter((w) => !w.metadata.deletionTimestamp).length);
        const old = l.find((w) => w.metadata.name === first!.metadata.name);
        const newer = l.filter((w) => w.metadata.name > first!.metadata.name && !w.metadata.deletionTimestamp);
        return old?.metadata.deletionTimestamp && newer.length > 0 ? newer : undefined;
      }, 5000, "the first Workflow being deleted and a new one");
      assert.ok(replaced.length >= 1);
      assert.ok(maxLive <= 1, `Workflows not being deleted at once: ${maxLive}`);
      const cancel = (await eventsOf(ns, "swap")).find((e) => e.reason === "SuccessfulCancel");
      assert.equal(cancel?.message, `Cancelled active Workflow ${first!.metadata.name} to start a new run (concurrencyPolicy Replace)`);
      // The finalizer released (the Workflow controller revoked the steps): the Workflow is gone.
      await mergePatch(c.kc, { ...WORKFLOWS, namespace: ns, name: first!.metadata.name }, { metadata: { finalizers: null } }, "test");
      await eventually(async () => {
        try {
          await getObject(c.kc, { ...WORKFLOWS, namespace: ns, name: first!.metadata.name });
          return false;
        } catch (err) {
          return isNotFound(err);
        }
      }, 5000, "the replaced Workflow deleted");
      for (let i = 0; i < 20; i++) {
        const l = await workflowsOf(ns, "swap");
        assert.ok(l.filter((w) => !w.metadata.deletionTimestamp).length <= 1, `never two active: ${l.map((w) => w.metadata.name).join(", ")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await ctl.stop();
    }
  });

  it("deletes the oldest finished Workflows beyond successfulTasksHistoryLimit and failedTasksHistoryLimit, keeping the newest of each and the active ones", async () => {
    const ns = "wf-history";
    const ctl = await startScheduleController(c, ns);
    try {
      await createObject<Schedule>(c.kc, SCHEDULES, schedule(ns, "hist", { successfulTasksHistoryLimit: 1, failedTasksHistoryLimit: 1 }), "test");
      const finished: Array<{ name: string; phase: "Succeeded" | "Failed" | "Cancelled" }> = [];
      const phases = ["Succeeded", "Failed", "Succeeded", "Cancelled", "Succeeded", "Failed"] as const;
      // Finish each Workflow as it appears, cycling through the phases, until six have finished.
      await eventually(async () => {
        for (const w of await workflowsOf(ns, "hist")) {
          if (finished.length >= phases.length || w.status?.phase || finished.some((f) => f.name === w.metadata.name)) continue;
          const phase = phases[finished.length]!;
          await finish(ns, w.metadata.name, phase);
          finished.push({ name: w.metadata.name, phase });
        }
        return finished.length >= phases.length;
      }, 15_000, "six finished Workflows");
      const kept = await until(async () => {
        const l = await workflowsOf(ns, "hist");
        const done = l.filter((w) => w.status?.phase);
        const gone = !finished.slice(0, 4).some((f) => l.some((w) => w.metadata.name === f.name));
        return done.length === 2 && gone && l.some((w) => !w.status?.phase) ? l : undefined;
      }, 5000, "the four oldest finished Workflows deleted, and a newer active one");
      // Kept: the newest Succeeded and the newest Failed/Cancelled; the active ones are untouched.
      const keptDone = kept.filter((w) => w.status?.phase).map((w) => `${w.metadata.name} ${w.status!.phase}`);
      assert.deepEqual(keptDone, [`${finished[4]!.name} Succeeded`, `${finished[5]!.name} Failed`]);
      const deletes = (await eventsOf(ns, "hist")).filter((e) => e.reason === "SuccessfulDelete").map((e) => e.message);
      assert.ok(deletes.includes(`Deleted finished Workflow ${finished[0]!.name} beyond the history limit`), JSON.stringify(deletes));
    } finally {
      await ctl.stop();
    }
  });

  it("without a workflowsOf cache, lists the Schedule's Workflows from the API server (Forbid still counts the active one)", async () => {
    const ns = "wf-nocache";
    await ensureNamespace(c, ns);
    const created = await createObject<Schedule>(c.kc, SCHEDULES, schedule(ns, "direct", { concurrencyPolicy: "Forbid" }), "test");
    const t0 = Date.parse(created.metadata.creationTimestamp!);
    let cached: Schedule = created;
    let now = new Date(t0 + 1500);
    const rec = new ScheduleReconciler({
      kc: c.kc, getSchedule: () => cached, tasksOf: () => [], events: { event: () => undefined }, startedAt: new Date(0), now: () => now,
    });
    const ctx = { log: silent, reconcileID: "test", controller: "schedule" };
    await rec.reconcile({ namespace: ns, name: "direct" }, ctx);
    assert.equal((await workflowsOf(ns, "direct")).length, 1);
    cached = await getSchedule(ns, "direct");
    now = new Date(t0 + 2500);
    await rec.reconcile({ namespace: ns, name: "direct" }, ctx);
    const live = await getSchedule(ns, "direct");
    assert.equal((await workflowsOf(ns, "direct")).length, 1, "the active Workflow, listed from the API server, forbids the next run");
    assert.equal(live.status?.missedRuns, 1);
  });
});

describe("when a Schedule sets both templates or neither", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks", "schedules", "workflows"]);
  });
  after(() => c?.close());
  const post = async (body: unknown) => {
    const res = await fetch(`${c.api.url}/apis/celeriac.io/v1alpha1/namespaces/default/schedules`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { message?: string; details?: { causes?: Array<{ field?: string; reason?: string }> } } };
  };
  const taskTemplate = { spec: { queue: "default", task: "a.b" } };
  const doc = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: { name }, spec: { schedule: "@daily", ...spec } });

  it("refuses both with spec.workflowTemplate Forbidden, naming both fields", async () => {
    const r = await post(doc("both", { taskTemplate, workflowTemplate }));
    assert.equal(r.status, 422);
    assert.equal(r.body.message, `Schedule.celeriac.io "both" is invalid: spec.workflowTemplate: Forbidden: ${SCHEDULE_TEMPLATE_BOTH_MESSAGE}`);
    assert.deepEqual(r.body.details?.causes?.map((x) => [x.field, x.reason]), [["spec.workflowTemplate", "FieldValueForbidden"]]);
  });
  it("refuses neither with spec.taskTemplate Required, naming both fields", async () => {
    const r = await post(doc("neither", {}));
    assert.equal(r.status, 422);
    assert.equal(r.body.message, `Schedule.celeriac.io "neither" is invalid: spec.taskTemplate: Required value: ${SCHEDULE_TEMPLATE_REQUIRED_MESSAGE}`);
    assert.deepEqual(r.body.details?.causes?.map((x) => [x.field, x.reason]), [["spec.taskTemplate", "FieldValueRequired"]]);
  });
  it("admits either one alone", async () => {
    assert.equal((await post(doc("tasks-only", { taskTemplate }))).status, 201);
    assert.equal((await post(doc("workflows-only", { workflowTemplate }))).status, 201);
  });
  it("checks the workflowTemplate's steps with the Workflow's own rules", async () => {
    const r = await post(doc("loop", { workflowTemplate: { spec: { queue: "q", steps: [{ name: "a", task: "x.y", dependsOn: ["a"] }] } } }));
    assert.equal(r.status, 422);
    assert.match(r.body.message ?? "", /spec\.workflowTemplate\.spec\.steps\[0\]\.dependsOn: Invalid value: "object": step "a" depends on itself: remove it from its own dependsOn/);
  });
  it("lets the workflowTemplate change (only a Workflow's own spec is immutable)", async () => {
    const res = await fetch(`${c.api.url}/apis/celeriac.io/v1alpha1/namespaces/default/schedules/workflows-only`, {
      method: "PATCH", headers: { "Content-Type": "application/merge-patch+json" },
      body: JSON.stringify({ spec: { workflowTemplate: { spec: { queue: "other" } } } }),
    });
    assert.equal(res.status, 200, await res.text());
  });

  const tools = k8sTools();
  for (const [label, kubectl] of [["1.32", tools.kubectl132], ["1.34", tools.kubectl134]] as const) {
    describe(`when kubectl ${label} applies them`, { skip: kubectl ? false : `kubectl ${label} not available` }, () => {
      const apply = async (name: string, yaml: string) => {
        const file = join(c.dir, `${name}.yaml`);
        writeFileSync(file, yaml);
        return runTool(kubectl as string, ["--kubeconfig", join(c.dir, "kubeconfig"), "--cache-dir", join(c.dir, `cache-${label}`), "apply", "-f", file], {}, 30_000);
      };
      const header = (name: string) => `apiVersion: celeriac.io/v1alpha1\nkind: Schedule\nmetadata: {name: ${name}}\nspec:\n  schedule: "@daily"\n`;
      const wfYaml = "  workflowTemplate:\n    spec:\n      queue: default\n      steps: [{name: a, task: a.b}]\n";
      it("prints the both-templates error", async () => {
        const r = await apply("both", `${header(`both-${label.replace(".", "-")}`)}  taskTemplate: {spec: {queue: default, task: a.b}}\n${wfYaml}`);
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.includes(`spec.workflowTemplate: Forbidden: ${SCHEDULE_TEMPLATE_BOTH_MESSAGE}`), r.stderr);
      });
      it("prints the no-template error", async () => {
        const r = await apply("neither", header(`neither-${label.replace(".", "-")}`));
        assert.notEqual(r.code, 0);
        assert.ok(r.stderr.includes(`spec.taskTemplate: Required value: ${SCHEDULE_TEMPLATE_REQUIRED_MESSAGE}`), r.stderr);
      });
      it("applies a Schedule with only a workflowTemplate", async () => {
        const r = await apply("wf", `${header(`wf-${label.replace(".", "-")}`)}${wfYaml}`);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /schedule\.celeriac\.io\/wf-1-3\d created/);
      });
    });
  }
});
