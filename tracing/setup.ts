/**
 * The OTLP export switch of the worker and operator processes (docs/tracing.md). Celeriac's spans
 * are made with `@opentelemetry/api` alone; this module, called once by `celeriac worker` and
 * `celeriac operator`, loads and registers an SDK only when the standard OpenTelemetry environment
 * asks for an exporter:
 * - `OTEL_TRACES_EXPORTER=otlp` (and/or `console`), or, with it unset, `OTEL_EXPORTER_OTLP_ENDPOINT`
 *   or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set → OTLP over HTTP (`@opentelemetry/exporter-trace-otlp-http`);
 * - `OTEL_TRACES_EXPORTER=none`, `OTEL_SDK_DISABLED=true`, or nothing set → nothing is loaded.
 * The SDK packages are optional dependencies (`npm install --omit=optional` leaves them out; the
 * images have them). A tracer provider already registered (by the tasks module) is left in place.
 */
import { trace } from "@opentelemetry/api";
import type { Logger } from "pino";
// types only: the packages themselves are imported when export is asked for
import type * as SdkTraceNode from "@opentelemetry/sdk-trace-node";
import type * as Resources from "@opentelemetry/resources";
import type * as OtlpHttp from "@opentelemetry/exporter-trace-otlp-http";

/** An exporter `OTEL_TRACES_EXPORTER` may name that Celeriac sets up. */
export type TraceExporterName = "otlp" | "console";

/** What the environment asks for: the exporters to set up, and why (for the log). */
export interface TracingChoice {
  readonly exporters: readonly TraceExporterName[];
  readonly reason: string;
  /** Values of `OTEL_TRACES_EXPORTER` that are not supported (logged, ignored). */
  readonly unsupported: readonly string[];
}

/**
 * The exporters the environment asks for (OpenTelemetry's SDK environment variables). Pure.
 * @param env the process environment
 */
export function tracingChoice(env: Readonly<Record<string, string | undefined>>): TracingChoice {
  if ((env.OTEL_SDK_DISABLED ?? "").trim().toLowerCase() === "true") return { exporters: [], reason: "OTEL_SDK_DISABLED=true", unsupported: [] };
  const raw = env.OTEL_TRACES_EXPORTER?.trim();
  if (raw) {
    const names = raw.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");
    if (names.includes("none")) return { exporters: [], reason: "OTEL_TRACES_EXPORTER=none", unsupported: [] };
    const exporters = [...new Set(names.filter((n): n is TraceExporterName => n === "otlp" || n === "console"))];
    return { exporters, reason: `OTEL_TRACES_EXPORTER=${raw}`, unsupported: names.filter((n) => n !== "otlp" && n !== "console") };
  }
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() ? "OTEL_EXPORTER_OTLP_ENDPOINT" : undefined;
  if (endpoint) return { exporters: ["otlp"], reason: `${endpoint} is set`, unsupported: [] };
  return { exporters: [], reason: "no OTEL_TRACES_EXPORTER or OTEL_EXPORTER_OTLP_ENDPOINT", unsupported: [] };
}

/** The tracing of a process: `shutdown` flushes and stops what `setupTracing` registered (a no-op when nothing was). */
export interface TracingHandle {
  /** True when this call registered an SDK. */
  readonly enabled: boolean;
  /** Exports the spans still buffered and stops the provider; waits at most `timeoutMs` (default 5000). Never rejects. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** Options of `setupTracing`. */
export interface SetupTracingOptions {
  /** `service.name` unless `OTEL_SERVICE_NAME` (or `OTEL_RESOURCE_ATTRIBUTES`) gives one, e.g. `celeriac-worker`. */
  serviceName: string;
  /** More resource attributes (e.g. `service.instance.id`); `OTEL_RESOURCE_ATTRIBUTES` overrides them. */
  resourceAttributes?: Record<string, string | undefined>;
  /** Where the decision and problems are logged. */
  log?: Logger;
  /** The environment (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
}

const NOTHING: TracingHandle = Object.freeze({ enabled: false, shutdown: async () => undefined });

/** The packages the OTLP export needs (optionalDependencies of celeriac). */
export const TRACING_SDK_PACKAGES = ["@opentelemetry/sdk-trace-node", "@opentelemetry/exporter-trace-otlp-http", "@opentelemetry/resources"] as const;

/**
 * Sets up span export as the environment asks (`tracingChoice`): loads `@opentelemetry/sdk-trace-node`
 * (tracer provider with OpenTelemetry's env defaults: `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`), the
 * AsyncLocalStorage context manager and the W3C propagators, a batch processor per exporter (OTLP
 * reads `OTEL_EXPORTER_OTLP_*`: endpoint, headers, timeout), and a resource of `service.name` =
 * `serviceName`, `k8s.pod.name` / `k8s.namespace.name` from `POD_NAME` / `POD_NAMESPACE`, and
 * `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` over them. Call it before spans are made.
 * @returns the handle (`enabled` false when nothing was asked for, the SDK is not installed — logged
 *   as a warning naming the packages — or a provider was registered already); never throws
 */
export async function setupTracing(o: SetupTracingOptions): Promise<TracingHandle> {
  const env = o.env ?? process.env;
  const log = o.log;
  const choice = tracingChoice(env);
  if (choice.unsupported.length > 0) log?.warn({ exporters: choice.unsupported }, "Unsupported OTEL_TRACES_EXPORTER values ignored; Celeriac sets up otlp and console");
  if (choice.exporters.length === 0) {
    if (log?.isLevelEnabled("debug")) log.debug({ reason: choice.reason }, "Trace export off");
    return NOTHING;
  }
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (choice.exporters.includes("otlp") && protocol === "grpc") {
    log?.warn({ protocol }, "OTLP over gRPC is not supported; exporting OTLP over HTTP (the collector's port 4318) instead");
  }
  let sdk: typeof SdkTraceNode;
  let resources: typeof Resources;
  let otlp: typeof OtlpHttp | undefined;
  try {
    [sdk, resources, otlp] = await Promise.all([
      import("@opentelemetry/sdk-trace-node"),
      import("@opentelemetry/resources"),
      choice.exporters.includes("otlp") ? import("@opentelemetry/exporter-trace-otlp-http") : Promise.resolve(undefined),
    ]);
  } catch (err) {
    log?.warn({ err, reason: choice.reason, install: TRACING_SDK_PACKAGES.join(" ") }, "Trace export asked for but the OpenTelemetry SDK is not installed; spans are not exported");
    return NOTHING;
  }
  const ours: Record<string, string> = { "service.name": o.serviceName };
  for (const [k, v] of Object.entries({ "k8s.pod.name": env.POD_NAME, "k8s.namespace.name": env.POD_NAMESPACE, ...o.resourceAttributes })) if (v) ours[k] = v;
  const resource = resources.defaultResource().merge(resources.resourceFromAttributes(ours)).merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const spanProcessors = choice.exporters.map((name) => new sdk.BatchSpanProcessor(name === "otlp" ? new otlp!.OTLPTraceExporter() : new sdk.ConsoleSpanExporter()));
  const provider = new sdk.NodeTracerProvider({ resource, spanProcessors });
  if (!trace.setGlobalTracerProvider(provider)) {
    log?.info({ reason: choice.reason }, "A tracer provider is registered already (by the tasks module?); Celeriac's trace export is not set up");
    await provider.shutdown().catch(() => undefined);
    return NOTHING;
  }
  provider.register(); // the context manager and propagators (the provider itself is registered above)
  log?.info({ reason: choice.reason, exporters: choice.exporters, serviceName: resource.attributes["service.name"] }, "Trace export on");
  let done: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: (timeoutMs = 5000) =>
      (done ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([provider.shutdown(), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
        } catch (err) {
          log?.warn({ err }, "Trace export shutdown failed");
        } finally {
          clearTimeout(timer);
        }
      })()),
  };
}
