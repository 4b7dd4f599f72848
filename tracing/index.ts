/**
 * Celeriac's OpenTelemetry tracing: the spans (spans.ts; names and attributes in api/tracing.ts) and
 * the OTLP export switch of the worker and operator processes (setup.ts). See docs/tracing.md.
 */
export { extractContext, injectContext, startEnqueueSpan, startAttemptSpans, startResultSpan, endSpan, endExecuteSpan, traceLogFields, type EnqueueSpan, type AttemptSpans, type AttemptSpanInput } from "./spans.js";
export { setupTracing, tracingChoice, TRACING_SDK_PACKAGES, type TracingChoice, type TracingHandle, type SetupTracingOptions, type TraceExporterName } from "./setup.js";
