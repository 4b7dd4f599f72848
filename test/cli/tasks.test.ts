// `celeriac tasks get|list|result|revoke|retry` as a user runs them: the built bin against a real
// nats-server with an in-process worker (test/worker/fixture.ts).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineTask, UnrecoverableError } from "../../worker/index.js";
import type { TaskRecord } from "../../api/message.js";
import { parseSince, parseStates, age } from "../../cli/commands/tasks.js";
import { retryId, retryMessage, taskTimeline } from "../../nats/task-records.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "../worker/fixture.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
const EMPTY_CWD = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
after(() => rmSync(EMPTY_CWD, { recursive: true, force: true }));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `celeriac <args>` without CELERIAC_* variables from the test's environment. */
async function celeriac(args: string[]): Promise<Ran> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG"));
  return run(process.execPath, [BIN, ...args], { cwd: EMPTY_CWD, env, maxBuffer: 16 * 1024 * 1024 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const started = new Set<string>();
let healed = false;
const tasks = [
  defineTask("math.add", (args: unknown[]) => (args as number[]).reduce((a, b) => a + b, 0)),
  defineTask("always.fails", () => {
    throw new UnrecoverableError("bad input");
  }),
  defineTask("heals", (args: unknown[], _k, ctx) => {
    started.add(ctx.taskId);
    if (!healed) throw new UnrecoverableError("not yet");
    return { args };
  }),
  defineTask("slow", async (_a, _k, ctx) => {
    started.add(ctx.taskId);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, 20_000);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(ctx.signal.reason as Error);
      });
    });
    return "late";
  }),
];

describe("celeriac tasks", () => {
  let srv: NatsServer;
  let f: Fixture;
  let common: string[];
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { concurrency: 4 });
    await f.startWorker();
    common = ["--queue", f.queue, "--namespace", "default", "--nats", srv.url];
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  describe("when a task succeeded", () => {
    it("get shows its status, args, result and timeline; result prints the result", async () => {
      const h = await f.client.enqueue("math.add", [2, 3], {}, { taskId: "add-1" });
      assert.equal(await h.result({ timeoutMs: 10_000 }), 5);
      const r = await celeriac(["tasks", "get", "add-1", ...common, "-o", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const v = JSON.parse(r.stdout) as { phase: string; result: unknown; attempts: number; worker: string; timeline: Array<{ event: string }>; task: string };
      assert.equal(v.phase, "Succeeded");
      assert.equal(v.result, 5);
      assert.equal(v.task, "math.add");
      assert.equal(v.attempts, 1);
      assert.ok(v.worker);
      assert.deepEqual(v.timeline.map((e) => e.event), ["Queued", "Started (attempt 1)", "Succeeded"]);
      const t = await celeriac(["tasks", "get", "add-1", ...common]);
      assert.match(t.stdout, /^Phase: +Succeeded$/m);
      assert.match(t.stdout, /^Timeline:$/m);
      const res = await celeriac(["tasks", "result", "add-1", ...common]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, "5\n");
      // without --queue: found in the namespace's queues
      const any = await celeriac(["tasks", "result", "add-1", "--namespace", "default", "--nats", srv.url]);
      assert.equal(any.stdout, "5\n", any.stderr);
    });
  });

  describe("when a task failed", () => {
    it("get shows the error with its stack and the args from the dead letter", async () => {
      const h = await f.client.enqueue("always.fails", ["x", 1], { k: true }, { taskId: "fails-1" });
      await assert.rejects(h.result({ timeoutMs: 10_000 }));
      const r = await celeriac(["tasks", "get", "fails-1", ...common, "-o", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const v = JSON.parse(r.stdout) as { phase: string; error: { type: string; message: string; stack?: string }; args: unknown[]; kwargs: unknown; argsSource: string; deadLettered: boolean };
      assert.equal(v.phase, "Failed");
      assert.equal(v.error.type, "UnrecoverableError");
      assert.equal(v.error.message, "bad input");
      assert.match(v.error.stack ?? "", /UnrecoverableError: bad input/);
      assert.deepEqual(v.args, ["x", 1]);
      assert.deepEqual(v.kwargs, { k: true });
      assert.equal(v.argsSource, "dead-letter");
      const t = await celeriac(["tasks", "get", "fails-1", ...common]);
      assert.match(t.stdout, /^Error: +UnrecoverableError: bad input$/m);
      assert.match(t.stdout, /^Stack:$/m);
      const res = await celeriac(["tasks", "result", "fails-1", ...common]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /ended Failed: UnrecoverableError: bad input/);
    });

    it("retry re-enqueues it with the same args under a new id linked to the old one", async () => {
      const h = await f.client.enqueue("heals", [7], { a: 1 }, { taskId: "heal-1" });
      await assert.rejects(h.result({ timeoutMs: 10_000 }));
      healed = true;
      const r = await celeriac(["tasks", "retry", "heal-1", ...common, "-o", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { id: string; retryOf: string };
      assert.equal(out.id, "heal-1-retry-1");
      assert.equal(out.retryOf, "heal-1");
      assert.deepEqual(await f.client.get(out.id).result({ timeoutMs: 10_000 }), { args: [7] });
      const nv = JSON.parse((await celeriac(["tasks", "get", out.id, ...common, "-o", "json"])).stdout) as { retryOf: string; phase: string };
      assert.equal(nv.retryOf, "heal-1");
      assert.equal(nv.phase, "Succeeded");
      const ov = JSON.parse((await celeriac(["tasks", "get", "heal-1", ...common, "-o", "json"])).stdout) as { retries: string[] };
      assert.deepEqual(ov.retries, ["heal-1-retry-1"]);
      const again = await celeriac(["tasks", "retry", "add-1", ...common]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /is Succeeded: only a task that ended Failed, Cancelled, Expired is retried/);
    });
  });

  describe("when tasks are listed", () => {
    it("filters by --state and --task, stops at --limit, and prints {items} with -o json", async () => {
      await Promise.all([1, 2, 3].map(async (i) => (await f.client.enqueue("math.add", [i], {}, { taskId: `list-${i}` })).result({ timeoutMs: 10_000 })));
      const failed = await celeriac(["tasks", "list", ...common, "--state", "failed", "-o", "json"]);
      assert.equal(failed.code, 0, failed.stderr);
      const fi = (JSON.parse(failed.stdout) as { items: TaskRecord[] }).items;
      assert.ok(fi.length >= 1 && fi.every((x) => x.status.phase === "Failed"), failed.stdout);
      const adds = JSON.parse((await celeriac(["tasks", "list", ...common, "--task", "math.add", "-o", "json"])).stdout) as { items: TaskRecord[] };
      for (const id of ["add-1", "list-1", "list-2", "list-3"]) assert.ok(adds.items.some((x) => x.id === id), id);
      assert.ok(adds.items.every((x) => x.task === "math.add"));
      const two = await celeriac(["tasks", "list", ...common, "--limit", "2"]);
      assert.equal(two.code, 0, two.stderr);
      const lines = two.stdout.trim().split("\n");
      assert.equal(lines.length, 3, two.stdout);
      assert.match(lines[0]!, /^ID +TASK +PHASE +ATTEMPTS +WORKER +UPDATED +ERROR$/);
      assert.match(two.stderr, /stopped at --limit 2/);
      const since = JSON.parse((await celeriac(["tasks", "list", ...common, "--since", "1h", "-o", "json"])).stdout) as { items: TaskRecord[] };
      assert.ok(since.items.length >= 4);
      const none = await celeriac(["tasks", "list", ...common, "--task", "no.such"]);
      assert.equal(none.code, 0);
      assert.equal(none.stdout, "");
      assert.match(none.stderr, /^No tasks match --task no\.such in queue/);
    });
  });

  describe("when a task is revoked", () => {
    it("a queued one never runs; a running one is aborted; both end Cancelled", async () => {
      const queued = await f.client.enqueue("slow", [], {}, { taskId: "rq-1", countdownSeconds: 3 });
      const running = await f.client.enqueue("slow", [], {}, { taskId: "rr-1" });
      await waitFor("rr-1 running", () => started.has("rr-1"));
      await waitFor("rr-1 Running record", async () => (await running.status())?.phase === "Running");
      const r = await celeriac(["tasks", "revoke", "rq-1", "rr-1", ...common, "--terminate"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /task rq-1 revoked: no record of it/);
      assert.doesNotMatch(r.stderr, /rq-1 was not found queued/, "rq-1 waits in the delayed stream: no warning");
      assert.match(r.stdout, /task rr-1 revoked: it is running/);
      await assert.rejects(running.result({ timeoutMs: 10_000 }), /Cancelled|revoked|abort/i);
      await assert.rejects(queued.result({ timeoutMs: 10_000 }));
      assert.equal((await queued.status())?.phase, "Cancelled");
      assert.equal((await running.status())?.phase, "Cancelled");
      const res = await celeriac(["tasks", "result", "rr-1", ...common, "--wait", "--timeout", "5"]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /ended Cancelled/);
      // the delayed one comes due after the revoke: moved to the work stream, then refused and acked by the worker
      await waitFor("rq-1 moved and settled", async () => {
        const [d, w] = await Promise.all([f.jsm.streams.info(f.names.delayedStream), f.jsm.streams.info(f.names.stream)]);
        return d.state.messages === 0 && w.state.messages === 0;
      }, 10_000, 100);
      assert.equal(started.has("rq-1"), false);
      assert.equal((await queued.status())?.phase, "Cancelled");
      const done = await celeriac(["tasks", "revoke", "add-1", ...common]);
      assert.match(done.stdout, /task add-1 not revoked: it already ended Succeeded/);
      // a mistyped id: revoked (the marker waits for it), but the command says it is queued nowhere
      const typo = await celeriac(["tasks", "revoke", "rq-l", ...common]);
      assert.equal(typo.code, 0, typo.stderr);
      assert.match(typo.stderr, /warning: task rq-l was not found queued in "[^"]+" either/);
    });
  });

  describe("when a Cancelled or Expired task is retried", () => {
    it("a revoked task whose message is still queued is retried from that message", async () => {
      const h = await f.client.enqueue("math.add", [4, 5], {}, { taskId: "rc-1", countdownSeconds: 30 });
      await h.revoke();
      assert.equal((await h.status())?.phase, "Cancelled");
      const r = await celeriac(["tasks", "retry", "rc-1", ...common, "-o", "json"]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { id: string; retryOf: string; argsSource: string };
      assert.deepEqual([out.id, out.retryOf, out.argsSource], ["rc-1-retry-1", "rc-1", "queued-message"]);
      assert.equal(await f.client.get(out.id).result({ timeoutMs: 10_000 }), 9);
    });

    it("a Cancelled or Expired task whose message is gone is refused, saying why and how to enqueue it again", async () => {
      // rr-1 was revoked while running: the worker recorded it Cancelled and acked its message
      assert.equal((await f.client.get("rr-1").status())?.phase, "Cancelled");
      const c = await celeriac(["tasks", "retry", "rr-1", ...common]);
      assert.equal(c.code, 1);
      assert.equal(c.stdout, "");
      assert.equal(c.stderr.trim(), `task "rr-1" (Cancelled) cannot be retried: its message is gone (a worker acks a Cancelled task's message when it records it) and the results bucket keeps the status, not the args; enqueue it again with its args: celeriac enqueue slow --queue ${f.queue} --namespace default --args '[…]' --kwargs '{…}'`);
      // already past its expiry when a worker takes it: recorded Expired, message acked
      const e = await f.client.enqueue("math.add", [1], {}, { taskId: "ex-1", expires: new Date(Date.now() - 1000) });
      await waitFor("ex-1 Expired", async () => (await e.status())?.phase === "Expired");
      const x = await celeriac(["tasks", "retry", "ex-1", ...common]);
      assert.equal(x.code, 1);
      assert.match(x.stderr, /^task "ex-1" \(Expired\) cannot be retried: its message is gone \(a worker acks an Expired task's message when it records it\).*celeriac enqueue math\.add --queue /);
    });
  });

  describe("when result --wait waits", () => {
    it("prints the result once the task finishes", async () => {
      const p = celeriac(["tasks", "result", "later-1", ...common, "--wait", "--timeout", "15"]);
      // due in 1.5 s: it finishes after the command has started watching
      await f.client.enqueue("math.add", [40, 2], {}, { taskId: "later-1", countdownSeconds: 1.5 });
      const r = await p;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "42\n");
    });
  });

  describe("when the input is wrong", () => {
    it("an unknown id says where it looked and how to list tasks", async () => {
      const r = await celeriac(["tasks", "get", "nope", ...common]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `task "nope" not found in queue "${f.queue}" (namespace "default"), nor a Task resource of that name: list tasks with \`celeriac tasks list --queue ${f.queue} --namespace default\` (records expire after the queue's results TTL; a Task resource's task id is its uid)`);
    });
    it("an unknown queue names the queues that exist", async () => {
      const r = await celeriac(["tasks", "list", "--queue", "nosuch", "--namespace", "default", "--nats", srv.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`queue "nosuch" does not exist in namespace "default"; existing queues: .*${f.queue}`));
    });
    it("an unknown namespace names the namespaces that have queues", async () => {
      const r = await celeriac(["tasks", "list", "--namespace", "elsewhere", "--nats", srv.url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /namespace "elsewhere" has no queues; namespaces with queues: default/);
    });
    it("a bad --state names the phases", async () => {
      const r = await celeriac(["tasks", "list", ...common, "--state", "Done"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /--state "Done": unknown phase: use one of Pending, Queued/);
    });
  });
});

describe("tasks helpers", () => {
  it("parses --since and --state", () => {
    const now = Date.parse("2026-12-03T12:00:00Z");
    assert.equal(parseSince("1h", now).toISOString(), "2026-12-03T11:00:00.000Z");
    assert.equal(parseSince("1h30m", now).toISOString(), "2026-12-03T10:30:00.000Z");
    assert.equal(parseSince("2d", now).toISOString(), "2026-12-01T12:00:00.000Z");
    assert.equal(parseSince("2026-12-03T10:00:00Z", now).toISOString(), "2026-12-03T10:00:00.000Z");
    assert.throws(() => parseSince("yesterday", now), /--since "yesterday": use a duration/);
    assert.deepEqual(parseStates("running,FAILED"), ["Running", "Failed"]);
    assert.equal(age("2026-12-03T11:59:00Z", now), "60s");
  });
  it("makes retry ids within the id rules and retry messages without the old timing", () => {
    assert.equal(retryId("abc", 2), "abc-retry-2");
    assert.equal(retryId("a".repeat(250), 1, () => "uuid"), "uuid");
    const old = { v: 1, id: "x", task: "t", args: [1], kwargs: {}, queue: "q", namespace: "default", origin: { kind: "Task" as const, name: "n" }, eta: "2026-01-01T00:00:00Z", timeoutSeconds: 5, retry: { maxAttempts: 1, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 1, jitter: false } }, createdAt: "2026-01-01T00:00:00Z" };
    const m = retryMessage(old, "x-retry-1", new Date("2026-12-03T12:00:00Z"));
    assert.equal(m.retryOf, "x");
    assert.equal(m.eta, undefined);
    assert.deepEqual(m.origin, { kind: "Client" });
    assert.deepEqual(m.args, [1]);
  });
  it("builds a timeline from the record's times", () => {
    const rec = { id: "x", task: "t", queue: "q", namespace: "default", origin: { kind: "Client" as const }, updatedAt: "2026-12-03T12:00:05Z", status: { phase: "Failed" as const, attempts: 2, queuedTime: "2026-12-03T12:00:00Z", startTime: "2026-12-03T12:00:01Z", lastAttemptStartTime: "2026-12-03T12:00:03Z", completionTime: "2026-12-03T12:00:05Z" } };
    assert.deepEqual(taskTimeline(rec).map((e) => e.event), ["Queued", "Started (attempt 1)", "Started (attempt 2)", "Failed"]);
    assert.deepEqual(taskTimeline({ ...rec, updatedAt: "2026-12-03T12:00:09Z" }).at(-1), { time: "2026-12-03T12:00:09Z", event: "Record written (Failed)" });
    // a results-bucket record has the latest attempt's start only (the worker rewrites it): labelled with that attempt
    const { lastAttemptStartTime: _l, ...recordStatus } = rec.status;
    void _l;
    assert.deepEqual(taskTimeline({ ...rec, status: { ...recordStatus, startTime: "2026-12-03T12:00:03Z", attempts: 3 } }).map((e) => e.event), ["Queued", "Started (attempt 3)", "Failed"]);
  });
});
