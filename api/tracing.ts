/**
 * The tracing contract (docs/tracing.md): the tracer name, span names and attribute keys Celeriac
 * records with OpenTelemetry, and the W3C trace-context helpers of the envelope's `trace` field.
 * Dashboards, alerts and trace queries rely on these names: change them only with a new envelope
 * or a release note. Pure: no OpenTelemetry import (the spans are made in tracing/spans.ts).
 */
import { createHash } from "node:crypto";
import { ANNOTATIONS } from "./constants.js";

/** The OpenTelemetry tracer (instrumentation scope) name of every Celeriac span. */
export const TRACER_NAME = "celeriac";

/** Span names, one per step of a task's life: enqueue → queue wait → execute → result. */
export const SPAN_NAMES = {
  /** Producer (kind PRODUCER): the publish of one task message, its context injected into the envelope. */
  enqueue: "celeriac.enqueue",
  /** Worker (kind INTERNAL): from the message's `createdAt` (or its `eta`, when later) to the handler's start; first attempts only. */
  queueWait: "celeriac.queue_wait",
  /** Worker (kind CONSUMER): one attempt of the handler; the handler runs in its context. */
  execute: "celeriac.execute",
  /** Worker (kind INTERNAL): the settlement — record write through every sink, canvas continuation, ack/nak/term. */
  result: "celeriac.result",
} as const;

/** The `messaging.system` of every Celeriac span. */
export const MESSAGING_SYSTEM = "nats";

/**
 * Attribute keys. `messaging.*` are OpenTelemetry's messaging semantic conventions; `celeriac.*`
 * are Celeriac's own.
 */
export const SPAN_ATTRIBUTES = {
  /** Always `nats`. */
  messagingSystem: "messaging.system",
  /** The NATS subject published to (enqueue) or delivered from (execute), e.g. `celeriac.default.emails.tasks`. */
  destination: "messaging.destination.name",
  /** The task id: the message's `Nats-Msg-Id`. */
  messageId: "messaging.message.id",
  /** `send` (enqueue) or `process` (execute). */
  operationType: "messaging.operation.type",
  /** `publish` (enqueue) or `process` (execute). */
  operationName: "messaging.operation.name",
  /** The JetStream durable consumer the worker pulls from (execute). */
  consumerGroup: "messaging.consumer.group.name",
  /** Size of the envelope in bytes (enqueue). */
  bodySize: "messaging.message.body.size",
  /** The task (handler) name. */
  taskName: "celeriac.task.name",
  /** The task id (also `messaging.message.id`). */
  taskId: "celeriac.task.id",
  /** The queue name. */
  queue: "celeriac.queue",
  /** The queue's Kubernetes namespace. */
  namespace: "celeriac.namespace",
  /** Attempt number, 1-based (execute, result). */
  attempt: "celeriac.task.attempt",
  /** How the attempt or delivery ended (execute, result): a `SPAN_OUTCOMES` value. */
  outcome: "celeriac.task.outcome",
  /** The phase recorded by the settlement (result): Succeeded, Failed, Retrying, … */
  phase: "celeriac.task.phase",
  /** Who published the task (enqueue): Client, Task or Workflow. */
  originKind: "celeriac.origin.kind",
  /** The canvas (chain, group, chord) the task is a step of: its root id. */
  canvasRoot: "celeriac.canvas.root",
  /** The Workflow a task is a step of: its name. */
  workflowName: "celeriac.workflow.name",
  /** The retry's delay in ms (execute, outcome `retried`). */
  retryDelayMs: "celeriac.retry.delay_ms",
  /** The dead letter's reason (result, outcome `dead_lettered` / `failed`). */
  deadLetterReason: "celeriac.dead_letter.reason",
  /** The message's `eta` (RFC 3339), when it has one (queue_wait). */
  eta: "celeriac.task.eta",
} as const;

/**
 * Values of `celeriac.task.outcome`: the `celeriac_tasks_total{outcome}` values of the metrics,
 * (`shutdown`: the attempt was handed back at a forced shutdown) plus `waiting` (a unique task
 * naked until its key is free) and `replayed` (a redelivery whose final record existed: only the
 * ack was lost).
 */
export const SPAN_OUTCOMES = ["succeeded", "retried", "timed_out", "failed", "dead_lettered", "cancelled", "expired", "shutdown", "waiting", "replayed"] as const;
/** A `celeriac.task.outcome` value. */
export type SpanOutcome = (typeof SPAN_OUTCOMES)[number];

/** The envelope's `trace` field: W3C trace context. */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

/** A parsed `traceparent`: ids in lowercase hex, flags as a number (bit 0 = sampled). */
export interface ParsedTraceparent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Parses a W3C `traceparent` (version 00, or a later version's first four fields). Pure.
 * @returns undefined when it is malformed, or its trace or parent id is all zeros
 */
export function parseTraceparent(value: string | undefined): ParsedTraceparent | undefined {
  if (typeof value !== "string") return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) };
}

/** Formats a W3C `traceparent`, version 00. Pure. */
export function formatTraceparent(p: ParsedTraceparent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * The trace context a resource's annotations give (`celeriac.io/traceparent`, and
 * `celeriac.io/tracestate` with it), or undefined when there is none or it is malformed. Pure.
 */
export function annotationTraceContext(annotations: Record<string, string> | undefined): TraceCarrier | undefined {
  const tp = annotations?.[ANNOTATIONS.traceparent];
  const parsed = parseTraceparent(tp);
  if (!parsed) return undefined;
  const ts = annotations?.[ANNOTATIONS.tracestate];
  return { traceparent: formatTraceparent(parsed), ...(ts ? { tracestate: ts } : {}) };
}

/**
 * The trace context of a Workflow's steps: its `celeriac.io/traceparent` annotation when set and
 * valid; else one derived from its uid — trace id = the uid's 32 hex digits (a Kubernetes uid is a
 * UUID: the trace is found by the Workflow's uid), or the first 32 of its SHA-256 when it is not
 * one; parent span id = the first 16 hex digits of SHA-256(`celeriac.workflow/<uid>`); sampled.
 * So every step the operator enqueues, in any reconcile or operator process, joins one trace.
 * The derived parent is virtual (no span of it is recorded): backends show the steps' enqueue
 * spans as the trace's top spans. Pure.
 * @returns undefined when the Workflow has no uid and no annotation
 */
export function workflowTraceContext(wf: { metadata: { uid?: string; annotations?: Record<string, string> } }): TraceCarrier | undefined {
  const given = annotationTraceContext(wf.metadata.annotations);
  if (given) return given;
  const uid = wf.metadata.uid;
  if (!uid) return undefined;
  const hex = uid.toLowerCase().replace(/-/g, "");
  const traceId = /^[0-9a-f]{32}$/.test(hex) && !/^0+$/.test(hex) ? hex : createHash("sha256").update(uid).digest("hex").slice(0, 32);
  const spanId = createHash("sha256").update(`celeriac.workflow/${uid}`).digest("hex").slice(0, 16);
  return { traceparent: formatTraceparent({ traceId, spanId, traceFlags: 1 }) };
}
