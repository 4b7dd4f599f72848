import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { queueNames } from "../../../api/naming.js";
import { newTaskMessage } from "../../../api/task-message.js";
import { ensureQueueResources } from "../../../nats/queue-resources.js";
import { queueSettings } from "../../../nats/queue-settings.js";
import { JetStreamTaskPublisher } from "../../../operator/task/task-publisher.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../../helpers/nats-server.js";

describe("when the operator looks a task up in NATS (beyond the duplicate window)", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
  });
  after(async () => {
    await nc?.close();
    await nats?.cleanup();
  });

  it("finds a published task in the work or delay stream, and not one never published", async () => {
    const queue = uniqueQueue("pub");
    const names = queueNames("default", queue);
    await ensureQueueResources(await jetstreamManager(nc), names, queueSettings(), { updateOnDrift: true });
    const pub = new JetStreamTaskPublisher(jetstream(nc), { nc });
    const msg = (id: string, eta?: Date) => newTaskMessage({ id, task: "t", queue, namespace: "default", origin: { kind: "Client" }, ...(eta ? { eta } : {}) }, new Date());
    assert.equal(await pub.isStored(msg("a")), false, "nothing published yet");
    await pub.publish(msg("a"));
    await pub.publish(msg("later", new Date(Date.now() + 3_600_000)));
    assert.equal(await pub.isStored(msg("a")), true, "in the work stream");
    assert.equal(await pub.isStored(msg("later")), true, "in the delay stream");
    assert.equal(await pub.isStored(msg("b")), false);
    await pub.publish(msg("b"));
    assert.equal(await pub.isStored(msg("b")), true, "found by reading only the new messages");
  });
});
