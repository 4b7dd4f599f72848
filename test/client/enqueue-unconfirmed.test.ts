/**
 * An enqueue resolves only once the stream confirmed it: when the PubAck never arrives (the server
 * is frozen with SIGSTOP, so the connection stays open and the publish is sent but never answered)
 * the enqueue rejects with `EnqueueError` within `enqueueTimeoutMs`, and says retrying is safe.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, EnqueueError, type CeleriacClient } from "../../client/index.js";
import { startNatsServer, type NatsProcess } from "../../devcluster/platform/nats-process.js";
import { uniqueQueue, waitFor } from "../helpers/nats-server.js";

describe("when an enqueue's PubAck never arrives", () => {
  let srv: NatsProcess;
  let dir: string;
  let client: CeleriacClient;
  let frozen = false;
  const queue = uniqueQueue();
  const TIMEOUT_MS = 1500;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-unconfirmed-"));
    srv = await startNatsServer({ dir });
    client = await connect({ servers: srv.url, queue, createQueues: true, enqueueTimeoutMs: TIMEOUT_MS });
    await client.enqueue("x", []); // the queue is set up and cached: the next enqueue only publishes
  });
  after(async () => {
    if (frozen) process.kill(srv.child.pid!, "SIGCONT");
    await client?.close().catch(() => undefined);
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("rejects with EnqueueError within enqueueTimeoutMs, naming the timeout and the task id", async () => {
    process.kill(srv.child.pid!, "SIGSTOP");
    frozen = true;
    // kill() only queues the signal: wait until the kernel shows the server stopped (state T), or a
    // publish sent at once can still be answered (CI saw the enqueue resolve)
    await waitFor("nats-server stopped", () => /^\d+ \(.*\) T /.test(readFileSync(`/proc/${srv.child.pid!}/stat`, "utf8")), 5000, 5);
    const t0 = Date.now();
    const err = await client.enqueue("x", [], {}, { taskId: "never-confirmed-1" }).then(
      () => assert.fail("the enqueue resolved although JetStream never confirmed it"),
      (e: unknown) => e,
    );
    const took = Date.now() - t0;
    assert.ok(err instanceof EnqueueError, `got ${String(err)}`);
    assert.match(err.message, /never-confirmed-1/);
    assert.match(err.message, new RegExp(`did not confirm within ${TIMEOUT_MS} ms`));
    assert.match(err.message, /retrying with taskId "never-confirmed-1" is safe/);
    assert.ok(took >= TIMEOUT_MS - 50, `rejected after ${took} ms, before the ${TIMEOUT_MS} ms timeout`);
    assert.ok(took < TIMEOUT_MS + 1000, `rejected after ${took} ms, long after the ${TIMEOUT_MS} ms timeout`);
  });

  it("is stored once when retried with the same taskId after the server resumes", async () => {
    process.kill(srv.child.pid!, "SIGCONT");
    frozen = false;
    const h = await client.enqueue("x", [], {}, { taskId: "never-confirmed-1" });
    assert.equal(h.id, "never-confirmed-1");
  });
});
