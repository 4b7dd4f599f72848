/**
 * Scale-down victim selection, as the ReplicaSet controller does it (`ActivePodsWithRanks.Less` in
 * kubernetes `pkg/controller/controller_utils.go`). Pure: pods in, ordered pods out.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { isPodReady, podReadySince, restartCountOf, toMillis } from "./pod-facts.js";

/** Annotation whose lower value makes a Pod the preferred victim (an int32; invalid or absent = 0). */
export const POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/** Reads `controller.kubernetes.io/pod-deletion-cost`; absent or not an int32 counts as 0, as upstream. */
export function deletionCost(pod: V1Pod): number {
  const raw = pod.metadata?.annotations?.[POD_DELETION_COST];
  if (raw === undefined || !/^-?\d+$/.test(raw.trim())) return 0;
  const n = Number(raw.trim());
  return n >= -2147483648 && n <= 2147483647 ? n : 0;
}

/**
 * Compares two pods for deletion; negative means `a` goes first. Upstream's order (without the
 * per-node "doubled up" rank, which is always equal on the single local node):
 * 1. unassigned (no `spec.nodeName`) before assigned;
 * 2. phase Pending before Unknown before Running;
 * 3. not ready before ready;
 * 4. lower `pod-deletion-cost` before higher;
 * 5. when both are ready, ready for less time before ready for longer;
 * 6. higher max container restart count before lower;
 * 7. newer `creationTimestamp` before older (then name, for a stable order).
 */
export function compareForDeletion(a: V1Pod, b: V1Pod): number {
  const na = a.spec?.nodeName ?? "";
  const nb = b.spec?.nodeName ?? "";
  if (na !== nb && (na === "" || nb === "")) return na === "" ? -1 : 1;
  const pa = PHASE_ORDINAL[a.status?.phase ?? "Pending"] ?? 0;
  const pb = PHASE_ORDINAL[b.status?.phase ?? "Pending"] ?? 0;
  if (pa !== pb) return pa - pb;
  const ra = isPodReady(a);
  const rb = isPodReady(b);
  if (ra !== rb) return ra ? 1 : -1;
  const ca = deletionCost(a);
  const cb = deletionCost(b);
  if (ca !== cb) return ca - cb;
  if (ra && rb) {
    const ta = podReadySince(a);
    const tb = podReadySince(b);
    if (ta !== tb) return tb - ta;
  }
  const xa = restartCountOf(a);
  const xb = restartCountOf(b);
  if (xa !== xb) return xb - xa;
  const sa = toMillis(a.metadata?.creationTimestamp);
  const sb = toMillis(b.metadata?.creationTimestamp);
  if (sa !== sb) return sb - sa;
  return (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
}

/**
 * Picks the pods to delete when scaling down.
 * @param pods the candidate pods (active, i.e. not already being deleted)
 * @param count how many to delete; `<= 0` returns `[]`
 * @returns the first `count` pods in {@link compareForDeletion} order
 */
export function chooseVictims(pods: readonly V1Pod[], count: number): V1Pod[] {
  if (count <= 0) return [];
  return [...pods].sort(compareForDeletion).slice(0, count);
}
