import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { defineTask } from "../../worker/index.js";
import { connect, EnqueueError } from "../../client/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const runs = new Map<string, number>();
const tasks = [
  defineTask("work", async (args, _k, ctx) => {
    runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
    await sleep(Number(args[0]));
    return args[1];
  }),
];

describe("when the NATS server restarts mid-run", () => {
  let srv: NatsServer;
  let f: Fixture;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { settings: { ackWaitSeconds: 2 } });
    await f.startWorker({ concurrency: 4 });
  });
  after(async () => {
    await f.close();
    await srv.cleanup();
  });

  it("completes every task enqueued before and during the outage", async () => {
    const before = await Promise.all(Array.from({ length: 20 }, (_, i) => f.client.enqueue("work", [100, `b${i}`])));
    await waitFor("some progress", () => runs.size >= 2);
    await srv.stop();
    // enqueued while the server is down: these resolve after reconnection
    const during = Array.from({ length: 10 }, (_, i) => f.client.enqueue("work", [50, `d${i}`]));
    await sleep(1500);
    await srv.restart();
    const duringHandles = await Promise.all(during);
    const all = [...before, ...duringHandles];
    const results = await Promise.all(all.map((h) => h.result({ timeoutMs: 30_000 })));
    assert.deepEqual(results, [...Array.from({ length: 20 }, (_, i) => `b${i}`), ...Array.from({ length: 10 }, (_, i) => `d${i}`)]);
    for (const h of all) assert.ok((runs.get(h.id) ?? 0) >= 1);
  });

  it("rejects an enqueue with a clear error when the server stays down past the enqueue timeout", async () => {
    const c = await connect({ servers: srv.url, queue: f.queue, enqueueTimeoutMs: 1000 });
    await c.enqueue("work", [1, "warm"]); // opens the queue while the server is up
    await srv.stop();
    try {
      const err = await c.enqueue("work", [1, "x"], {}, { taskId: "outage-1" }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof EnqueueError, String(err));
      assert.match(err.message, /JetStream did not confirm within 1000 ms/);
      assert.match(err.message, /retrying with taskId "outage-1" is safe/);
    } finally {
      await srv.restart();
      await c.close();
    }
  });
});
