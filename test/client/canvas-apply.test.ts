// client.apply against a real nats-server and a real Worker: chains, groups, chords, failures,
// revoke, and the handle's children.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { pino } from "pino";
import { canvasKey, InvalidCanvasError, type CanvasRecord } from "../../api/canvas.js";
import { queueNames } from "../../api/naming.js";
import { producerPermissions, workerPermissions, type NatsPermissions } from "../../api/nats-permissions.js";
import { connectNats, ensureQueueResources, mintUserCreds, natsSettingsFrom, queueSettings } from "../../nats/index.js";
import { chain, chord, chunks, connect, group, map, signature, TaskFailedError, type CeleriacClient } from "../../client/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

type Two = { args: [a: number, b: number]; kwargs: Record<string, never>; result: number };
const add = defineTask<"math.add", Two>("math.add", ([a, b]) => a + b);
const mul = defineTask<"math.mul", Two>("math.mul", ([a, b]) => a * b);
const tsum = defineTask<"math.tsum", { args: [xs: number[]]; kwargs: Record<string, never>; result: number }>("math.tsum", ([xs]) => xs.reduce((s, x) => s + x, 0));
const boom = defineTask("math.boom", () => {
  throw new UnrecoverableError("boom: no such number");
});
/** Runs until its signal aborts (revoke), at most 60 s. */
const hang = defineTask("test.hang", (_a, _k, ctx) => new Promise((resolve, reject) => {
  const t = setTimeout(() => resolve("woke"), 60_000);
  ctx.signal.addEventListener("abort", () => {
    clearTimeout(t);
    reject(ctx.signal.reason as Error);
  });
}));

/** Args each `test.record` call got (link / linkError callbacks). */
const big = defineTask("test.big", ([n]: unknown[]) => "y".repeat(Number(n)));
const recorded: unknown[][] = [];
const record = defineTask("test.record", (args) => {
  recorded.push(args);
  return args.length;
});

describe("when applying a canvas with client.apply", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  let worker: Worker;
  const queue = uniqueQueue("cv");
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, createQueues: true });
    worker = new Worker({ nc: client.connection, tasks: [add, mul, tsum, boom, hang, record, big], queue, concurrency: 16, logger: pino({ level: "silent" }) });
    await worker.start();
  });
  after(async () => {
    await worker?.close();
    await client?.close();
    await srv?.cleanup();
  });

  it("runs chain(add.s([2, 2]), mul.s([4])) as mul(add(2, 2), 4): 16", async () => {
    const h = await client.apply(chain(add.s([2, 2]), mul.s([4])));
    assert.equal(await h.result({ timeoutMs: 15_000 }), 16);
    const kids = await h.children();
    assert.deepEqual(
      kids.map((k) => [k.id, k.task, k.state?.phase]),
      [
        [`${h.id}-0`, "math.add", "Succeeded"],
        [`${h.id}-1`, "math.mul", "Succeeded"],
      ],
    );
    assert.deepEqual(kids[1]?.state?.canvas?.root, h.id);
  });

  it("writes the canvas record with its frozen tree before anything runs", async () => {
    const h = await client.apply(chain(add.s([1, 1]), mul.s([3])), { taskId: `rec-${Date.now()}` });
    const kv = await new Kvm(client.connection).open(queueNames("default", queue).resultsBucket);
    const rec = (await kv.get(canvasKey(h.id)))?.json<CanvasRecord>();
    assert.equal(rec?.id, h.id);
    assert.equal(rec?.queue, queue);
    assert.deepEqual(rec?.tree, h.tree);
    assert.deepEqual((await client.getCanvasRecord(h.id))?.tree, h.tree);
    assert.equal(await client.canvas(h.id, rec!.tree!).result({ timeoutMs: 15_000 }), 6);
  });

  it("gives a group's results as a list in order", async () => {
    const h = await client.apply(group(add.s([1, 1]), mul.s([3, 3]), add.s([0, 5])));
    assert.deepEqual(await h.result({ timeoutMs: 15_000 }), [2, 9, 5]);
    const big = await client.apply(group(Array.from({ length: 40 }, (_, i) => add.s([i, 0]))));
    assert.deepEqual(await big.result({ timeoutMs: 20_000 }), Array.from({ length: 40 }, (_, i) => i));
  });

  it("runs a chord's body once with the header's results: tsum([2, 4, 6]) = 12", async () => {
    const h = await client.apply(chord([add.s([1, 1]), add.s([2, 2]), add.s([3, 3])], tsum.s()));
    assert.equal(await h.result({ timeoutMs: 15_000 }), 12);
    const byGroup = await client.apply(chord(group(add.s([5, 5]), add.s([1, 0])), tsum.s()));
    assert.equal(await byGroup.result({ timeoutMs: 15_000 }), 11);
  });

  it("nests: a chain of a map then a chord body, and a group of chains", async () => {
    const h = await client.apply(chain(map(mul.s([10]), [1, 2, 3]), tsum.s()));
    assert.equal(await h.result({ timeoutMs: 15_000 }), 60);
    const g = await client.apply(group(chain(add.s([1, 1]), mul.s([10])), chain(add.s([2, 2]), mul.s([10]))));
    assert.deepEqual(await g.result({ timeoutMs: 15_000 }), [20, 40]);
  });

  it("runs chunks: [[1, 2], [3, 4], [5, 6]] by 2 gives [[3, 7], [11]]", async () => {
    const h = await client.apply(chunks(add.s(), [[1, 2], [3, 4], [5, 6]], 2));
    assert.deepEqual(await h.result({ timeoutMs: 15_000 }), [[3, 7], [11]]);
  });

  it("runs link callbacks with the result, linkError ones with the failed task's id and error", async () => {
    const ok = await client.apply(chain(add.s([2, 3]), mul.s([2])).link(signature("test.record", ["ok"])));
    assert.equal(await ok.result({ timeoutMs: 15_000 }), 10);
    await waitFor("the link ran", () => recorded.some((a) => a[0] === 10 && a[1] === "ok"));
    const bad = await client.apply(chord([add.s([1, 1]), signature("math.boom")], tsum.s()).linkError(signature("test.record", ["err"])));
    await assert.rejects(bad.result({ timeoutMs: 15_000 }), (e: unknown) => e instanceof TaskFailedError && e.record.id === `${bad.id}-1`);
    const call = await waitFor("the linkError ran", () => recorded.find((a) => a[0] === `${bad.id}-1`));
    assert.deepEqual([call[2], (call[1] as { type: string }).type], ["err", "UnrecoverableError"]);
  });

  it("rejects result() with the failing step's TaskFailedError and cancels the steps after it", async () => {
    const h = await client.apply(chain(add.s([1, 1]), signature("math.boom"), mul.s([2])));
    await assert.rejects(h.result({ timeoutMs: 15_000 }), (e: unknown) => e instanceof TaskFailedError && e.record.id === `${h.id}-1` && e.phase === "Failed" && /boom: no such number/.test(e.message));
    const kids = await waitFor("the last step cancelled", async () => {
      const k = await h.children();
      return k[2]?.state?.phase === "Cancelled" ? k : undefined;
    });
    assert.deepEqual(kids.map((k) => k.state?.phase), ["Succeeded", "Failed", "Cancelled"]);
    assert.deepEqual(kids[2]?.state?.canvas?.failedStep, { id: `${h.id}-1`, task: "math.boom" });
  });

  it("revokes every unfinished step: the running one is aborted, the rest never run", async () => {
    const h = await client.apply(chain(signature("test.hang"), add.s([1]), mul.s([2])));
    await waitFor("the first step running", async () => (await h.children())[0]?.state?.phase === "Running", 10_000);
    await h.revoke();
    const kids = await waitFor(
      "every step cancelled",
      async () => {
        const k = await h.children();
        return k.every((c) => c.state?.phase === "Cancelled") ? k : undefined;
      },
      15_000,
    );
    assert.equal(kids.length, 3);
    // every record names its task, also those of steps revoked before they were published
    assert.deepEqual(await Promise.all(kids.map(async (k) => (await k.record())?.task)), ["test.hang", "math.add", "math.mul"]);
    await assert.rejects(h.result({ timeoutMs: 5000 }), (e: unknown) => e instanceof TaskFailedError && e.phase === "Cancelled" && e.record.id === `${h.id}-0`);
  });

  it("runs a canvas applied twice with the same taskId once", async () => {
    const taskId = `twice-${Date.now()}`;
    const c = () => chain(add.s([20, 1]), signature("test.record", ["twice"]));
    const [a, b] = [await client.apply(c(), { taskId }), await client.apply(c(), { taskId })];
    assert.equal(await a.result({ timeoutMs: 15_000 }), 2);
    assert.equal(await b.result({ timeoutMs: 15_000 }), 2);
    // a duplicate run (same two steps) would most likely have recorded by the time a later canvas of two steps finished
    assert.equal(await (await client.apply(chain(add.s([1, 1]), signature("test.record", ["later"])))).result({ timeoutMs: 15_000 }), 2);
    assert.equal(recorded.filter((r) => r[1] === "twice").length, 1);
    // applied again once it finished (the recovery the docs advise): the result at once, nothing run again
    const t0 = Date.now();
    assert.equal(await (await client.apply(c(), { taskId })).result({ timeoutMs: 10_000 }), 2);
    assert.ok(Date.now() - t0 < 2000, `a re-apply's result took ${Date.now() - t0} ms`);
    assert.equal(await client.get(`${taskId}-0`).result({ timeoutMs: 2000 }), 21);
    assert.equal(recorded.filter((r) => r[1] === "twice").length, 1);
    // another canvas under the same id would share its step ids (and results): refused, nothing published
    await assert.rejects(client.apply(group(add.s([5, 5]), add.s([6, 6]), add.s([7, 7])), { taskId }), (e: unknown) => e instanceof InvalidCanvasError && e.path === "taskId" && /already used by another canvas/.test(e.message));
    assert.equal(await client.get(`${taskId}-2`).status(), undefined);
    assert.deepEqual((await client.getCanvasRecord(taskId))?.tree, a.tree);
  });

  it("claims a step's unique key as enqueue does: a held Reject key fails that step (UniqueKeyHeld), Wait runs it after the holder", async () => {
    const key = `uk-${Date.now()}`;
    const holder = await client.enqueue("test.hang", [], {}, { unique: { key } });
    await waitFor("the holder running", async () => (await holder.status())?.phase === "Running", 10_000);
    // the first task held: apply refuses, nothing published
    const first = `ukf-${Date.now()}`;
    await assert.rejects(client.apply(chain(add.s([1, 1]).set({ unique: { key } }), mul.s([2])), { taskId: first }), (e: unknown) => e instanceof TypeError && /is held by task/.test(e.message) && new RegExp(holder.id).test(e.message));
    assert.equal(await client.get(`${first}-0`).status(), undefined);
    // a later step held (policy Reject): Failed with reason UniqueKeyHeld, the rest Cancelled
    const h = await client.apply(chain(add.s([1, 1]), mul.s([2]).set({ unique: { key, policy: "Reject" } }), add.s([1])));
    await assert.rejects(h.result({ timeoutMs: 15_000 }), (e: unknown) => e instanceof TaskFailedError && e.record.id === `${h.id}-1` && e.record.status.error?.type === "UniqueKeyHeld");
    await waitFor("the last step cancelled", async () => (await h.children())[2]?.state?.phase === "Cancelled");
    // policy Wait: the step runs once the holder ended
    const w = await client.apply(chain(add.s([1, 1]), mul.s([3]).set({ unique: { key, policy: "Wait" } })));
    await waitFor("the waiting step queued", async () => (await h.children()).length === 3 && (await w.children())[0]?.state?.phase === "Succeeded");
    assert.notEqual((await w.children())[1]?.state?.phase, "Succeeded");
    await holder.revoke();
    assert.equal(await w.result({ timeoutMs: 15_000 }), 6);
  });

  it("refuses at once a chain whose first message would exceed the server's max_payload, naming the step", async () => {
    const taskId = `long-${Date.now()}`;
    const big = "z".repeat(100 * 1024);
    const t0 = Date.now();
    await assert.rejects(
      client.apply(chain(...Array.from({ length: 12 }, () => signature("test.record", [big]))), { taskId }),
      (e: unknown) => e instanceof TypeError && new RegExp(`canvas step ${taskId}-0 \\(test\\.record\\): canvas: the step's message is \\d+ bytes, over the NATS server's max_payload of 1048576`).test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000, "not refused at once");
    assert.equal(await client.getCanvasRecord(taskId), undefined);
    assert.equal(await client.get(`${taskId}-0`).status(), undefined);
    // a later step that grows too large (its parent's result by value on top of the rest of the
    // chain) is recorded Failed by the worker, and the canvas fails instead of retrying forever
    const grown = await client.apply(chain(signature("test.big", [126 * 1024]), signature("test.record", ["grown"]), ...Array.from({ length: 9 }, () => signature("test.record", ["z".repeat(100 * 1024)]))));
    await assert.rejects(grown.result({ timeoutMs: 15_000 }), (e: unknown) => e instanceof TaskFailedError && e.record.id === `${grown.id}-1` && /max_payload/.test(e.message));
  });

  it("refuses at apply a later step whose priority its queue cannot honour, before any step runs", async () => {
    const taskId = `prio-${Date.now()}`;
    await assert.rejects(
      client.apply(chain(signature("test.record", ["prio"]), mul.s([2]).set({ priority: 3 })), { taskId }),
      (e: unknown) => e instanceof TypeError && new RegExp(`^canvas step ${taskId}-1 \\(math\\.mul\\): options\\.priority: .*has no spec\\.priorities`).test((e as Error).message),
    );
    assert.equal(await client.get(`${taskId}-0`).status(), undefined);
    assert.equal(recorded.filter((r) => r[0] === "prio").length, 0);
  });

  it("refuses a malformed canvas with InvalidCanvasError naming its path, publishing nothing", async () => {
    const taskId = `bad-${Date.now()}`;
    await assert.rejects(client.apply({ kind: "chain", steps: [{ kind: "task", task: "math.add" }, { kind: "task", task: "bad name" }] }, { taskId }), (e: unknown) => e instanceof InvalidCanvasError && e.path === "canvas.steps[1].task");
    await assert.rejects(client.apply(add.s([1, 1]), { taskId: "has.dots" }), InvalidCanvasError);
    assert.equal(await client.getCanvasRecord(taskId), undefined);
    // a bad option is refused where it is set, before anything connects
    assert.throws(() => add.s([1, 1]).set({ eta: "tomorrow" }), (e: unknown) => e instanceof InvalidCanvasError && /options\.eta: "tomorrow" is not an RFC 3339 time/.test(e.message));
    await assert.rejects(client.apply({ kind: "task", task: "math.add", options: { timeoutSeconds: 0 } }, { taskId }), (e: unknown) => e instanceof InvalidCanvasError && e.path === "canvas.options.timeoutSeconds");
    assert.equal(await client.get(`${taskId}-0`).status(), undefined);
  });
});

describe("when a minted producer applies a canvas (operator mode)", () => {
  it("applies, awaits, lists and revokes with no permission violation", async (tc) => {
    const srv = await startNatsServer({ operatorMode: true });
    const dir = mkdtempSync(join(tmpdir(), "celeriac-apply-"));
    const opened: Array<{ close(): Promise<void> }> = [];
    tc.after(async () => {
      for (const c of opened.reverse()) await c.close().catch(() => undefined);
      await srv.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });
    const connectAs = async (name: string, permissions: NatsPermissions) => {
      const m = await mintUserCreds(srv.operator!.signer, { name, ttlSeconds: 600, permissions });
      const file = join(dir, `${name}.creds`);
      writeFileSync(file, m.creds, { mode: 0o600 });
      return connectNats(natsSettingsFrom({ url: srv.url, name }, { CELERIAC_NATS_CREDS: file }));
    };
    const ns = "team-a";
    const q = uniqueQueue("qa");
    const admin = await connectNats(natsSettingsFrom({ url: srv.url, name: "admin" }, { CELERIAC_NATS_CREDS: srv.operator!.adminCredsFile }));
    opened.push(admin);
    await ensureQueueResources(await jetstreamManager(admin), queueNames(ns, q), queueSettings());
    const wnc = await connectAs("w", workerPermissions(ns, q));
    opened.push(wnc);
    const worker = new Worker({ nc: wnc, tasks: [add, mul, tsum, hang], queue: q, namespace: ns, concurrency: 4, logger: pino({ level: "silent" }) });
    await worker.start();
    opened.push({ close: () => worker.close() });
    const pnc = await connectAs("p", producerPermissions(ns, [q]));
    opened.push(pnc);
    const producer = await connect({ nc: pnc, queue: q, namespace: ns });
    opened.push(producer);
    const violations = () => srv.log().split("\n").filter((l) => /Violation/.test(l));
    const before = violations().length;

    const h = await producer.apply(chord([chain(add.s([2, 2]), mul.s([4])), add.s([1, 1])], tsum.s()));
    assert.equal(await h.result({ timeoutMs: 15_000 }), 18);
    assert.ok((await h.children()).every((c) => c.state?.phase === "Succeeded"));
    assert.equal((await producer.getCanvasRecord(h.id))?.id, h.id);
    const r = await producer.apply(chain(signature("test.hang"), add.s([1])));
    await waitFor("the first step running", async () => (await r.children())[0]?.state?.phase === "Running", 10_000);
    await r.revoke();
    await assert.rejects(r.result({ timeoutMs: 15_000 }), (e: unknown) => e instanceof TaskFailedError && e.phase === "Cancelled");
    assert.deepEqual(violations().slice(before), []);
  });
});
