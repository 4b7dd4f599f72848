/**
 * The resolved autoscaling policy of a Queue: `spec.autoscaling` with every absent field taken from
 * `DEFAULT_AUTOSCALING`. Pure.
 */
import { DEFAULT_AUTOSCALING } from "../../api/defaults.js";
import type { QueueSpec } from "../../api/queue.js";

/** Scaling policy in the units of the Queue spec (replica counts, tasks, seconds). */
export interface ScalingPolicy {
  /** Fewest workers; 0 allows scale to zero. */
  minReplicas: number;
  /** Most workers (≥ minReplicas). */
  maxReplicas: number;
  /** Backlog each worker should carry: desired = ceil(backlog / target). ≥ 1. */
  targetBacklogPerReplica: number;
  /** Backlog that wakes a queue scaled to zero (0 → 1 when backlog ≥ this). */
  activationBacklog: number;
  /** Seconds of lower recommendations before scaling down (highest in the window wins). */
  scaleDownStabilizationSeconds: number;
  /** Seconds of empty backlog with nothing in flight before scaling to zero. */
  cooldownSeconds: number;
}

/** {@link ScalingPolicy} plus the provider and polling interval, as a Queue resolves them. */
export interface ResolvedAutoscaling extends ScalingPolicy {
  /** `builtin`: the operator scales the Deployment; `keda`: a KEDA ScaledObject does. */
  provider: "builtin" | "keda";
  /** Seconds between backlog reads. */
  pollingIntervalSeconds: number;
}

/**
 * `spec.autoscaling` with defaults (`api/defaults.ts` DEFAULT_AUTOSCALING) filled in.
 * @param spec a Queue spec, defaulted or not
 */
export function resolveAutoscaling(spec: QueueSpec): ResolvedAutoscaling {
  const a = spec.autoscaling ?? {};
  return {
    provider: a.provider ?? DEFAULT_AUTOSCALING.provider,
    minReplicas: a.minReplicas ?? DEFAULT_AUTOSCALING.minReplicas,
    maxReplicas: a.maxReplicas ?? DEFAULT_AUTOSCALING.maxReplicas,
    targetBacklogPerReplica: a.targetBacklogPerReplica ?? DEFAULT_AUTOSCALING.targetBacklogPerReplica,
    activationBacklog: a.activationBacklog ?? DEFAULT_AUTOSCALING.activationBacklog,
    pollingIntervalSeconds: a.pollingIntervalSeconds ?? DEFAULT_AUTOSCALING.pollingIntervalSeconds,
    scaleDownStabilizationSeconds: a.scaleDownStabilizationSeconds ?? DEFAULT_AUTOSCALING.scaleDownStabilizationSeconds,
    cooldownSeconds: a.cooldownSeconds ?? DEFAULT_AUTOSCALING.cooldownSeconds,
  };
}
