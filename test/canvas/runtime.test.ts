/**
 * The canvas runtime (canvas/runtime.ts) with real Workers on a real nats-server: chains pass
 * results, a chord's body runs once with its header's results in order, failures cancel what
 * follows (status.canvas.failedStep) and fire linkError once, large results pass by reference, and
 * a replayed final message does not run the next step twice. Also measures the chain hand-off
 * latency and the chord header's KV operations per task (reported as test diagnostics).
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { jetstream } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import { freezeCanvas, joinKey, type CanvasNode, type JoinRecord, type TaskNode } from "../../api/canvas.js";
import type { TaskMessage, TaskRecord } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import { QUEUE_SETTINGS_KEY } from "../../api/naming.js";
import { producerPermissions, workerPermissions, type NatsPermissions } from "../../api/nats-permissions.js";
import { resolveRetryPolicy } from "../../api/policies.js";
import { QUEUE_SETTINGS_VERSION } from "../../api/queue-settings.js";
import { CanvasRuntime } from "../../canvas/runtime.js";
import { connectNats, ensureQueueResources, mintUserCreds, natsSettingsFrom, queueSettings } from "../../nats/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "../worker/fixture.js";

const calls = new Map<string, number>();
const bump = (k: string) => calls.set(k, (calls.get(k) ?? 0) + 1);
const seen: unknown[][] = [];

const tasks = [
  defineTask("add", (args: unknown[]) => (args as number[]).reduce((a, b) => a + b, 0)),
  defineTask("mul", (args: unknown[]) => (args as number[]).reduce((a, b) => a * b, 1)),
  defineTask("sq", async (args: unknown[]) => {
    await new Promise((r) => setTimeout(r, Math.random() * 5));
    return (args[0] as number) ** 2;
  }),
  defineTask("inc", (args: unknown[]) => (args[0] as number) + 1),
  defineTask("collect", (args: unknown[], _k, ctx) => {
    bump(ctx.taskId);
    seen.push(args);
    return args[0];
  }),
  defineTask("count", (args: unknown[], _k, ctx) => {
    bump(ctx.taskId);
    return args;
  }),
  defineTask("fatal", (_a, _k, ctx) => {
    bump(ctx.taskId);
    throw new UnrecoverableError("bad input");
  }),
  defineTask("errback", (args: unknown[], _k, ctx) => {
    bump(ctx.taskId);
    seen.push(args);
    return null;
  }),
  defineTask("big", () => "x".repeat(300 * 1024)),
  defineTask("len", (args: unknown[], _k, ctx) => {
    bump(ctx.taskId);
    return (args[0] as string).length;
  }),
];

const t = (task: string, args?: unknown[], extra: Partial<TaskNode> = {}): TaskNode => ({ kind: "task", task, ...(args ? { args } : {}), ...extra });

interface Setup {
  url: string;
  f: Fixture;
  kv: KV;
  runtime: CanvasRuntime;
  workers: Worker[];
  run(node: CanvasNode, id: string): Promise<void>;
  record(id: string): Promise<TaskRecord | undefined>;
  final(id: string, timeoutMs?: number): Promise<TaskRecord>;
}

/** A fresh nats-server, queue, `n` workers and a producer-side runtime; all stopped after the test. */
async function setup(t: TestContext, n = 1, concurrency = 4): Promise<Setup> {
  const srv = await startNatsServer();
  const f = await fixture(srv, tasks);
  t.after(async () => {
    await f.close();
    await srv.cleanup();
  });
  const workers: Worker[] = [];
  for (let i = 0; i < n; i++) workers.push(await f.startWorker({ concurrency }));
  const js = jetstream(f.nc);
  const kvm = new Kvm(js);
  const kv = await kvm.open(f.names.resultsBucket);
  const runtime = new CanvasRuntime({ js, namespace: "default", bucket: (q) => kvm.open(queueNames("default", q).resultsBucket) });
  const record = async (id: string) => {
    const e = await kv.get(id);
    return e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
  };
  return {
    url: srv.url,
    f,
    kv,
    runtime,
    workers,
    run: (node, id) => runtime.start(freezeCanvas(node, id), { root: id, home: f.queue, queue: f.queue }),
    record,
    final: (id, timeoutMs = 15_000) =>
      waitFor(
        `final record of ${id}`,
        async () => {
          const r = await record(id);
          return r && ["Succeeded", "Failed", "Cancelled", "Expired"].includes(r.status.phase ?? "") ? r : undefined;
        },
        timeoutMs,
      ),
  };
}

describe("when a worker runs a chain", () => {
  it("passes each step's result to the next, and records status.canvas on every step", async (tc) => {
    const s = await setup(tc);
    await s.run({ kind: "chain", steps: [t("add", [1, 2]), t("add", [10]), t("mul", [3])] }, "ch1");
    const last = await s.final("ch1-2");
    assert.equal(last.status.phase, "Succeeded");
    assert.equal(last.status.result, 39);
    assert.deepEqual(last.status.canvas, { root: "ch1", parent: "ch1-1", step: 2 });
    assert.deepEqual((await s.record("ch1-0"))?.status.canvas, { root: "ch1", step: 0 });
  });

  it("cancels the rest of the chain when a step fails, naming it in status.canvas.failedStep, and fires linkError once", async (tc) => {
    const s = await setup(tc);
    seen.length = 0;
    await s.run({ kind: "chain", steps: [t("add", [1]), t("fatal"), t("add", [1]), t("add", [2])], linkError: [t("errback")] }, "ch2");
    assert.equal((await s.final("ch2-1")).status.phase, "Failed");
    const e = await s.final("ch2-e0");
    assert.equal(e.status.phase, "Succeeded");
    for (const id of ["ch2-2", "ch2-3"]) {
      const r = await s.final(id);
      assert.equal(r.status.phase, "Cancelled");
      assert.deepEqual(r.status.canvas?.failedStep, { id: "ch2-1", task: "fatal" });
      assert.match(r.status.error?.message ?? "", /ch2-1 \(fatal\) failed/);
    }
    assert.equal(calls.get("ch2-e0"), 1);
    const args = seen.find((a) => a[0] === "ch2-1");
    assert.ok(args, "errback got [taskId, error]");
    assert.equal((args[1] as { type: string }).type, "UnrecoverableError");
  });

  it("refuses a first task its queue cannot honour before writing anything, and fails a later one when it is due", async (tc) => {
    const s = await setup(tc);
    await assert.rejects(s.run({ kind: "group", members: [t("add"), t("add", [], { options: { priority: 5 } })] }, "iv1"), (e: unknown) => e instanceof TypeError && (e as { field?: string }).field === "priority");
    assert.equal(await s.record("iv1-0"), undefined, "nothing was published");
    await s.run({ kind: "chain", steps: [t("add", [1]), t("add", [], { options: { priority: 5 } }), t("add")] }, "iv2");
    const bad = await s.final("iv2-1");
    assert.equal(bad.status.phase, "Failed");
    assert.equal(bad.status.error?.type, "InvalidTaskMessage");
    assert.deepEqual((await s.final("iv2-2")).status.canvas?.failedStep, { id: "iv2-1", task: "add" });
  });

  it("counts a step's countdown from when its parent finished", async (tc) => {
    const s = await setup(tc);
    await s.run({ kind: "chain", steps: [t("add", [1]), t("add", [2], { options: { countdownSeconds: 1 } })] }, "cdn");
    const [a, b] = [await s.final("cdn-0"), await s.final("cdn-1")];
    assert.equal(b.status.result, 3);
    assert.ok(Date.parse(b.status.startTime!) - Date.parse(a.status.completionTime!) >= 900, "started a countdown after its parent");
  });

  it("passes a result above 256 KiB by reference", async (tc) => {
    const s = await setup(tc);
    await s.run({ kind: "chain", steps: [t("big"), t("len")] }, "ch3");
    const r = await s.final("ch3-1");
    assert.equal(r.status.phase, "Succeeded", JSON.stringify(r.status.error));
    assert.equal(r.status.result, 300 * 1024);
  });
});

describe("when workers run a chord", () => {
  it("runs the body once, with the header's results in order", async (tc) => {
    const s = await setup(tc, 2, 8);
    seen.length = 0;
    const header = Array.from({ length: 40 }, (_, i) => t("sq", [i]));
    await s.run({ kind: "chain", steps: [{ kind: "chord", header, body: t("collect", ["tail"]) }, t("count")] }, "cd1");
    const body = await s.final("cd1-0-b");
    assert.deepEqual(body.status.result, header.map((_, i) => i * i));
    assert.equal(calls.get("cd1-0-b"), 1);
    const next = await s.final("cd1-1");
    assert.deepEqual(next.status.result, [header.map((_, i) => i * i)]);
    const j = (await s.kv.get(joinKey("cd1-0")))!.json<JoinRecord>();
    assert.equal(j.count, 40);
    assert.equal(j.continued, true);
  });

  it("fails the chord once on a header failure: linkError gets [taskId, error], the body is cancelled", async (tc) => {
    const s = await setup(tc, 2, 4);
    seen.length = 0;
    await s.run({ kind: "chord", header: [t("sq", [1]), t("fatal"), t("fatal"), t("sq", [2])], body: t("collect"), linkError: [t("errback")] }, "cd2");
    const body = await s.final("cd2-b");
    assert.equal(body.status.phase, "Cancelled");
    const failedStep = body.status.canvas?.failedStep;
    assert.ok(failedStep && ["cd2-1", "cd2-2"].includes(failedStep.id) && failedStep.task === "fatal");
    await s.final("cd2-e0");
    // both failures are in; the errback ran once, for the first
    await s.final("cd2-1");
    await s.final("cd2-2");
    await waitFor("join failed and continued", async () => (await s.kv.get(joinKey("cd2")))?.json<JoinRecord>().continued);
    assert.equal(calls.get("cd2-e0"), 1);
    assert.equal(calls.get("cd2-b"), undefined);
    const args = seen.find((a) => a[0] === failedStep.id);
    assert.ok(args);
    assert.deepEqual({ type: (args[1] as { type: string }).type, message: (args[1] as { message: string }).message }, { type: "UnrecoverableError", message: "bad input" });
  });
});

describe("when workers run nested groups, chunks and empty maps", () => {
  it("fills an outer slot with a nested group's list, runs chunks per argument list, fires a group's link with its results", async (tc) => {
    const s = await setup(tc, 1, 8);
    await s.run(
      {
        kind: "chord",
        header: [
          { kind: "group", members: [t("sq", [2]), t("sq", [3])] },
          { kind: "chain", steps: [t("add", [1, 1]), t("mul", [5])] },
          { kind: "chunks", task: t("add"), items: [[1, 2], [3, 4], [5, 6]], n: 2 },
        ],
        body: t("count"),
      },
      "ns1",
    );
    const body = await s.final("ns1-b");
    assert.deepEqual(body.status.result, [[[4, 9], 10, [[3, 7], [11]]]]);
    assert.equal(calls.get("ns1-b"), 1);

    await s.run({ kind: "group", members: [t("sq", [4]), t("sq", [5])], link: [t("count")] }, "ns2");
    assert.deepEqual((await s.final("ns2-l0")).status.result, [[16, 25]]);
  });

  it("continues an empty map's join at once with an empty list", async (tc) => {
    const s = await setup(tc);
    await s.run({ kind: "chain", steps: [{ kind: "map", task: t("sq"), items: [] }, t("count", ["after"])] }, "em1");
    assert.deepEqual((await s.final("em1-1")).status.result, [[], "after"]);
  });
});

describe("when a canvas task's final message is redelivered", () => {
  it("replays its continuation without running the next step (or a chord body) twice", async (tc) => {
    const s = await setup(tc);
    const w = s.workers[0]!;
    const real = w.canvas.afterFinal.bind(w.canvas);
    const failedOnce = new Set<string>();
    const replays: string[] = [];
    // the continuation is done, then the ack is lost: the message is naked and comes back as a replay
    w.canvas.afterFinal = async (msg: TaskMessage, record: TaskRecord, o?: { replay?: boolean }) => {
      await real(msg, record, o);
      if (o?.replay) replays.push(msg.id);
      if (!failedOnce.has(msg.id) && (msg.id === "rp-0" || msg.id === "rp-1-0")) {
        failedOnce.add(msg.id);
        throw new Error("ack lost");
      }
    };
    await s.run({ kind: "chain", steps: [t("add", [1]), { kind: "chord", header: [t("sq", [3], { immutable: true })], body: t("count") }, t("count")] }, "rp");
    const last = await s.final("rp-2");
    assert.deepEqual(last.status.result, [[[9]]]);
    await waitFor("both replays", () => replays.includes("rp-0") && replays.includes("rp-1-0"));
    assert.equal(calls.get("rp-1-b"), 1);
    assert.equal(calls.get("rp-2"), 1);
    const head = await s.record("rp-1-0");
    assert.equal(head?.status.attempts, 1, "the replay did not run the handler again");
  });
});

describe("when a worker's connection dies in the middle of a chord header member's settle", () => {
  for (const when of ["before", "after"] as const) {
    it(`another worker's replay continues the chord exactly once (died ${when} the continuation)`, async (tc) => {
      const s = await setup(tc, 0);
      const nc = await natsConnect({ servers: s.url });
      const a = await s.f.startWorker({ nc, concurrency: 4, shutdownGraceSeconds: 1 });
      const real = a.canvas.afterFinal.bind(a.canvas);
      let hung: string | undefined;
      // the first header member this worker settles: its record is stored, then the process "dies"
      a.canvas.afterFinal = async (msg: TaskMessage, record: TaskRecord, o?: { replay?: boolean }) => {
        if (hung === undefined && msg.canvas?.join) {
          hung = msg.id;
          if (when === "after") await real(msg, record, o);
          await new Promise(() => undefined);
        }
        return real(msg, record, o);
      };
      const root = `dc-${when}`;
      await s.run({ kind: "chord", header: Array.from({ length: 6 }, (_, i) => t("sq", [i], { immutable: true })), body: t("count") }, root);
      await waitFor("a member hung", () => hung);
      await nc.close();
      await s.f.startWorker({ concurrency: 4 });
      const body = await s.final(`${root}-b`, 20_000);
      assert.deepEqual(body.status.result, [[0, 1, 4, 9, 16, 25]]);
      assert.equal(calls.get(`${root}-b`), 1);
      const j = (await s.kv.get(joinKey(root)))!.json<JoinRecord>();
      assert.equal(j.count, 6);
      assert.equal(j.continued, true);
    });
  }
});

describe("when measuring the canvas runtime", () => {
  it("reports the chain hand-off latency per step and the chord header's KV operations per task", async (tc) => {
    const s = await setup(tc, 2, 16);
    const steps = 50;
    const t0 = performance.now();
    await s.run({ kind: "chain", steps: [t("inc", [0]), ...Array.from({ length: steps - 1 }, () => t("inc"))] }, "m1");
    const last = await s.final(`m1-${steps - 1}`, 30_000);
    const chainMs = performance.now() - t0;
    assert.equal(last.status.result, steps);
    // hand-off: from a step's completionTime (its final record) to the next step's startTime
    const gaps: number[] = [];
    for (let i = 0; i + 1 < steps; i++) {
      const [a, b] = [await s.record(`m1-${i}`), await s.record(`m1-${i + 1}`)];
      gaps.push(Date.parse(b!.status.startTime!) - Date.parse(a!.status.completionTime!));
    }
    gaps.sort((x, y) => x - y);
    const t1 = performance.now();
    await s.run(t("inc", [0]), "m-single");
    await s.final("m-single");
    const singleMs = performance.now() - t1;

    const before = s.workers.map((w) => ({ ops: w.canvas.joinOps, slots: w.canvas.stats.slotWrites }));
    const size = 400;
    const t2 = performance.now();
    await s.run({ kind: "chord", header: Array.from({ length: size }, (_, i) => t("inc", [i])), body: t("count") }, "m2");
    await s.final("m2-b", 30_000);
    const chordMs = performance.now() - t2;
    const joinOps = s.workers.reduce((a, w, i) => a + w.canvas.joinOps - before[i]!.ops, 0);
    const slotWrites = s.workers.reduce((a, w, i) => a + w.canvas.stats.slotWrites - before[i]!.slots, 0);
    const perTask = (joinOps + slotWrites) / size;
    const t3 = performance.now();
    const reads0 = s.runtime.stats.slotReads;
    const list = await s.runtime.readJoinResults(s.f.queue, "m2");
    const readMs = performance.now() - t3;
    assert.deepEqual(list, Array.from({ length: size }, (_, i) => i + 1));
    // the slots came through one watch, not a read each
    assert.equal(s.runtime.stats.slotReads - reads0, 0, "slots read one by one");
    tc.diagnostic(`chain of ${steps}: ${chainMs.toFixed(0)} ms, ${(chainMs / steps).toFixed(2)} ms per step end to end; hand-off (completion → next start) median ${gaps[gaps.length >> 1]} ms, p90 ${gaps[Math.floor(gaps.length * 0.9)]} ms (one task alone, enqueue to observed record: ${singleMs.toFixed(1)} ms)`);
    tc.diagnostic(`chord of ${size} on 2 workers: ${chordMs.toFixed(0)} ms; header KV ops ${joinOps} join gets/updates + ${slotWrites} slot puts = ${perTask.toFixed(2)} per task (plus the producer's 1 create); the body's args: 1 join get + 1 slot watch in ${readMs.toFixed(0)} ms`);
    assert.ok(perTask < 4, `KV ops per header task: ${perTask}`);
  });
});

describe("when a minted worker and producer run a canvas (operator mode)", () => {
  it("creates joins, continues a chord and cancels after a failure with no permission violation", async (tc) => {
    const srv = await startNatsServer({ operatorMode: true });
    const dir = mkdtempSync(join(tmpdir(), "celeriac-canvas-"));
    const opened: Array<{ close(): Promise<void> }> = [];
    tc.after(async () => {
      for (const c of opened.reverse()) await c.close().catch(() => undefined);
      await srv.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });
    const connectAs = async (name: string, permissions?: NatsPermissions) => {
      const m = await mintUserCreds(srv.operator!.signer, { name, ttlSeconds: 600, ...(permissions ? { permissions } : {}) });
      const file = join(dir, `${name}.creds`);
      writeFileSync(file, m.creds, { mode: 0o600 });
      const nc = await connectNats(natsSettingsFrom({ url: srv.url, name }, { CELERIAC_NATS_CREDS: file }));
      opened.push(nc);
      return nc;
    };
    const ns = "team-a";
    const q = uniqueQueue("qc");
    const names = queueNames(ns, q);
    const admin = await connectNats(natsSettingsFrom({ url: srv.url, name: "admin" }, { CELERIAC_NATS_CREDS: srv.operator!.adminCredsFile }));
    opened.push(admin);
    await ensureQueueResources(await jetstreamManager(admin), names, queueSettings({ ackWaitSeconds: 5 }));
    const retry = resolveRetryPolicy({ maxAttempts: 1 });
    await (await new Kvm(jetstream(admin)).open(names.resultsBucket)).put(QUEUE_SETTINGS_KEY, JSON.stringify({ v: QUEUE_SETTINGS_VERSION, namespace: ns, queue: q, timeoutSeconds: 30, retry }));
    const before = srv.log().split("\n").filter((l) => /Violation/.test(l)).length;
    const worker = new Worker({ nc: await connectAs("w", workerPermissions(ns, q)), tasks, queue: q, namespace: ns, concurrency: 4, logger: pino({ level: "silent" }) });
    await worker.start();
    opened.push({ close: () => worker.close() });
    const pnc = await connectAs("p", producerPermissions(ns, [q]));
    const js = jetstream(pnc);
    const kvm = new Kvm(js);
    const kv = await kvm.open(names.resultsBucket);
    const runtime = new CanvasRuntime({ js, namespace: ns, bucket: (x) => kvm.open(queueNames(ns, x).resultsBucket) });
    const final = (id: string) =>
      waitFor(`final ${id}`, async () => {
        const e = await kv.get(id);
        const r = e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
        return r && ["Succeeded", "Failed", "Cancelled"].includes(r.status.phase ?? "") ? r : undefined;
      }, 15_000);
    await runtime.start(freezeCanvas({ kind: "chain", steps: [{ kind: "chord", header: [t("sq", [2]), { kind: "group", members: [t("sq", [3])] }], body: t("count") }, t("count")] }, "op1"), { root: "op1", home: q, queue: q });
    assert.deepEqual((await final("op1-1")).status.result, [[[4, [9]]]]);
    await runtime.start(freezeCanvas({ kind: "chain", steps: [t("fatal"), t("add")] }, "op2"), { root: "op2", home: q, queue: q });
    assert.equal((await final("op2-1")).status.phase, "Cancelled");
    assert.deepEqual(srv.log().split("\n").filter((l) => /Violation/.test(l)).slice(before), []);
  });
});
