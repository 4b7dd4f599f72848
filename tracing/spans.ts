/**
 * Celeriac's spans (names and attributes: api/tracing.ts; docs/tracing.md), on `@opentelemetry/api`
 * only: with no SDK registered every span is a no-op and costs a few allocations. The producer side
 * (`startEnqueueSpan`) injects the span's context into the envelope's `trace` field; the worker side
 * (`startAttemptSpans`, `startResultSpan`) extracts it.
 *
 * Injection uses the global propagator (`propagation.inject`) with a setter over the `trace` object;
 * when it writes no `traceparent` (no propagator registered, or a non-W3C one) the span context is
 * written in W3C form directly, and extraction likewise parses the `traceparent` itself when the
 * propagator finds nothing: the envelope's field is W3C by definition, so a chain never breaks for a
 * missing propagator, and a `traceparent` the user passed survives without any SDK.
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import type { TaskMessage } from "../api/message.js";
import { formatTraceparent, MESSAGING_SYSTEM, parseTraceparent, SPAN_ATTRIBUTES as A, SPAN_NAMES, TRACER_NAME, type SpanOutcome, type TraceCarrier } from "../api/tracing.js";

/** The one tracer (a proxy: it delegates to a provider registered later, too). */
const tracer = trace.getTracer(TRACER_NAME);

/** The keys the envelope's `trace` field holds; a propagator's other keys (baggage, b3) are not carried. */
const CARRIED = new Set(["traceparent", "tracestate"]);

/** Setter over the envelope's `trace` object. */
const setter: TextMapSetter<Record<string, string>> = {
  set(carrier, key, value) {
    if (CARRIED.has(key)) carrier[key] = value;
  },
};

/** Getter over the envelope's `trace` object. */
const getter: TextMapGetter<TraceCarrier> = {
  keys: (carrier) => Object.keys(carrier).filter((k) => CARRIED.has(k)),
  get: (carrier, key) => (key === "traceparent" ? carrier.traceparent : key === "tracestate" ? carrier.tracestate : undefined),
};

/**
 * The context `carrier` (an envelope's `trace`) names, on top of `base`: through the global
 * propagator, else by parsing its `traceparent`. `base` as is when the carrier is missing or invalid.
 */
export function extractContext(carrier: TraceCarrier | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!carrier || typeof carrier.traceparent !== "string") return base;
  const extracted = propagation.extract(base, carrier, getter);
  const sc = trace.getSpanContext(extracted);
  if (sc && isSpanContextValid(sc) && sc !== trace.getSpanContext(base)) return extracted;
  const p = parseTraceparent(carrier.traceparent);
  if (!p) return base;
  let traceState;
  try {
    traceState = carrier.tracestate ? createTraceState(carrier.tracestate) : undefined;
  } catch {
    traceState = undefined;
  }
  return trace.setSpanContext(base, { traceId: p.traceId, spanId: p.spanId, traceFlags: p.traceFlags, isRemote: true, ...(traceState ? { traceState } : {}) });
}

/**
 * The envelope `trace` field for `ctx`: what the global propagator injects, else the span context in
 * W3C form. Undefined when `ctx` holds no valid span context.
 */
export function injectContext(ctx: Context): TraceCarrier | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier, setter);
  if (carrier.traceparent !== undefined && parseTraceparent(carrier.traceparent)) {
    return { traceparent: carrier.traceparent, ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}) };
  }
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return undefined;
  const ts = sc.traceState?.serialize();
  return { traceparent: formatTraceparent(sc), ...(ts ? { tracestate: ts } : {}) };
}

/** The attributes every span of a task message has. */
function taskAttributes(msg: Pick<TaskMessage, "id" | "task" | "queue" | "namespace" | "canvas">): Attributes {
  const a: Attributes = {
    [A.messagingSystem]: MESSAGING_SYSTEM,
    [A.messageId]: msg.id,
    [A.taskId]: msg.id,
    [A.taskName]: msg.task,
    [A.queue]: msg.queue,
    [A.namespace]: msg.namespace,
  };
  if (msg.canvas) {
    if (msg.canvas.workflow) a[A.workflowName] = msg.canvas.workflow.name;
    else a[A.canvasRoot] = msg.canvas.root;
  }
  return a;
}

/** A started enqueue span and the message to publish (its `trace` set to the span's context). */
export interface EnqueueSpan {
  readonly span: Span;
  readonly message: TaskMessage;
}

/**
 * Starts `celeriac.enqueue` (kind PRODUCER) for publishing `msg` to `subject`. Its parent is the
 * context the message already carries (a `traceparent` the user passed, a Task's or Workflow's
 * annotation), else the active context. The returned message's `trace` is the span's context; with
 * no SDK registered, it is the message's own (unchanged), or none. End it with `endSpan`.
 */
export function startEnqueueSpan(msg: TaskMessage, subject: string, bodySize?: number): EnqueueSpan {
  const active = context.active();
  const parent = msg.trace ? extractContext(msg.trace, active) : active;
  const attributes = taskAttributes(msg);
  attributes[A.destination] = subject;
  attributes[A.operationType] = "send";
  attributes[A.operationName] = "publish";
  attributes[A.originKind] = msg.origin.kind;
  if (bodySize !== undefined) attributes[A.bodySize] = bodySize;
  const span = tracer.startSpan(SPAN_NAMES.enqueue, { kind: SpanKind.PRODUCER, attributes }, parent);
  const carrier = injectContext(trace.setSpan(parent, span));
  if (!carrier) return { span, message: msg };
  if (msg.trace && carrier.traceparent === msg.trace.traceparent && carrier.tracestate === msg.trace.tracestate) return { span, message: msg };
  return { span, message: { ...msg, trace: carrier } };
}

/**
 * Ends `span`: status ERROR with the exception recorded when `err` is given (an Error or anything
 * thrown), else unset.
 */
export function endSpan(span: Span, err?: unknown, endTime?: number): void {
  if (err !== undefined) {
    if (span.isRecording()) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
  }
  span.end(endTime);
}

/** What `startAttemptSpans` needs of the delivery. Times in ms since the epoch. */
export interface AttemptSpanInput {
  /** The subject the message was delivered from. */
  readonly subject: string;
  /** The durable consumer's name, when known. */
  readonly consumer?: string;
  /** The attempt's number, 1-based: a `celeriac.queue_wait` is recorded for attempt 1 only. */
  readonly attempt: number;
  /** When the handler starts. */
  readonly startMs: number;
}

/** The execute span of an attempt and its context (the handler runs in it; the settlement is its child). */
export interface AttemptSpans {
  readonly span: Span;
  readonly context: Context;
}

/**
 * For one attempt of `msg`: records `celeriac.queue_wait` (attempt 1 only: from `createdAt`, or
 * `eta` when later, to `startMs`, clamped to zero for a producer clock ahead of ours) and starts
 * `celeriac.execute` (kind CONSUMER) at `startMs`, both children of the message's trace context.
 * End the execute span with `endExecuteSpan`.
 */
export function startAttemptSpans(msg: TaskMessage, o: AttemptSpanInput): AttemptSpans {
  const parent = extractContext(msg.trace);
  const base = taskAttributes(msg);
  if (o.attempt === 1) {
    const created = Date.parse(msg.createdAt);
    const eta = msg.eta !== undefined ? Date.parse(msg.eta) : NaN;
    const ready = Number.isNaN(eta) ? created : Math.max(created, eta);
    if (!Number.isNaN(ready)) {
      const waitAttrs: Attributes = { ...base };
      if (msg.eta !== undefined) waitAttrs[A.eta] = msg.eta;
      tracer.startSpan(SPAN_NAMES.queueWait, { kind: SpanKind.INTERNAL, startTime: Math.min(ready, o.startMs), attributes: waitAttrs }, parent).end(o.startMs);
    }
  }
  const attributes: Attributes = { ...base, [A.destination]: o.subject, [A.operationType]: "process", [A.operationName]: "process", [A.attempt]: o.attempt };
  if (o.consumer) attributes[A.consumerGroup] = o.consumer;
  const span = tracer.startSpan(SPAN_NAMES.execute, { kind: SpanKind.CONSUMER, startTime: o.startMs, attributes }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * Ends an execute span with its outcome: status ERROR (exception recorded) for `retried`,
 * `timed_out` and `failed`; a cancelled attempt keeps status unset.
 */
export function endExecuteSpan(span: Span, outcome: SpanOutcome, err: unknown, extra: Attributes = {}): void {
  if (span.isRecording()) span.setAttributes({ ...extra, [A.outcome]: outcome });
  endSpan(span, outcome === "retried" || outcome === "timed_out" || outcome === "failed" ? err : undefined);
}

/**
 * Starts `celeriac.result` (kind INTERNAL), the settlement of a delivery, as a child of `parent`
 * (the attempt's execute context, else the message's trace context).
 */
export function startResultSpan(parent: Context, msg: Pick<TaskMessage, "id" | "task" | "queue" | "namespace" | "canvas"> | undefined, attributes: Attributes = {}): Span {
  return tracer.startSpan(SPAN_NAMES.result, { kind: SpanKind.INTERNAL, attributes: msg ? { ...taskAttributes(msg), ...attributes } : { [A.messagingSystem]: MESSAGING_SYSTEM, ...attributes } }, parent);
}

/**
 * Log fields tying a log line to a span (`trace_id`, `span_id`, `trace_flags`: the names of
 * OpenTelemetry's pino instrumentation), ended or not; `{}` when it has no valid context (no SDK and
 * no trace context in the message). With no SDK, a span made under a remote parent carries that
 * parent's ids: the line still names the producer's trace.
 */
export function traceLogFields(span: Span | undefined): { trace_id?: string; span_id?: string; trace_flags?: string } {
  const sc = span?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${(sc.traceFlags & 0xff).toString(16)}`.slice(-2) };
}
