import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import { connect, ResultTimeoutError, TaskFailedError, type CeleriacClient } from "../../client/index.js";
import { defineTask, Worker } from "../../worker/index.js";
import { queueNames } from "../../api/naming.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

const tasks = [
  defineTask("echo", (args) => args),
  defineTask("fail", () => {
    throw new RangeError("out of range");
  }),
];

describe("when using the client against a running worker", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  let worker: Worker;
  const queue = uniqueQueue("c");
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue });
    worker = new Worker({ nc: client.connection, tasks, queue, concurrency: 32, logger: pino({ level: "silent" }) });
    await worker.start();
  });
  after(async () => {
    await worker.close();
    await client.close();
    await srv.cleanup();
  });

  it("gets a handle for an existing id and reads its result and status", async () => {
    const h = await client.enqueue("echo", [1, "a"]);
    await h.result({ timeoutMs: 5000 });
    const again = client.get(h.id);
    assert.deepEqual(await again.result({ timeoutMs: 5000 }), [1, "a"]);
    assert.equal((await again.status())?.phase, "Succeeded");
  });

  it("returns undefined status for an unknown id and times result() out with ResultTimeoutError", async () => {
    const h = client.get("no-such-task");
    assert.equal(await h.status(), undefined);
    await assert.rejects(h.result({ timeoutMs: 200 }), ResultTimeoutError);
  });

  it("rejects result() with a TaskFailedError carrying the task's error type and message", async () => {
    const h = await client.enqueue("fail", [], {}, { retry: { maxAttempts: 1 } });
    await assert.rejects(h.result({ timeoutMs: 5000 }), (e: unknown) => e instanceof TaskFailedError && e.type === "RangeError" && e.phase === "Failed" && /out of range/.test(e.message));
  });

  it("leaves a finished task unchanged when it is revoked", async () => {
    const h = await client.enqueue("echo", [2]);
    await h.result({ timeoutMs: 5000 });
    await h.revoke();
    assert.equal((await h.status())?.phase, "Succeeded");
  });

  it("enqueues thousands concurrently with pipelined publish acks and awaits them all on one watch", async () => {
    const jsm = await jetstreamManager(client.connection);
    const bucket = `KV_${queueNames("default", queue).resultsBucket}`;
    const warm = await client.enqueue("echo", ["warm"]);
    await warm.result({ timeoutMs: 5000 });
    const consumersBefore = (await jsm.streams.info(bucket)).state.consumer_count;
    const t0 = Date.now();
    const hs = await Promise.all(Array.from({ length: 2000 }, (_, i) => client.enqueue("echo", [i])));
    const enqueueMs = Date.now() - t0;
    const results = await Promise.all(hs.map((h) => h.result({ timeoutMs: 30_000 })));
    assert.deepEqual(results.map((r) => (r as number[])[0]), Array.from({ length: 2000 }, (_, i) => i));
    assert.ok(enqueueMs < 5000, `2000 enqueues took ${enqueueMs} ms`);
    // one results watch for all 2000 waiters: no new consumer on the bucket stream
    const consumersAfter = (await jsm.streams.info(bucket)).state.consumer_count;
    assert.equal(consumersAfter, consumersBefore);
  });

  it("celeriac enqueue --wait prints the result, and bad --args JSON names the flag", async () => {
    const { stdout } = await run(process.execPath, ["bin/celeriac.js", "enqueue", "echo", "--queue", queue, "--args", '[1, {"x": 2}]', "--wait", "--timeout", "10", "--nats", srv.url], { cwd: ROOT });
    assert.equal(stdout.trim(), '[1,{"x":2}]');
    const bad = await run(process.execPath, ["bin/celeriac.js", "enqueue", "echo", "--queue", queue, "--args", "[1,", "--nats", srv.url], { cwd: ROOT }).then(() => undefined, (e: { stderr: string; code: number }) => e);
    assert.equal(bad?.code, 1);
    assert.match(bad!.stderr, /--args: "\[1," is not valid JSON/);
  });
});
