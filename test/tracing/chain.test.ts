/**
 * Tracing end to end (docs/tracing.md): an in-memory span exporter registered in-process (the
 * standard Node setup: NodeTracerProvider.register(), i.e. the AsyncLocalStorage context manager and
 * the W3C propagator), a real nats-server, a real Worker and client. A chain of 3 gives, per step,
 * enqueue → queue_wait / execute → result with the right parents, each step's enqueue a child of the
 * step before's execute, one trace for the whole chain; a failing task's execute span has status
 * ERROR; a retried task's attempts are siblings under one enqueue; the handler's log lines carry
 * the execute span's ids.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-node";
import { pino } from "pino";
import { queueNames } from "../../api/naming.js";
import { SPAN_ATTRIBUTES as A, SPAN_NAMES, TRACER_NAME } from "../../api/tracing.js";
import { chain, connect, TaskFailedError, type CeleriacClient } from "../../client/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
const testTracer = trace.getTracer("test");

type Two = { args: [a: number, b: number]; kwargs: Record<string, never>; result: number };
const add = defineTask<"t.add", Two>("t.add", ([a, b]) => a + b);
const mul = defineTask<"t.mul", Two>("t.mul", ([a, b]) => a * b);
const boom = defineTask("t.boom", () => {
  throw new UnrecoverableError("boom: no such number");
});
const flakyCalls = new Map<string, number>();
const flaky = defineTask("t.flaky", (_a, _k, ctx) => {
  const n = (flakyCalls.get(ctx.taskId) ?? 0) + 1;
  flakyCalls.set(ctx.taskId, n);
  if (n === 1) throw new Error("first attempt fails");
  return n;
});
const logs: Record<string, unknown>[] = [];
const chatty = defineTask("t.chatty", (_a, _k, ctx) => {
  ctx.log.info({ step: "inside" }, "Handler said hello");
  // the handler runs in the execute span's context: a span of its own is the execute span's child
  testTracer.startSpan("user.work").end();
  return "ok";
});

const hex = (sc: { traceId: string; spanId: string }) => `${sc.traceId}/${sc.spanId}`;
const id = (s: ReadableSpan) => s.spanContext().spanId;
const parent = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const ms = (s: ReadableSpan, which: "startTime" | "endTime") => s[which][0] * 1000 + s[which][1] / 1e6;

/** The finished spans of `task.id` named `name`. */
function spansOf(name: string, taskId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.name === name && s.attributes[A.taskId] === taskId);
}
function one(name: string, taskId: string): ReadableSpan {
  const found = spansOf(name, taskId);
  assert.equal(found.length, 1, `one ${name} span of ${taskId}, got ${found.length}`);
  return found[0]!;
}

describe("when tracing is on (an SDK registered in-process)", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  let worker: Worker;
  const queue = uniqueQueue("tr");
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, createQueues: true });
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    worker = new Worker({ nc: client.connection, tasks: [add, mul, boom, flaky, chatty], queue, concurrency: 8, logger: pino({ level: "info" }, sink) });
    await worker.start();
  });
  after(async () => {
    await worker?.close();
    await client?.close();
    await srv?.cleanup();
    await provider.shutdown();
  });

  it("links a chain of 3 as enqueue → queue_wait/execute → result, step to step, in one trace", async () => {
    const root = testTracer.startSpan("test.root");
    const handle = await context.with(trace.setSpan(context.active(), root), () => client.apply(chain(add.s([1, 2]), mul.s([3]), add.s([4])), { taskId: `chain-${queue}` }));
    assert.equal(await handle.result({ timeoutMs: 15_000 }), 13);
    root.end();
    const steps = (await handle.children()).map((c) => c.id);
    assert.equal(steps.length, 3);
    // the last result span ends after the ack, just after result() resolved
    await waitFor("the last step's result span", () => spansOf(SPAN_NAMES.result, steps[2]!).length === 1 || undefined);
    const traceId = root.spanContext().traceId;
    const ours = exporter.getFinishedSpans().filter((s) => steps.includes(String(s.attributes[A.taskId])));
    assert.ok(ours.length >= 12, `4 spans per step, got ${ours.length}`);
    assert.deepEqual([...new Set(ours.map((s) => s.spanContext().traceId))], [traceId], "one trace id for the whole chain");
    assert.ok(ours.every((s) => s.instrumentationScope.name === TRACER_NAME));

    let previousExecute: ReadableSpan | undefined;
    for (const [i, step] of steps.entries()) {
      const enqueue = one(SPAN_NAMES.enqueue, step);
      const wait = one(SPAN_NAMES.queueWait, step);
      const execute = one(SPAN_NAMES.execute, step);
      const result = one(SPAN_NAMES.result, step);
      // step 1's enqueue is the caller's span's child; each next one the execute span's of the step before
      assert.equal(parent(enqueue), previousExecute ? id(previousExecute) : root.spanContext().spanId, `step ${i} enqueue parent`);
      assert.equal(parent(wait), id(enqueue), `step ${i} queue_wait parent`);
      assert.equal(parent(execute), id(enqueue), `step ${i} execute parent`);
      assert.equal(parent(result), id(execute), `step ${i} result parent`);
      assert.equal(enqueue.kind, SpanKind.PRODUCER);
      assert.equal(execute.kind, SpanKind.CONSUMER);
      assert.equal(wait.kind, SpanKind.INTERNAL);
      // queue wait runs up to the handler's start
      assert.ok(ms(wait, "startTime") <= ms(wait, "endTime"));
      assert.ok(Math.abs(ms(wait, "endTime") - ms(execute, "startTime")) < 1, "queue_wait ends where execute starts");
      assert.ok(ms(enqueue, "startTime") - ms(wait, "startTime") < 5, "queue_wait starts at the message's createdAt");
      assert.equal(execute.status.code, SpanStatusCode.UNSET);
      const names = queueNames("default", queue);
      assert.deepEqual(
        { system: execute.attributes[A.messagingSystem], destination: execute.attributes[A.destination], id: execute.attributes[A.messageId], queue: execute.attributes[A.queue], namespace: execute.attributes[A.namespace], attempt: execute.attributes[A.attempt], outcome: execute.attributes[A.outcome], canvas: execute.attributes[A.canvasRoot], consumer: execute.attributes[A.consumerGroup] },
        { system: "nats", destination: names.taskSubject, id: step, queue, namespace: "default", attempt: 1, outcome: "succeeded", canvas: `chain-${queue}`, consumer: names.workerConsumer },
      );
      assert.equal(execute.attributes[A.taskName], i === 1 ? "t.mul" : "t.add");
      assert.deepEqual({ system: enqueue.attributes[A.messagingSystem], destination: enqueue.attributes[A.destination], id: enqueue.attributes[A.messageId], op: enqueue.attributes[A.operationType], origin: enqueue.attributes[A.originKind] }, { system: "nats", destination: names.taskSubject, id: step, op: "send", origin: "Client" });
      assert.deepEqual({ outcome: result.attributes[A.outcome], phase: result.attributes[A.phase] }, { outcome: "succeeded", phase: "Succeeded" });
      previousExecute = execute;
    }
  });

  it("gives a failing task's execute span status ERROR with the exception", async () => {
    const h = await client.enqueue(boom, [], {});
    await assert.rejects(h.result({ timeoutMs: 10_000 }), TaskFailedError);
    await waitFor("the failed task's result span", () => spansOf(SPAN_NAMES.result, h.id).length === 1 || undefined);
    const execute = one(SPAN_NAMES.execute, h.id);
    assert.equal(execute.status.code, SpanStatusCode.ERROR);
    assert.match(execute.status.message ?? "", /boom: no such number/);
    assert.equal(execute.attributes[A.outcome], "failed");
    assert.equal(execute.attributes[A.deadLetterReason], "Unrecoverable");
    assert.ok(execute.events.some((e) => e.name === "exception" && String(e.attributes?.["exception.message"]).includes("boom")));
    const result = one(SPAN_NAMES.result, h.id);
    assert.deepEqual({ outcome: result.attributes[A.outcome], phase: result.attributes[A.phase] }, { outcome: "failed", phase: "Failed" });
    // no caller span: the enqueue span is the trace's root
    assert.equal(parent(one(SPAN_NAMES.enqueue, h.id)), undefined);
    // the worker's own line about it carries the execute span's ids
    const line = logs.find((l) => l.taskId === h.id && l.msg === "Dead-lettered task");
    assert.equal(line?.trace_id, execute.spanContext().traceId);
    assert.equal(line?.span_id, execute.spanContext().spanId);
  });

  it("records each attempt of a retried task as an execute span under the one enqueue span", async () => {
    const h = await client.enqueue(flaky, [], {}, { retry: { maxAttempts: 2, backoff: { initialSeconds: 0, jitter: false } } });
    assert.equal(await h.result({ timeoutMs: 10_000 }), 2);
    await waitFor("both result spans", () => spansOf(SPAN_NAMES.result, h.id).length === 2 || undefined);
    const enqueue = one(SPAN_NAMES.enqueue, h.id);
    const executes = spansOf(SPAN_NAMES.execute, h.id).sort((a, b) => Number(a.attributes[A.attempt]) - Number(b.attributes[A.attempt]));
    assert.deepEqual(executes.map((s) => [s.attributes[A.attempt], s.attributes[A.outcome], s.status.code, parent(s)]), [
      [1, "retried", SpanStatusCode.ERROR, id(enqueue)],
      [2, "succeeded", SpanStatusCode.UNSET, id(enqueue)],
    ]);
    assert.equal(typeof executes[0]!.attributes[A.retryDelayMs], "number");
    assert.equal(spansOf(SPAN_NAMES.queueWait, h.id).length, 1, "a queue wait for the first attempt only");
  });

  it("runs the handler in the execute span's context and puts its ids on the handler's log lines", async () => {
    const h = await client.enqueue(chatty, [], {});
    assert.equal(await h.result({ timeoutMs: 10_000 }), "ok");
    await waitFor("the result span", () => spansOf(SPAN_NAMES.result, h.id).length === 1 || undefined);
    const execute = one(SPAN_NAMES.execute, h.id);
    const user = exporter.getFinishedSpans().find((s) => s.name === "user.work" && s.parentSpanContext?.spanId === id(execute));
    assert.ok(user, "the handler's own span is the execute span's child");
    const line = logs.find((l) => l.taskId === h.id && l.msg === "Handler said hello");
    assert.ok(line, "the handler's log line");
    assert.equal(hex({ traceId: String(line.trace_id), spanId: String(line.span_id) }), hex(execute.spanContext()));
    assert.equal(line.trace_flags, "01");
  });
});
