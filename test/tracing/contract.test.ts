/**
 * The tracing contract's pure parts (api/tracing.ts, tracing/setup.ts `tracingChoice`, the
 * settlement's outcome label): W3C traceparent parsing and formatting, the trace context of Tasks
 * and Workflows from their annotations or uid, and which exporters the environment asks for.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATIONS } from "../../api/constants.js";
import type { Task } from "../../api/objects.js";
import { taskMessageInput, newTaskMessage } from "../../api/task-message.js";
import { annotationTraceContext, formatTraceparent, parseTraceparent, SPAN_OUTCOMES, workflowTraceContext } from "../../api/tracing.js";
import { tracingChoice } from "../../tracing/setup.js";
import { settlementOutcome, type Ending } from "../../worker/settle.js";
import { TimeoutError } from "../../worker/errors.js";

const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

describe("when parsing a traceparent", () => {
  const cases: [string, unknown, ReturnType<typeof parseTraceparent>][] = [
    ["a valid version 00", TP, { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 }],
    ["unsampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 0 }],
    ["a later version with more fields", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 }],
    ["version 00 with more fields", `${TP}-extra`, undefined],
    ["version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", undefined],
    ["an all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", undefined],
    ["an all-zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", undefined],
    ["upper case", TP.toUpperCase(), undefined],
    ["a short trace id", "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01", undefined],
    ["not a string", 42, undefined],
    ["undefined", undefined, undefined],
  ];
  for (const [what, input, want] of cases) {
    it(`gives ${want ? "its fields" : "undefined"} for ${what}`, () => assert.deepEqual(parseTraceparent(input as string), want));
  }
  it("formats what it parses back to the same string", () => assert.equal(formatTraceparent(parseTraceparent(TP)!), TP));
});

describe("when a Task or Workflow has trace annotations", () => {
  it("takes a valid traceparent and its tracestate", () => {
    assert.deepEqual(annotationTraceContext({ [ANNOTATIONS.traceparent]: TP, [ANNOTATIONS.tracestate]: "k=v" }), { traceparent: TP, tracestate: "k=v" });
  });
  it("ignores a malformed one", () => assert.equal(annotationTraceContext({ [ANNOTATIONS.traceparent]: "nope" }), undefined));
  it("carries a Task's annotation into its message's trace", () => {
    const task = { metadata: { name: "t", namespace: "ns", uid: "u-1", annotations: { [ANNOTATIONS.traceparent]: TP } }, spec: { queue: "q", task: "x" } } as unknown as Task;
    assert.deepEqual(newTaskMessage(taskMessageInput(task), new Date(0)).trace, { traceparent: TP });
    const bare = { ...task, metadata: { ...task.metadata, annotations: {} } } as Task;
    assert.equal(newTaskMessage(taskMessageInput(bare), new Date(0)).trace, undefined);
  });
  it("derives a Workflow's trace from its uid: trace id = the uid's hex, the same every time", () => {
    const uid = "3f2c1a9e-7b4d-4c2a-9e1f-0a1b2c3d4e5f";
    const a = workflowTraceContext({ metadata: { uid } })!;
    const p = parseTraceparent(a.traceparent)!;
    assert.equal(p.traceId, "3f2c1a9e7b4d4c2a9e1f0a1b2c3d4e5f");
    assert.equal(p.traceFlags, 1);
    assert.deepEqual(workflowTraceContext({ metadata: { uid } }), a);
    assert.notEqual(parseTraceparent(workflowTraceContext({ metadata: { uid: "3f2c1a9e-7b4d-4c2a-9e1f-0a1b2c3d4e50" } })!.traceparent)!.spanId, p.spanId);
  });
  it("hashes a uid that is not a UUID, prefers the annotation, and gives none without either", () => {
    assert.match(workflowTraceContext({ metadata: { uid: "not-a-uuid" } })!.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.deepEqual(workflowTraceContext({ metadata: { uid: "x", annotations: { [ANNOTATIONS.traceparent]: TP } } }), { traceparent: TP });
    assert.equal(workflowTraceContext({ metadata: {} }), undefined);
  });
});

describe("when choosing the trace exporters from the environment", () => {
  const cases: [string, Record<string, string>, string[]][] = [
    ["nothing set", {}, []],
    ["an OTLP endpoint", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, ["otlp"]],
    ["a traces endpoint", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" }, ["otlp"]],
    ["OTEL_TRACES_EXPORTER=otlp", { OTEL_TRACES_EXPORTER: "otlp" }, ["otlp"]],
    ["otlp and console", { OTEL_TRACES_EXPORTER: "otlp, console" }, ["otlp", "console"]],
    ["none with an endpoint", { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }, []],
    ["the SDK disabled", { OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" }, []],
    ["an unsupported exporter", { OTEL_TRACES_EXPORTER: "zipkin" }, []],
    ["an empty endpoint", { OTEL_EXPORTER_OTLP_ENDPOINT: " " }, []],
  ];
  for (const [what, env, want] of cases) {
    it(`sets up [${want.join(", ")}] for ${what}`, () => assert.deepEqual([...tracingChoice(env).exporters], want));
  }
  it("names unsupported exporters", () => assert.deepEqual([...tracingChoice({ OTEL_TRACES_EXPORTER: "otlp,zipkin" }).unsupported], ["zipkin"]));
});

describe("when labelling a settlement's outcome", () => {
  const base = { identity: undefined, task: "t", attempts: 1 } as const;
  const cases: [string, Partial<Ending> & Pick<Ending, "outcome">, string][] = [
    ["a success", { outcome: { action: "succeed", phase: "Succeeded" } }, "succeeded"],
    ["a retry", { outcome: { action: "retry", delayMs: 5 } }, "retried"],
    ["a retry after a time limit", { outcome: { action: "retry", delayMs: 5 }, cause: new TimeoutError("late") }, "timed_out"],
    ["a handler's final failure", { outcome: { action: "deadLetter", reason: "Unrecoverable" }, startTime: "2026-01-01T00:00:00Z" }, "failed"],
    ["a refusal before the handler", { outcome: { action: "deadLetter", reason: "UnknownTask" } }, "dead_lettered"],
    ["a cancel", { outcome: { action: "cancel", phase: "Cancelled" } }, "cancelled"],
    ["an expiry", { outcome: { action: "expire", phase: "Expired" } }, "expired"],
    ["a wait", { outcome: { action: "wait", phase: "Queued", delayMs: 5 } }, "waiting"],
  ];
  for (const [what, e, want] of cases) {
    it(`gives ${want} for ${what}`, () => {
      assert.equal(settlementOutcome({ ...base, ...e } as Ending), want);
      assert.ok((SPAN_OUTCOMES as readonly string[]).includes(want));
    });
  }
  it("gives replayed for a replay", () => assert.equal(settlementOutcome({ replay: {} as never }), "replayed"));
});
