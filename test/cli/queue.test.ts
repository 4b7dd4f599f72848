// `celeriac queue` as a user runs it: the built bin against a real nats-server, with a real worker
// whose handler blocks until released (so tasks are running, queued, delayed and dead at once).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { TaskRecord } from "../../api/message.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import { CLI_OUTPUT_SCHEMAS } from "../../api/cli-output.js";
import { QueueListOutputSchema, QueuePauseOutputSchema, QueuePurgeOutputSchema, QueueStatusOutputSchema, type QueuePurgeOutput, type QueueStatusOutput } from "../../api/queue-ops.js";
import { connect, TaskFailedError, type CeleriacClient, type TaskHandle } from "../../client/index.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { defineTask, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { runCeleriac, type CliRun } from "../helpers/cli.js";

const EMPTY_CWD = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
after(() => rmSync(EMPTY_CWD, { recursive: true, force: true }));
const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const ajv = new Ajv({ strict: false, allErrors: true });


/** Runs `celeriac <args>` as a user would (test/helpers/cli.ts). */
const celeriac = (args: string[]): Promise<CliRun> => runCeleriac(args, EMPTY_CWD);

/** Parses `-o json` output and validates it against `schema`. */
function valid<T>(schema: object, r: CliRun): T {
  assert.equal(r.code, 0, r.stderr);
  const v = JSON.parse(r.stdout) as T;
  const command = PUBLISHED.get(schema);
  assert.ok(command, "the schema is published in api/cli-output.ts");
  const check = ajv.compile(CLI_OUTPUT_SCHEMAS[command]!); // the published (closed) schema
  assert.ok(check(v), `output matches its schema: ${ajv.errorsText(check.errors)}\n${r.stdout}`);
  return v;
}

/** Each queue output schema → the command whose published schema (closed: no unknown field) it is. */
const PUBLISHED = new Map<object, string>([
  [QueueStatusOutputSchema, "queue status"],
  [QueueListOutputSchema, "queue list"],
  [QueuePurgeOutputSchema, "queue purge"],
  [QueuePauseOutputSchema, "queue pause"],
]);

describe("when celeriac queue runs against a queue with tasks running, queued, delayed and dead", { timeout: 120_000 }, () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let client: CeleriacClient;
  let names: QueueNames;
  let results: KV;
  let worker: Worker;
  const wncs: NatsConnection[] = [];
  const queue = uniqueQueue("cq");
  const other = uniqueQueue("cq2");
  const q = (...args: string[]) => celeriac(["queue", ...args, "--namespace", "default", "--nats", srv.url]);
  const started = new Set<string>();
  const finished = new Set<string>();
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));

  async function record(id: string): Promise<TaskRecord | undefined> {
    const e = await results.get(id);
    return e && e.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  }

  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    names = queueNames("default", queue);
    await ensureQueueResources(jsm, names, queueSettings(), { updateOnDrift: true });
    await ensureQueueResources(jsm, queueNames("default", other), queueSettings(), { updateOnDrift: true });
    results = await new Kvm(nc).open(names.resultsBucket);
    client = await connect({ servers: srv.url, queue });
    const wnc = await natsConnect({ servers: srv.url });
    wncs.push(wnc);
    const block = defineTask("block", async (args, _k, ctx) => {
      if (args[0] === "slow") return new Promise((r) => setTimeout(() => r(ctx.taskId), 10)); // the rate test's: ~10 ms each
      started.add(ctx.taskId);
      await gate;
      finished.add(ctx.taskId);
      return ctx.taskId;
    });
    worker = new Worker({ nc: wnc, tasks: [block], queue, logger: quiet, settings: { ackWaitSeconds: 5 }, shutdownGraceSeconds: 5, fetchExpiresMs: 1000, concurrency: 2, runningRecordDelayMs: 0 });
    await worker.start();
  });
  after(async () => {
    release();
    await worker?.close();
    await client?.close();
    await Promise.all(wncs.map((c) => c.close()));
    await nc?.close();
    await srv?.cleanup();
  });

  it("status counts backlog, in flight, delayed, dead and the oldest queued task's age; list shows every queue; both match their schemas", async () => {
    const running = [await client.enqueue("block"), await client.enqueue("block")];
    await waitFor("2 running", () => started.size === 2, 10_000);
    const queuedAt = Date.now();
    const queued: TaskHandle[] = [];
    for (let i = 0; i < 5; i++) queued.push(await client.enqueue("block", [i]));
    await client.enqueue("block", [], {}, { countdownSeconds: 3600 });
    await jetstream(nc).publish(names.deadLetterSubject, JSON.stringify({ id: "dead-1", task: "block" }), { msgID: "dead-1" });
    await new Promise((r) => setTimeout(r, 1200)); // let the oldest task age past a second

    const st = valid<QueueStatusOutput>(QueueStatusOutputSchema, await q("status", queue, "-o", "json", "--sample", "0.5"));
    const age = (Date.now() - queuedAt) / 1000;
    assert.deepEqual([st.backlog, st.inFlight, st.delayed, st.dead, st.paused], [5, 2, 1, 1, false]);
    assert.ok(st.oldestTaskAgeSeconds !== undefined && st.oldestTaskAgeSeconds >= 1 && st.oldestTaskAgeSeconds <= age + 0.5, `oldest age ${st.oldestTaskAgeSeconds} s, queued ${age} s ago`);
    assert.equal(st.ratePerSecond, 0, "nothing settles while the handlers block");
    assert.ok(st.sampleSeconds !== undefined && st.sampleSeconds >= 0.5);
    assert.equal(st.workers, 1, "the one running worker, from its registry entry");

    const table = await q("status", queue, "--sample", "0");
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Backlog:\s+5$/m);
    assert.match(table.stdout, /^In flight:\s+2$/m);

    const list = valid<{ items: QueueStatusOutput[] }>(QueueListOutputSchema, await q("list", "-o", "json"));
    assert.deepEqual(list.items.map((i) => i.queue), [queue, other].sort());
    assert.deepEqual(list.items.find((i) => i.queue === queue)?.backlog, 5);
    const lt = await q("list");
    assert.match(lt.stdout, /^QUEUE\s+BACKLOG\s+IN-FLIGHT\s+DELAYED\s+DEAD\s+HELD\s+PAUSED\s+OLDEST\s+WORKERS$/m);
    void running;
    void queued;
  });

  it("names the queues that exist for an unknown queue", async () => {
    const r = await q("status", "no-such-queue");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /queue "no-such-queue" does not exist in namespace "default"; existing queues: /);
    assert.ok(r.stderr.includes(queue) && r.stderr.includes(other), r.stderr);
  });

  it("purges exactly the queued tasks (recorded Cancelled, so result() ends) while the running ones finish, after refusing without --yes", async () => {
    const refused = await q("purge", queue);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to purge queue default\/.* without confirmation: .*pass --yes/);
    assert.equal((await jsm.consumers.info(names.stream, names.workerConsumer)).num_pending, 5, "nothing removed");

    const runningIds = [...started];
    const queuedIds: string[] = [];
    const ci = await jsm.consumers.info(names.stream, names.workerConsumer);
    for (let seq = ci.delivered.stream_seq + 1; ; seq++) {
      const m = await jsm.streams.getMessage(names.stream, { seq });
      if (!m) break;
      queuedIds.push(m.json<{ id: string }>().id);
    }
    assert.equal(queuedIds.length, 5);
    const waiters = queuedIds.map((id) => client.get(id).result({ timeoutMs: 10_000 }).then(() => "succeeded", (e: unknown) => (e instanceof TaskFailedError ? e.phase : String(e))));

    const t0 = Date.now();
    const out = valid<QueuePurgeOutput>(QueuePurgeOutputSchema, await q("purge", queue, "--yes", "-o", "json"));
    console.log(`# purge of 5 queued tasks: ${Date.now() - t0} ms (CLI process included)`);
    assert.deepEqual([out.removed, out.started, out.removedDelayed], [5, 0, 0]);
    assert.deepEqual([...out.ids].sort(), [...queuedIds].sort());
    assert.deepEqual(await Promise.all(waiters), ["Cancelled", "Cancelled", "Cancelled", "Cancelled", "Cancelled"], "each result() waiter ended");
    for (const id of queuedIds) {
      const r = await record(id);
      assert.equal(r?.status.phase, "Cancelled");
      assert.match(r?.status.error?.message ?? "", /purged/);
    }
    const after = await jsm.consumers.info(names.stream, names.workerConsumer);
    assert.deepEqual([after.num_pending, after.num_ack_pending], [0, 2], "the two running are untouched");
    assert.equal((await jsm.streams.info(names.delayedStream)).state.messages, 1, "the delayed task stays without --delayed");

    release();
    await waitFor("the running finished", () => runningIds.every((id) => finished.has(id)), 10_000);
    for (const id of runningIds) assert.equal((await client.get(id).result({ timeoutMs: 10_000 })), id);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(started.size, 2, "no purged task ran");

    const again = await q("purge", queue, "--yes");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Nothing to purge: queue default\/.* has no queued tasks/);
    const delayed = valid<QueuePurgeOutput>(QueuePurgeOutputSchema, await q("purge", queue, "--yes", "--delayed", "-o", "json"));
    assert.deepEqual([delayed.removed, delayed.removedDelayed], [1, 1]);
    assert.equal((await jsm.streams.info(names.delayedStream)).state.messages, 0);
  });

  it("pauses and resumes: workers pull nothing while paused, all run after; a second pause or resume says so and exits 0", async () => {
    gate = new Promise<void>((r) => (release = r));
    release(); // handlers run straight through now
    const before = started.size;
    const p = valid<{ paused: boolean; changed: boolean; pausedReason?: string }>(QueuePauseOutputSchema, await q("pause", queue, "--reason", "deploy", "-o", "json"));
    assert.deepEqual([p.paused, p.changed, p.pausedReason], [true, true, "deploy"]);
    const twice = await q("pause", queue);
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stdout, /is already paused \(since .*: deploy\); nothing changed/);

    const hs = await Promise.all(Array.from({ length: 4 }, (_, i) => client.enqueue("block", [i])));
    const until = Date.now() + 2000; // past the 1 s pull expiry
    await waitFor("the watch window", () => Date.now() >= until, 5000, 50);
    assert.equal(started.size, before, "nothing started while paused");
    const st = valid<QueueStatusOutput>(QueueStatusOutputSchema, await q("status", queue, "-o", "json", "--sample", "0"));
    assert.deepEqual([st.paused, st.pausedReason, st.backlog + st.inFlight], [true, "deploy", 4]);
    assert.match((await q("status", queue, "--sample", "0")).stdout, /^Paused:\s+yes, since .* by .*: deploy$/m);

    const r = await q("resume", queue);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /resumed/);
    assert.equal((await Promise.all(hs.map((h) => h.result({ timeoutMs: 10_000 })))).length, 4);
    const again = valid<{ paused: boolean; changed: boolean }>(QueuePauseOutputSchema, await q("resume", queue, "-o", "json"));
    assert.deepEqual([again.paused, again.changed], [false, false]);
    assert.match((await q("resume", queue)).stdout, /is not paused; nothing changed/);
  });

  it("samples the settle rate while a worker drains a backlog", async () => {
    const hs = await Promise.all(Array.from({ length: 400 }, () => client.enqueue("block", ["slow"])));
    const st = valid<QueueStatusOutput>(QueueStatusOutputSchema, await q("status", queue, "-o", "json", "--sample", "1"));
    console.log(`# settle rate with one worker (concurrency 2) draining 400 tasks of ~10 ms: ${st.ratePerSecond}/s (at most ~200/s)`);
    assert.ok((st.ratePerSecond ?? 0) > 10 && (st.ratePerSecond ?? 0) <= 220, `rate ${st.ratePerSecond}`);
    await Promise.all(hs.map((h) => h.result({ timeoutMs: 30_000 })));
  });

  it("counts the live workers of the registry (worker.* keys seen within 30 s): the running worker and two fresh entries, not a stale one", async () => {
    const now = Date.now();
    await results.put("worker.pod-a", JSON.stringify({ v: 1, name: "pod-a", lastSeen: new Date(now).toISOString() }));
    await results.put("worker.pod-b", JSON.stringify({ v: 1, name: "pod-b", lastSeen: new Date(now - 5000).toISOString() }));
    await results.put("worker.gone", JSON.stringify({ v: 1, name: "gone", lastSeen: new Date(now - 120_000).toISOString() }));
    const st = valid<QueueStatusOutput>(QueueStatusOutputSchema, await q("status", queue, "-o", "json", "--sample", "0"));
    assert.equal(st.workers, 3);
    for (const k of ["worker.pod-a", "worker.pod-b", "worker.gone"]) await results.delete(k);
  });
});
