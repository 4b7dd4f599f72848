import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { defineTask, UnrecoverableError } from "../../worker/index.js";
import { TaskFailedError } from "../../client/index.js";
import { HEADERS } from "../../api/message.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const calls = new Map<string, number>();
const bump = (k: string) => calls.set(k, (calls.get(k) ?? 0) + 1);

const tasks = [
  defineTask("math.add", (args: unknown[]) => (args as number[]).reduce((a, b) => a + b, 0)),
  defineTask("flaky", (_a, _k, ctx) => {
    bump(ctx.taskId);
    if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`);
    return { attempt: ctx.attempt };
  }),
  defineTask("always.fails", (_a, _k, ctx) => {
    bump(ctx.taskId);
    throw new TypeError("nope");
  }),
  defineTask("fatal", (_a, _k, ctx) => {
    bump(ctx.taskId);
    throw new UnrecoverableError("bad input");
  }),
  defineTask("huge.result", (_a, _k, ctx) => {
    bump(ctx.taskId);
    return "x".repeat(1200 * 1024);
  }),
  defineTask("retry.later", (_a, _k, ctx) => {
    bump(ctx.taskId);
    if (ctx.attempt === 1) ctx.retry({ countdownSeconds: 0.5 });
    return "second";
  }),
];

async function deadLetters(f: Fixture): Promise<{ reason: string; detail: string; attempts: string }[]> {
  const js = jetstream(f.nc);
  const info = await f.jsm.streams.info(f.names.deadLetterStream);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await f.jsm.streams.getMessage(f.names.deadLetterStream, { seq });
    if (!m) continue;
    out.push({ reason: m.header.get(HEADERS.deadReason), detail: m.header.get(HEADERS.deadDetail), attempts: m.header.get(HEADERS.deadAttempts) });
  }
  void js;
  return out;
}

describe("when a worker runs tasks from a queue", () => {
  let srv: NatsServer;
  let f: Fixture;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks);
    await f.startWorker({ random: () => 0 });
  });
  after(async () => {
    await f.close();
    await srv.cleanup();
  });

  it("stores the handler's value as the result and result() resolves it", async () => {
    const h = await f.client.enqueue("math.add", [1, 2, 3]);
    assert.equal(await h.result({ timeoutMs: 5000 }), 6);
    const st = await h.status();
    assert.equal(st?.phase, "Succeeded");
    assert.equal(st?.attempts, 1);
  });

  it("retries a failing task with backoff until it succeeds, counting attempts", async () => {
    const retry = { maxAttempts: 5, backoff: { initialSeconds: 0.2, factor: 2, maxSeconds: 1, jitter: false } };
    const t0 = Date.now();
    const h = await f.client.enqueue("flaky", [], {}, { retry });
    assert.deepEqual(await h.result({ timeoutMs: 10_000 }), { attempt: 3 });
    assert.equal(calls.get(h.id), 3);
    // backoff 0.2 s then 0.4 s: at least 0.6 s between enqueue and success
    assert.ok(Date.now() - t0 >= 550, `took ${Date.now() - t0} ms`);
  });

  it("dead-letters a task that exhausts its attempts, with the reason in headers and record", async () => {
    const retry = { maxAttempts: 2, backoff: { initialSeconds: 0.1, factor: 1, maxSeconds: 1, jitter: false } };
    const h = await f.client.enqueue("always.fails", [], {}, { retry });
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.type, "TypeError");
    assert.equal(err.message.includes("nope"), true);
    assert.equal(err.record.status.deadLettered, true);
    assert.equal(calls.get(h.id), 2);
    const dl = await waitFor("dead letter", async () => (await deadLetters(f)).find((d) => d.reason === "MaxAttemptsExceeded"));
    assert.match(dl.detail, /TypeError: nope/);
    assert.equal(dl.attempts, "2");
  });

  it("fails an UnrecoverableError at once without retrying", async () => {
    const h = await f.client.enqueue("fatal", [], {}, { retry: { maxAttempts: 5 } });
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.type, "UnrecoverableError");
    assert.equal(calls.get(h.id), 1);
    await waitFor("dead letter", async () => (await deadLetters(f)).find((d) => d.reason === "Unrecoverable"));
  });

  it("fails a result too large for its record at once (ResultTooLargeError), and goes on with other tasks", async () => {
    const h = await f.client.enqueue("huge.result", [], {}, { retry: { maxAttempts: 5 } });
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError, String(err));
    assert.equal(err.type, "ResultTooLargeError");
    assert.match(err.message, /result is 1228802 bytes of JSON; a task's record holds at most \d+ .*max_payload/);
    assert.equal(calls.get(h.id), 1);
    assert.equal(await (await f.client.enqueue("math.add", [2, 3])).result({ timeoutMs: 5000 }), 5);
  });

  it("retries after the countdown a handler asks for with ctx.retry()", async () => {
    const t0 = Date.now();
    const h = await f.client.enqueue("retry.later", [], {}, { retry: { maxAttempts: 3, backoff: { initialSeconds: 30 } } });
    assert.equal(await h.result({ timeoutMs: 10_000 }), "second");
    const took = Date.now() - t0;
    assert.ok(took >= 450 && took < 5000, `took ${took} ms (countdown 0.5 s, policy backoff 30 s)`);
  });

  it("dead-letters an unknown task with a message naming the registered ones", async () => {
    const h = await f.client.enqueue("nobody.home", [1]);
    const err = await h.result({ timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    const expected = `no handler registered for "nobody.home" on queue "${f.queue}"; registered: always.fails, fatal, flaky, huge.result, math.add, retry.later`;
    assert.equal(err.record.status.error?.message, expected);
    const dl = await waitFor("dead letter", async () => (await deadLetters(f)).find((d) => d.reason === "UnknownTask"));
    assert.equal(dl.detail, expected);
  });

  it("dead-letters an unparseable message and an invalid one, recording why when the id is known", async () => {
    const js = jetstream(f.nc);
    const h = headers();
    h.set(HEADERS.task, "math.add");
    await js.publish(f.names.taskSubject, "{not json", { msgID: "garbage-1", headers: h });
    await js.publish(f.names.taskSubject, JSON.stringify({ v: 1, id: "invalid-1", task: "math.add" }), { msgID: "invalid-1" });
    const dls = await waitFor("two dead letters", async () => {
      const d = (await deadLetters(f)).filter((x) => x.reason === "InvalidMessage");
      return d.length >= 2 ? d : undefined;
    });
    assert.ok(dls.some((d) => d.detail.startsWith("body is not JSON")));
    const err = await f.client.get("invalid-1").result({ timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof TaskFailedError);
    assert.equal(err.type, "InvalidMessage");
    assert.match(err.message, /Required/);
  });
});
