/**
 * Small pure readers over Pod objects, shared by the controller and the victim ordering. client-node
 * hands out timestamps as `Date` (from typed lists) or strings (from watch events); these accept both.
 */
import type { V1Pod } from "@kubernetes/client-node";

/**
 * Converts a Kubernetes timestamp to epoch milliseconds.
 * @param t a `Date`, an RFC 3339 string, or absent
 * @returns milliseconds since the epoch; 0 when absent or unparsable (sorts as "oldest")
 */
export function toMillis(t: Date | string | undefined | null): number {
  if (t === undefined || t === null) return 0;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(ms) ? ms : 0;
}

/**
 * Formats a time the way metav1.Time does on the wire: RFC 3339, second precision, UTC.
 * @param ms epoch milliseconds
 */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** True when the Pod's `Ready` condition is `True`. */
export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** When the Pod last became ready (epoch ms of the `Ready` condition's lastTransitionTime), or 0. */
export function podReadySince(pod: V1Pod): number {
  const c = pod.status?.conditions?.find((x) => x.type === "Ready" && x.status === "True");
  return toMillis(c?.lastTransitionTime as Date | string | undefined);
}

/** The highest restartCount among the Pod's containers (0 without statuses). */
export function restartCountOf(pod: V1Pod): number {
  return Math.max(0, ...(pod.status?.containerStatuses ?? []).map((s) => s.restartCount ?? 0));
}

/** True once the object is being deleted (has a deletionTimestamp). */
export function isTerminating(obj: { metadata?: { deletionTimestamp?: Date | string | null } }): boolean {
  return obj.metadata?.deletionTimestamp !== undefined && obj.metadata?.deletionTimestamp !== null;
}

/** `namespace/name` of any object. */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}
