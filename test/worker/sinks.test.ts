import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { defineTask, type StatusSink } from "../../worker/index.js";
import type { TaskRecord } from "../../api/message.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const runs = new Map<string, number>();
const tasks = [defineTask("hello", (args, _k, ctx) => {
  runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
  return `hello ${String(args[0])}`;
})];

/** A sink that refuses the first `failures` final writes of a task. */
class FlakySink implements StatusSink {
  readonly name = "flaky";
  readonly written: TaskRecord[] = [];
  failures: number;
  constructor(failures: number) {
    this.failures = failures;
  }
  async write(r: TaskRecord): Promise<void> {
    if (r.status.phase === "Succeeded" && this.failures > 0) {
      this.failures--;
      throw new Error("sink unavailable");
    }
    this.written.push(r);
  }
}

describe("when a status sink fails", () => {
  let srv: NatsServer;
  let f: Fixture;
  const sink = new FlakySink(0);
  const inFlight: number[] = [];
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { settings: { ackWaitSeconds: 1 } });
    await f.startWorker({ extraSinks: [sink], statusWriteTimeoutMs: 200, onInFlightChange: (n) => inFlight.push(n) });
  });
  after(async () => {
    await f.close();
    await srv.cleanup();
  });

  it("does not ack until every sink has written; the redelivery writes the recorded outcome again", async () => {
    sink.failures = 1_000_000;
    const h = await f.client.enqueue("hello", ["a"], {}, { retry: { maxAttempts: 5 } });
    await waitFor("first attempt given up", () => (runs.get(h.id) ?? 0) >= 1);
    // well past the 1 s ack wait: the message is still unacked while the sink fails
    await new Promise((r) => setTimeout(r, 1500));
    const info = await f.jsm.consumers.info(f.names.stream, f.names.workerConsumer);
    assert.equal(info.num_ack_pending + info.num_pending, 1, "acked although a sink failed");
    sink.failures = 0;
    await waitFor("sink got the outcome", () => sink.written.find((r) => r.id === h.id && r.status.phase === "Succeeded"));
    await waitFor("acked", async () => {
      const i = await f.jsm.consumers.info(f.names.stream, f.names.workerConsumer);
      return i.num_ack_pending + i.num_pending === 0;
    });
    const rec = sink.written.find((r) => r.id === h.id && r.status.phase === "Succeeded");
    assert.equal(rec?.origin.kind, "Client");
    assert.equal(rec?.status.result, "hello a");
    assert.equal(runs.get(h.id), 1, "the outcome was already recorded in the results bucket: not rerun");
  });

  it("reports in-flight changes through onInFlightChange", async () => {
    inFlight.length = 0;
    await (await f.client.enqueue("hello", ["b"])).result({ timeoutMs: 5000 });
    await waitFor("back to zero", () => inFlight.at(-1) === 0);
    assert.ok(inFlight.includes(1));
  });
});
