/**
 * nats.js v3 drops its outbound buffer on every dial, so a publish made while the client is
 * disconnected is lost without an error; enqueue publishes again on the reconnect instead of
 * waiting out the attempt's 5 s timeout (nats/task-publish.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type CeleriacClient } from "../../client/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

describe("when an enqueue is made while the client is disconnected", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  const queue = uniqueQueue();
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, queueSettings: { ackWaitSeconds: 2 }, enqueueTimeoutMs: 20_000 });
    await client.enqueue("x", []);
  });
  after(async () => {
    await client?.close();
    await srv?.cleanup();
  });

  it("is confirmed soon after the reconnect, not after the publish attempt's timeout", async () => {
    await srv.kill();
    const t0 = Date.now();
    const pending = client.enqueue("x", []);
    await new Promise((r) => setTimeout(r, 300)); // the enqueue is made (and dropped) while down
    await srv.restart();
    const back = Date.now();
    await pending;
    const waited = Date.now() - back;
    assert.ok(waited < 3000, `confirmed ${waited} ms after the server was back (${Date.now() - t0} ms in all)`);
  });
});
