// `celeriac inspect` as a user runs it: the built bin against a real nats-server and three worker
// processes (`celeriac worker`, tasks module test/fixtures/inspect/tasks.ts) with tasks running
// (blocked until released, reporting progress), queued and delayed; `-o json` validated with ajv
// against the schemas of api/control.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import addFormatsModule from "ajv-formats";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { CLI_OUTPUT_SCHEMAS } from "../../api/cli-output.js";
import type { INSPECT_OUTPUT_SCHEMAS} from "../../api/control.js";
import { WORKER_REGISTRY_PREFIX, type InspectActiveOutput, type InspectPingOutput, type InspectRegisteredOutput, type InspectScheduledOutput, type InspectStatsOutput } from "../../api/control.js";
import { queueNames } from "../../api/naming.js";
import { connect, type CeleriacClient, type TaskHandle } from "../../client/index.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { shortDuration } from "../../cli/commands/inspect.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
const TASKS = fileURLToPath(new URL("../fixtures/inspect/tasks.js", import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), "celeriac-inspect-"));
after(() => rmSync(DIR, { recursive: true, force: true }));

const addFormats = addFormatsModule as unknown as (a: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));

/** Parses `-o json` output and validates it against the command's exported schema. */
function validated<T>(command: keyof typeof INSPECT_OUTPUT_SCHEMAS, stdout: string): T {
  const v = JSON.parse(stdout) as T;
  const check = ajv.compile(CLI_OUTPUT_SCHEMAS[`inspect ${command}`]!); // the published (closed) schema
  assert.ok(check(v), `${command} -o json breaks its schema: ${ajv.errorsText(check.errors)}\n${stdout}`);
  return v;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The environment without CELERIAC_* variables and KUBECONFIG from the test's own. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG")), ...extra };
}

/** Runs `celeriac <args>` (async spawn) and times it. */
function celeriac(args: string[]): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: DIR, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    c.once("error", reject);
    c.once("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

/** A `celeriac worker` process. */
interface WorkerProcess {
  child: ChildProcess;
  log: () => string;
}

function startWorker(srv: NatsServer, queue: string, name: string | undefined): WorkerProcess {
  const args = [BIN, "worker", "--tasks", TASKS, "--queue", queue, "--namespace", "default", "--nats", srv.url, "--port", "0", "--concurrency", "2", "--grace-period-seconds", "2", ...(name ? ["--worker-name", name] : [])];
  const child = spawn(process.execPath, args, { cwd: DIR, env: cleanEnv({ CELERIAC_LOG_LEVEL: "warn", CELERIAC_KUBE_STATUS: "false" }), stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-100_000)));
  return { child, log: () => log };
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  const c = w.child;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill("SIGCONT");
  c.kill("SIGTERM");
  const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(t);
}

const totals = (items: InspectStatsOutput["items"]) =>
  items.reduce((s, i) => ({ processed: s.processed + (i.stats?.processed ?? 0), succeeded: s.succeeded + (i.stats?.succeeded ?? 0), failed: s.failed + (i.stats?.failed ?? 0), deadLettered: s.deadLettered + (i.stats?.deadLettered ?? 0) }), { processed: 0, succeeded: 0, failed: 0, deadLettered: 0 });

describe("celeriac inspect, with three worker processes", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let client: CeleriacClient;
  const queue = uniqueQueue("insp");
  const idle = uniqueQueue("idle");
  const names = queueNames("default", queue);
  const workers: WorkerProcess[] = [];
  const workerNames = ["inspect-w1", "inspect-w2", undefined]; // the third: the default name, <host>:<pid>
  let common: string[];
  const release = join(DIR, "release");
  const blocked: TaskHandle[] = [];
  const queued: TaskHandle[] = [];
  const delayed: TaskHandle[] = [];

  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    client = await connect({ servers: srv.url, queue, queueSettings: { ackWaitSeconds: 30 } });
    await ensureQueueResources(await jetstreamManager(nc), queueNames("default", idle), queueSettings({}));
    for (const n of workerNames) workers.push(startWorker(srv, queue, n));
    common = ["--queue", queue, "--namespace", "default", "--nats", srv.url];
  });

  after(async () => {
    writeFileSync(release, "");
    await Promise.all(workers.map(stopWorker));
    await client?.close();
    await nc?.close();
    await srv?.cleanup();
  });

  it("ping lists the three workers once they started, each answering", async () => {
    const items = await waitFor("3 workers answering ping", async () => {
      const r = await celeriac(["inspect", "ping", ...common, "-o", "json"]);
      const v = r.code === 0 ? validated<InspectPingOutput>("ping", r.stdout) : undefined;
      return v && v.items.length === 3 && v.items.every((i) => i.answered) ? v.items : undefined;
    }, 30_000, 200);
    assert.ok(items.every((i) => i.status === "ok" && i.concurrency === 2 && i.version && i.pid && i.lastSeen), JSON.stringify(items));
    const pids = new Set(items.map((i) => i.pid));
    assert.equal(pids.size, 3);
    assert.ok(items.some((i) => /:\d+$/.test(i.worker)), "the default name host:pid");
    const t = await celeriac(["inspect", "ping", ...common]);
    assert.equal(t.code, 0, t.stderr);
    const lines = t.stdout.trim().split("\n");
    assert.match(lines[0]!, /^QUEUE +WORKER +STATUS +UPTIME +ACTIVE +RESERVED +VERSION +REPLY$/);
    assert.equal(lines.length, 4, t.stdout);
    assert.ok(lines.slice(1).every((l) => / ok +\d+s +0\/2 +0 +\d/.test(l)), t.stdout);
  });

  it("registered lists the task names of each worker", async () => {
    const r = await celeriac(["inspect", "registered", ...common, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const v = validated<InspectRegisteredOutput>("registered", r.stdout);
    assert.equal(v.items.length, 3);
    for (const i of v.items) assert.deepEqual(i.registered, ["inspect.block", "inspect.fails", "inspect.quick"]);
    const t = await celeriac(["inspect", "registered", ...common]);
    assert.match(t.stdout, /^QUEUE +WORKER +TASKS$/m);
    assert.match(t.stdout, /inspect-w1 +inspect\.block,inspect\.fails,inspect\.quick$/m);
  });

  it("stats counters move as tasks succeed and fail", async () => {
    const before = totals(validated<InspectStatsOutput>("stats", (await celeriac(["inspect", "stats", ...common, "-o", "json"])).stdout).items);
    const hs = await Promise.all([1, 2, 3, 4, 5].map((i) => client.enqueue("inspect.quick", [i])));
    await Promise.all(hs.map((h) => h.result({ timeoutMs: 15_000 })));
    await assert.rejects((await client.enqueue("inspect.fails", [])).result({ timeoutMs: 15_000 }));
    const r = await celeriac(["inspect", "stats", ...common, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const v = validated<InspectStatsOutput>("stats", r.stdout);
    const after = totals(v.items);
    assert.equal(after.succeeded - before.succeeded, 5);
    assert.equal(after.failed - before.failed, 1);
    assert.equal(after.deadLettered - before.deadLettered, 1);
    assert.equal(after.processed - before.processed, 6);
    assert.ok(v.items.every((i) => (i.stats?.rssBytes ?? 0) > 10 * 1024 * 1024), "RSS of a node process");
    const t = await celeriac(["inspect", "stats", ...common]);
    assert.match(t.stdout, /^QUEUE +WORKER +STATUS +UPTIME +ACTIVE +PROCESSED +SUCCEEDED +FAILED +RETRIED +DEAD-LETTERED +REVOKED +RSS$/m);
  });

  it("active lists each running task on the worker running it, with its progress; queued ones are not on any worker", async () => {
    // 3 workers × concurrency 2: six blocked tasks fill every slot, two more wait in the stream
    for (let i = 0; i < 6; i++) blocked.push(await client.enqueue("inspect.block", [release], {}, { taskId: `blocked-${i}` }));
    for (let i = 0; i < 2; i++) queued.push(await client.enqueue("inspect.block", [release], {}, { taskId: `queued-${i}` }));
    for (let i = 0; i < 3; i++) delayed.push(await client.enqueue("inspect.quick", [i], {}, { taskId: `delayed-${i}`, countdownSeconds: 600 + i }));
    const v = await waitFor("six tasks active with progress", async () => {
      const r = await celeriac(["inspect", "active", ...common, "-o", "json"]);
      const out = validated<InspectActiveOutput>("active", r.stdout);
      const all = out.items.flatMap((i) => i.active ?? []);
      return all.length === 6 && all.every((a) => a.progress) ? out : undefined;
    }, 20_000, 200);
    const where = new Map(v.items.flatMap((i) => (i.active ?? []).map((a) => [a.id, i.worker] as const)));
    assert.deepEqual([...where.keys()].sort(), blocked.map((h) => h.id).sort());
    for (const i of v.items) assert.equal(i.active?.length, 2, `worker ${i.worker} runs two`);
    for (const a of v.items.flatMap((i) => i.active ?? [])) {
      assert.equal(a.task, "inspect.block");
      assert.equal(a.attempt, 1);
      assert.equal(a.progress?.display, "3/10");
      assert.deepEqual(a.progress?.meta, { stage: "blocked" });
    }
    // the right worker: the one the task's own record names
    for (const h of blocked) {
      const st = await waitFor(`${h.id} Running record`, async () => {
        const s = await h.status();
        return s?.worker ? s : undefined;
      });
      assert.equal(where.get(h.id), st.worker, h.id);
    }
    const t = await celeriac(["inspect", "active", ...common]);
    assert.equal(t.code, 0, t.stderr);
    const lines = t.stdout.trim().split("\n");
    assert.match(lines[0]!, /^QUEUE +WORKER +ID +TASK +ATTEMPT +STARTED +PROGRESS$/);
    assert.equal(lines.length, 7);
    assert.ok(lines.slice(1).every((l) => /blocked-\d +inspect\.block +1 +\d+s +3\/10$/.test(l)), t.stdout);
    const res = validated<{ items: Array<{ reserved?: unknown[] }> }>("reserved", (await celeriac(["inspect", "reserved", ...common, "-o", "json"])).stdout);
    assert.deepEqual(res.items.map((i) => i.reserved), [[], [], []], "workers fetch only free slots: the queued tasks are in the stream, not reserved");
    const rt = await celeriac(["inspect", "reserved", ...common]);
    assert.equal(rt.code, 0);
    assert.equal(rt.stdout, "");
    assert.match(rt.stderr, /^No delivered, not started messages on 3 workers/);
  });

  it("scheduled lists the delayed tasks from the delayed stream, bounded by --limit", async () => {
    const r = await celeriac(["inspect", "scheduled", ...common, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const v = validated<InspectScheduledOutput>("scheduled", r.stdout);
    assert.deepEqual(v.items.map((t) => t.id), ["delayed-0", "delayed-1", "delayed-2"]);
    for (const t of v.items) {
      assert.equal(t.task, "inspect.quick");
      assert.ok(t.eta && t.dueInSeconds! > 590 && t.dueInSeconds! <= 603, JSON.stringify(t));
    }
    const two = await celeriac(["inspect", "scheduled", ...common, "--limit", "2"]);
    assert.equal(two.code, 0, two.stderr);
    const lines = two.stdout.trim().split("\n");
    assert.match(lines[0]!, /^QUEUE +ID +TASK +ETA +DUE$/);
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, /delayed-0 +inspect\.quick +\S+ +in (9|10)m$/);
    assert.match(two.stderr, /showing the first 2 of 3 delayed tasks; raise --limit/);
    // without --queue: every queue of the namespace (the idle queue has none)
    const all = validated<InspectScheduledOutput>("scheduled", (await celeriac(["inspect", "scheduled", "--namespace", "default", "--nats", srv.url, "-o", "json"])).stdout);
    assert.equal(all.items.length, 3);
  });

  it("a stopped worker (SIGSTOP) is listed as not answering, within the timeout and a margin", async (t) => {
    const answered = await celeriac(["inspect", "ping", ...common, "--timeout", "1", "-o", "json"]);
    const stopped = workers[0]!;
    stopped.child.kill("SIGSTOP");
    try {
      const r = await celeriac(["inspect", "ping", ...common, "--timeout", "1", "-o", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const v = validated<InspectPingOutput>("ping", r.stdout);
      const silent = v.items.filter((i) => !i.answered);
      assert.deepEqual(silent.map((i) => [i.worker, i.status]), [["inspect-w1", "not answering"]]);
      assert.equal(v.items.filter((i) => i.answered).length, 2);
      // waits out the deadline for the silent one, and no longer: the CLI's own start-up is the margin
      assert.ok(r.ms >= 1000, `${r.ms} ms`);
      assert.ok(r.ms <= 1000 + answered.ms + 1500, `not answering took ${Math.round(r.ms)} ms; all answering ${Math.round(answered.ms)} ms`);
      t.diagnostic(`ping wall time: all answering ${Math.round(answered.ms)} ms, one SIGSTOPped (--timeout 1) ${Math.round(r.ms)} ms`);
      const a = await celeriac(["inspect", "active", ...common, "--timeout", "0.5"]);
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stdout, /inspect-w1 +<not answering> +<none>/);
      assert.equal(a.stdout.trim().split("\n").length, 1 + 4 + 1, a.stdout);
      assert.match(a.stderr, /worker inspect-w1 \(queue \S+\) did not answer within 0\.5 s; its registry entry was written \d+s ago/);
      const p = await celeriac(["inspect", "ping", ...common, "--timeout", "0.5"]);
      assert.match(p.stdout, /inspect-w1 +not answering +<none>/);
    } finally {
      stopped.child.kill("SIGCONT");
    }
  });

  it("released tasks finish, the queued ones run, and no task is left active", async () => {
    writeFileSync(release, "");
    await Promise.all([...blocked, ...queued].map((h) => h.result({ timeoutMs: 20_000 })));
    const t = await waitFor("no active task", async () => {
      const r = await celeriac(["inspect", "active", ...common]);
      return r.stdout === "" ? r : undefined;
    }, 10_000, 200);
    assert.match(t.stderr, /^No running tasks on 3 workers/);
  });

  it("a worker that stops gracefully leaves the registry", async () => {
    const kv = await new Kvm(jetstream(nc)).open(names.resultsBucket);
    const keys = async () => {
      const out: string[] = [];
      for await (const k of await kv.keys(`${WORKER_REGISTRY_PREFIX}*`)) out.push(k);
      return out.sort();
    };
    assert.equal((await keys()).length, 3);
    assert.ok((await keys()).includes("worker.inspect-w2"));
    await stopWorker(workers[1]!);
    assert.equal(workers[1]!.child.exitCode, 0, workers[1]!.log());
    assert.equal((await keys()).includes("worker.inspect-w2"), false);
    const v = validated<InspectPingOutput>("ping", (await celeriac(["inspect", "ping", ...common, "-o", "json"])).stdout);
    assert.deepEqual(v.items.map((i) => i.worker).includes("inspect-w2"), false);
    assert.equal(v.items.length, 2);
  });

  describe("when the input is wrong or nothing is there", () => {
    it("a queue without live workers says so and how to start one, exit 0", async () => {
      const r = await celeriac(["inspect", "active", "--queue", idle, "--namespace", "default", "--nats", srv.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, new RegExp(`^No live workers on queue "${idle}" \\(namespace "default"\\).*celeriac worker --tasks <module> --queue ${idle} --namespace default`));
      const j = await celeriac(["inspect", "ping", "--queue", idle, "--namespace", "default", "--nats", srv.url, "-o", "json"]);
      assert.deepEqual(validated<InspectPingOutput>("ping", j.stdout), { items: [] });
      const s = await celeriac(["inspect", "scheduled", "--queue", idle, "--namespace", "default", "--nats", srv.url]);
      assert.equal(s.code, 0);
      assert.match(s.stderr, /^No delayed tasks in queue/);
    });
    it("an unknown queue names the queues that exist", async () => {
      const r = await celeriac(["inspect", "ping", "--queue", "nosuch", "--namespace", "default", "--nats", srv.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`queue "nosuch" does not exist in namespace "default"; existing queues: .*${queue}`));
    });
    it("an unknown namespace names the namespaces that have queues", async () => {
      const r = await celeriac(["inspect", "ping", "--namespace", "elsewhere", "--nats", srv.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /namespace "elsewhere" has no queues; namespaces with queues: default/);
    });
    it("a bad --timeout is refused", async () => {
      const r = await celeriac(["inspect", "ping", ...common, "--timeout", "0"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--timeout <s>' argument '0' is invalid/);
    });
  });
});

describe("inspect helpers", () => {
  it("prints durations as kubectl ages", () => {
    assert.deepEqual([0, 59.9, 119, 120, 7199, 7200, 172_800].map(shortDuration), ["0s", "59s", "119s", "2m", "119m", "2h", "2d"]);
  });
});
