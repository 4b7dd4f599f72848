import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { queueNames } from "../../api/naming.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

describe("when a queue's NATS resources are ensured against a real server", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    srv = await startNatsServer();
    nc = await connect({ servers: srv.url });
  });
  after(async () => {
    await nc.close();
    await srv.cleanup();
  });

  it("creates everything missing, then reports everything unchanged on a second run", async () => {
    const names = queueNames("default", uniqueQueue());
    const jsm = await jetstreamManager(nc);
    const first = await ensureQueueResources(jsm, names, queueSettings());
    assert.deepEqual(first.map((c) => c.action), ["created", "created", "created", "created", "created", "created"]);
    const second = await ensureQueueResources(jsm, names, queueSettings());
    assert.deepEqual(second.map((c) => [c.name, c.action, c.drift]), first.map((c) => [c.name, "unchanged", []]));
  });

  it("reports drift without touching it by default and fixes it with updateOnDrift", async () => {
    const names = queueNames("default", uniqueQueue());
    const jsm = await jetstreamManager(nc);
    await ensureQueueResources(jsm, names, queueSettings());
    const changed = queueSettings({ ackWaitSeconds: 7, resultsTtlSeconds: 60 });
    const report = await ensureQueueResources(jsm, names, changed);
    assert.deepEqual(report.filter((c) => c.action === "drifted").map((c) => c.kind), ["consumer", "bucket"]);
    assert.equal((await jsm.consumers.info(names.stream, names.workerConsumer)).config.ack_wait, 30e9);
    const fixed = await ensureQueueResources(jsm, names, changed, { updateOnDrift: true });
    assert.deepEqual(fixed.filter((c) => c.action === "updated").map((c) => c.kind), ["consumer", "bucket"]);
    assert.equal((await jsm.consumers.info(names.stream, names.workerConsumer)).config.ack_wait, 7e9);
    assert.equal((await jsm.streams.info(`KV_${names.resultsBucket}`)).config.max_age, 60e9);
    const again = await ensureQueueResources(jsm, names, changed, { updateOnDrift: true });
    assert.ok(again.every((c) => c.action === "unchanged"), JSON.stringify(again));
  });
});
