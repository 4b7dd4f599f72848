// `celeriac enqueue` as a user runs it: the built bin against a real nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { parseTaskMessage, type TaskMessage } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { publishQueueSettings } from "../../operator/queue/queue-settings-publish.js";
import { queueWith } from "../operator/queue/fixtures.js";
import { Kvm } from "@nats-io/kv";
import { QUEUE_SETTINGS_KEY } from "../../api/naming.js";
import { CELERIAC_TYPES } from "../../api/objects.js";
import { devDown, devUp } from "../../cli/commands/dev-platform.js";
import { writeState } from "../../devcluster/platform/state.js";
import { createObject } from "../../kube/k8s-client.js";
import { loadKubeConfig } from "../../kube/kubeconfig.js";
import { freePort, waitFor } from "../helpers/nats-server.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

/** Default working directory: no `.celeriac` state of a platform someone runs in the repository. */
const EMPTY_CWD = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
after(() => rmSync(EMPTY_CWD, { recursive: true, force: true }));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `celeriac <args>` without CELERIAC_* variables from the test's environment. */
async function celeriac(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_")));
  const cwd = opts.cwd ?? EMPTY_CWD;
  const p = run(process.execPath, [BIN, ...args], { cwd, env: { ...env, ...opts.env }, maxBuffer: 16 * 1024 * 1024 });
  if (opts.input !== undefined) {
    p.child.stdin?.end(opts.input);
  }
  return p.then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe("when celeriac enqueue names a queue", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("fails at once on a typo of a managed Queue's name, naming the queues that exist", async () => {
    const ns = uniqueQueue("ns");
    await ensureQueueResources(jsm, queueNames(ns, "thumbnails"), queueSettings(), { updateOnDrift: true });
    const r = await celeriac(["enqueue", "images.resize", "--queue", "thumbnail", "--namespace", ns, "--wait", "--timeout", "10", "--nats", srv.url]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `queue "thumbnail" does not exist in namespace "${ns}"; existing queues: thumbnails`);
    await assert.rejects(jsm.streams.info(queueNames(ns, "thumbnail").stream), /stream not found/);
  });

  it("creates the queue with --create-queue", async () => {
    const ns = uniqueQueue("ns");
    const r = await celeriac(["enqueue", "x", "--queue", "adhoc", "--namespace", ns, "--create-queue", "--nats", srv.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await jsm.streams.info(queueNames(ns, "adhoc").stream)).state.messages, 1);
  });
});

describe("when celeriac enqueue targets a Queue whose settings the operator published", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  const ns = uniqueQueue("ns");
  const queue = "thumbnails";
  const names = queueNames(ns, queue);
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    dir = mkdtempSync(join(tmpdir(), "celeriac-enqueue-"));
    await ensureQueueResources(jsm, names, queueSettings(), { updateOnDrift: true });
    await publishQueueSettings(jetstream(nc), names, queueWith({ timeoutSeconds: 120, retry: { maxAttempts: 4 } }, queue, ns));
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const enqueue = (args: string[], input?: string) => celeriac(["enqueue", "images.resize", "--queue", queue, "--namespace", ns, "--nats", srv.url, ...args], input === undefined ? {} : { input });
  async function last(): Promise<TaskMessage> {
    const sm = await jsm.streams.getMessage(names.stream, { last_by_subj: names.taskSubject });
    const p = parseTaskMessage(sm!.data);
    assert.ok(p.ok);
    return p.message;
  }

  it("gives the task the Queue's timeout and attempts", async () => {
    const r = await enqueue([]);
    assert.equal(r.code, 0, r.stderr);
    const m = await last();
    assert.deepEqual([m.id, m.timeoutSeconds, m.retry.maxAttempts], [r.stdout.trim(), 120, 4]);
  });

  it("takes --timeout-seconds and --max-attempts over the Queue's", async () => {
    const r = await enqueue(["--timeout-seconds", "7", "--max-attempts", "9"]);
    assert.equal(r.code, 0, r.stderr);
    const m = await last();
    assert.deepEqual([m.timeoutSeconds, m.retry.maxAttempts], [7, 9]);
  });

  it("names the flag of a bad number", async () => {
    for (const [flag, v] of [["--timeout-seconds", "0"], ["--timeout-seconds", "1.5"], ["--max-attempts", "many"]] as const) {
      const r = await enqueue([flag, v]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `${flag}: must be a positive integer (got "${v}")`);
    }
    const r = await enqueue(["--max-attempts", "1001"]);
    assert.equal(r.stderr.trim(), "--max-attempts: must be at most 1000 (got 1001)");
  });

  it("reads --args @file (larger than a command-line argument may be) and --kwargs @- from standard input", async () => {
    const big = Array.from({ length: 20_000 }, (_, i) => `item-${i}`); // ~220 KiB of JSON: over the 128 KiB argument limit
    const file = join(dir, "args.json");
    writeFileSync(file, JSON.stringify(big));
    const r = await enqueue(["--args", `@${file}`, "--kwargs", "@-"], '{"size": "small"}');
    assert.equal(r.code, 0, r.stderr);
    const m = await last();
    assert.deepEqual([m.args.length, m.args[19_999], m.kwargs], [20_000, "item-19999", { size: "small" }]);
    const missing = await enqueue(["--args", `@${join(dir, "nope.json")}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^--args: cannot read file .*nope\.json: ENOENT/);
    writeFileSync(file, "[1,");
    const bad = await enqueue(["--args", `@${file}`]);
    assert.match(bad.stderr, /^--args: file .*args\.json is not valid JSON/);
  });
});

describe("when celeriac enqueue is given no NATS URL", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  const ns = uniqueQueue("ns");
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    dir = mkdtempSync(join(tmpdir(), "celeriac-devstate-"));
    await ensureQueueResources(jsm, queueNames(ns, "emails"), queueSettings(), { updateOnDrift: true });
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("uses the NATS of the running local platform from its state file", async () => {
    mkdirSync(join(dir, ".celeriac"), { recursive: true });
    writeState(join(dir, ".celeriac"), { pid: process.pid, ready: true, natsUrl: srv.url, startedAt: new Date().toISOString() });
    const r = await celeriac(["enqueue", "emails.send", "--queue", "emails", "--namespace", ns], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await jsm.streams.info(queueNames(ns, "emails").stream)).state.messages, 1);
  });

  it("says how to find NATS when it cannot be reached, instead of a bare connection refused", async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    for (const how of [{ args: ["--nats", url] }, { args: [], env: { CELERIAC_NATS_URL: url } }]) {
      const r = await celeriac(["enqueue", "emails.send", "--queue", "emails", ...how.args], { env: how.env ?? {} });
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `cannot reach NATS at ${url}: run "celeriac dev status" to see the local platform, or pass --nats`);
    }
  });
});

describe("when a celeriac dev up platform runs a Queue", { timeout: 180_000 }, () => {
  let root: string;
  let devDir: string;
  let natsUrl: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), "celeriac-devup-"));
    devDir = join(root, ".celeriac");
    const kubeconfig = await devUp(devDir, 90_000);
    const state = JSON.parse(readFileSync(join(devDir, "state.json"), "utf8")) as { natsUrl: string };
    natsUrl = state.natsUrl;
    const kc = loadKubeConfig({ kubeconfig, env: {} });
    await createObject(kc, CELERIAC_TYPES.Queue, {
      apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "thumbnails", namespace: "default" },
      // suspended: no worker takes the task off the stream before the test reads it
      spec: { timeoutSeconds: 120, retry: { maxAttempts: 4 }, suspend: true },
    }, "test");
  });
  after(async () => {
    if (devDir) await devDown(devDir);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("finds its NATS without --nats, fails on a typo of the Queue's name, and gives a task the Queue's defaults", async () => {
    const nc = await natsConnect({ servers: natsUrl });
    try {
      const names = queueNames("default", "thumbnails");
      await waitFor("the operator's queue.settings", async () => (await (await new Kvm(jetstream(nc)).open(names.resultsBucket)).get(QUEUE_SETTINGS_KEY))?.operation === "PUT", 30_000, 200);
      const typo = await celeriac(["enqueue", "images.resize", "--queue", "thumbnail", "--wait", "--timeout", "10"], { cwd: root });
      assert.equal(typo.code, 1);
      assert.equal(typo.stderr.trim(), 'queue "thumbnail" does not exist in namespace "default"; existing queues: thumbnails');
      const r = await celeriac(["enqueue", "images.resize", "--queue", "thumbnails", "--args", "[1]"], { cwd: root });
      assert.equal(r.code, 0, r.stderr);
      const jsm = await jetstreamManager(nc);
      const sm = await jsm.streams.getMessage(names.stream, { last_by_subj: names.taskSubject });
      const p = parseTaskMessage(sm!.data);
      assert.ok(p.ok);
      assert.deepEqual([p.message.id, p.message.timeoutSeconds, p.message.retry.maxAttempts], [r.stdout.trim(), 120, 4]);
    } finally {
      await nc.close();
    }
  });
});
