/**
 * Kubernetes Events (core/v1) for what a user would want to know (`kubectl describe` / `kubectl
 * get events`). Repeats of the same (object, type, reason, message) within the aggregation window
 * (10 minutes) bump `count` and `lastTimestamp` of the existing Event with a merge patch instead of
 * creating a new one, as client-go's EventCorrelator does.
 *
 * Recording never throws: an event is best effort, failures are logged at debug/warn level.
 */
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { BUILTIN_TYPES, createObject, isNotFound, mergePatch } from "../../kube/k8s-client.js";
import type { KubeObject } from "../../kube/k8s-client.js";

/** Event type. */
export type EventType = "Normal" | "Warning";

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** Cluster connection. */
  kc: KubeConfig;
  /** `source.component` and `reportingComponent`. Default `celeriac-operator`. */
  component?: string;
  /** `reportingInstance` (the pod name). Default `$POD_NAME` or the host name. */
  instance?: string;
  /** Aggregation window, ms. Default 600 000 (10 min). */
  aggregateWindowMs?: number;
  /** Time source in ms. Default `Date.now`. */
  now?: () => number;
  /** Field manager for writes. Default `celeriac-operator`. */
  fieldManager?: string;
  logger?: Logger;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  chain: Promise<void>;
}

/** RFC 3339 with second precision, as `firstTimestamp`/`lastTimestamp` expect. */
function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** Records core/v1 Events with aggregation of repeats. */
export class EventRecorder {
  private readonly kc: KubeConfig;
  private readonly component: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly fieldManager: string;
  private readonly log: Logger | undefined;
  private readonly seen = new Map<string, Seen>();

  /** @param opts see {@link EventRecorderOptions} */
  constructor(opts: EventRecorderOptions) {
    this.kc = opts.kc;
    this.component = opts.component ?? "celeriac-operator";
    this.instance = opts.instance ?? process.env.POD_NAME ?? hostname();
    this.windowMs = opts.aggregateWindowMs ?? 600_000;
    this.now = opts.now ?? Date.now;
    this.fieldManager = opts.fieldManager ?? "celeriac-operator";
    this.log = opts.logger;
  }

  /** Records a `Normal` event on `obj`. Resolves when written (or when writing failed). */
  normal(obj: KubeObject, reason: string, message: string): Promise<void> {
    return this.record(obj, "Normal", reason, message);
  }

  /** Records a `Warning` event on `obj`. Resolves when written (or when writing failed). */
  warning(obj: KubeObject, reason: string, message: string): Promise<void> {
    return this.record(obj, "Warning", reason, message);
  }

  /**
   * Records an event on `obj` (needs `apiVersion`, `kind`, `metadata.name`; uid and namespace when
   * present). The Event goes to the object's namespace, or `default` for cluster-scoped objects.
   */
  record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const md = obj.metadata ?? {};
    const namespace = md.namespace || "default";
    const key = [obj.apiVersion, obj.kind, md.namespace ?? "", md.name, md.uid ?? "", type, reason, message].join("\u0000");
    const now = this.now();
    this.prune(now);
    const prev = this.seen.get(key);
    if (prev && now - prev.lastSeen <= this.windowMs) {
      prev.count++;
      prev.lastSeen = now;
      const count = prev.count;
      prev.chain = prev.chain.then(() => this.bump(prev, count, now, obj, type, reason, message));
      return prev.chain;
    }
    const name = `${md.name ?? "unknown"}.${(BigInt(now) * 1_000_000n + BigInt(this.seen.size)).toString(16)}`;
    const entry: Seen = { name, namespace, count: 1, firstSeen: now, lastSeen: now, chain: Promise.resolve() };
    this.seen.set(key, entry);
    entry.chain = this.create(entry, obj, type, reason, message, now);
    return entry.chain;
  }

  private body(e: Seen, obj: KubeObject, type: EventType, reason: string, message: string, now: number): KubeObject {
    const md = obj.metadata ?? {};
    return {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: e.name, namespace: e.namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: md.name,
        namespace: md.namespace,
        uid: md.uid,
        resourceVersion: md.resourceVersion,
      },
      type,
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: rfc3339(e.firstSeen),
      lastTimestamp: rfc3339(now),
      count: e.count,
    };
  }

  private async create(e: Seen, obj: KubeObject, type: EventType, reason: string, message: string, now: number): Promise<void> {
    try {
      await createObject(this.kc, BUILTIN_TYPES.Event, this.body(e, obj, type, reason, message, now), this.fieldManager);
    } catch (err) {
      this.log?.warn({ err, reason }, "Event not recorded");
    }
  }

  private async bump(e: Seen, count: number, now: number, obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    try {
      await mergePatch(
        this.kc,
        { ...BUILTIN_TYPES.Event, namespace: e.namespace, name: e.name },
        { count, lastTimestamp: rfc3339(now) },
        this.fieldManager,
      );
    } catch (err) {
      if (isNotFound(err)) {
        await this.create(e, obj, type, reason, message, now);
        return;
      }
      this.log?.warn({ err, reason }, "Event not updated");
    }
  }

  private prune(now: number): void {
    if (this.seen.size < 1000) return;
    for (const [k, v] of this.seen) if (now - v.lastSeen > this.windowMs) this.seen.delete(k);
  }
}

/**
 * What reconcilers need to record an Event: fire-and-forget (the EventRecorder never throws).
 * `type` is Normal or Warning; `reason` CamelCase; `message` starts with a capital.
 */
export interface EventSink {
  event(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}
