// The dashboard as a long-running process against a real nats-server: it recovers by itself after
// NATS restarts; a sample whose reads never answer (nats-server frozen with SIGSTOP) times out
// with an error on /api/queues instead of freezing the sampler; a body that is not JSON answers
// JSON (403 on a read-only dashboard, 400 otherwise), never Express's HTML page with a stack; and
// the built bin logs actions at info by default, with nothing at info per tick.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { pino } from "pino";
import { queueNames } from "../../api/naming.js";
import { openOps, type OpsSession } from "../../cli/session.js";
import { startDashboard, type Dashboard, type QueuesTick } from "../../dashboard/server.js";
import { startNatsServer as startNatsProcess, type NatsProcess } from "../../devcluster/platform/nats-process.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { holdsFor, startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const NS = `res${process.pid}`;

async function createQueue(url: string, q: string): Promise<void> {
  const nc = await natsConnect({ servers: url });
  try {
    await ensureQueueResources(await jetstreamManager(nc), queueNames(NS, q), queueSettings(), { updateOnDrift: true });
  } finally {
    await nc.close();
  }
}

async function queuesTick(base: string): Promise<QueuesTick> {
  return (await (await fetch(new URL("api/queues", base))).json()) as QueuesTick;
}

describe("when NATS restarts under a running dashboard", () => {
  let srv: NatsServer;
  let session: OpsSession;
  let dash: Dashboard;
  const q = uniqueQueue("rs");
  const dir = mkdtempSync(join(tmpdir(), "celeriac-dash-res-"));

  before(async () => {
    srv = await startNatsServer();
    await createQueue(srv.url, q);
    session = await openOps({ namespace: NS, nats: srv.url, devDir: dir }, { name: "test-dashboard", allowNoQueues: true, reconnect: true });
    dash = await startDashboard({ session, port: 0, sampleMs: 200, sampleTimeoutMs: 1000, history: { enabled: false }, logger: quiet });
  });
  after(async () => {
    await dash?.close();
    await session?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes fresh samples and answers /api/tasks and /api/dlq again after the restart, on the same connection", async (t) => {
    assert.deepEqual((await queuesTick(dash.url)).items.map((i) => i.queue), [q]);
    const nc = session.nc;
    await srv.stop();
    await waitFor("the sample error while NATS is down", async () => (await queuesTick(dash.url)).error, 10_000, 50);
    const t0 = Date.now();
    await srv.restart();
    const fresh = await waitFor("a fresh sample after the restart", async () => {
      const tk = await queuesTick(dash.url);
      return Date.parse(tk.at) > t0 && !tk.error && tk.items.some((i) => i.queue === q) ? tk : undefined;
    }, 15_000, 50);
    const recoveredMs = Date.now() - t0;
    for (const path of ["api/tasks", `api/dlq?queue=${q}`]) {
      const r = await waitFor(`${path} answering 200`, async () => {
        const res = await fetch(new URL(path, dash.url));
        return res.status === 200 ? res : undefined;
      }, 10_000, 100);
      assert.ok(Array.isArray(((await r.json()) as { items: unknown[] }).items), path);
    }
    assert.equal(session.nc, nc, "the session keeps its connection object");
    assert.equal(nc.isClosed(), false);
    assert.equal(fresh.items[0]!.backlog, 0);
    t.diagnostic(`recovered ${recoveredMs} ms after nats-server restarted`);
  });
});

describe("when nats-server stops answering (SIGSTOP) under a running dashboard", () => {
  let srv: NatsProcess;
  let session: OpsSession;
  let dash: Dashboard;
  let frozen = false;
  const q = uniqueQueue("st");
  const dir = mkdtempSync(join(tmpdir(), "celeriac-dash-stop-"));
  const warnings: string[] = [];
  const log = pino({ level: "warn" }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      warnings.push(...chunk.toString().split("\n").filter((l) => l).map((l) => (JSON.parse(l) as { msg: string }).msg));
      cb();
    },
  }));
  const state = () => readFileSync(`/proc/${srv.child.pid!}/stat`, "utf8").replace(/^\d+ \(.*\) (\S).*$/s, "$1");

  before(async () => {
    srv = await startNatsProcess({ dir: join(dir, "nats") });
    await createQueue(srv.url, q);
    session = await openOps({ namespace: NS, nats: srv.url, devDir: dir }, { name: "test-dashboard", allowNoQueues: true, reconnect: true });
    dash = await startDashboard({ session, port: 0, sampleMs: 100, sampleTimeoutMs: 500, history: { enabled: false }, logger: log });
  });
  after(async () => {
    if (frozen) process.kill(srv.child.pid!, "SIGCONT");
    await dash?.close();
    await session?.close();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("records a timeout error within the bound, starts no second read, and samples again once NATS answers", async (t) => {
    await waitFor("a good sample", async () => (await queuesTick(dash.url)).items.length === 1 && !(await queuesTick(dash.url)).error, 5000, 50);
    process.kill(srv.child.pid!, "SIGSTOP");
    frozen = true;
    await waitFor("nats-server stopped", () => state() === "T", 5000, 5);
    const t0 = Date.now();
    const err = await waitFor("the timeout error", async () => (await queuesTick(dash.url)).error, 5000, 20);
    const tookMs = Date.now() - t0;
    t.diagnostic(`timeout error shown ${tookMs} ms after the freeze (sampleTimeoutMs 500)`);
    assert.match(err, /^sample timed out after 0\.5 s: no answer from NATS while (listing the namespace's queues|reading 1 queue\(s\))/);
    assert.ok(tookMs < 500 + 100 + 1000, `the error showed ${tookMs} ms after the freeze (bound 500 ms + one 100 ms tick)`);
    // many ticks later: still the error, logged once (no new read started while the first is stuck)
    const stale = (await queuesTick(dash.url)).at;
    // ~10 ticks while frozen: every one still the timeout error with the last good figures
    await holdsFor("the timeout error with the last good figures", async () => {
      const later = await queuesTick(dash.url);
      return /^sample timed out/.test(later.error ?? "") && later.at === stale;
    }, 1000, 100);
    assert.equal(warnings.filter((m) => /sample timed out/.test(m)).length, 1, warnings.join("; "));
    process.kill(srv.child.pid!, "SIGCONT");
    frozen = false;
    const t1 = Date.now();
    await waitFor("a fresh sample after SIGCONT", async () => {
      const tk = await queuesTick(dash.url);
      return !tk.error && Date.parse(tk.at) > t1 ? tk : undefined;
    }, 10_000, 20);
  });
});

describe("when a request body is not JSON", () => {
  let srv: NatsServer;
  let session: OpsSession;
  let readOnly: Dashboard;
  let acting: Dashboard;
  const q = uniqueQueue("bj");
  const dir = mkdtempSync(join(tmpdir(), "celeriac-dash-body-"));
  const TOKEN = "t".repeat(32);

  before(async () => {
    srv = await startNatsServer();
    await createQueue(srv.url, q);
    session = await openOps({ namespace: NS, nats: srv.url, devDir: dir }, { name: "test-dashboard", allowNoQueues: true });
    readOnly = await startDashboard({ session, port: 0, history: { enabled: false }, logger: quiet });
    acting = await startDashboard({ session, port: 0, allowActions: true, token: TOKEN, history: { enabled: false }, logger: quiet });
  });
  after(async () => {
    await readOnly?.close();
    await acting?.close();
    await session?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = async (base: string, path: string, body: string) => {
    const r = await fetch(new URL(path, base), { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` }, body });
    const text = await r.text();
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/, text);
    assert.doesNotMatch(text, /\n\s+at |node_modules|<html|<pre/i, "no stack, no path, no HTML");
    return { status: r.status, body: JSON.parse(text) as { error: string } };
  };

  it("is refused 403 before parsing on a read-only dashboard, on any POST under /api", async () => {
    for (const path of [`api/queues/${q}/pause`, "api/no/such/thing"]) {
      const r = await post(readOnly.url, path, "not json");
      assert.equal(r.status, 403, path);
      assert.match(r.body.error, /read-only/);
    }
  });

  it("answers 400 request body: not valid JSON (and 413 when too large) on an acting dashboard", async () => {
    const r = await post(acting.url, `api/queues/${q}/pause`, "not json");
    assert.equal(r.status, 400);
    assert.match(r.body.error, /^request body: not valid JSON: /);
    const big = await post(acting.url, `api/queues/${q}/pause`, JSON.stringify({ reason: "x".repeat(70_000) }));
    assert.equal(big.status, 413);
    assert.equal(big.body.error, "request body: larger than 64kb");
  });
});

describe("when the built bin runs with its default log level", () => {
  let srv: NatsServer;
  let child: ChildProcess | undefined;
  let out = "";
  let err = "";
  const q = uniqueQueue("lg");
  const cwd = mkdtempSync(join(tmpdir(), "celeriac-dash-log-"));
  const TOKEN = "k".repeat(32);

  before(async () => {
    srv = await startNatsServer();
    await createQueue(srv.url, q);
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG")), KUBECONFIG: "/nonexistent" };
    child = spawn(process.execPath, [BIN, "dashboard", "--port", "0", "--nats", srv.url, "-n", NS, "--allow-actions", "--token", TOKEN, "--no-history-store"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  });
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await srv?.cleanup();
    rmSync(cwd, { recursive: true, force: true });
  });

  it("says why there is no Kubernetes API, logs an action at info with its actor, and nothing at info per tick", async () => {
    const url = await waitFor("the dashboard's URL", () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 15_000);
    await waitFor("the Kubernetes API line", () => /Kubernetes API: .*\n/.test(out) || undefined, 5000);
    assert.match(out, /Kubernetes API: KUBECONFIG names no existing file \(\/nonexistent\); pages that need it say so/);
    // two ticks (1 s each) pass: nothing logged
    const at0 = (await queuesTick(url)).at;
    await waitFor("two more ticks", async () => Date.parse((await queuesTick(url)).at) >= Date.parse(at0) + 2000 || undefined, 5000, 100);
    assert.equal(err, "", "nothing logged per tick");
    const page = await fetch(url);
    const csrf = /celeriac_csrf=([^;]+)/.exec(page.headers.get("set-cookie") ?? "")![1]!;
    const r = await fetch(new URL(`api/queues/${q}/pause`, url), { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, "x-csrf-token": csrf, cookie: `celeriac_csrf=${csrf}` }, body: "{}" });
    assert.equal(r.status, 200, await r.text());
    const line = await waitFor("the action's log line", () => err.split("\n").find((l) => l.includes("Dashboard paused a queue")), 5000);
    const rec = JSON.parse(line) as { level: number; actor: string; queue: string };
    assert.deepEqual([rec.level, rec.actor, rec.queue], [30, "celeriac-dashboard", q]);
  });
});
