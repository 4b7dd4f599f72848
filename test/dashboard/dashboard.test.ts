// `celeriac dashboard` in a real browser: a real nats-server, an in-process Worker with tasks in a
// few states (succeeded, running with progress, dead-lettered) and a queue with a backlog; the
// dashboard started in-process (actions allowed) and as the built bin (read-only); headless
// Chromium (Debian's, driven by playwright-core) loads each page, and the figures it shows are
// those of the CLI's `-o json` for the same state. Screenshots go to a temp folder (logged).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { TaskRecord } from "../../api/message.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import type { QueueStatusOutput } from "../../api/queue-ops.js";
import type { InspectPingOutput } from "../../api/control.js";
import { connect, type CeleriacClient } from "../../client/index.js";
import { openOps, type OpsSession } from "../../cli/session.js";
import { startDashboard, type Dashboard } from "../../dashboard/server.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { holdsFor, startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { BIN, cleanEnv, cliJson, openBrowser, openPage, type Doc } from "./browser.js";

const CWD = mkdtempSync(join(tmpdir(), "celeriac-dash-cwd-"));
const SHOTS = mkdtempSync(join(tmpdir(), "celeriac-dashboard-shots-"));
after(() => rmSync(CWD, { recursive: true, force: true }));
const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const TOKEN = "dashboard-test-token-0123456789";

/** Runs `celeriac <args>` and parses its `-o json` stdout. */
const cli = <T>(args: string[]): Promise<T> => cliJson<T>(args, CWD);

describe("when a dashboard serves queues with tasks in a few states", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let work: QueueNames;
  let results: KV;
  let client: CeleriacClient;
  let idleClient: CeleriacClient;
  let worker: Worker;
  let session: OpsSession;
  let dash: Dashboard;
  let readOnly: ChildProcess;
  let readOnlyUrl: string;
  let browser: Browser;
  let page: Page;
  let consoleErrors: string[] = [];
  const queue = uniqueQueue("dash");
  const idle = uniqueQueue("dashidle");
  const calls = new Map<string, number>();
  let fixed = false;
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  const ids: { ok: string; slow: string; flaky: string[] } = { ok: "", slow: "", flaky: [] };
  const ns = () => ["--namespace", "default", "--nats", srv.url];
  const record = async (id: string) => {
    const e = await results.get(id);
    return e && e.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  };
  const dlqCount = async () => (await jsm.streams.info(work.deadLetterStream)).state.messages;
  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const text = (sel: string) => page.locator(sel).first().innerText();
  const loads: string[] = [];
  const go = async (hash: string) => {
    const ms = await openPage(page, dash.url, hash);
    loads.push(`${hash.split("?")[0]!.replace(/\/task\/.*/, "/task/<id>")} ${ms} ms`);
  };

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
    const wnc = await natsConnect({ servers: srv.url });
    worker = new Worker({
      nc: wnc, queue, logger: quiet, workerName: "dash-w1", concurrency: 4, settings: { ackWaitSeconds: 5 }, abortGraceSeconds: 1, shutdownGraceSeconds: 2, fetchExpiresMs: 1000,
      tasks: [
        defineTask("ok.add", (args: unknown[]) => (args[0] as number) + (args[1] as number)),
        defineTask("slow", async (_a, _k, ctx) => {
          ctx.progress({ done: 3, total: 10 });
          await Promise.race([released, new Promise((r) => ctx.signal.addEventListener("abort", r))]);
          return "done";
        }),
        defineTask("flaky", (args: unknown[], _k, ctx) => {
          calls.set(ctx.taskId, (calls.get(ctx.taskId) ?? 0) + 1);
          if (!fixed) throw new UnrecoverableError(`not fixed yet: ${JSON.stringify(args[0])}`);
          return `fixed ${JSON.stringify(args[0])}`;
        }),
      ],
    });
    await worker.start();
    ids.ok = (await client.enqueue("ok.add", [2, 3])).id;
    ids.slow = (await client.enqueue("slow")).id;
    ids.flaky = (await Promise.all(["a", "b"].map((x) => client.enqueue("flaky", [x])))).map((h) => h.id);
    await Promise.all(Array.from({ length: 5 }, (_, i) => idleClient.enqueue("noop", [i])));
    const states = async () => `ok ${(await record(ids.ok))?.status.phase}, slow ${(await record(ids.slow))?.status.phase} ${(await record(ids.slow))?.status.progress?.display}, dead letters ${await dlqCount()}`;
    await waitFor("the states", async () => (await states()) === "ok Succeeded, slow Running 3/10, dead letters 2", 15_000).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await states()}`);
    });

    session = await openOps({ namespace: "default", nats: srv.url, devDir: join(CWD, ".celeriac") }, { name: "dashboard-test" });
    dash = await startDashboard({ session, port: 0, allowActions: true, token: TOKEN, sampleMs: 500, inspectTimeoutMs: 500, logger: quiet });
    readOnly = spawn(process.execPath, [BIN, "dashboard", "--port", "0", ...ns()], { cwd: CWD, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    readOnly.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    readOnlyUrl = await waitFor("the read-only dashboard's URL", () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 15_000);
    await waitFor("the read-only line", () => /Read-only/.test(out), 5_000);

    ({ browser, page, consoleErrors } = await openBrowser({ width: 1400, height: 900 }));
    console.log(`dashboard screenshots: ${SHOTS}`);
  });

  after(async () => {
    console.log(`dashboard page loads (goto to rendered): ${loads.join(", ")}`);
    release();
    await browser?.close();
    readOnly?.kill("SIGTERM");
    await dash?.close();
    await session?.close();
    await worker?.close();
    await client?.close();
    await idleClient?.close();
    await nc?.close();
    await srv?.cleanup();
  });

  it("the overview shows every queue with the CLI's figures and updates live", async () => {
    await go("#/overview");
    const cell = (q: string, f: string) => text(`#queues tr[data-queue="${q}"] td[data-field="${f}"]`);
    await page.waitForFunction((q) => (globalThis as unknown as Doc).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="backlog"]`)?.textContent === "5", idle);
    // live: two more tasks show up without a reload (the SSE tick)
    await Promise.all([idleClient.enqueue("noop", [5]), idleClient.enqueue("noop", [6])]);
    await page.waitForFunction((q) => (globalThis as unknown as Doc).document.querySelector(`#queues tr[data-queue="${q}"] td[data-field="backlog"]`)?.textContent === "7", idle, { timeout: 5000 });
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.querySelectorAll(".chart canvas").length === 3);
    const list = await cli<{ items: QueueStatusOutput[] }>(["queue", "list", "-o", "json", ...ns()]);
    assert.deepEqual(list.items.map((q) => q.queue).sort(), [queue, idle].sort());
    await new Promise((r) => setTimeout(r, 700)); // one more tick after the CLI's read
    for (const q of list.items) {
      for (const f of ["backlog", "inFlight", "delayed", "dead", "workers"] as const) assert.equal(await cell(q.queue, f), String(q[f] ?? ""), `${q.queue} ${f}`);
      assert.equal(await cell(q.queue, "paused"), q.paused ? "yes" : "no");
    }
    assert.equal(await cell(queue, "inFlight"), "1");
    assert.equal(await cell(queue, "dead"), "2");
    // each queue's chart colour is a hash of its name (adding a queue changes no other's): the legend's marker
    const colours = await page.evaluate((qs) => {
      const g = globalThis as unknown as { document: { createElement(t: string): { style: { borderColor: string } }; querySelectorAll(s: string): Array<{ querySelector(s: string): { textContent: string; style: { borderColor: string } } | null }> }; queueColour(q: string): string };
      const norm = (c: string) => { const d = g.document.createElement("div"); d.style.borderColor = c; return d.style.borderColor; };
      const chart = [...g.document.querySelectorAll('[data-chart="failures"] .u-legend .u-series')];
      return qs.map((q) => [q, chart.find((s) => s.querySelector(".u-label")?.textContent === q)?.querySelector(".u-marker")?.style.borderColor, norm(g.queueColour(q))]);
    }, [queue, idle]);
    for (const [q, shown, want] of colours) assert.equal(shown, want, `${q}'s colour`);
    await shot("overview");
  });

  it("the tasks pages list tasks and show one as tasks get does", async () => {
    await go(`#/tasks?queue=${queue}&limit=50`);
    await page.waitForSelector(`#task-list tr[data-task="${ids.ok}"]`);
    const listed = await cli<{ items: TaskRecord[] }>(["tasks", "list", "--queue", queue, "-o", "json", ...ns()]);
    for (const t of listed.items) assert.equal(await text(`#task-list tr[data-task="${t.id}"] td[data-field="phase"]`), t.status.phase, t.id);
    // newest first, on the page as in tasks list: the last written record leads; limit 1 is that one
    const rows = await page.locator("#task-list tr[data-task]").evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { task: string } }).dataset.task));
    assert.deepEqual(rows, listed.items.map((t) => t.id));
    const times = listed.items.map((t) => Date.parse(t.updatedAt));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), "updatedAt newest first");
    const newest = await fetch(`${dash.url}api/tasks?queue=${queue}&limit=1`).then((r) => r.json() as Promise<{ items: TaskRecord[]; truncated: boolean }>);
    assert.deepEqual({ id: newest.items[0]?.id, truncated: newest.truncated }, { id: listed.items[0]!.id, truncated: true });
    await shot("tasks");

    for (const id of [ids.ok, ids.slow, ids.flaky[0]!]) {
      const v = await cli<{ phase: string; result?: unknown; error?: { type: string; message: string } }>(["tasks", "get", id, "-o", "json", ...ns()]);
      await go(`#/task/${id}`);
      assert.equal(await text("#task-phase"), v.phase, id);
      if (id === ids.ok) assert.equal(JSON.parse(await text("#task-result")), v.result);
      if (id === ids.flaky[0]) {
        assert.equal(await text("#task-error"), `${v.error!.type}: ${v.error!.message}`);
        assert.match(await text("#task-stack"), /flaky|at /);
        assert.match(await text("#task-args"), /"a"/);
      }
    }
    await go(`#/task/${ids.ok}`);
    await shot("task");
    // search by id from the form
    await go("#/tasks");
    await page.fill("#search input[name=id]", ids.slow);
    await page.click("#search button");
    await page.waitForFunction(() => (globalThis as unknown as Doc).document.getElementById("task-phase")?.textContent === "Running");
    assert.match(await page.locator("#task-fields").innerText(), /3\/10/);
  });

  it("the workers page shows each worker's slots, running tasks with progress and registered tasks", async () => {
    await go("#/workers");
    await page.waitForSelector('#workers tr[data-worker="dash-w1"]');
    const ping = await cli<InspectPingOutput>(["inspect", "ping", "--queue", queue, "-o", "json", ...ns()]);
    const w = ping.items.find((i) => i.worker === "dash-w1")!;
    assert.equal(await text('#workers tr[data-worker="dash-w1"] td[data-field="slots"]'), `${w.active}/${w.concurrency}`);
    assert.equal(await text('#workers tr[data-worker="dash-w1"] td[data-field="registered"]'), "flaky, ok.add, slow");
    assert.equal((await text(`#workers tr[data-task="${ids.slow}"] td[data-field="progress"]`)).trim(), "3/10");
    await shot("workers");
  });

  it("dead letters: listed as dlq list does; a replay from the page runs the task once; refused without --allow-actions, the token or the CSRF token", async () => {
    const dl = await cli<{ items: Array<{ seq: number; id: string; reason: string }> }>(["dlq", "list", "--queue", queue, "-o", "json", ...ns()]);
    assert.equal(dl.items.length, 2);
    await go(`#/dlq?queue=${queue}`);
    await page.waitForSelector("#dlq-list tr[data-seq]");
    for (const d of dl.items) assert.equal(await text(`#dlq-list tr[data-seq="${d.seq}"] td[data-field="reason"]`), d.reason);
    const [one, two] = dl.items as [(typeof dl.items)[0], (typeof dl.items)[0]];
    const body = JSON.stringify({ seqs: [one.seq] });
    const post = (url: string, what: string, headers: Record<string, string>) => fetch(`${url}api/dlq/${queue}/${what}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body });

    // refused: read-only (even with the token and a CSRF pair), no token, wrong token, no CSRF
    const csrfPair = { Cookie: "celeriac_csrf=abc123", "X-CSRF-Token": "abc123" };
    assert.equal((await post(readOnlyUrl, "replay", { Authorization: `Bearer ${TOKEN}`, ...csrfPair })).status, 403);
    assert.equal((await post(readOnlyUrl, "purge", {})).status, 403);
    assert.equal((await post(dash.url, "replay", csrfPair)).status, 401);
    assert.equal((await post(dash.url, "replay", { Authorization: "Bearer wrong-token-wrong-token", ...csrfPair })).status, 401);
    assert.equal((await post(dash.url, "replay", { Authorization: `Bearer ${TOKEN}` })).status, 403);
    assert.equal((await post(dash.url, "replay", { Authorization: `Bearer ${TOKEN}`, Cookie: "celeriac_csrf=abc123", "X-CSRF-Token": "other" })).status, 403);
    // the page itself without the CSRF header: the cookie alone is not enough
    const before403 = consoleErrors.length;
    const inPage = await page.evaluate(async ([q, b, t]) => (await fetch(`/api/dlq/${q}/replay`, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${t}` }, body: b })).status, [queue, body, TOKEN] as const);
    assert.equal(inPage, 403);
    // the browser logs the refused request it was asked to make: expected, not a page error
    assert.ok(consoleErrors.slice(before403).every((e) => / 403 /.test(e)), consoleErrors.join("\n"));
    consoleErrors.splice(before403);
    assert.equal(await dlqCount(), 2);
    assert.equal(calls.get(`${one.id}-r${one.seq}`), undefined);

    // the UI's replay, behind a confirmation
    fixed = true;
    const questions: string[] = [];
    page.on("dialog", (d) => {
      questions.push(d.message());
      void d.accept();
    });
    await page.fill("input[name=token]", TOKEN);
    await page.check(`input[data-seq="${one.seq}"]`);
    await page.click("#replay");
    await page.waitForSelector("#action-result");
    assert.match(questions[0]!, /Replay 1 dead letter/);
    assert.match(await text("#action-result"), new RegExp(`seq ${one.seq}: Replayed as ${one.id}-r${one.seq}`));
    const rid = `${one.id}-r${one.seq}`;
    await waitFor("the replay succeeded", async () => (await record(rid))?.status.phase === "Succeeded", 10_000);
    // no reload: the list is re-read after the replay until the replay ended
    await page.waitForFunction((s) => (globalThis as unknown as Doc).document.querySelector(`#dlq-list tr[data-seq="${s}"] td[data-field="replay"]`)?.textContent?.includes("Succeeded"), one.seq);
    await page.click(`#dlq-list tr[data-seq="${two.seq}"] button`);
    await page.waitForSelector("#dlq-body");
    assert.match(await text("#dlq-body"), new RegExp(two.id));
    await shot("dead-letters");
    // replaying the same dead letter again is skipped: the task ran once
    const again = await page.evaluate(async ([q, s, t]) => {
      const csrf = (globalThis as unknown as Doc).document.cookie.split(";").map((c) => c.trim().split("=")).find(([k]) => k === "celeriac_csrf")![1]!;
      const r = await fetch(`/api/dlq/${q}/replay`, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${t}`, "X-CSRF-Token": csrf }, body: JSON.stringify({ seqs: [s] }) });
      return (await r.json()) as { items: Array<{ outcome: string }> };
    }, [queue, one.seq, TOKEN] as const);
    assert.equal(again.items[0]!.outcome, "Skipped");
    await holdsFor("the replayed task ran once", () => calls.get(rid) === 1, 300);

    // purge the other from the page
    await page.check(`input[data-seq="${two.seq}"]`);
    await page.click("#purge");
    await page.waitForFunction(() => /Deleted 1 dead letter/.test((globalThis as unknown as Doc).document.getElementById("action-result")?.textContent ?? ""));
    assert.equal(await dlqCount(), 1);
    await page.waitForFunction((s) => (globalThis as unknown as Doc).document.querySelector(`#dlq-list tr[data-seq="${s}"]`) === null, two.seq, { timeout: 5000 });
    assert.equal(await page.locator("#dlq-list tr[data-seq]").count(), 1);
    assert.deepEqual(consoleErrors, []);
  });

  it("an unknown page says so with links; /api/tasks?id= empty is 400, an unknown id 404 naming Task resources", async () => {
    await go("#/bogus");
    assert.equal(await text("#no-such-page"), "No such page: bogus");
    assert.ok(await page.locator('main a[href="#/overview"]').count() >= 1);
    assert.equal(await page.locator("#queues").count(), 0, "not the overview");
    const empty = await fetch(`${dash.url}api/tasks?id=`);
    assert.deepEqual({ status: empty.status, error: ((await empty.json()) as { error: string }).error }, { status: 400, error: "id: empty: give a task id or a Task resource's name" });
    const missing = await fetch(`${dash.url}api/tasks?id=no-such-task`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /^task "no-such-task" not found in any queue of namespace "default" \(.*\), and no Task resource of that name \(no Kubernetes API to look for one\)/);
    assert.deepEqual(consoleErrors.filter((e) => !/ 404 | 400 /.test(e)), []);
    consoleErrors.splice(0);
  });
});
