/**
 * core/v1 Events for components that record one Event per occurrence (no aggregation): the worker's
 * Task events. Same shape as the operator's EventRecorder (operator/runtime/events.ts), which adds
 * aggregation of repeats on top; this module imports nothing from the operator.
 */
import { BUILTIN_TYPES, createObject, type KubeClient, type KubeObject } from "./k8s-client.js";

/** Event type. */
export type EventType = "Normal" | "Warning";

/** The object an Event is about, as `involvedObject` needs it. */
export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

/** Who records the Event. */
export interface EventSource {
  /** `source.component` and `reportingComponent`, e.g. `celeriac-worker`. */
  component: string;
  /** `reportingInstance`, e.g. the pod name. */
  instance: string;
}

/** RFC 3339 with second precision, as `firstTimestamp`/`lastTimestamp` expect. */
function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * A core/v1 Event body about `obj` in its namespace, named `<name>.<hex time>` (unique per
 * occurrence; `seq` breaks ties within a millisecond). The message is cut to 1 KiB. Pure.
 * @param now the time of the occurrence, ms since the epoch
 */
export function eventBody(obj: InvolvedObject, type: EventType, reason: string, message: string, source: EventSource, now: number, seq = 0): KubeObject {
  const t = rfc3339(now);
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { name: `${obj.name}.${(BigInt(now) * 1_000_000n + BigInt(seq % 1_000_000)).toString(16)}`, namespace: obj.namespace },
    involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.name, namespace: obj.namespace, ...(obj.uid ? { uid: obj.uid } : {}), ...(obj.resourceVersion ? { resourceVersion: obj.resourceVersion } : {}) },
    type,
    reason,
    message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
    source: { component: source.component },
    reportingComponent: source.component,
    reportingInstance: source.instance,
    firstTimestamp: t,
    lastTimestamp: t,
    count: 1,
  };
}

/**
 * Creates an Event (needs `create` on `events` in its namespace).
 * @throws Error `create events <ns>/<name>` with the API error as `cause`
 */
export async function createEvent(kc: KubeClient, event: KubeObject, fieldManager: string): Promise<void> {
  await createObject(kc, BUILTIN_TYPES.Event, event, fieldManager);
}
