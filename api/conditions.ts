/**
 * The one helper through which conditions are set: `metav1.Condition` semantics
 * (Kubernetes API conventions): a list-map keyed by `type`; `lastTransitionTime` changes only when
 * `status` flips. Pure.
 */

/** A `metav1.Condition`. Times are RFC 3339 strings. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What a caller sets; the transition time is derived. */
export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/**
 * Returns a new condition list with `input` set. Keeps the old `lastTransitionTime` when the status did not
 * change, so a reconcile that observes nothing new writes nothing new.
 * @param conditions the current list (not modified; may be undefined)
 * @param input type, status, reason, message, observedGeneration
 * @param now the current time (injected for tests)
 */
export function setCondition(conditions: readonly Condition[] | undefined, input: ConditionInput, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: prev && prev.status === input.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/**
 * Finds a condition by type.
 * @returns the condition, or undefined when absent
 */
export function getCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when the condition of `type` exists with status `True`. */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === "True";
}
