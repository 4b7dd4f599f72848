/**
 * The OTLP switch in a real `celeriac worker` process (tracing/setup.ts, worker/run.ts): with
 * `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local HTTP receiver, the worker exports its spans of a
 * task — in the trace of the traceparent the (untraced) client passed — with `service.name`
 * `celeriac-worker`, flushed at its graceful shutdown.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SPAN_NAMES } from "../../api/tracing.js";
import { connect, type CeleriacClient } from "../../client/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { startWorkerChild, workerStarted } from "../worker/child.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";

describe("when a worker process runs with OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  let receiver: Server;
  const bodies: string[] = [];
  before(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        if (req.url === "/v1/traces") bodies.push(body);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, createQueues: true });
  });
  after(async () => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    await client?.close();
    await srv?.cleanup();
    receiver?.close();
  });

  it("exports the task's spans in the caller's trace, flushed at shutdown", async () => {
    const queue = uniqueQueue("otlp");
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    const w = startWorkerChild(srv.url, queue, join(mkdtempSync(join(tmpdir(), "celeriac-otlp-")), "events.log"));
    try {
      await workerStarted(w);
      assert.match(w.output(), /"msg":"Trace export on"/);
      const h = await client.enqueue("test.sleep", [10], {}, { queue, traceparent: `00-${TRACE_ID}-b7ad6b7169203331-01` });
      assert.deepEqual(await h.result({ timeoutMs: 10_000 }), { slept: 10, attempt: 1 });
    } finally {
      w.kill("SIGTERM");
      await w.exited;
    }
    await waitFor("an OTLP batch", () => bodies.length > 0 || undefined);
    const all = bodies.join("\n");
    for (const name of [SPAN_NAMES.queueWait, SPAN_NAMES.execute, SPAN_NAMES.result]) assert.ok(all.includes(name), `${name} exported`);
    assert.ok(all.includes("celeriac-worker"), "service.name celeriac-worker");
    assert.ok(all.includes(TRACE_ID), "in the caller's trace");
  });
});
