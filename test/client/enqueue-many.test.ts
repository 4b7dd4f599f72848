/**
 * `client.enqueueMany`: handles in the order given, every task stored once (Nats-Msg-Id = taskId),
 * and an element that fails (a bad option, a bad name, a missing queue) gets its own error while the
 * others are stored.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, EnqueueManyError, QueueNotFoundError, type CeleriacClient } from "../../client/index.js";
import { queueNames } from "../../api/naming.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

describe("when a client enqueues many tasks at once", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  const queue = uniqueQueue();
  const stored = async (): Promise<number> => {
    const jsm = await jetstreamManager(client.connection);
    return (await jsm.streams.info(queueNames("default", queue).stream)).state.messages;
  };
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, createQueues: true });
  });
  after(async () => {
    await client?.close();
    await srv?.cleanup();
  });

  it("returns one handle per task, in order, each stored once", async () => {
    const tasks = Array.from({ length: 500 }, (_, i) => ({ name: "add", args: [i, 1], options: { taskId: `many-${i}` } }));
    const handles = await client.enqueueMany(tasks);
    assert.deepEqual(
      handles.map((h) => h.id),
      tasks.map((t) => t.options.taskId),
    );
    assert.ok(handles.every((h) => h.queue === queue && h.namespace === "default"));
    assert.equal(await stored(), 500);
    // the same ids again are duplicates: nothing new is stored
    await client.enqueueMany(tasks.slice(0, 10));
    assert.equal(await stored(), 500);
  });

  it("reports each failed element with its own error and stores the others", async () => {
    const before = await stored();
    const tasks = [
      { name: "add", args: [1, 2], options: { taskId: "ok-a" } },
      { name: "add", args: [1, 2], options: { taskId: "bad-both", countdownSeconds: 5, eta: new Date() } },
      { name: "", args: [] },
      { name: "add", args: [3, 4], options: { taskId: "ok-b", countdownSeconds: 30 } },
      { name: "add", options: { queue: "no-such-queue-anywhere", taskId: "missing" } },
      { name: "add", args: [5, 6], options: { taskId: "bad id with spaces" } },
    ];
    const standalone = await connect({ servers: srv.url, queue }); // managed mode: a missing queue is an error
    try {
      const err = await standalone.enqueueMany(tasks).then(
        () => assert.fail("enqueueMany resolved although elements failed"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof EnqueueManyError);
      assert.ok(err instanceof AggregateError);
      assert.deepEqual(err.failed, [1, 2, 4, 5]);
      assert.deepEqual(
        err.results.map((r) => r.ok),
        [true, false, false, true, false, false],
      );
      const errorOf = (i: number) => (err.results[i] as { error: Error }).error;
      assert.ok(errorOf(1) instanceof TypeError);
      assert.match(errorOf(1).message, /countdown|eta/i);
      assert.match(errorOf(2).message, /tasks\[2\]\.name/);
      assert.ok(errorOf(4) instanceof QueueNotFoundError);
      assert.match(errorOf(5).message, /taskId|id/i);
      assert.equal(err.errors.length, 4);
      assert.deepEqual(
        [0, 3].map((i) => (err.results[i] as { handle: { id: string } }).handle.id),
        ["ok-a", "ok-b"],
      );
      // ok-a went to the work stream, ok-b (countdown) to the delayed stream
      assert.equal(await stored(), before + 1);
      const settled = await standalone.enqueueManySettled(tasks.slice(0, 3));
      assert.deepEqual(
        settled.map((r) => r.ok),
        [true, false, false],
      );
    } finally {
      await standalone.close();
    }
  });

  it("rejects a non-array with a TypeError", async () => {
    await assert.rejects(client.enqueueMany("add" as never), /tasks must be an array/);
  });
});
