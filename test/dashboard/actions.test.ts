// The dashboard's actions (dashboard/routes-actions.ts, dashboard/authz.ts) against real
// components: a real nats-server, an in-process Worker, the dashboard in-process; the in-memory
// Kubernetes API server with real kubectl for `--auth kubernetes`; headless Chromium for the
// confirmation flow. Revoke, pause, resume and queue purge through the HTTP API answer what the
// CLI's `-o json` answers for the same state; a filter replays only the dead letters it matches;
// with --auth kubernetes a user's Role decides (403 naming the permission), a bad token is 401 and
// CSRF is still required.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { chromium, type Browser } from "playwright-core";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { TaskRecord } from "../../api/message.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import { connect, type CeleriacClient } from "../../client/index.js";
import { openOps, type OpsSession } from "../../cli/session.js";
import { startDashboard, type Dashboard } from "../../dashboard/server.js";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { holdsFor, startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), "celeriac-dash-actions-"));
after(() => rmSync(DIR, { recursive: true, force: true }));
const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const TOKEN = "actions-test-token-0123456789";
const CSRF = { Cookie: "celeriac_csrf=c5rf", "X-CSRF-Token": "c5rf" };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers are checked field by field
type J = any;

function cleanEnv(): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG")), KUBECONFIG: "/nonexistent" };
}

/** Runs `celeriac <args>` and parses its `-o json` stdout. */
function cli(args: string[]): Promise<J> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: DIR, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (err += d.toString()));
    c.once("error", reject);
    c.once("close", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`celeriac ${args.join(" ")} exited ${code}: ${err}`))));
  });
}

/** Runs kubectl (async: the API server runs in this process). */
function kubectl(kubeconfig: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile("/usr/bin/kubectl", ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8" }, (e, out, err) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }));
  });
}

describe("when the dashboard's actions are used", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let wnc: NatsConnection;
  let jsm: JetStreamManager;
  let work: QueueNames;
  let results: KV;
  let client: CeleriacClient;
  let idleClient: CeleriacClient;
  let worker: Worker;
  let session: OpsSession;
  let dash: Dashboard;
  let readOnly: Dashboard;
  let api: ApiServer;
  let kdash: Dashboard;
  let browser: Browser | undefined;
  const queue = uniqueQueue("act");
  const idle = uniqueQueue("actidle");
  const calls = new Map<string, number>();
  let fixed = false;
  const ns = () => ["--namespace", "default", "--nats", srv.url];
  const record = async (id: string) => {
    const e = await results.get(id);
    return e && e.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  };
  const dlqCount = async () => (await jsm.streams.info(work.deadLetterStream)).state.messages;
  const post = async (base: string, path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: J }> => {
    const r = await fetch(`${base}api${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const act = (path: string, body: unknown = {}) => post(dash.url, path, body, { Authorization: `Bearer ${TOKEN}`, ...CSRF });

  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    work = queueNames("default", queue);
    await ensureQueueResources(jsm, work, queueSettings(), { updateOnDrift: true });
    await ensureQueueResources(jsm, queueNames("default", idle), queueSettings(), { updateOnDrift: true });
    results = await new Kvm(nc).open(work.resultsBucket);
    client = await connect({ servers: srv.url, queue });
    idleClient = await connect({ servers: srv.url, queue: idle });
    wnc = await natsConnect({ servers: srv.url });
    const failing = (name: string, text: string) => defineTask(name, (args: unknown[], _k, ctx) => {
      calls.set(ctx.taskId, (calls.get(ctx.taskId) ?? 0) + 1);
      if (!fixed) throw new UnrecoverableError(`${text} ${JSON.stringify(args[0])}`);
      return "fixed";
    });
    worker = new Worker({
      nc: wnc, queue, logger: quiet, workerName: "act-w1", concurrency: 4, settings: { ackWaitSeconds: 5 }, abortGraceSeconds: 1, shutdownGraceSeconds: 2, fetchExpiresMs: 1000,
      tasks: [
        defineTask("slow", async (_a, _k, ctx) => {
          await new Promise((r) => ctx.signal.addEventListener("abort", r));
          throw ctx.signal.reason ?? new Error("aborted");
        }),
        failing("fail.a", "boom A"),
        failing("fail.b", "boom B"),
        failing("fail.c", "boom C"),
      ],
    });
    await worker.start();
    for (const [t, n] of [["fail.a", 3], ["fail.b", 2], ["fail.c", 1]] as const) for (let i = 0; i < n; i++) await client.enqueue(t, [`${t}-${i}`]);
    await waitFor("6 dead letters", async () => (await dlqCount()) === 6, 15_000);
    session = await openOps({ namespace: "default", nats: srv.url, devDir: join(DIR, ".celeriac") }, { name: "dashboard-actions-test" });
    dash = await startDashboard({ session, port: 0, allowActions: true, token: TOKEN, sampleMs: 500, logger: quiet });
    readOnly = await startDashboard({ session, port: 0, sampleMs: 500, logger: quiet });
  });

  after(async () => {
    await browser?.close();
    await kdash?.close();
    await api?.close();
    await dash?.close();
    await readOnly?.close();
    await worker?.close();
    await wnc?.close(); // the worker does not close a connection it was given
    await session?.close();
    await client?.close();
    await idleClient?.close();
    await nc?.close();
    await srv?.stop();
  });

  it("refuses the new actions read-only (403), without the token (401) or without the CSRF token (403)", async () => {
    for (const path of [`/queues/${idle}/pause`, `/queues/${idle}/resume`, `/queues/${idle}/purge`, "/tasks/some-id/revoke"]) {
      assert.equal((await post(readOnly.url, path, {}, { Authorization: `Bearer ${TOKEN}`, ...CSRF })).status, 403, path);
      assert.equal((await post(dash.url, path, {}, CSRF)).status, 401, path);
      assert.equal((await post(dash.url, path, {}, { Authorization: `Bearer ${TOKEN}` })).status, 403, path);
    }
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).paused, false);
  });

  it("revokes a running task as tasks revoke does; a second revoke says finished, as the CLI's", async () => {
    const id = (await client.enqueue("slow")).id;
    await waitFor("slow running", async () => (await record(id))?.status.phase === "Running", 10_000);
    const r = await act(`/tasks/${id}/revoke`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { items: [{ id, before: "Running", action: "aborted", queue }] });
    await waitFor("slow Cancelled", async () => (await record(id))?.status.phase === "Cancelled", 10_000);
    const v = await cli(["tasks", "get", id, "-o", "json", ...ns()]);
    assert.equal(v.phase, "Cancelled");
    assert.ok(v.revokedAt);
    const again = await act(`/tasks/${id}/revoke`);
    assert.deepEqual(again.body, await cli(["tasks", "revoke", id, "-o", "json", ...ns()]));
    assert.equal(again.body.items[0].action, "finished");
    assert.equal((await act("/tasks/no-such-task-x/revoke")).status, 404);
  });

  it("pauses and resumes a queue as queue pause/resume do (the CLI sees the dashboard's pause)", async () => {
    const p = await act(`/queues/${idle}/pause`, { reason: "maintenance" });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.paused, true);
    assert.equal(p.body.changed, true);
    assert.equal(p.body.pausedReason, "maintenance");
    assert.equal(p.body.pausedBy, "celeriac-dashboard");
    const st = await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()]);
    assert.equal(st.paused, true);
    assert.equal(st.pausedReason, "maintenance");
    // pausing again changes nothing: the same answer as the CLI's
    assert.deepEqual((await act(`/queues/${idle}/pause`)).body, await cli(["queue", "pause", idle, "-o", "json", ...ns()]));
    const r = await act(`/queues/${idle}/resume`);
    assert.deepEqual({ paused: r.body.paused, changed: r.body.changed, pausedReason: r.body.pausedReason }, { paused: false, changed: true, pausedReason: "maintenance" });
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).paused, false);
    assert.deepEqual((await act(`/queues/${idle}/resume`)).body, await cli(["queue", "resume", idle, "-o", "json", ...ns()]));
    assert.equal((await act(`/queues/${idle}/pause`, { reason: 7 })).status, 400);
    assert.equal((await act("/queues/nope-queue/pause")).status, 404);
  });

  it("purges a queue's queued tasks as queue purge does, recording them Cancelled", async () => {
    const ids = (await Promise.all(Array.from({ length: 4 }, (_, i) => idleClient.enqueue("noop", [i])))).map((h) => h.id);
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).backlog, 4);
    const r = await act(`/queues/${idle}/purge`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.removed, 4);
    assert.deepEqual([...r.body.ids].sort(), [...ids].sort());
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).backlog, 0);
    const v = await cli(["tasks", "get", ids[0]!, "-o", "json", ...ns()]);
    assert.equal(v.phase, "Cancelled");
    // nothing left: the same answer as the CLI's
    assert.deepEqual((await act(`/queues/${idle}/purge`)).body, await cli(["queue", "purge", idle, "--yes", "-o", "json", ...ns()]));
  });

  it("selects dead letters by filter: counts them, replays only the matching ones, purges by error text", async () => {
    const all = (await cli(["dlq", "list", "--queue", queue, "-o", "json", ...ns()])).items as Array<{ seq: number; id: string; task: string; error: string }>;
    assert.equal(all.length, 6);
    const m = (await (await fetch(`${dash.url}api/dlq-matching?queue=${queue}&task=fail.a`)).json()) as J;
    assert.equal(m.matching, 3);
    assert.deepEqual(m.seqs, all.filter((d) => d.task === "fail.a").map((d) => d.seq));
    assert.equal(((await (await fetch(`${dash.url}api/dlq-matching?queue=${queue}&error=BOOM%20b`)).json()) as J).matching, 2);
    assert.equal((await fetch(`${dash.url}api/dlq-matching?queue=${queue}`)).status, 400);
    assert.equal((await act(`/dlq/${queue}/replay`, { filter: {} })).status, 400);
    assert.equal((await act(`/dlq/${queue}/replay`, { filter: { task: "fail.a" }, seqs: [1] })).status, 400);
    assert.equal((await act(`/dlq/${queue}/replay`, { filter: { color: "red" } })).status, 400);
    assert.equal((await act(`/dlq/${queue}/replay`, { filter: { task: "no.such" } })).status, 404);

    fixed = true;
    const r = await act(`/dlq/${queue}/replay`, { filter: { task: "fail.a" } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.items.map((o: J) => [o.seq, o.outcome]), all.filter((d) => d.task === "fail.a").map((d) => [d.seq, "Replayed"]));
    for (const d of all) {
      const rid = `${d.id}-r${d.seq}`;
      if (d.task === "fail.a") await waitFor(`replay ${rid} succeeded`, async () => (await record(rid))?.status.phase === "Succeeded", 10_000);
    }
    for (const d of all.filter((x) => x.task !== "fail.a")) assert.equal(calls.get(`${d.id}-r${d.seq}`), undefined, `${d.task} was not replayed`);
    // the replayed are listed with their replay, as dlq list shows
    const listed = (await cli(["dlq", "list", "--queue", queue, "-o", "json", ...ns()])).items as Array<{ seq: number; replay?: { phase?: string } }>;
    assert.equal(listed.filter((d) => d.replay?.phase === "Succeeded").length, 3);

    const p = await act(`/dlq/${queue}/purge`, { filter: { error: "boom b" } });
    assert.deepEqual(p.body, { deleted: 2, seqs: all.filter((d) => d.task === "fail.b").map((d) => d.seq) });
    assert.equal(await dlqCount(), 4);
  });

  it("with --auth kubernetes: a Role's verbs decide, 403 names the missing permission, a bad token is 401, CSRF still required", async () => {
    api = await startApiServer({ kubeconfigPath: join(DIR, "kubeconfig") });
    const kc = join(DIR, "kubeconfig");
    // the Queue CRD, so kubectl resolves queues.celeriac.io (as on a cluster with Celeriac installed)
    const crd = await kubectl(kc, ["apply", "-f", join(ROOT, "crds", "celeriac.io_queues.yaml")]);
    assert.equal(crd.code, 0, crd.err);
    for (const sa of ["alice", "bob", "dash", "nobody"]) assert.equal((await kubectl(kc, ["create", "serviceaccount", sa])).code, 0);
    writeFileSync(join(DIR, "rbac.yaml"), `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: queue-operator, namespace: default}
rules:
- {apiGroups: [celeriac.io], resources: [queues/deadletters], verbs: [replay]}
- {apiGroups: [celeriac.io], resources: [queues], resourceNames: [${queue}], verbs: [pause, resume]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-operates, namespace: default}
subjects: [{kind: ServiceAccount, name: alice}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: queue-operator}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: celeriac-dashboard-reviews}
rules:
- {apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}
- {apiGroups: [authorization.k8s.io], resources: [subjectaccessreviews], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: celeriac-dashboard-reviews}
subjects: [{kind: ServiceAccount, name: dash, namespace: default}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: celeriac-dashboard-reviews}
`);
    const applied = await kubectl(kc, ["apply", "-f", join(DIR, "rbac.yaml")]);
    assert.equal(applied.code, 0, applied.err);
    const token = async (sa: string) => {
      const r = await kubectl(kc, ["create", "token", sa, "--duration", "15m"]);
      assert.equal(r.code, 0, r.err);
      return r.out.trim();
    };
    const [alice, bob, dashToken, nobody] = [await token("alice"), await token("bob"), await token("dash"), await token("nobody")];
    // kubectl's own view of the same RBAC
    const can = async (as: string, verb: string, sub?: string) => (await kubectl(kc, ["auth", "can-i", verb, `queues.celeriac.io/${queue}`, ...(sub ? [`--subresource=${sub}`] : []), `--as=system:serviceaccount:default:${as}`])).out.trim();
    assert.equal(await can("alice", "replay", "deadletters"), "yes");
    assert.equal(await can("alice", "purge", "deadletters"), "no");
    assert.equal(await can("alice", "pause"), "yes");
    assert.equal(await can("bob", "replay", "deadletters"), "no");

    const kube = new KubeConfig();
    kube.loadFromOptions({
      clusters: [{ name: "c", server: api.url, skipTLSVerify: true }],
      users: [{ name: "dash", token: dashToken }],
      contexts: [{ name: "c", cluster: "c", user: "dash", namespace: "default" }],
      currentContext: "c",
    });
    kdash = await startDashboard({ session, port: 0, allowActions: true, auth: "kubernetes", kube, sampleMs: 500, logger: quiet });
    const sess = (await (await fetch(`${kdash.url}api/session`)).json()) as J;
    assert.equal(sess.auth, "kubernetes");
    const as = (t: string, path: string, body: unknown, csrf = true) => post(kdash.url, path, body, { Authorization: `Bearer ${t}`, ...(csrf ? CSRF : {}) });

    const callsBefore = calls.size;
    const denied = await as(bob, `/dlq/${queue}/replay`, { filter: { task: "fail.c" } });
    assert.equal(denied.status, 403);
    assert.match(denied.body.error, new RegExp(`user "system:serviceaccount:default:bob" cannot replay queues/deadletters "${queue}" \\(API group celeriac.io\\) in namespace "default"`));
    const purgeDenied = await as(alice, `/dlq/${queue}/purge`, { filter: { task: "fail.c" } });
    assert.equal(purgeDenied.status, 403);
    assert.match(purgeDenied.body.error, /cannot purge queues\/deadletters/);
    assert.equal((await as("not-a-token", `/dlq/${queue}/replay`, { filter: { task: "fail.c" } })).status, 401);
    assert.equal((await post(kdash.url, `/dlq/${queue}/replay`, { filter: { task: "fail.c" } }, CSRF)).status, 401);
    assert.equal((await as(alice, `/dlq/${queue}/replay`, { filter: { task: "fail.c" } }, false)).status, 403);
    await holdsFor("nothing replayed by the refused requests", () => calls.size === callsBefore, 300);

    const ok = await as(alice, `/dlq/${queue}/replay`, { filter: { task: "fail.c" } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.items[0].outcome, "Replayed");
    const paused = await as(alice, `/queues/${queue}/pause`, { reason: "by alice" });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.pausedBy, "system:serviceaccount:default:alice");
    assert.equal((await as(alice, `/queues/${queue}/resume`, {})).body.changed, true);
    // resourceNames: alice may pause this queue only
    assert.equal((await as(alice, `/queues/${idle}/pause`, {})).status, 403);
    assert.equal((await as(alice, `/queues/${queue}/purge`, {})).status, 403);

    // a dashboard whose own credential may not review tokens says what to grant
    const weak = new KubeConfig();
    weak.loadFromOptions({ clusters: [{ name: "c", server: api.url, skipTLSVerify: true }], users: [{ name: "n", token: nobody }], contexts: [{ name: "c", cluster: "c", user: "n" }], currentContext: "c" });
    const wdash = await startDashboard({ session, port: 0, allowActions: true, auth: "kubernetes", kube: weak, sampleMs: 500, logger: quiet });
    try {
      const r = await post(wdash.url, `/queues/${queue}/pause`, {}, { Authorization: `Bearer ${alice}`, ...CSRF });
      assert.equal(r.status, 500);
      assert.match(r.body.error, /cannot create tokenreviews .*grant its ServiceAccount create on tokenreviews/);
    } finally {
      await wdash.close();
    }
  });

  it("the page: Pause behind a confirmation, Purge only after typing the queue's name, Revoke on a task page, Purge all matching a filter", async () => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--headless"] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const answers: Array<string | boolean> = [];
    const asked: string[] = [];
    page.on("dialog", (d) => {
      asked.push(d.message());
      const a = answers.shift();
      void (a === false ? d.dismiss() : d.accept(typeof a === "string" ? a : undefined));
    });
    await page.goto(dash.url);
    await page.waitForSelector("#queue-actions");
    await page.fill("#queue-actions input.credential", TOKEN);
    await page.selectOption("#action-queue", idle);
    await page.fill("#pause-reason", "from the page");
    answers.push(false);
    await page.click("#pause");
    await waitFor("the pause was asked", () => asked.length === 1);
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).paused, false, "dismissed: not paused");
    answers.push(true);
    await page.click("#pause");
    await page.waitForFunction(() => /paused: from the page/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("action-result")?.textContent ?? ""));
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).pausedReason, "from the page");
    answers.push(true);
    await page.click("#resume");
    await page.waitForFunction(() => /running/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("action-result")?.textContent ?? ""));

    await Promise.all(Array.from({ length: 2 }, (_, i) => idleClient.enqueue("noop", [i])));
    answers.push("wrong-name");
    await page.click("#queue-purge");
    await page.waitForSelector("#queue-action-result .err");
    assert.equal((await cli(["queue", "status", idle, "-o", "json", "--sample", "0", ...ns()])).backlog, 2, "a wrong name purges nothing");
    answers.push(idle);
    await page.click("#queue-purge");
    await page.waitForFunction(() => /Purged 2 tasks/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("action-result")?.textContent ?? ""));
    assert.match(asked[asked.length - 1]!, /Type the queue's name/);

    const id = (await client.enqueue("slow")).id;
    await waitFor("slow running", async () => (await record(id))?.status.phase === "Running", 10_000);
    await page.goto(`${dash.url}#/task/${id}`);
    await page.waitForSelector("#revoke");
    answers.push(true);
    await page.click("#revoke");
    await page.waitForFunction(() => /aborted/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("action-result")?.textContent ?? ""));
    await waitFor("slow Cancelled", async () => (await record(id))?.status.phase === "Cancelled", 10_000);
    // the page re-reads the task (after the revoke, then every 3 s while it runs): Cancelled, Revoke disabled, no reload
    await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("task-phase")?.textContent === "Cancelled", undefined, { timeout: 10_000 });
    assert.equal(await page.locator("#revoke").isDisabled(), true);
    assert.equal(await page.locator("#task-view").getAttribute("data-refresh"), "stopped");
    // the page re-reads the task (after the revoke, then every 3 s while it runs): Cancelled, Revoke disabled, no reload
    await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("task-phase")?.textContent === "Cancelled", undefined, { timeout: 10_000 });
    assert.equal(await page.locator("#revoke").isDisabled(), true);
    assert.equal(await page.locator("#task-view").getAttribute("data-refresh"), "stopped");

    // Dead letters: count a filter's matches, then purge all of them behind a confirmation saying how many
    await page.goto(`${dash.url}#/dlq?queue=${queue}`);
    await page.waitForSelector("#dlq-filter");
    await page.fill("#f-task", "fail.a");
    await page.click("#f-count-button");
    await page.waitForFunction(() => /3 dead letters match/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("f-count")?.textContent ?? ""));
    answers.push(true);
    await page.click("#purge-matching");
    await page.waitForFunction(() => /Deleted 3 dead letters/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("action-result")?.textContent ?? ""));
    assert.match(asked[asked.length - 1]!, /Delete all 3 dead letters of .* where task = "fail.a"/);
    assert.equal(await dlqCount(), 1);
    // the list is re-read after the action: only the one left is listed, without a reload
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll("#dlq-list tr[data-seq]").length === 1, undefined, { timeout: 5000 });
    await page.fill("#f-task", "fail.c");
    await page.click("#f-count-button");
    await page.waitForFunction(() => /^1 dead letter matches\.$/.test((globalThis as unknown as { document: { getElementById(i: string): { textContent: string } | null } }).document.getElementById("f-count")?.textContent ?? ""));

    // read-only: no action controls
    await page.goto(readOnly.url);
    await page.waitForSelector("#queue-table");
    assert.equal(await page.locator("#queue-actions").count(), 0);
    assert.deepEqual(errors, []);
  });
});
