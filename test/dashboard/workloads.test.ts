// The dashboard's Schedules and Workflows pages. First the pure mapping (dashboard/workloads.ts) as
// table tests; then the real thing: the in-memory API server with the CRDs, a real nats-server, the
// operator in-process (startOperator, as `celeriac operator` runs) and an in-process Worker that also
// writes Task status (TaskResourceSink, as worker pods do), so every Schedule and Workflow status the
// pages show was written by the real controllers. The dashboard runs in-process with the Kubernetes
// API; headless Chromium (Debian's, via playwright-core) loads the Schedules, a Schedule, Workflows and
// a Workflow page, the DAG's nodes and phases are read from the cytoscape instance (window.__cy), and a
// click on a node opens its task's page, which links back to the Workflow. Screenshots go to a temp
// folder (logged).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { ANNOTATIONS, LABELS } from "../../api/constants.js";
import { queueNames } from "../../api/naming.js";
import { CELERIAC_TYPES, type Schedule, type Task, type Workflow } from "../../api/objects.js";
import { openOps, type OpsSession } from "../../cli/session.js";
import { startDashboard, type Dashboard } from "../../dashboard/server.js";
import {
  NO_KUBE_MESSAGE, newestFirst, notFoundMessage, scheduleDetail, scheduleRow, taskRun, workflowDetail, workflowRow, workflowRun,
  type ScheduleDetail, type ScheduleRow, type WorkflowDetail, type WorkflowRow,
} from "../../dashboard/workloads.js";
import { BUILTIN_TYPES, createObject, getObject, listObjects } from "../../kube/k8s-client.js";
import { operatorConfigFrom } from "../../operator/config.js";
import { startOperator, type RunningOperator } from "../../operator/main.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { TaskResourceSink } from "../../worker/task-resource-sink.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { queueObject, startCluster, type TestCluster } from "../operator/runtime/cluster.js";

const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: "ns", ...extra });

describe("when Schedules and Workflows are mapped for the pages (pure)", () => {
  const sched = (spec: Partial<Schedule["spec"]>, status?: Schedule["status"]): Schedule => ({
    apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: meta("nightly", { creationTimestamp: "2026-12-01T00:00:00Z" }),
    spec: { schedule: "30 2 * * *", taskTemplate: { spec: { queue: "q", task: "t" } }, ...spec } as Schedule["spec"], ...(status ? { status } : {}),
  });
  const task = (name: string, at: string, phase?: string, extra: Partial<NonNullable<Task["status"]>> = {}): Task => ({
    apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: meta(name, { uid: `uid-${name}`, annotations: { [ANNOTATIONS.scheduledAt]: at } }),
    spec: { queue: "q", task: "t" } as Task["spec"], ...(phase ? { status: { phase, ...extra } as Task["status"] } : {}),
  });

  const runs = [
    taskRun(task("nightly-3", "2026-12-03T02:30:00Z")),
    taskRun(task("nightly-2", "2026-12-02T02:30:00Z", "Failed", { completionTime: "2026-12-02T02:31:00Z", error: { type: "ValueError", message: "boom\nat line 2" } })),
    taskRun(task("nightly-1", "2026-12-01T02:30:00Z", "Succeeded", { completionTime: "2026-12-01T02:31:00Z" })),
  ];
  const cases: Array<[string, Schedule, typeof runs, Partial<ScheduleRow>]> = [
    ["a fresh Schedule: defaults, no status", sched({}), [], { timeZone: "UTC", suspend: false, concurrencyPolicy: "Allow", creates: "Task", missedRuns: 0, active: 0 }],
    ["a suspended Workflow Schedule in a zone", sched({ suspend: true, timeZone: "Europe/Berlin", taskTemplate: undefined, workflowTemplate: { spec: { queue: "q", steps: [{ name: "a", task: "t" }] } } } as Partial<Schedule["spec"]>), [], { suspend: true, timeZone: "Europe/Berlin", creates: "Workflow" }],
    ["status times, missed runs, active and Ready are copied; the last outcome is the newest finished run", sched({ concurrencyPolicy: "Forbid" }, {
      nextScheduleTime: "2026-12-04T02:30:00Z", lastScheduleTime: "2026-12-03T02:30:00Z", lastSuccessfulTime: "2026-12-01T02:31:00Z", missedRuns: 4, lastMissedTime: "2026-11-30T02:30:00Z",
      active: [{ name: "nightly-3" }], conditions: [{ type: "Ready", status: "True", reason: "Scheduled", message: "ok", lastTransitionTime: "2026-12-01T00:00:00Z" }],
    }), runs, {
      concurrencyPolicy: "Forbid", nextScheduleTime: "2026-12-04T02:30:00Z", lastScheduleTime: "2026-12-03T02:30:00Z", lastSuccessfulTime: "2026-12-01T02:31:00Z", missedRuns: 4, lastMissedTime: "2026-11-30T02:30:00Z", active: 1,
      ready: { status: "True", reason: "Scheduled", message: "ok" },
      lastOutcome: { name: "nightly-2", kind: "Task", uid: "uid-nightly-2", phase: "Failed", completionTime: "2026-12-02T02:31:00Z" },
    }],
    ["an invalid schedule shows Ready False with its reason", sched({}, { conditions: [{ type: "Ready", status: "False", reason: "InvalidSchedule", message: "bad cron", lastTransitionTime: "2026-12-01T00:00:00Z" }] }), [], { ready: { status: "False", reason: "InvalidSchedule", message: "bad cron" } }],
  ];
  for (const [what, s, r, want] of cases) {
    it(`scheduleRow: ${what}`, () => {
      const row = scheduleRow(s, r);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(row[k as keyof ScheduleRow], v, k);
    });
  }

  it("taskRun / workflowRun: phase, activity, the error's first line, and the nominal time (annotation, else creation)", () => {
    assert.deepEqual(runs[1], { name: "nightly-2", kind: "Task", uid: "uid-nightly-2", scheduledAt: "2026-12-02T02:30:00Z", phase: "Failed", completionTime: "2026-12-02T02:31:00Z", active: false, message: "boom" });
    assert.equal(runs[0]!.active, true);
    const w = workflowRun({ metadata: meta("nightly-9", { creationTimestamp: "2026-12-09T00:00:00Z" }), status: { phase: "Running" } } as Workflow);
    assert.deepEqual(w, { name: "nightly-9", kind: "Workflow", scheduledAt: "2026-12-09T00:00:00Z", phase: "Running", active: true });
    assert.equal(workflowRun({ metadata: meta("x"), status: { phase: "Cancelled" } } as Workflow).active, false);
  });

  it("scheduleDetail lists runs newest first, at most 50", () => {
    const many = Array.from({ length: 60 }, (_, i) => taskRun(task(`n-${i}`, new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(), "Succeeded")));
    const d: ScheduleDetail = scheduleDetail(sched({ successfulTasksHistoryLimit: 100 }), many);
    assert.equal(d.runs.length, 50);
    assert.equal(d.runsTruncated, true);
    assert.equal(d.runs[0]!.name, "n-59");
    assert.equal(d.successfulTasksHistoryLimit, 100);
    assert.deepEqual(newestFirst(runs).map((r) => r.name), ["nightly-3", "nightly-2", "nightly-1"]);
  });

  const wf = (status?: Workflow["status"], extra: Partial<Workflow["spec"]> = {}): Workflow => ({
    apiVersion: "celeriac.io/v1alpha1", kind: "Workflow", metadata: meta("etl", { uid: "U", labels: { [LABELS.schedule]: "nightly" }, creationTimestamp: "2026-12-01T00:00:00Z" }),
    spec: {
      queue: "q",
      steps: [
        { name: "fetch", task: "etl.fetch" },
        { name: "each", task: "etl.each", queue: "other", dependsOn: ["fetch"], forEach: { fromStep: "fetch" } },
        { name: "lit", task: "etl.lit", forEach: { items: [1, 2, 3] } },
        { name: "sum", task: "etl.sum", dependsOn: ["each", "lit"] },
      ],
      ...extra,
    },
    ...(status ? { status } : {}),
  });
  const counts = (total: number, succeeded = 0, failed = 0, running = 0) => ({ total, succeeded, failed, running });

  it("workflowRow / workflowDetail of a Workflow without status: every step Pending, counts from the spec", () => {
    const row: WorkflowRow = workflowRow(wf());
    assert.deepEqual(row, { name: "etl", phase: "Pending", stepsDone: 0, stepsTotal: 4, queue: "q", schedule: "nightly", createdAt: "2026-12-01T00:00:00Z" });
    const d = workflowDetail(wf());
    assert.deepEqual(d.steps.map((s) => [s.name, s.phase, s.queue, s.tasks.total, s.forEach]), [
      ["fetch", "Pending", "q", 1, undefined], ["each", "Pending", "other", 0, { fromStep: "fetch" }], ["lit", "Pending", "q", 3, { items: 3 }], ["sum", "Pending", "q", 1, undefined],
    ]);
    assert.deepEqual(d.edges, [{ from: "fetch", to: "each", kind: "dependsOn" }, { from: "each", to: "sum", kind: "dependsOn" }, { from: "lit", to: "sum", kind: "dependsOn" }]);
    assert.equal("result" in d, false);
  });

  it("workflowDetail with status: phases, task ids and the ones not listed, errors, hooks after the final steps, result", () => {
    const d: WorkflowDetail = workflowDetail(wf({
      phase: "Failed", message: 'step "sum" failed', startTime: "2026-12-01T00:00:01Z", completionTime: "2026-12-01T00:00:09Z", duration: "8s", retries: 1, result: null,
      steps: [
        { name: "fetch", phase: "Succeeded", tasks: counts(1, 1), taskIds: ["U_fetch"], attempts: 1 },
        { name: "each", phase: "Succeeded", tasks: counts(7, 7), taskIds: ["U_each_0", "U_each_1", "U_each_2", "U_each_3", "U_each_4"] },
        { name: "lit", phase: "Succeeded", tasks: counts(3, 3), taskIds: ["U_lit_0", "U_lit_1", "U_lit_2"] },
        { name: "sum", phase: "Failed", tasks: counts(1, 0, 1), taskIds: ["U_sum_g1"], generation: 1, error: { type: "ValueError", message: "boom\nstack", taskId: "U_sum_g1" } },
      ],
      onExit: { name: "onExit", phase: "Succeeded", tasks: counts(1, 1), taskIds: ["U_onExit"] },
    }, { onExit: { task: "etl.notify" } }));
    assert.equal(d.phase, "Failed");
    assert.equal(d.stepsDone, 4);
    assert.equal(d.uid, "U");
    assert.deepEqual(d.steps.map((s) => [s.name, s.phase, s.hook, s.moreTasks]), [["fetch", "Succeeded", false, 0], ["each", "Succeeded", false, 2], ["lit", "Succeeded", false, 0], ["sum", "Failed", false, 0], ["onExit", "Succeeded", true, 0]]);
    assert.deepEqual(d.steps[3]!.error, { type: "ValueError", message: "boom", taskId: "U_sum_g1" });
    assert.equal(d.steps[3]!.generation, 1);
    assert.deepEqual(d.edges.filter((e) => e.kind === "hook"), [{ from: "sum", to: "onExit", kind: "hook" }]);
    assert.equal(d.result, null);
    assert.equal(d.retries, 1);
  });

  it("notFoundMessage names what exists, or says there is none", () => {
    assert.equal(notFoundMessage("Workflow", "x", "ns", ["b", "a"]), 'workflow "x" not found in namespace "ns"; Workflows in namespace "ns": a, b');
    assert.equal(notFoundMessage("Schedule", "x", "ns", []), 'schedule "x" not found in namespace "ns": there are no Schedules in namespace "ns"');
  });
});

// ---- against the real controllers, in a browser ----------------------------------------------------

const NS = "dash-wl";
const QUEUE = "jobs";
const SHOTS = mkdtempSync(join(tmpdir(), "celeriac-dashboard-workloads-shots-"));
const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

type CyNode = { id(): string; data(k: string): unknown; renderedPosition(): { x: number; y: number } };
/** What the test reads in the page (page.evaluate, waitForFunction). */
type Win = {
  __cy?: { nodes(): { length: number; map<T>(f: (n: CyNode) => T): T[] }; edges(): { length: number; map<T>(f: (e: { id(): string }) => T): T[] }; getElementById(id: string): CyNode };
  document: { getElementById(id: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null; querySelectorAll(sel: string): { length: number } };
  location: { hash: string };
};

describe("when the dashboard shows Schedules and Workflows run by the operator", { timeout: 180_000 }, () => {
  let c: TestCluster;
  let nats: NatsServer;
  let op: RunningOperator;
  let wnc: NatsConnection;
  let worker: Worker;
  let session: OpsSession;
  let dash: Dashboard;
  let noKube: Dashboard;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const loads: string[] = [];
  const t0 = Date.now();
  const timings: string[] = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const ref = (kind: "Schedule" | "Workflow" | "Task", name: string) => ({ ...CELERIAC_TYPES[kind], namespace: NS, name });
  const getJson = async <T>(d: Dashboard, path: string): Promise<{ status: number; body: T }> => {
    const r = await fetch(`${d.url}api${path}`);
    return { status: r.status, body: (await r.json()) as T };
  };
  const go = async (hash: string) => {
    const start = performance.now();
    await page.goto(`${dash.url}${hash}`);
    await page.waitForFunction((h) => (globalThis as unknown as Win).document.getElementById("main")?.dataset.ready === h, hash);
    loads.push(`${hash.replace(/\/task\/.*/, "/task/<id>")} ${Math.round(performance.now() - start)} ms`);
  };
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const text = (sel: string) => page.locator(sel).first().innerText();

  const workflowObject = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Workflow", metadata: { name, namespace: NS }, spec: { queue: QUEUE, ...spec } });
  const scheduleObject = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "celeriac.io/v1alpha1", kind: "Schedule", metadata: { name, namespace: NS }, spec });
  const finished = async (name: string) => {
    const w = await getObject<Workflow>(c.kc, ref("Workflow", name));
    return w.status?.completionTime && ["Succeeded", "Failed", "Cancelled"].includes(w.status.phase ?? "") ? w : undefined;
  };

  before(async () => {
    c = await startCluster(["queues", "tasks", "schedules", "workflows"]);
    nats = await startNatsServer();
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: NS } }, "test");
    op = await startOperator(operatorConfigFrom({ kubeconfig: join(c.dir, "kubeconfig"), nats: nats.url, watchNamespaces: NS, port: "0" }, {}), quiet, () => undefined);
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(NS, QUEUE), "test");
    const names = queueNames(NS, QUEUE);
    const nc0 = await natsConnect({ servers: nats.url });
    const jsm = await jetstreamManager(nc0);
    await waitFor("the queue's stream (made by the operator)", async () => (await jsm.streams.info(names.stream).catch(() => undefined)) !== undefined, 20_000);
    await nc0.close();
    timings.push(`operator and queue ready ${Date.now() - t0} ms`);

    wnc = await natsConnect({ servers: nats.url });
    worker = new Worker({
      nc: wnc, queue: QUEUE, namespace: NS, logger: quiet, workerName: "wl-w1", concurrency: 8, fetchExpiresMs: 1000, runningRecordDelayMs: 0,
      extraSinks: [new TaskResourceSink(c.kc, names.resultsBucket, { namespace: NS, log: quiet })],
      tasks: [
        defineTask("wf.ok", (args: unknown[]) => ({ ran: args[0] ?? null })),
        defineTask("wf.boom", () => {
          throw new UnrecoverableError("boom: the c step always fails");
        }),
        defineTask("tick", () => "tick"),
        defineTask("hold", async (_a, _k, ctx) => {
          await Promise.race([released, new Promise((r) => ctx.signal.addEventListener("abort", r))]);
          return "released";
        }),
      ],
    });
    await worker.start();

    await createObject(c.kc, CELERIAC_TYPES.Workflow, workflowObject("diamond", {
      steps: [
        { name: "a", task: "wf.ok", args: ["a"] },
        { name: "b", task: "wf.ok", args: ["b"], dependsOn: ["a"] },
        { name: "c", task: "wf.boom", dependsOn: ["a"] },
        { name: "d", task: "wf.ok", args: ["d"], dependsOn: ["b", "c"] },
      ],
      onExit: { task: "wf.ok", args: ["exit"] },
    }), "test");
    await createObject(c.kc, CELERIAC_TYPES.Workflow, workflowObject("live", { steps: [{ name: "p", task: "wf.ok" }, { name: "q", task: "hold", dependsOn: ["p"] }] }), "test");
    await createObject(c.kc, CELERIAC_TYPES.Workflow, workflowObject("line", { steps: [{ name: "x", task: "wf.ok" }, { name: "y", task: "wf.ok", dependsOn: ["x"] }] }), "test");
    await createObject(c.kc, CELERIAC_TYPES.Schedule, scheduleObject("ticker", { schedule: "@every 2s", taskTemplate: { spec: { queue: QUEUE, task: "tick" } } }), "test");
    await createObject(c.kc, CELERIAC_TYPES.Schedule, scheduleObject("held", { schedule: "@every 1s", concurrencyPolicy: "Forbid", taskTemplate: { spec: { queue: QUEUE, task: "hold" } } }), "test");
    await createObject(c.kc, CELERIAC_TYPES.Schedule, scheduleObject("paused", { schedule: "0 3 * * *", timeZone: "Europe/Berlin", suspend: true, taskTemplate: { spec: { queue: QUEUE, task: "tick" } } }), "test");

    await waitFor("the diamond and line Workflows finished", async () => (await finished("diamond")) && (await finished("line")), 60_000);
    timings.push(`workflows finished ${Date.now() - t0} ms`);
    await waitFor("two ticker runs Succeeded, written on the Tasks by the worker", async () => {
      const s = await getObject<Schedule>(c.kc, ref("Schedule", "ticker"));
      const tasks = (await listObjects<Task>(c.kc, CELERIAC_TYPES.Task, { namespace: NS, labelSelector: `${LABELS.schedule}=ticker` })).items;
      return s.status?.lastSuccessfulTime && tasks.filter((t) => t.status?.phase === "Succeeded").length >= 2;
    }, 30_000);
    await waitFor("the held Schedule missed two runs (Forbid while its Task runs)", async () => ((await getObject<Schedule>(c.kc, ref("Schedule", "held"))).status?.missedRuns ?? 0) >= 2, 15_000);
    await waitFor("the paused Schedule reconciled", async () => (await getObject<Schedule>(c.kc, ref("Schedule", "paused"))).status?.conditions?.length, 10_000);
    timings.push(`schedules ran ${Date.now() - t0} ms`);

    session = await openOps({ namespace: NS, nats: nats.url, devDir: join(SHOTS, ".celeriac") }, { name: "dashboard-workloads-test" });
    dash = await startDashboard({ session, kube: c.kc, port: 0, sampleMs: 1000, logger: quiet });
    noKube = await startDashboard({ session, port: 0, sampleMs: 1000, logger: quiet });
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--headless"] });
    page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") consoleErrors.push(`${page.url()}: ${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
    console.log(`dashboard workloads screenshots: ${SHOTS}`);
  });

  after(async () => {
    console.log(`setup: ${timings.join(", ")}; page loads (goto to rendered): ${loads.join(", ")}`);
    release();
    await browser?.close();
    await dash?.close();
    await noKube?.close();
    await session?.close();
    await worker?.close();
    await wnc?.close();
    await op?.stop();
    await nats?.cleanup();
    await c?.close();
  });

  it("GET /api/schedules answers each Schedule's status as the operator wrote it, with the last outcome", async () => {
    const r = await getJson<{ namespace: string; items: ScheduleRow[] }>(dash, "/schedules");
    assert.equal(r.status, 200);
    assert.equal(r.body.namespace, NS);
    assert.deepEqual(r.body.items.map((s) => s.name), ["held", "paused", "ticker"]);
    const live = await getObject<Schedule>(c.kc, ref("Schedule", "ticker"));
    const t = r.body.items.find((s) => s.name === "ticker")!;
    assert.equal(t.schedule, "@every 2s");
    assert.equal(t.suspend, false);
    assert.equal(t.creates, "Task");
    assert.equal(t.ready?.status, "True");
    assert.ok(t.nextScheduleTime && t.lastScheduleTime, JSON.stringify(t));
    assert.ok(Date.parse(t.nextScheduleTime) >= Date.parse(live.status!.lastScheduleTime!));
    assert.equal(t.missedRuns, live.status?.missedRuns ?? 0);
    assert.equal(t.lastOutcome?.kind, "Task");
    assert.equal(t.lastOutcome?.phase, "Succeeded");
    const held = r.body.items.find((s) => s.name === "held")!;
    const heldLive = await getObject<Schedule>(c.kc, ref("Schedule", "held"));
    assert.ok(held.missedRuns >= 2 && held.missedRuns <= (heldLive.status?.missedRuns ?? 0), `${held.missedRuns} missed, the Schedule says ${heldLive.status?.missedRuns}`);
    assert.equal(held.lastMissedTime !== undefined, true);
    assert.equal(held.active, 1);
    assert.equal(held.lastOutcome, undefined, "its one run has not finished");
    const p = r.body.items.find((s) => s.name === "paused")!;
    assert.equal(p.suspend, true);
    assert.equal(p.timeZone, "Europe/Berlin");
    assert.equal(p.lastOutcome, undefined);
  });

  it("GET /api/schedules/:name lists its runs newest first, each Task with its uid (its task id); 404 names the Schedules", async () => {
    const r = await getJson<ScheduleDetail>(dash, "/schedules/ticker");
    assert.equal(r.status, 200);
    const tasks = (await listObjects<Task>(c.kc, CELERIAC_TYPES.Task, { namespace: NS, labelSelector: `${LABELS.schedule}=ticker` })).items;
    assert.deepEqual(new Set(r.body.runs.map((x) => x.name)), new Set(tasks.map((x) => x.metadata.name)));
    for (const run of r.body.runs) {
      const live = tasks.find((x) => x.metadata.name === run.name)!;
      assert.equal(run.uid, live.metadata.uid);
      assert.equal(run.scheduledAt, live.metadata.annotations?.[ANNOTATIONS.scheduledAt]);
    }
    const at = r.body.runs.map((x) => Date.parse(x.scheduledAt!));
    assert.deepEqual(at, [...at].sort((a, b) => b - a));
    const nf = await getJson<{ error: string }>(dash, "/schedules/tikcer");
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error, `schedule "tikcer" not found in namespace "${NS}"; Schedules in namespace "${NS}": held, paused, ticker`);
    assert.equal((await getJson(dash, "/schedules/Bad_Name")).status, 400);
  });

  it("GET /api/workflows and /api/workflows/:name answer the operator's status: phases, task ids, edges; 404 names the Workflows", async () => {
    const list = await getJson<{ items: WorkflowRow[] }>(dash, "/workflows");
    assert.deepEqual(list.body.items.map((w) => w.name).sort(), ["diamond", "line", "live"]);
    const line = list.body.items.find((w) => w.name === "line")!;
    assert.deepEqual([line.phase, line.stepsDone, line.stepsTotal, line.queue], ["Succeeded", 2, 2, QUEUE]);
    assert.ok(line.startTime && line.completionTime);
    const live = (await finished("diamond"))!;
    const d = await getJson<WorkflowDetail>(dash, "/workflows/diamond");
    assert.equal(d.status, 200);
    assert.equal(d.body.phase, "Failed");
    assert.equal(d.body.phase, live.status?.phase);
    const phases: Record<string, string> = Object.fromEntries(d.body.steps.map((s) => [s.name, s.phase]));
    assert.deepEqual(phases, { ...Object.fromEntries(live.status!.steps!.map((s) => [s.name, s.phase])), onExit: live.status!.onExit!.phase } as Record<string, string>);
    assert.equal(phases.a, "Succeeded");
    assert.equal(phases.c, "Failed");
    assert.equal(phases.d, "Cancelled");
    assert.equal(phases.onExit, "Succeeded");
    assert.deepEqual(d.body.steps.find((s) => s.name === "a")!.taskIds, [`${live.metadata.uid}_a`]);
    assert.match(d.body.steps.find((s) => s.name === "c")!.error!.message, /boom/);
    assert.deepEqual(d.body.edges.map((e) => `${e.from}->${e.to}`).sort(), ["a->b", "a->c", "b->d", "c->d", "d->onExit"]);
    const nf = await getJson<{ error: string }>(dash, "/workflows/dimond");
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error, `workflow "dimond" not found in namespace "${NS}"; Workflows in namespace "${NS}": diamond, line, live`);
  });

  it("without a Kubernetes API every route answers 503 saying how to give one", async () => {
    for (const p of ["/schedules", "/schedules/ticker", "/workflows", "/workflows/diamond"]) {
      const r = await getJson<{ error: string }>(noKube, p);
      assert.equal(r.status, 503, p);
      assert.equal(r.body.error, NO_KUBE_MESSAGE);
    }
  });

  it("the Schedules page lists each Schedule; a Schedule's page links its runs to their task pages", async () => {
    await go("#/schedules");
    await page.waitForSelector('#schedules tr[data-schedule="ticker"]', { timeout: 5000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\npage: ${await text("#main")}\nconsole: ${consoleErrors.join("\n")}`);
    });
    assert.equal(await text('#schedules tr[data-schedule="paused"] td[data-field="suspend"]'), "yes");
    assert.equal(await text('#schedules tr[data-schedule="paused"] td[data-field="schedule"]'), "0 3 * * * (Europe/Berlin)");
    assert.match(await text('#schedules tr[data-schedule="ticker"] td[data-field="outcome"]'), /^Succeeded ticker-\d+$/);
    assert.match(await text('#schedules tr[data-schedule="ticker"] td[data-field="next"]'), /^(in \d+s|\d+s ago)$/);
    assert.ok(Number(await text('#schedules tr[data-schedule="held"] td[data-field="missed"]')) >= 2);
    assert.equal(await text('#schedules tr[data-schedule="held"] td[data-field="active"]'), "1");
    assert.match(await text("nav a.active"), /Schedules/);
    await shot("schedules");

    await go("#/schedule/ticker");
    await page.waitForSelector("#schedule tr[data-run]");
    const detail = (await getJson<ScheduleDetail>(dash, "/schedules/ticker")).body;
    const done = detail.runs.find((x) => x.phase === "Succeeded")!;
    assert.equal(await text(`#schedule tr[data-run="${done.name}"] td[data-field="phase"]`), "Succeeded");
    await shot("schedule");
    await page.click(`#schedule tr[data-run="${done.name}"] a`);
    await page.waitForFunction((id) => (globalThis as unknown as Win).location.hash === `#/task/${id}` && (globalThis as unknown as Win).document.getElementById("task-phase")?.textContent === "Succeeded", done.uid);
    await page.waitForFunction(() => (globalThis as unknown as Win).document.getElementById("main")?.dataset.ready?.startsWith("#/task/"));
  });

  it("the Workflows page lists each Workflow with its phase and steps done", async () => {
    await go("#/workflows");
    await page.waitForSelector('#workflows tr[data-workflow="diamond"]');
    assert.equal(await text('#workflows tr[data-workflow="diamond"] td[data-field="phase"]'), "Failed");
    assert.equal(await text('#workflows tr[data-workflow="diamond"] td[data-field="steps"]'), "4/4");
    assert.equal(await text('#workflows tr[data-workflow="line"] td[data-field="steps"]'), "2/2");
    await shot("workflows");
  });

  it("a Workflow's page draws the DAG with cytoscape, nodes in the step phases; clicking a node opens its task, which links back", async () => {
    await go("#/workflow/diamond");
    await page.waitForFunction(() => ((globalThis as unknown as Win).__cy?.nodes().length ?? 0) > 0);
    const d = (await getJson<WorkflowDetail>(dash, "/workflows/diamond")).body;
    const drawn = await page.evaluate(() => ({
      nodes: (globalThis as unknown as Win).__cy!.nodes().map((n) => [n.id(), n.data("phase")] as [string, string]),
      edges: (globalThis as unknown as Win).__cy!.edges().map((e) => e.id()),
    }));
    assert.equal(drawn.nodes.length, 5);
    assert.deepEqual(Object.fromEntries(drawn.nodes), Object.fromEntries(d.steps.map((s) => [s.name, s.phase])));
    assert.deepEqual(drawn.edges.sort(), ["a->b", "a->c", "b->d", "c->d", "d->onExit"]);
    assert.ok(await page.locator("#dag canvas").count() > 0, "cytoscape drew on canvas");
    assert.equal(await text("#workflow-phase"), "Failed");
    assert.equal(await text('#workflow-steps tr[data-step="c"] td[data-field="phase"]'), "Failed");
    // the layout puts a dependency above its dependents
    const y = await page.evaluate(() => Object.fromEntries(["a", "b", "d", "onExit"].map((n) => [n, (globalThis as unknown as Win).__cy!.getElementById(n).renderedPosition().y])));
    assert.ok(y.a! < y.b! && y.b! < y.d! && y.d! < y.onExit!, JSON.stringify(y));
    assert.match(await text("nav a.active"), /Workflows/);
    await shot("workflow");

    // a real click on node c opens its task's page
    const pos = await page.evaluate(() => (globalThis as unknown as Win).__cy!.getElementById("c").renderedPosition());
    const box = (await page.locator("#dag").boundingBox())!;
    await page.mouse.click(box.x + pos.x, box.y + pos.y);
    const cId = d.steps.find((s) => s.name === "c")!.taskIds[0]!;
    await page.waitForFunction((id) => (globalThis as unknown as Win).location.hash === `#/task/${id}` && (globalThis as unknown as Win).document.getElementById("task-phase")?.textContent === "Failed", cId);
    assert.equal(await text("#task-workflow"), "diamond");
    assert.match(await page.locator("#task-fields").innerText(), /^Workflow\tdiamond, step c$/im);
    await shot("workflow-step-task");
    await page.click("#task-workflow");
    await page.waitForFunction(() => (globalThis as unknown as Win).location.hash === "#/workflow/diamond" && ((globalThis as unknown as Win).__cy?.nodes().length ?? 0) === 5);
    // steps without task ids (a Pending step's nominal task; ids not recorded): "—" or the count, never a bare "+1 more"
    // (the route's real answer, with two steps' ids taken out: no Workflow here leaves a step without ids)
    await page.route("**/api/workflows/diamond", async (r) => {
      const res = await r.fetch();
      const j = (await res.json()) as WorkflowDetail;
      const [b, dd] = [j.steps.find((s) => s.name === "b")!, j.steps.find((s) => s.name === "d")!];
      Object.assign(dd, { phase: "Pending", taskIds: [], moreTasks: 1 });
      Object.assign(b, { phase: "Running", taskIds: [], moreTasks: 3 });
      await r.fulfill({ response: res, json: j });
    });
    try {
      await page.reload();
      await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector('#workflow-steps tr[data-step="d"] td[data-field="taskIds"]')?.textContent === "—", undefined, { timeout: 10_000 });
      assert.equal(await page.locator('#workflow-steps tr[data-step="b"] td[data-field="taskIds"]').innerText(), "3 tasks (ids not recorded)");
    } finally {
      await page.unroute("**/api/workflows/diamond");
    }
    assert.deepEqual(consoleErrors, []);
  });

  it("a running Workflow's page follows it: the running step's node turns Succeeded without a reload", async () => {
    await waitFor("step q of live Running", async () => (await getObject<Workflow>(c.kc, ref("Workflow", "live"))).status?.steps?.find((x) => x.name === "q")?.phase === "Running", 15_000);
    await go("#/workflow/live");
    const phaseOf = (n: string) => page.evaluate((id) => (globalThis as unknown as Win).__cy!.getElementById(id).data("phase") as string, n);
    assert.equal(await phaseOf("p"), "Succeeded");
    assert.equal(await phaseOf("q"), "Running");
    assert.equal(await text("#workflow-phase"), "Running");
    await shot("workflow-running");
    const t = performance.now();
    release();
    await page.waitForFunction(() => (globalThis as unknown as Win).__cy?.getElementById("q").data("phase") === "Succeeded", undefined, { timeout: 15_000 });
    await page.waitForFunction(() => (globalThis as unknown as Win).document.getElementById("workflow-phase")?.textContent === "Succeeded");
    timings.push(`live DAG updated ${Math.round(performance.now() - t)} ms after the release`);
    assert.equal(await text('#workflow-steps tr[data-step="q"] td[data-field="phase"]'), "Succeeded");
    await shot("workflow-succeeded");
  });

  it("without a Kubernetes API the pages say how to give one", async () => {
    await page.goto(`${noKube.url}#/schedules`);
    await page.waitForFunction(() => (globalThis as unknown as Win).document.getElementById("main")?.dataset.ready === "#/schedules");
    assert.equal(await text("#schedules .err"), NO_KUBE_MESSAGE);
    await page.goto(`${noKube.url}#/workflow/diamond`);
    await page.waitForFunction(() => (globalThis as unknown as Win).document.getElementById("main")?.dataset.ready === "#/workflow/diamond");
    assert.equal(await text("#workflow .err"), NO_KUBE_MESSAGE);
    await shot("no-kube");
    // the browser logs the 503 answers it was given: expected, not a page error
    assert.deepEqual(consoleErrors.filter((e) => !/ 503 /.test(e)), []);
  });
});
