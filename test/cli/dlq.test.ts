// `celeriac dlq` as a user runs it: the built bin against a real nats-server, with real dead letters
// written by a real worker.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { parseTaskMessage, type TaskRecord } from "../../api/message.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import { connect, type CeleriacClient } from "../../client/index.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { defineTask, UnrecoverableError, Worker, type WorkerOptions } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { runCeleriac, type CliRun } from "../helpers/cli.js";

const EMPTY_CWD = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
after(() => rmSync(EMPTY_CWD, { recursive: true, force: true }));
const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });


/** Runs `celeriac <args>` as a user would (test/helpers/cli.ts). */
const celeriac = (args: string[]): Promise<CliRun> => runCeleriac(args, EMPTY_CWD);

interface ListItem {
  seq: number;
  id: string;
  task: string;
  reason: string;
  attempts: number;
  error: string;
  deadLetteredAt: string;
  replay?: { id: string; phase?: string };
}

describe("when a queue has dead letters", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let client: CeleriacClient;
  let names: QueueNames;
  let results: KV;
  const workers: Worker[] = [];
  const ncs: NatsConnection[] = [];
  const calls = new Map<string, number>();
  const queue = uniqueQueue("dlq");
  const other = uniqueQueue("dlq2");
  const dlq = (...args: string[]) => celeriac(["dlq", ...args, "--queue", queue, "--namespace", "default", "--nats", srv.url]);
  const dlqCount = async () => (await jsm.streams.info(names.deadLetterStream)).state.messages;

  async function startWorker(tasks: WorkerOptions["tasks"]): Promise<Worker> {
    const wnc = await natsConnect({ servers: srv.url });
    ncs.push(wnc);
    const w = new Worker({ nc: wnc, tasks, queue, logger: quiet, settings: { ackWaitSeconds: 2 }, abortGraceSeconds: 1, shutdownGraceSeconds: 5, fetchExpiresMs: 1000, concurrency: 16 });
    await w.start();
    workers.push(w);
    return w;
  }
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
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await client?.close();
    await Promise.all(ncs.map((c) => c.close()));
    await nc?.close();
    await srv?.cleanup();
  });

  it("lists, shows, refuses and replays 100 UnknownTask dead letters once the handler exists, each once, removing them with --remove", async () => {
    // a tasks module without fix.me: every fix.me task is dead-lettered UnknownTask
    const broken = await startWorker([defineTask("other.task", () => 1)]);
    const ids = (await Promise.all(Array.from({ length: 100 }, (_, i) => client.enqueue("fix.me", [i])))).map((h) => h.id);
    await waitFor("100 dead letters", async () => (await dlqCount()) === 100, 20_000);
    await broken.close();

    const list = await dlq("list", "-o", "json");
    assert.equal(list.code, 0, list.stderr);
    const items = (JSON.parse(list.stdout) as { items: ListItem[] }).items;
    assert.equal(items.length, 100);
    assert.deepEqual(new Set(items.map((d) => d.id)), new Set(ids));
    for (const d of items) {
      assert.equal(d.task, "fix.me");
      assert.equal(d.reason, "UnknownTask");
      assert.equal(d.attempts, 1);
      assert.match(d.error, /no handler registered for "fix.me"/);
      assert.equal(d.replay, undefined);
    }

    const table = await dlq("list", "--limit", "3");
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^SEQ\s+ID\s+TASK\s+REASON\s+ATTEMPTS\s+AGE\s+REPLAY\s+ERROR$/);
    assert.match(lines[1]!, /fix\.me\s+UnknownTask\s+1\s+\d+s\s+<none>\s+no handler registered/);

    const first = items[0]!;
    const show = await dlq("show", String(first.seq), "-o", "json");
    assert.equal(show.code, 0, show.stderr);
    const one = JSON.parse(show.stdout) as { body: string; bodyBase64: string; headers: Record<string, string>; id: string };
    assert.equal(Buffer.from(one.bodyBase64, "base64").toString("utf8"), one.body);
    const parsed = parseTaskMessage(one.body);
    assert.ok(parsed.ok);
    assert.equal(parsed.message.id, first.id);
    assert.equal(one.headers["Celeriac-Dead-Reason"], "UnknownTask");
    const showTable = await dlq("show", String(first.seq));
    assert.match(showTable.stdout, /Reason:\s+UnknownTask/);
    assert.ok(showTable.stdout.includes(one.body));

    const none = await dlq("replay", "--reason", "MaxAttemptsExceeded");
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /No dead letters in queue default\/.* match --reason MaxAttemptsExceeded: nothing replayed/);
    const noneJson = await dlq("purge", "--task", "no.such", "-o", "json");
    assert.equal(noneJson.code, 0, noneJson.stderr);
    assert.deepEqual(JSON.parse(noneJson.stdout), { deleted: 0, seqs: [] });

    const refused = await dlq("purge", "--all");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to delete 100 dead letters of queue default\/\S+ without confirmation: standard input is not a terminal; pass --yes/);
    const bare = await dlq("replay");
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /--all/);
    assert.equal(await dlqCount(), 100);

    // "fix the tasks module": a worker that has the handler
    await startWorker([
      defineTask("fix.me", (args: unknown[], _k, ctx) => {
        calls.set(ctx.taskId, (calls.get(ctx.taskId) ?? 0) + 1);
        return args[0];
      }),
      defineTask("strict", (args: unknown[]) => {
        if (args[0] !== "ok") throw new UnrecoverableError(`bad argument ${JSON.stringify(args[0])}`);
        return args;
      }),
    ]);
    const replay = await dlq("replay", "--all", "--remove", "-o", "json");
    assert.equal(replay.code, 0, replay.stderr);
    const outs = (JSON.parse(replay.stdout) as { items: Array<{ seq: number; id: string; replayId: string; outcome: string; removed: boolean }> }).items;
    assert.equal(outs.length, 100);
    for (const o of outs) {
      assert.equal(o.outcome, "Replayed");
      assert.equal(o.removed, true);
      assert.equal(o.replayId, `${o.id}-r${o.seq}`);
    }
    assert.equal(await dlqCount(), 0);
    await waitFor("100 replays succeeded", async () => {
      const recs = await Promise.all(outs.map((o) => record(o.replayId)));
      return recs.every((r) => r?.status.phase === "Succeeded");
    }, 20_000);
    assert.equal(calls.size, 100);
    for (const o of outs) assert.equal(calls.get(o.replayId), 1, o.replayId);
    // the old ids keep their final records, and nothing is left to run
    for (const id of ids) assert.equal((await record(id))?.status.phase, "Failed");
    await waitFor("the work stream empty", async () => (await jsm.streams.info(names.stream)).state.messages === 0);
    const again = await dlq("replay", "--all");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /No dead letters in queue .*: nothing replayed/);
    assert.equal(calls.size, 100);
  });

  it("replays with edited args, keeps the dead letter until purged by replay state, and replays to another queue", async () => {
    const before = await dlqCount();
    const hs = await Promise.all(["bad1", "bad2"].map((a) => client.enqueue("strict", [a])));
    await waitFor("2 Unrecoverable dead letters", async () => (await dlqCount()) === before + 2, 20_000);
    const items = (JSON.parse((await dlq("list", "--reason", "Unrecoverable", "-o", "json")).stdout) as { items: ListItem[] }).items;
    assert.deepEqual(items.map((d) => d.id).sort(), hs.map((h) => h.id).sort());
    const [a, b] = items as [ListItem, ListItem];

    const bad = await dlq("replay", String(a.seq), "--args", "{not json");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--args: .* is not valid JSON/);

    const r = await dlq("replay", String(a.seq), "--args", '["ok"]');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /1 of 1 dead letters replayed .*the dead letters are kept/);
    const rid = `${a.id}-r${a.seq}`;
    await waitFor("the edited replay succeeded", async () => (await record(rid))?.status.phase === "Succeeded");
    assert.deepEqual((await record(rid))?.status.result, ["ok"]);
    const kept = (JSON.parse((await dlq("list", "--replay-state", "Succeeded", "-o", "json")).stdout) as { items: ListItem[] }).items;
    assert.deepEqual(kept.map((d) => [d.seq, d.replay]), [[a.seq, { id: rid, phase: "Succeeded" }]]);
    const twice = await dlq("replay", String(a.seq), "--args", '["ok"]', "-o", "json");
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stdout, /already replayed as .*, which ended Succeeded/);

    const purged = await dlq("purge", "--replay-state", "Succeeded", "--yes", "-o", "json");
    assert.equal(purged.code, 0, purged.stderr);
    assert.deepEqual(JSON.parse(purged.stdout), { deleted: 1, seqs: [a.seq] });
    const gone = await dlq("show", String(a.seq));
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`dead letter ${a.seq} does not exist in queue default/${queue} .*celeriac dlq list --queue ${queue}`));
    // SEQs that do not exist fail (exit 1) even when none of the given ones exists: a script's `replay 7 && …` must not read success
    for (const verb of [["replay"], ["purge", "--yes"]]) {
      const r = await dlq(verb[0]!, String(a.seq), ...verb.slice(1));
      assert.equal(r.code, 1, `${verb[0]} of a removed SEQ: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`dead letter ${a.seq} does not exist`));
    }

    const moved = await dlq("replay", String(b.seq), "--to-queue", other, "--remove");
    assert.equal(moved.code, 0, moved.stderr);
    const o = queueNames("default", other);
    const sm = await jsm.streams.getMessage(o.stream, { last_by_subj: o.taskSubject });
    const m = parseTaskMessage(sm!.data);
    assert.ok(m.ok);
    assert.equal(m.message.queue, other);
    assert.equal(m.message.id, `${b.id}-r${b.seq}`);
    assert.deepEqual((m.message as { replayOf?: unknown }).replayOf, { stream: names.deadLetterStream, seq: b.seq, id: b.id });
    assert.equal(await dlqCount(), before);
  });

  it("names the queues that exist for an unknown queue, and the formats for a bad -o", async () => {
    const r = await celeriac(["dlq", "list", "--queue", "nosuch", "--namespace", "default", "--nats", srv.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /queue "nosuch" does not exist in namespace "default"; existing queues: .*dlq-/);
    const ns = await celeriac(["dlq", "list", "--queue", queue, "--namespace", "nowhere", "--nats", srv.url]);
    assert.equal(ns.code, 1);
    assert.match(ns.stderr, /namespace "nowhere" has no queues; namespaces with queues: default/);
    const o = await celeriac(["dlq", "list", "--queue", queue, "-o", "wide", "--nats", srv.url]);
    assert.equal(o.code, 1);
    assert.match(o.stderr, /-o wide: unknown output format: use one of table, json, yaml/);
  });
});
