/**
 * Tracing without a full SDK (docs/tracing.md), against a real nats-server, Worker and client:
 * with no tracer provider registered nothing breaks, and the envelope (and its `traceparent`
 * header) carries a traceparent the user passed, unchanged; a message without one gets no `trace`.
 * Then, in the same process, a provider and a context manager but no propagator (a partial setup):
 * the envelope still gets W3C context and a chain's steps still link, through the fallback that
 * writes and reads the `traceparent` itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { jetstreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import { HEADERS, parseTaskMessage } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { SPAN_ATTRIBUTES as A, SPAN_NAMES } from "../../api/tracing.js";
import { chain, connect, type CeleriacClient } from "../../client/index.js";
import { defineTask, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const echo = defineTask("t.echo", ([x]: unknown[]) => x ?? null);
const USER_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("when no tracer provider is registered", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  const queue = uniqueQueue("nosdk");
  const names = queueNames("default", queue);
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, createQueues: true });
  });
  after(async () => {
    await client?.close();
    await srv?.cleanup();
  });

  it("keeps the user's traceparent in the envelope and header, leaves other envelopes without trace, and runs the tasks", async () => {
    assert.equal(trace.getSpan(context.active()), undefined);
    const traced = await client.enqueue(echo, [1], {}, { traceparent: USER_TRACEPARENT, tracestate: "vendor=x" });
    const plain = await client.enqueue(echo, [2], {});
    // read the stored messages before any worker takes them
    const jsm = await jetstreamManager(client.connection);
    const first = await jsm.streams.getMessage(names.stream, { seq: 1 });
    const second = await jsm.streams.getMessage(names.stream, { seq: 2 });
    const m1 = parseTaskMessage(first!.data);
    const m2 = parseTaskMessage(second!.data);
    assert.ok(m1.ok && m2.ok);
    assert.equal(m1.message.id, traced.id);
    assert.deepEqual(m1.message.trace, { traceparent: USER_TRACEPARENT, tracestate: "vendor=x" });
    assert.equal(first!.header?.get(HEADERS.traceparent), USER_TRACEPARENT);
    assert.equal(m2.message.trace, undefined);
    assert.equal(second!.header?.get(HEADERS.traceparent) ?? "", "");
    const worker = new Worker({ nc: client.connection, tasks: [echo], queue, logger: pino({ level: "silent" }) });
    await worker.start();
    try {
      assert.equal(await traced.result({ timeoutMs: 10_000 }), 1);
      assert.equal(await plain.result({ timeoutMs: 10_000 }), 2);
      const chained = await client.apply(chain(echo.s([3]), echo.si([4])));
      assert.equal(await chained.result({ timeoutMs: 10_000 }), 4);
    } finally {
      await worker.close();
    }
  });
});

describe("when a provider and a context manager are registered but no propagator", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  let worker: Worker;
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const queue = uniqueQueue("partial");
  before(async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, createQueues: true });
    worker = new Worker({ nc: client.connection, tasks: [echo], queue, logger: pino({ level: "silent" }) });
    await worker.start();
  });
  after(async () => {
    await worker?.close();
    await client?.close();
    await srv?.cleanup();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  it("still links the user's traceparent and a chain's steps (W3C written and read without a propagator)", async () => {
    // the global propagator is the no-op one: it injects nothing
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    assert.deepEqual(carrier, {});
    const h = await client.enqueue(echo, [5], {}, { traceparent: USER_TRACEPARENT });
    const c = await client.apply(chain(echo.s([6]), echo.si([7])));
    assert.equal(await h.result({ timeoutMs: 10_000 }), 5);
    assert.equal(await c.result({ timeoutMs: 10_000 }), 7);
    const [s1, s2] = (await c.children()).map((x) => x.id);
    await waitFor("the spans", () => exporter.getFinishedSpans().filter((s) => s.name === SPAN_NAMES.result).length === 3 || undefined);
    const spans = exporter.getFinishedSpans();
    const get = (name: string, taskId: string) => spans.find((s) => s.name === name && s.attributes[A.taskId] === taskId)!;
    const enqueue = get(SPAN_NAMES.enqueue, h.id);
    assert.equal(enqueue.spanContext().traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.equal(enqueue.parentSpanContext?.spanId, "00f067aa0ba902b7");
    assert.equal(get(SPAN_NAMES.execute, h.id).parentSpanContext?.spanId, enqueue.spanContext().spanId);
    const e1 = get(SPAN_NAMES.execute, s1!);
    const enq2 = get(SPAN_NAMES.enqueue, s2!);
    assert.equal(enq2.parentSpanContext?.spanId, e1.spanContext().spanId);
    assert.equal(get(SPAN_NAMES.execute, s2!).parentSpanContext?.spanId, enq2.spanContext().spanId);
    assert.equal(enq2.spanContext().traceId, e1.spanContext().traceId);
  });
});
