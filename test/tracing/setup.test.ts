/**
 * The OTLP export switch (tracing/setup.ts): with no OTEL_* variable nothing is registered; with
 * `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a local HTTP receiver, a span made with the API reaches
 * it as OTLP (JSON over HTTP) at `/v1/traces`, with the resource's `service.name`, on `shutdown`.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, describe, it } from "node:test";
import { trace } from "@opentelemetry/api";
import { pino } from "pino";
import { SPAN_NAMES, TRACER_NAME } from "../../api/tracing.js";
import { setupTracing } from "../../tracing/setup.js";

describe("when the worker or operator sets up tracing", () => {
  const bodies: { url: string; body: string }[] = [];
  let server: Server | undefined;
  after(() => server?.close());

  it("loads nothing when no OTEL_* variable asks for an exporter", async () => {
    const h = await setupTracing({ serviceName: "celeriac-test", env: {}, log: pino({ level: "silent" }) });
    assert.equal(h.enabled, false);
    const span = trace.getTracer(TRACER_NAME).startSpan("x");
    assert.equal(span.isRecording(), false);
    span.end();
    await h.shutdown();
  });

  it("exports spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT", async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        bodies.push({ url: req.url ?? "", body });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
    process.env.POD_NAME = "worker-abc";
    const h = await setupTracing({ serviceName: "celeriac-test", resourceAttributes: { "service.instance.id": "w-1" }, log: pino({ level: "silent" }) });
    assert.equal(h.enabled, true);
    const span = trace.getTracer(TRACER_NAME).startSpan(SPAN_NAMES.execute);
    assert.equal(span.isRecording(), true);
    span.end();
    await h.shutdown();
    const got = bodies.find((b) => b.url === "/v1/traces");
    assert.ok(got, `a POST to /v1/traces (got ${bodies.map((b) => b.url).join(", ") || "none"})`);
    assert.ok(got.body.includes(SPAN_NAMES.execute), "the span's name");
    assert.ok(got.body.includes("celeriac-test"), "the service name");
    assert.ok(got.body.includes("worker-abc") && got.body.includes("w-1"), "the pod name and instance id");
  });
});
