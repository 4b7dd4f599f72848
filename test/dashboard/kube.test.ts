// The dashboard's Kubernetes routes (dashboard/routes-kube.ts) against the in-memory API server with
// the CRDs installed: Queue resources with status, worker pods (and a pod that is not one), Events
// about the Queues (Scaled decisions, a Warning) and about a Task; a real nats-server for the NATS
// side. /api/kube/{queues,pods,events} answer the mapped views, the reader picks up a new Event
// within its interval, and a dashboard whose API is unreachable, or that has none, says so while
// its NATS routes keep answering. Then headless Chromium shows the Workers page's pod table and
// autoscaler decisions and the Overview's columns from the Queue resources.
import { after, before, describe, it } from "node:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { chromium, type Browser, type Page } from "playwright-core";
import { pino } from "pino";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { TaskRecord } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { API_VERSION, REASONS } from "../../api/constants.js";
import { CELERIAC_TYPES } from "../../api/objects.js";
import { openOps, type OpsSession } from "../../cli/session.js";
import { kubeTarget } from "../../cli/kube-target.js";
import { startDashboard, type Dashboard } from "../../dashboard/server.js";
import { eventView, newestFirst, podView, queueView, type KubeQueueView, type QueueEventView, type WorkerPodView } from "../../dashboard/kube-reader.js";
import { eventBody } from "../../kube/events.js";
import { BUILTIN_TYPES, createObject, patchStatus } from "../../kube/k8s-client.js";
import { loadKubeConfig } from "../../kube/kubeconfig.js";
import { writeKubeconfig } from "../../devcluster/server/index.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { workerLabels } from "../../operator/queue/labels.js";
import { freePort, startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { startCluster, type TestCluster } from "../operator/runtime/cluster.js";

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const NS = "default";
const SOURCE = { component: "celeriac-operator", instance: "test" };

type Envelope<T> = { configured: boolean; namespace: string; at?: string; error?: string; items: T[] };

async function get<T>(base: string, path: string): Promise<{ status: number; body: T }> {
  const r = await fetch(new URL(path, base));
  return { status: r.status, body: (await r.json()) as T };
}

describe("pure mappings of the Kubernetes reader", () => {
  it("maps a crash-looping pod to its reason, READY and restarts, and events newest first", () => {
    const v = podView({
      metadata: { name: "p", labels: { "celeriac.io/queue": "q" }, creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: { nodeName: "n1", containers: [{ name: "worker" }, { name: "side" }] },
      status: { phase: "Running", conditions: [{ type: "Ready", status: "False" }], containerStatuses: [{ ready: false, restartCount: 4, state: { waiting: { reason: "CrashLoopBackOff" } } }, { ready: true, restartCount: 1 }] },
    }, Date.parse("2026-01-01T00:01:00Z"));
    assert.deepEqual(v, { name: "p", queue: "q", phase: "Running", reason: "CrashLoopBackOff", ready: "1/2", isReady: false, restarts: 5, node: "n1", createdAt: "2026-01-01T00:00:00Z", ageSeconds: 60, terminating: false });
    const q = queueView({ metadata: { name: "q" }, spec: { suspend: true }, status: {} });
    assert.deepEqual(q, { name: "q", workersReady: 0, suspended: true, conditions: [] });
    const evs = [
      eventView({ involvedObject: { name: "a" }, reason: "Scaled", message: "m1", lastTimestamp: "2026-01-01T00:00:01Z" }),
      eventView({ involvedObject: { name: "a" }, reason: "Scaled", message: "m2", series: { count: 3, lastObservedTime: "2026-01-01T00:00:05Z" } }),
      eventView({ involvedObject: { name: "b" }, reason: "StreamCreated", message: "m3", metadata: { creationTimestamp: "2026-01-01T00:00:03Z" } }),
    ];
    assert.deepEqual(newestFirst(evs).map((e) => [e.message, e.count]), [["m2", 3], ["m3", 1], ["m1", 1]]);
  });

  it("finds the kubeconfig as kubectl does: KUBECONFIG files that do not exist are skipped, and a KUBECONFIG set replaces ~/.kube/config", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-kube-target-"));
    try {
      const file = join(dir, "kubeconfig");
      writeKubeconfig(file, "http://127.0.0.1:1");
      const t = await kubeTarget(undefined, { KUBECONFIG: `${join(dir, "missing")}:${file}` }, join(dir, "no-dev"));
      assert.ok(t.kube);
      assert.deepEqual([t.source, t.file, t.kube.getCurrentCluster()?.server], ["KUBECONFIG", file, "http://127.0.0.1:1"]);
      // a set KUBECONFIG whose files all miss means no Kubernetes API, even with a running local platform
      const devDir = join(dir, "dev");
      mkdirSync(devDir);
      writeKubeconfig(join(devDir, "kubeconfig"), "http://127.0.0.1:2");
      writeFileSync(join(devDir, "state.json"), JSON.stringify({ ready: true, pid: process.pid }));
      const dev = await kubeTarget(undefined, {}, devDir);
      assert.equal(dev.kube ? dev.source : undefined, "dev", "the fixture is a running local platform");
      const none = await kubeTarget(undefined, { KUBECONFIG: `${join(dir, "missing")}:${join(dir, "gone")}` }, devDir);
      assert.equal(none.kube, undefined);
      assert.equal("reason" in none ? none.reason : "", `KUBECONFIG names no existing file (${join(dir, "missing")}:${join(dir, "gone")})`);
      // --kubeconfig naming a missing file says why
      await assert.rejects(kubeTarget(join(dir, "missing"), {}, devDir), new RegExp(`load kubeconfig ${join(dir, "missing").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .*ENOENT`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("when a dashboard reads Queues, worker pods and Events from the Kubernetes API", () => {
  let cluster: TestCluster;
  let srv: NatsServer;
  let nc: NatsConnection;
  let session: OpsSession;
  let dash: Dashboard;
  let unreachable: Dashboard;
  let none: Dashboard;
  let browser: Browser | undefined;
  const qa = uniqueQueue("kq");
  const qb = uniqueQueue("kqb");
  const t0 = Date.now();
  const taskUids = { pending: "", recorded: "" };

  const event = (queue: string, reason: string, message: string, ageMs: number, type: "Normal" | "Warning" = "Normal", kind = "Queue") =>
    createObject(cluster.kc, BUILTIN_TYPES.Event, eventBody({ apiVersion: API_VERSION, kind, name: queue, namespace: NS }, type, reason, message, SOURCE, t0 - ageMs), "test");

  before(async () => {
    cluster = await startCluster(["queues", "tasks"]);
    const kc = cluster.kc;
    // Queue resources with status (as the operator writes it)
    for (const [name, spec] of [[qa, {}], [qb, { suspend: true }]] as const) {
      await createObject(kc, CELERIAC_TYPES.Queue, { apiVersion: API_VERSION, kind: "Queue", metadata: { name, namespace: NS }, spec }, "test");
    }
    await patchStatus(kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: qa }, {
      readyReplicas: 2, replicas: 3, desiredReplicas: 3, backlog: 40, lastScaleTime: new Date(t0 - 5000).toISOString().replace(/\.\d+Z$/, "Z"),
      paused: { at: new Date(t0).toISOString().replace(/\.\d+Z$/, "Z"), by: "ops@host", reason: "maintenance" },
      conditions: [{ type: "Ready", status: "True", reason: "Reconciled", message: "ok", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 }],
    }, "test");
    await patchStatus(kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: qb }, {
      readyReplicas: 0, desiredReplicas: 0,
      conditions: [{ type: "Ready", status: "False", reason: "WorkersCrashLooping", message: "1 worker pod in CrashLoopBackOff", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 }],
    }, "test");
    // Task resources: one Pending with no record (its Queue is missing), one whose uid has a record
    const taskRes = async (name: string, spec: Record<string, unknown>, status: Record<string, unknown>) => {
      const t = await createObject(kc, CELERIAC_TYPES.Task, { apiVersion: API_VERSION, kind: "Task", metadata: { name, namespace: NS }, spec }, "test");
      await patchStatus(kc, { ...CELERIAC_TYPES.Task, namespace: NS, name }, status, "test");
      return (t.metadata as { uid?: string }).uid as string;
    };
    taskUids.pending = await taskRes("monthly-report", { queue: "no-such-queue", task: "reports.monthly", args: [2026, 11], kwargs: { format: "pdf" } }, {
      phase: "Pending", conditions: [{ type: "Accepted", status: "False", reason: "QueueNotFound", message: "Queue no-such-queue does not exist", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 }],
    });
    taskUids.recorded = await taskRes("nightly-sync", { queue: qa, task: "sync.nightly", args: ["eu"] }, { phase: "Succeeded" });
    // worker pods: two of qa (one crash-looping), one of qb; and a pod that is no worker
    const pod = async (name: string, labels: Record<string, string>, status: Record<string, unknown>) => {
      await createObject(kc, BUILTIN_TYPES.Pod, { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: NS, labels }, spec: { nodeName: "node-1", containers: [{ name: "worker", image: "w:1" }] } }, "test");
      await patchStatus(kc, { ...BUILTIN_TYPES.Pod, namespace: NS, name }, status, "test");
    };
    await pod(`${qa}-workers-aaaaa`, workerLabels(qa), { phase: "Running", conditions: [{ type: "Ready", status: "True" }], containerStatuses: [{ name: "worker", ready: true, restartCount: 0, image: "w:1", imageID: "", state: { running: {} } }] });
    await pod(`${qa}-workers-bbbbb`, workerLabels(qa), { phase: "Running", conditions: [{ type: "Ready", status: "False" }], containerStatuses: [{ name: "worker", ready: false, restartCount: 7, image: "w:1", imageID: "", state: { waiting: { reason: "CrashLoopBackOff" } } }] });
    await pod(`${qb}-workers-ccccc`, workerLabels(qb), { phase: "Pending" });
    await pod("not-a-worker", { app: "other" }, { phase: "Running" });
    // Events: three autoscaler decisions of qa, a Warning about qb, one about a Task (not shown)
    await event(qa, REASONS.Scaled, "Scaled workers from 0 to 1: backlog 5", 30_000);
    await event(qa, REASONS.Scaled, "Scaled workers from 1 to 3: backlog 40", 10_000);
    await event(qb, REASONS.StreamError, "stream trouble", 20_000, "Warning");
    await event(qa, REASONS.Queued, "a task event", 1000, "Normal", "Task");

    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    const jsm = await jetstreamManager(nc);
    for (const q of [qa, qb]) await ensureQueueResources(jsm, queueNames(NS, q), queueSettings(), { updateOnDrift: true });
    const rec: TaskRecord = { id: taskUids.recorded, task: "sync.nightly", queue: qa, namespace: NS, origin: { kind: "Task", namespace: NS, name: "nightly-sync", uid: taskUids.recorded }, status: { phase: "Succeeded", result: "synced" }, updatedAt: new Date().toISOString() };
    await (await new Kvm(nc).open(queueNames(NS, qa).resultsBucket)).put(taskUids.recorded, JSON.stringify(rec));
    session = await openOps({ namespace: NS, nats: srv.url, devDir: cluster.dir }, { name: "dashboard-kube-test" });
    dash = await startDashboard({ session, kube: kc, port: 0, sampleMs: 500, kubeIntervalMs: 300, logger: quiet });
    // a kubeconfig naming a port nothing listens on
    const deadFile = `${cluster.dir}/dead-kubeconfig`;
    writeKubeconfig(deadFile, `http://127.0.0.1:${await freePort()}`);
    unreachable = await startDashboard({ session, kube: loadKubeConfig({ kubeconfig: deadFile, env: {} }), port: 0, sampleMs: 500, kubeIntervalMs: 300, logger: quiet });
    none = await startDashboard({ session, port: 0, sampleMs: 500, logger: quiet });
  });

  after(async () => {
    await browser?.close();
    await dash?.close();
    await unreachable?.close();
    await none?.close();
    await session?.close();
    await nc?.close();
    await srv?.cleanup();
    await cluster?.close();
  });

  it("answers the Queue resources' workers ready/desired, suspend, paused and conditions", async () => {
    const r = await waitFor("the first read", async () => {
      const x = await get<Envelope<KubeQueueView>>(dash.url, "/api/kube/queues");
      return x.body.at ? x : undefined;
    }, 10_000);
    assert.equal(r.status, 200);
    assert.equal(r.body.configured, true);
    assert.equal(r.body.error, undefined);
    assert.equal(r.body.namespace, NS);
    const a = r.body.items.find((q) => q.name === qa)!;
    const b = r.body.items.find((q) => q.name === qb)!;
    assert.deepEqual({ ready: a.ready, workersReady: a.workersReady, workersDesired: a.workersDesired, replicas: a.replicas, suspended: a.suspended, backlog: a.backlog, paused: { by: a.paused?.by, reason: a.paused?.reason } },
      { ready: "True", workersReady: 2, workersDesired: 3, replicas: 3, suspended: false, backlog: 40, paused: { by: "ops@host", reason: "maintenance" } });
    assert.deepEqual(a.conditions.map((c) => [c.type, c.status, c.reason]), [["Ready", "True", "Reconciled"]]);
    assert.deepEqual({ suspended: b.suspended, workersReady: b.workersReady, workersDesired: b.workersDesired, paused: b.paused }, { suspended: true, workersReady: 0, workersDesired: 0, paused: undefined });
  });

  it("finds a task by its Task resource's name: by uid when recorded, else a view from the resource; 404 names both places", async () => {
    type V = { id: string; phase?: string; args?: unknown[]; kwargs?: Record<string, unknown>; result?: unknown; taskResource: { name: string; uid: string; reason?: string; message?: string; args: unknown[] } };
    const pending = await get<V>(dash.url, "/api/tasks?id=monthly-report");
    assert.equal(pending.status, 200, JSON.stringify(pending.body));
    assert.deepEqual({ id: pending.body.id, phase: pending.body.phase, args: pending.body.args, kwargs: pending.body.kwargs, reason: pending.body.taskResource.reason, message: pending.body.taskResource.message },
      { id: taskUids.pending, phase: "Pending", args: [2026, 11], kwargs: { format: "pdf" }, reason: "QueueNotFound", message: "Queue no-such-queue does not exist" });
    const recorded = await get<V>(dash.url, "/api/tasks?id=nightly-sync");
    assert.deepEqual({ status: recorded.status, id: recorded.body.id, phase: recorded.body.phase, result: recorded.body.result, args: recorded.body.taskResource.args },
      { status: 200, id: taskUids.recorded, phase: "Succeeded", result: "synced", args: ["eu"] });
    const missing = await get<{ error: string }>(dash.url, "/api/tasks?id=no-such-task");
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /not found in any queue of namespace "default" \(.*\), and no Task resource of that name:/);
  });

  it("answers the worker pods only, with ready, restarts, phase, reason, node and age", async () => {
    const r = await get<Envelope<WorkerPodView>>(dash.url, "/api/kube/pods");
    const want = [[qa, `${qa}-workers-aaaaa`], [qa, `${qa}-workers-bbbbb`], [qb, `${qb}-workers-ccccc`]].sort(([qx, x], [qy, y]) => qx!.localeCompare(qy!) || x!.localeCompare(y!));
    assert.deepEqual(r.body.items.map((p) => [p.queue, p.name]), want);
    const crash = r.body.items.find((p) => p.name === `${qa}-workers-bbbbb`)!;
    assert.deepEqual({ queue: crash.queue, ready: crash.ready, isReady: crash.isReady, restarts: crash.restarts, phase: crash.phase, reason: crash.reason, node: crash.node }, { queue: qa, ready: "0/1", isReady: false, restarts: 7, phase: "Running", reason: "CrashLoopBackOff", node: "node-1" });
    assert.ok(crash.ageSeconds !== undefined && crash.ageSeconds >= 0 && crash.ageSeconds < 600, `age ${crash.ageSeconds}`);
    assert.equal(r.body.items.find((p) => p.name === `${qa}-workers-aaaaa`)!.ready, "1/1");
    const onlyB = await get<Envelope<WorkerPodView>>(dash.url, `/api/kube/pods?queue=${qb}`);
    assert.deepEqual(onlyB.body.items.map((p) => [p.name, p.phase]), [[`${qb}-workers-ccccc`, "Pending"]]);
  });

  it("answers the Queues' Events newest first, filters by reason and queue, and picks up a new one at the next read", async () => {
    const all = await get<Envelope<QueueEventView>>(dash.url, "/api/kube/events");
    assert.deepEqual(all.body.items.map((e) => [e.queue, e.reason]), [[qa, "Scaled"], [qb, "StreamError"], [qa, "Scaled"]]);
    assert.equal(all.body.items[1]!.type, "Warning");
    const scaled = await get<Envelope<QueueEventView>>(dash.url, `/api/kube/events?reason=Scaled&queue=${qa}`);
    assert.deepEqual(scaled.body.items.map((e) => e.message), ["Scaled workers from 1 to 3: backlog 40", "Scaled workers from 0 to 1: backlog 5"]);
    assert.equal(scaled.body.items[0]!.source, "celeriac-operator");
    assert.equal((await get<{ error: string }>(dash.url, "/api/kube/events?limit=0")).status, 400);
    // a new decision shows at the next read (every 300 ms here), not per request
    const started = Date.now();
    await createObject(cluster.kc, BUILTIN_TYPES.Event, eventBody({ apiVersion: API_VERSION, kind: "Queue", name: qa, namespace: NS }, "Normal", REASONS.Scaled, "Scaled workers from 3 to 1: idle", SOURCE, Date.now()), "test");
    await waitFor("the new Scaled event", async () => (await get<Envelope<QueueEventView>>(dash.url, "/api/kube/events?reason=Scaled&limit=1")).body.items[0]?.message === "Scaled workers from 3 to 1: idle", 5000);
    console.log(`new Event visible after ${Date.now() - started} ms (read every 300 ms)`);
  });

  it("says so when the API is unreachable or absent, and the NATS routes keep answering", async () => {
    const r = await waitFor("the failed read", async () => {
      const x = await get<Envelope<KubeQueueView>>(unreachable.url, "/api/kube/queues");
      return x.body.error ? x : undefined;
    }, 10_000);
    assert.equal(r.status, 200);
    assert.equal(r.body.configured, true);
    assert.match(r.body.error!, /list queues default.*(ECONNREFUSED|connect|fetch failed)/i);
    assert.deepEqual(r.body.items, []);
    for (const p of ["pods", "events"]) assert.ok((await get<Envelope<unknown>>(unreachable.url, `/api/kube/${p}`)).body.error, p);
    const n = await get<Envelope<KubeQueueView>>(none.url, "/api/kube/queues");
    assert.deepEqual({ status: n.status, configured: n.body.configured, items: n.body.items }, { status: 200, configured: false, items: [] });
    assert.match(n.body.error!, /no Kubernetes API/);
    for (const d of [unreachable, none]) {
      const q = await get<{ items: Array<{ queue: string }> }>(d.url, "/api/queues");
      assert.deepEqual(q.body.items.map((x) => x.queue).sort(), [qa, qb].sort());
    }
  });

  it("the Workers page shows the worker pods and the autoscaler decisions; the Overview the Queue resources' columns", async () => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--headless"] });
    const page: Page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await page.goto(`${dash.url}#/workers`);
    await page.waitForSelector(`#kube-workers tr[data-pod="${qa}-workers-bbbbb"]`);
    assert.equal(await page.locator(`#kube-workers tr[data-pod="${qa}-workers-bbbbb"] td[data-field="restarts"]`).innerText(), "7");
    assert.equal(await page.locator(`#kube-workers tr[data-pod="${qa}-workers-bbbbb"] td[data-field="phase"]`).innerText(), "Running (CrashLoopBackOff)");
    assert.equal(await page.locator(`#kube-workers tr[data-event-queue="${qa}"]`).count(), 3);
    assert.equal(await page.locator(`#kube-workers tr[data-event-queue="${qa}"] td[data-field="message"]`).first().innerText(), "Scaled workers from 3 to 1: idle");
    const shots = mkdtempSync(join(tmpdir(), "celeriac-dashboard-kube-shots-"));
    await page.screenshot({ path: join(shots, "workers.png"), fullPage: true });
    await page.goto(`${dash.url}#/overview`);
    await page.waitForFunction((q) => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="kubeWorkers"]`)?.textContent === "2/3", qa, { timeout: 10_000 });
    assert.equal(await page.locator(`#queues tr[data-queue="${qa}"] td[data-field="kubeSuspend"]`).innerText(), "paused: maintenance");
    assert.equal(await page.locator(`#queues tr[data-queue="${qb}"] td[data-field="kubeSuspend"]`).innerText(), "suspended");
    // the Queue's Ready condition: status and reason, the message as the title
    assert.equal(await page.locator(`#queues tr[data-queue="${qb}"] td[data-field="kubeReady"]`).innerText(), "False: WorkersCrashLooping");
    assert.equal(await page.locator(`#queues tr[data-queue="${qb}"] td[data-field="kubeReady"]`).getAttribute("title"), "1 worker pod in CrashLoopBackOff");
    assert.equal(await page.locator(`#queues tr[data-queue="${qa}"] td[data-field="kubeReady"]`).innerText(), "True: Reconciled");
    await page.waitForSelector('#kube-overview [data-kube="ok"]');
    await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });
    console.log(`screenshots: ${shots}`);
    // a Task resource's page by its name: Pending with the reason, args from its spec
    await page.goto(`${dash.url}#/task/monthly-report`);
    await page.waitForSelector("#task-resource");
    assert.equal(await page.locator("#task-phase").innerText(), "Pending");
    assert.match(await page.locator("#task-resource").innerText(), new RegExp(`^monthly-report \\(uid ${taskUids.pending}\\): Pending \\(QueueNotFound\\): Queue no-such-queue does not exist$`));
    assert.match(await page.locator("#task-args").innerText(), /args: \[\s*2026,\s*11\s*\]/);
    assert.equal(await page.locator("#task-args-source").innerText(), "From the Task resource's spec (monthly-report).");
    await page.goto(`${dash.url}#/task/nightly-sync`);
    await page.waitForSelector("#task-result");
    assert.match(await page.locator("#task-args").innerText(), /"eu"/);
    // by its uid (no Task read): the page says where a Task's args are
    await page.goto(`${dash.url}#/task/${taskUids.recorded}`);
    await page.waitForSelector("#task-args-missing");
    assert.equal(await page.locator("#task-args-missing").innerText(), `Not in the record: they are in the Task resource's spec (kubectl get task nightly-sync -n ${NS} -o jsonpath='{.spec.args}').`);
    // without the API: "—" and a note
    await page.goto(`${none.url}#/overview`);
    await page.waitForSelector('#kube-overview [data-kube="absent"]');
    await page.waitForFunction((q) => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="kubeWorkers"]`)?.textContent === "—", qa);
    assert.deepEqual(errors, []);
  });
});
