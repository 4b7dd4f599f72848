/**
 * A nats-server crash (SIGKILL) loses the consumer's delivery state: messages come back with
 * delivery count 1. A task whose final record was stored before the crash but whose ack was lost
 * must not run again.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { defineTask, type StatusSink } from "../../worker/index.js";
import { mayBeRedelivery } from "../../worker/redelivery.js";
import type { TaskRecord } from "../../api/message.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const runs = new Map<string, number[]>();
const tasks = [
  defineTask("once", (args, _k, ctx) => {
    runs.set(ctx.taskId, [...(runs.get(ctx.taskId) ?? []), ctx.attempt]);
    return args[0];
  }),
];

/** A sink after the results bucket that never finishes the first final write: the record is stored, the ack never sent. */
class StuckSink implements StatusSink {
  readonly name = "stuck";
  stuck = true;
  readonly written: TaskRecord[] = [];
  async write(r: TaskRecord): Promise<void> {
    if (this.stuck && r.status.phase === "Succeeded") {
      this.stuck = false;
      await new Promise(() => undefined);
    }
    this.written.push(r);
  }
}

describe("when the NATS server crashes after a result was stored but before its ack", () => {
  let srv: NatsServer;
  let f: Fixture;
  const sink = new StuckSink();
  let nc1: NatsConnection;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { settings: { ackWaitSeconds: 2 } });
    nc1 = await natsConnect({ servers: srv.url });
    await f.startWorker({ nc: nc1, extraSinks: [sink], shutdownGraceSeconds: 1 });
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  it("does not run the task again when the message comes back", async () => {
    const h = await f.client.enqueue("once", ["done"]);
    await waitFor("first run", () => runs.get(h.id)?.length === 1);
    // the result is in the results bucket; the worker holds the message, unacked
    await waitFor("stored", async () => (await h.status())?.phase === "Succeeded", 10_000, 5);
    // crash at once, before the server flushes the consumer's delivery state; the first worker is
    // gone (its connection with it) without acking
    await srv.kill();
    await nc1.close();
    // what the crash did not flush: the consumer's delivery state (a SIGKILL soon after the
    // delivery loses it; removing it makes that certain). The message itself is in the stream.
    rmSync(join(srv.storeDir, "jetstream", "$G", "streams", f.names.stream, "obs", f.names.workerConsumer, "o.dat"), { force: true });
    await srv.restart();
    await f.startWorker({ extraSinks: [sink] });
    // redelivered after the ack wait; the replay writes the stored record through every sink and acks
    await waitFor("replayed", () => sink.written.some((r) => r.id === h.id && r.status.phase === "Succeeded"), 20_000);
    assert.deepEqual(runs.get(h.id), [1], "ran again after the crash");
    await waitFor("acked", async () => {
      const i = await f.jsm.consumers.info(f.names.stream, f.names.workerConsumer);
      return i.num_ack_pending + i.num_pending === 0;
    });
  });
});

describe("when deciding whether a delivery may be a redelivery", () => {
  const epoch = Date.parse("2026-01-01T00:00:00Z");
  const cases: [string, number, number, boolean][] = [
    ["a second delivery is checked", 2, epoch + 60_000, true],
    ["a first delivery stored before the worker's epoch (start or reconnect) is checked", 1, epoch - 1, true],
    ["a first delivery stored within the clock-skew margin of the epoch is checked", 1, epoch + 1500, true],
    ["a first delivery stored well after the epoch is not", 1, epoch + 2500, false],
  ];
  for (const [name, count, stored, want] of cases) it(name, () => assert.equal(mayBeRedelivery(count, stored, epoch, 2000), want));
});
