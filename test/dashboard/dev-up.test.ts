// `celeriac dashboard` against `celeriac dev up` with live work (issue 19's browser test): the local
// platform (API server, nats-server, operator, process kubelet) in a temp dir on free ports; two
// Queues applied with kubectl (one with a worker pod running test/fixtures/dashboard/tasks.ts, one
// suspended with a backlog); tasks from the client (succeed, fail to the dead-letter stream, a long
// one with progress), Task resources, a Schedule firing every 5 s and a diamond Workflow from kubectl; the built `celeriac dashboard --port 0`
// finding NATS and the kubeconfig by itself from the dev dir. Headless Chromium loads every page of
// the nav (so pages added later are covered) without console errors, the figures agree with the
// CLI's `-o json` for the same state, and each page's 1280×800 screenshot is written to
// CELERIAC_SCREENSHOTS (default a temp folder; logged). `scripts/dashboard-screenshots.ts` runs this
// test to refresh docs/images/dashboard/, with CELERIAC_SCREENSHOTS_LIVE_SECONDS of varying work
// (at most 60) before the screenshots so the charts have a shape.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import type { TaskRecord } from "../../api/message.js";
import { QUEUE_SETTINGS_KEY, queueNames } from "../../api/naming.js";
import type { QueueStatusOutput } from "../../api/queue-ops.js";
import type { InspectPingOutput } from "../../api/control.js";
import { connect, type CeleriacClient } from "../../client/index.js";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";
import { waitFor } from "../helpers/nats-server.js";
import { BIN, cleanEnv, cliJson, navPages, openBrowser, openPage, screenshotsDir, type Doc } from "./browser.js";

const WORK = "dash-work";
const HELD = "dash-held";
const HELD_BACKLOG = 4;

function queueYaml(name: string, extra: string): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Queue
metadata:
  name: ${name}
spec:
  worker:
    image: celeriac-e2e:dev
    command: ["celeriac", "worker"]
    # the long task would hold \`dev down\` for its whole grace period
    terminationGracePeriodSeconds: 1
    env:
      - name: CELERIAC_TASKS
        value: dist/test/fixtures/dashboard/tasks.js
  concurrency: 8
  autoscaling:
    minReplicas: 1
    maxReplicas: 1
${extra}`;
}

function taskYaml(name: string, args: unknown[]): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Task
metadata:
  name: ${name}
spec:
  queue: ${WORK}
  task: dash.add
  args: ${JSON.stringify(args)}
`;
}

/** A Schedule firing `dash.add` on the worked queue every 5 s (live work for the whole test, and a Schedules page with last runs). */
const SCHEDULE_YAML = `apiVersion: celeriac.io/v1alpha1
kind: Schedule
metadata:
  name: dash-every-5s
spec:
  schedule: "@every 5s"
  taskTemplate:
    spec:
      queue: ${WORK}
      task: dash.add
      args: [1, 1]
`;

/** A diamond Workflow of `dash.add` steps (a Workflows page with a DAG). */
const WORKFLOW_YAML = `apiVersion: celeriac.io/v1alpha1
kind: Workflow
metadata:
  name: dash-diamond
spec:
  queue: ${WORK}
  steps:
    - name: fetch
      task: dash.add
      args: [1, 2]
    - name: clean
      task: dash.add
      args: [3, 4]
      dependsOn: [fetch]
    - name: stats
      task: dash.add
      args: [5, 6]
      dependsOn: [fetch]
    - name: report
      task: dash.add
      args: [7, 8]
      dependsOn: [clean, stats]
`;

describe("when celeriac dashboard runs against celeriac dev up with live work", { timeout: 240_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), "celeriac-dash-devup-"));
  const devDir = join(root, ".celeriac");
  const shots = screenshotsDir("celeriac-dashboard-devup-shots-");
  const env = cleanEnv({ kubeconfig: "unset" });
  const t0 = performance.now();
  const phases: string[] = [];
  const phase = (what: string) => phases.push(`${what} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let natsUrl = "";
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let client: CeleriacClient;
  let held: CeleriacClient;
  let dash: ChildProcess;
  let dashOut = "";
  let url = "";
  let browser: Browser;
  let page: Page;
  let consoleErrors: string[] = [];
  const ids = { ok: [] as string[], broken: [] as string[], long: "" };
  const kubectlBin = k8sTools().kubectl132 ?? k8sTools().kubectl134 ?? "/usr/bin/kubectl";
  const kubectl = (args: string[]): Promise<ToolRun> => runTool(kubectlBin, args, { KUBECONFIG: join(devDir, "kubeconfig"), KUBECACHEDIR: join(root, "kube-cache") });
  const apply = async (yaml: string) => {
    const f = join(root, `apply-${Math.random().toString(16).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    const r = await kubectl(["apply", "-f", f]);
    assert.equal(r.code, 0, r.stderr);
  };
  const cli = <T>(args: string[]): Promise<T> => cliJson<T>(args, root, env);
  const text = (sel: string) => page.locator(sel).first().innerText();
  let results: KV;
  const record = async (id: string) => {
    const e = await results.get(id);
    return e && e.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  };
  /** `celeriac <args>` in the temp dir, without the caller's CELERIAC_* and KUBECONFIG. */
  const run = (args: string[]) => runTool(process.execPath, [BIN, ...args], {}, 120_000, { cwd: root, dropEnv: (k) => k.startsWith("CELERIAC_") || k === "KUBECONFIG" });
  const dlqCount = async () => (await jsm.streams.info(queueNames("default", WORK).deadLetterStream)).state.messages;
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`) });

  before(async () => {
    const up = await run(["dev", "up", "--timeout", "90"]);
    assert.equal(up.code, 0, up.stderr);
    natsUrl = (JSON.parse(readFileSync(join(devDir, "state.json"), "utf8")) as { natsUrl: string }).natsUrl;
    phase("dev up");
    await apply(queueYaml(WORK, ""));
    await apply(queueYaml(HELD, "  suspend: true\n"));
    nc = await natsConnect({ servers: natsUrl });
    jsm = await jetstreamManager(nc);
    // the operator has made the Queue's stream and results bucket and published its settings there
    const settings = (q: string) => new Kvm(nc).open(queueNames("default", q).resultsBucket).then((kv) => kv.get(QUEUE_SETTINGS_KEY)).then((e) => e?.operation === "PUT" || undefined, () => undefined);
    for (const q of [WORK, HELD]) await waitFor(`the settings of Queue ${q}`, () => settings(q), 30_000, 100);
    results = await new Kvm(nc).open(queueNames("default", WORK).resultsBucket);
    client = await connect({ servers: natsUrl, queue: WORK });
    held = await connect({ servers: natsUrl, queue: HELD });
    ids.ok = (await Promise.all([[1, 2], [3, 4], [5, 6]].map((a) => client.enqueue("dash.add", a)))).map((h) => h.id);
    ids.broken = (await Promise.all(["x", "y"].map((a) => client.enqueue("dash.broken", [a])))).map((h) => h.id);
    ids.long = (await client.enqueue("dash.long")).id;
    await Promise.all(Array.from({ length: HELD_BACKLOG }, (_, i) => held.enqueue("dash.add", [i, i])));
    await apply(taskYaml("add-from-kubectl-1", [10, 20]) + "---\n" + taskYaml("add-from-kubectl-2", [30, 40]) + "---\n" + SCHEDULE_YAML + "---\n" + WORKFLOW_YAML);
    phase("queues applied, tasks enqueued");
    const states = async () => {
      const crs = await kubectl(["get", "tasks", "add-from-kubectl-1", "add-from-kubectl-2", "-o", "jsonpath={.items[*].status.phase}"]);
      const wf = await kubectl(["get", "workflow", "dash-diamond", "-o", "jsonpath={.status.phase}"]);
      const ok = await Promise.all(ids.ok.map(async (id) => (await record(id))?.status.phase));
      const long = (await record(ids.long))?.status;
      return `crs ${crs.stdout}; workflow ${wf.stdout}; ok ${ok.join(" ")}; long ${long?.phase} ${long?.progress?.display ?? ""}; dead letters ${await dlqCount()}`;
    };
    // the worker pod starts, runs the tasks; the operator runs the Task resources
    await waitFor("the work settled", async () => ((await states()) === "crs Succeeded Succeeded; workflow Succeeded; ok Succeeded Succeeded Succeeded; long Running 3/10; dead letters 2" ? true : undefined), 60_000, 500).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await states()}`);
    });
    phase("work settled");

    dash = spawn(process.execPath, [BIN, "dashboard", "--port", "0"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    dash.stdout!.on("data", (d: Buffer) => (dashOut += d.toString()));
    dash.stderr!.on("data", (d: Buffer) => (dashOut += d.toString()));
    url = await waitFor("the dashboard's URL", () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(dashOut)?.[1], 15_000);
    await waitFor("the dashboard's Kubernetes API line", () => /Kubernetes API: .*\n/.test(dashOut) || undefined, 5000);
    ({ browser, page, consoleErrors } = await openBrowser());
    phase("dashboard and browser started");
    console.log(`dashboard screenshots: ${shots}`);
  });

  after(async () => {
    phase("done");
    console.log(`dev-up dashboard test phases: ${phases.join(", ")}`);
    await browser?.close();
    dash?.kill("SIGTERM");
    await client?.close();
    await held?.close();
    await nc?.close();
    await run(["dev", "down"]);
    rmSync(root, { recursive: true, force: true });
  });

  it("finds the local platform's NATS and Kubernetes API by itself", () => {
    const api = JSON.parse(readFileSync(join(devDir, "state.json"), "utf8")) as { apiUrl?: string };
    assert.match(dashOut, /Celeriac dashboard for namespace "default": http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(dashOut, new RegExp(`Kubernetes API: ${api.apiUrl ?? "http"}.* \\(kubeconfig from dev: ${join(devDir, "kubeconfig").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\)`));
    assert.match(dashOut, /Read-only/);
  });

  it("the overview shows the CLI's queue list figures and updates live", async () => {
    await openPage(page, url, "#/overview");
    const fields = ["backlog", "inFlight", "delayed", "dead", "workers"] as const;
    const shown = (cells: string[][]) => page.evaluate((cs) => cs.map(([q, f]) => (globalThis as unknown as Doc).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="${f}"]`)?.textContent ?? null), cells);
    // the page shows the sample of each tick: wait for a tick after the CLI's read; the Schedule's
    // task every 5 s may be in flight at one read and not the other, so read again (at most 3 times)
    let agreed = "";
    for (let attempt = 1; !agreed; attempt++) {
      const list = await cli<{ items: QueueStatusOutput[] }>(["queue", "list", "-o", "json"]);
      assert.deepEqual(list.items.map((q) => q.queue).sort(), [HELD, WORK]);
      const expected = list.items.flatMap((q) => [...fields.map((f) => [q.queue, f, String(q[f] ?? "")]), [q.queue, "paused", q.paused ? "yes" : "no"]]);
      const want = JSON.stringify(expected.map((e) => e[2]));
      const ok = await waitFor("the overview agrees with queue list -o json", async () => (JSON.stringify(await shown(expected)) === want ? true : undefined), 3000, 100).catch(async (err: Error) => {
        if (attempt === 3) throw new Error(`${err.message}: page ${JSON.stringify(await shown(expected))}, CLI ${JSON.stringify(expected)}`);
        return false;
      });
      if (ok) agreed = want;
    }
    const cell = (q: string, f: string) => text(`#queues tr[data-queue="${q}"] td[data-field="${f}"]`);
    assert.deepEqual([await cell(HELD, "backlog"), await cell(WORK, "dead"), await cell(WORK, "workers")], [String(HELD_BACKLOG), "2", "1"]);
    // live: a burst on the worked queue shows up as throughput; two more held tasks as backlog, without a reload
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.enqueue("dash.add", [i, 1])));
    await Promise.all([held.enqueue("dash.add", [7, 7]), held.enqueue("dash.add", [8, 8])]);
    await page.waitForFunction((q) => (globalThis as unknown as Doc).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="backlog"]`)?.textContent === "6", HELD, { timeout: 5000 });
    await page.waitForFunction((q) => Number((globalThis as unknown as Doc).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="ratePerSecond"]`)?.textContent) > 0, WORK, { timeout: 10_000 });
    assert.equal((await page.$$(".chart canvas")).length, 3);
  });

  it("the tasks page lists what tasks list lists, and a task page shows what tasks get shows", async () => {
    await openPage(page, url, `#/tasks?queue=${WORK}&limit=50`);
    const listed = await cli<{ items: TaskRecord[] }>(["tasks", "list", "--queue", WORK, "--limit", "50", "-o", "json"]);
    assert.ok(listed.items.length >= 6, `${listed.items.length} tasks`);
    assert.equal(await page.locator("#task-list tr[data-task]").count(), listed.items.length);
    for (const t of listed.items.filter((x) => [...ids.ok, ...ids.broken, ids.long].includes(x.id))) {
      assert.equal(await text(`#task-list tr[data-task="${t.id}"] td[data-field="phase"]`), t.status.phase, t.id);
    }
    for (const id of [ids.ok[0]!, ids.broken[0]!, ids.long]) {
      const v = await cli<{ phase: string; result?: unknown; error?: { type: string; message: string }; record?: TaskRecord }>(["tasks", "get", id, "-o", "json"]);
      await openPage(page, url, `#/task/${id}`);
      assert.equal(await text("#task-phase"), v.phase, id);
      if (id === ids.ok[0]) assert.equal(JSON.parse(await text("#task-result")), v.result);
      if (id === ids.broken[0]) assert.equal(await text("#task-error"), `${v.error!.type}: ${v.error!.message}`);
      if (id === ids.long) assert.match(await page.locator("#task-fields").innerText(), new RegExp(v.record!.status.progress!.display!.replace("/", "\\/")));
    }
  });

  it("the workers page shows the slots inspect ping shows, and the long task's progress", async () => {
    await openPage(page, url, "#/workers");
    await page.waitForSelector("#workers tr[data-worker]");
    const ping = await cli<InspectPingOutput>(["inspect", "ping", "--queue", WORK, "-o", "json"]);
    assert.equal(ping.items.length, 1);
    const w = ping.items[0]!;
    assert.equal(await text(`#workers tr[data-worker="${w.worker}"] td[data-field="slots"]`), `${w.active}/${w.concurrency}`);
    assert.equal(await text(`#workers tr[data-worker="${w.worker}"] td[data-field="registered"]`), "dash.add, dash.broken, dash.long");
    assert.equal((await text(`#workers tr[data-task="${ids.long}"] td[data-field="progress"]`)).trim(), "3/10");
  });

  it("the dead letters page lists what dlq list lists", async () => {
    const dl = await cli<{ items: Array<{ seq: number; id: string; reason: string }> }>(["dlq", "list", "--queue", WORK, "-o", "json"]);
    assert.deepEqual(dl.items.map((d) => d.id).sort(), [...ids.broken].sort());
    await openPage(page, url, `#/dlq?queue=${WORK}`);
    await page.waitForSelector("#dlq-list tr[data-seq]");
    assert.equal(await page.locator("#dlq-list tr[data-seq]").count(), dl.items.length);
    for (const d of dl.items) assert.equal(await text(`#dlq-list tr[data-seq="${d.seq}"] td[data-field="reason"]`), d.reason);
  });

  it("every page of the nav loads without console errors; a screenshot of each is written", async () => {
    await openPage(page, url, "#/overview");
    const nav = await navPages(page);
    assert.ok(nav.length >= 4, JSON.stringify(nav));
    // the pages that take a queue show the worked one
    const hashes = nav.map((n) => ({ name: n.page || n.label.toLowerCase().replace(/\W+/g, "-"), hash: /^#\/(tasks|dlq)$/.test(n.href) ? `${n.href}?queue=${WORK}` : n.href }));
    hashes.push({ name: "task", hash: `#/task/${ids.long}` });
    // the detail pages of the pages that have them, when the nav has those
    if (nav.some((n) => n.page === "schedules")) hashes.push({ name: "schedule", hash: "#/schedule/dash-every-5s" });
    if (nav.some((n) => n.page === "workflows")) hashes.push({ name: "workflow", hash: "#/workflow/dash-diamond" });
    // for the docs' images (scripts/dashboard-screenshots.ts): some seconds of varying work first, so the charts have a shape
    const liveSeconds = Math.min(60, Number(process.env.CELERIAC_SCREENSHOTS_LIVE_SECONDS ?? 0));
    for (let s = 0; s < liveSeconds; s++) {
      const n = Math.round(40 + 30 * Math.sin(s / 3));
      const tick = new Promise((r) => setTimeout(r, 1000));
      await Promise.all([...Array.from({ length: n }, (_, i) => client.enqueue("dash.add", [s, i])), ...(s % 4 === 0 ? [held.enqueue("dash.add", [s, s])] : [])]);
      await tick;
    }
    const loads: string[] = [];
    for (const { name, hash } of hashes) {
      const ms = await openPage(page, url, hash);
      if (name === "overview") await page.waitForFunction(() => (globalThis as unknown as Doc).document.querySelectorAll(".chart canvas").length === 3);
      if (name === "workers") await page.waitForSelector("#workers tr[data-worker]");
      if (name === "workflow") await page.waitForFunction(() => (globalThis as unknown as { __cy?: unknown }).__cy !== undefined, undefined, { timeout: 10_000 });
      if (name === "dlq") {
        await page.waitForSelector("#dlq-list tr[data-seq] button");
        await page.locator("#dlq-list tr[data-seq] button").first().click();
        await page.waitForSelector("#dlq-body");
      }
      assert.equal(await page.locator("#main .err[role=alert]").count(), 0, `${hash}: ${await page.locator("#main").innerText()}`);
      await shot(name);
      loads.push(`${name} ${ms} ms`);
    }
    console.log(`dashboard page loads against dev up (goto to rendered): ${loads.join(", ")}`);
    assert.deepEqual(consoleErrors, []);
  });
});
