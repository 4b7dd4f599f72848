// Enqueue to a queue that has no streams (a typo of a managed Queue's name) fails at once with the
// queues that do exist, instead of creating streams nobody consumes; against a real nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { connect, QueueNotFoundError, type CeleriacClient } from "../../client/index.js";
import { queueNames } from "../../api/naming.js";
import { isStreamNotFound } from "../../nats/queue-resources.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

describe("when Queues are managed and an enqueue names a queue without streams", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let client: CeleriacClient;
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
    client = await connect({ servers: srv.url });
  });
  after(async () => {
    await client?.close();
    await nc?.close();
    await srv?.cleanup();
  });

  /** The streams the operator makes for a Queue. */
  const makeQueue = (ns: string, queue: string) => ensureQueueResources(jsm, queueNames(ns, queue), queueSettings({ storage: "memory" }), { updateOnDrift: true });
  const streamExists = (ns: string, queue: string) => jsm.streams.info(queueNames(ns, queue).stream).then(() => true, (e: unknown) => (isStreamNotFound(e) ? false : Promise.reject(e)));

  it("rejects with the exact message naming the namespace's queues, and creates no stream", async () => {
    const ns = uniqueQueue("ns");
    await makeQueue(ns, "thumbnails");
    await makeQueue(ns, "emails");
    const t0 = Date.now();
    const err = await client.enqueue("images.resize", [1], {}, { queue: "thumbnail", namespace: ns }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof QueueNotFoundError, `got ${String(err)}`);
    assert.equal(err.message, `queue "thumbnail" does not exist in namespace "${ns}"; existing queues: emails, thumbnails`);
    assert.deepEqual([err.namespace, err.queue, err.existing], [ns, "thumbnail", ["emails", "thumbnails"]]);
    assert.ok(Date.now() - t0 < 2000, "fails at once, not after the enqueue timeout");
    assert.equal(await streamExists(ns, "thumbnail"), false);
  });

  it("says no queues exist when the namespace has none", async () => {
    const ns = uniqueQueue("ns");
    await assert.rejects(client.enqueue("x", [], {}, { queue: "thumbnail", namespace: ns }), { name: "QueueNotFoundError", message: `queue "thumbnail" does not exist in namespace "${ns}"; no queues exist in namespace "${ns}"` });
  });

  it("works once the Queue exists (a failed check is not cached)", async () => {
    const ns = uniqueQueue("ns");
    await assert.rejects(client.enqueue("x", [], {}, { queue: "late", namespace: ns }), QueueNotFoundError);
    await makeQueue(ns, "late");
    await client.enqueue("x", [], {}, { queue: "late", namespace: ns });
    assert.equal((await jsm.streams.info(queueNames(ns, "late").stream)).state.messages, 1);
  });

  it("checks the stream once per queue per client, not per enqueue", async () => {
    const ns = uniqueQueue("ns");
    await makeQueue(ns, "hot");
    const names = queueNames(ns, "hot");
    let infos = 0;
    const sub = nc.subscribe(`$JS.API.STREAM.INFO.${names.stream}`, { callback: () => void infos++ });
    await nc.flush();
    const c = await connect({ servers: srv.url, queue: "hot", namespace: ns });
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => c.enqueue("x", [i])));
      await nc.flush();
      assert.equal(infos, 1);
      assert.equal((await jsm.streams.info(names.stream)).state.messages, 200);
    } finally {
      sub.unsubscribe();
      await c.close();
    }
  });

  it("gives the same error at once when the stream is deleted after the client cached it", async () => {
    const ns = uniqueQueue("ns");
    await makeQueue(ns, "gone");
    await makeQueue(ns, "stays");
    const c = await connect({ servers: srv.url, queue: "gone", namespace: ns, enqueueTimeoutMs: 20_000 });
    try {
      await c.enqueue("x", []);
      const names = queueNames(ns, "gone");
      for (const s of [names.stream, names.delayedStream, names.deadLetterStream]) await jsm.streams.delete(s);
      const t0 = Date.now();
      const errs = await Promise.all(Array.from({ length: 50 }, () => c.enqueue("x", []).then(() => undefined, (e: unknown) => e)));
      for (const e of errs) assert.ok(e instanceof QueueNotFoundError && e.message === `queue "gone" does not exist in namespace "${ns}"; existing queues: stays`, String(e));
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms, not the 20 s enqueue timeout`);
      await assert.rejects(c.enqueue("x", []), QueueNotFoundError);
    } finally {
      await c.close();
    }
  });

  it("creates the streams on demand with createQueues: true (standalone)", async () => {
    const ns = uniqueQueue("ns");
    const c = await connect({ servers: srv.url, namespace: ns, createQueues: true });
    try {
      await c.enqueue("x", [], {}, { queue: "adhoc" });
      assert.equal((await jsm.streams.info(queueNames(ns, "adhoc").stream)).state.messages, 1);
    } finally {
      await c.close();
    }
  });
});
