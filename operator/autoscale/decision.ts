/**
 * The autoscaling decision (issue 7 item 1): how many workers a Queue should have now, as a pure
 * function of the backlog, the current size, the policy, the time and the past recommendations.
 * No clients, no clocks: the caller passes `now` and keeps the returned `history` and
 * `lastActiveAt` for the next call.
 *
 * Between 1 and max it follows the HorizontalPodAutoscaler (scale up at once, scale down to the
 * highest recommendation of the stabilization window); between 0 and 1 it follows KEDA (activation
 * threshold to wake, cooldown to sleep). See docs/autoscaling.md.
 */
import type { ScalingPolicy } from "./policy.js";

/** A past recommendation: the replica count computed at time `at` (ms since the epoch). */
export interface Recommendation {
  /** When the recommendation was made, in ms since the epoch. */
  at: number;
  /** Recommended replicas, before stabilization. */
  replicas: number;
}

/** Input of {@link decideReplicas}. Counts are non-negative integers; times are ms since the epoch. */
export interface ScaleInput {
  /**
   * Work waiting for or held by workers: `num_pending + num_ack_pending` of the queue's worker
   * consumer (KEDA's nats-jetstream metric) plus delayed tasks that are already due.
   */
  backlog: number;
  /** Tasks delivered to workers and not yet acknowledged (`num_ack_pending`). */
  inFlight: number;
  /** Current replicas of the worker Deployment (its scale subresource's `spec.replicas`). */
  current: number;
  /** The Queue's policy (see `resolveAutoscaling`). */
  policy: ScalingPolicy;
  /** `spec.suspend`: scale to zero and stay there. */
  suspended: boolean;
  /** The current time, in ms since the epoch. */
  now: number;
  /** The `history` returned by the previous call (empty on the first). */
  history: readonly Recommendation[];
  /**
   * When backlog or in-flight was last above zero, in ms since the epoch: the `lastActiveAt`
   * returned by the previous call. Undefined when unknown (first call, operator restart): the
   * cooldown then starts now, so an unknown past never scales a queue to zero early.
   */
  lastActiveAt?: number;
}

/** Which rule decided; a closed set for metrics, logs and tests (the `reason` text is for people). */
export type ScaleRule =
  /** `spec.suspend` is true: zero. */
  | "suspended"
  /** minReplicas == maxReplicas: a fixed size. */
  | "fixed"
  /** The recommendation from the backlog was applied (up at once, or down after stabilization). */
  | "backlog"
  /** Held above the recommendation by a higher one within the scale-down stabilization window. */
  | "stabilizing"
  /** Nothing to do, but held at one worker until the cooldown has passed. */
  | "cooldown"
  /** At or to zero: the cooldown passed with an empty backlog and nothing in flight. */
  | "idle"
  /** At zero with a backlog below `activationBacklog`. */
  | "belowActivation";

/** Output of {@link decideReplicas}. */
export interface ScaleDecision {
  /** Replicas to set on the Deployment now. */
  desired: number;
  /** This call's recommendation before stabilization (what was appended to `history`). */
  recommendation: number;
  /** Recommendations within the stabilization window, oldest first, this one last: pass it back next call. */
  history: Recommendation[];
  /** The rule that decided. */
  rule: ScaleRule;
  /**
   * Short text for the Event and the log, e.g. `backlog 48`, `stabilizing`, `cooldown`, `idle`,
   * `suspended`, `fixed size`, `backlog 3 below activation 5`.
   */
  reason: string;
  /** When backlog or in-flight was last above zero (ms since the epoch): pass it back next call. */
  lastActiveAt: number;
}

/**
 * Decides the worker count of a Queue.
 *
 * Rules, in order:
 * 1. `suspended` → 0 (history cleared).
 * 2. `minReplicas == maxReplicas` → that fixed size.
 * 3. At zero (current 0, minReplicas 0): stay at 0 while `backlog < activationBacklog`; otherwise
 *    scale up at once to `clamp(ceil(backlog / target), 1, max)`. Activation counts as at least 1.
 *    (KEDA: https://keda.sh/docs/latest/concepts/scaling-deployments/#activating-and-scaling-thresholds)
 * 4. Running: recommendation = `clamp(ceil(backlog / target), min, max)`. When that is 0, go to 0
 *    only once the backlog has been empty with nothing in flight for `cooldownSeconds` (KEDA's
 *    `cooldownPeriod`: https://keda.sh/docs/latest/reference/scaledobject-spec/#cooldownperiod);
 *    until then recommend 1. Scaling to zero is not delayed further by the stabilization window.
 * 5. Stabilization, as the HPA with `behavior`: a recommendation above the current size applies at
 *    once; below it, the highest recommendation within the last `scaleDownStabilizationSeconds`
 *    (this one included) applies, clamped to the policy; a current size between the two is kept.
 *    (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#stabilization-window;
 *    kubernetes `pkg/controller/podautoscaler/horizontal.go` `stabilizeRecommendationWithBehaviors`.)
 *    So a `kubectl scale` is undone: below the recommendation at once, above the window's highest at
 *    once, in between within one window.
 *
 * Unlike the HPA there is no scale-up rate limit (the HPA's default allows 4 pods or 100 % per 15 s)
 * and no 10 % tolerance: backlog is an exact count, not a noisy utilisation ratio.
 * @returns the decision; `history` and `lastActiveAt` must be passed back on the next call
 * @throws RangeError when a count or time is negative, fractional where an integer is needed, or not
 *   finite, when `targetBacklogPerReplica < 1`, or when `minReplicas > maxReplicas`
 */
export function decideReplicas(input: ScaleInput): ScaleDecision {
  validate(input);
  const { backlog, inFlight, current, policy, now } = input;
  const active = backlog > 0 || inFlight > 0;
  const lastActiveAt = active ? now : (input.lastActiveAt ?? now);
  const cutoff = now - policy.scaleDownStabilizationSeconds * 1000;
  const window = input.history.filter((r) => r.at >= cutoff && r.at <= now);
  const decide = (desired: number, recommendation: number, rule: ScaleRule, reason: string, history = [...window, { at: now, replicas: recommendation }]): ScaleDecision => ({
    desired,
    recommendation,
    history,
    rule,
    reason,
    lastActiveAt,
  });

  if (input.suspended) return decide(0, 0, "suspended", "suspended", []);
  if (policy.minReplicas === policy.maxReplicas) return decide(policy.maxReplicas, policy.maxReplicas, "fixed", "fixed size");

  const raw = Math.ceil(backlog / policy.targetBacklogPerReplica);
  const activation = Math.max(1, policy.activationBacklog);

  if (current === 0 && policy.minReplicas === 0) {
    if (backlog < activation) {
      return backlog === 0 ? decide(0, 0, "idle", "idle") : decide(0, 0, "belowActivation", `backlog ${backlog} below activation ${activation}`);
    }
    const rec = clamp(raw, 1, policy.maxReplicas);
    return decide(rec, rec, "backlog", `backlog ${backlog}`);
  }

  let rec = clamp(raw, policy.minReplicas, policy.maxReplicas);
  let holding = false;
  if (rec === 0) {
    if (!active && now - lastActiveAt >= policy.cooldownSeconds * 1000) return decide(0, 0, "idle", "idle");
    rec = 1;
    holding = true;
  }

  const highest = clamp(Math.max(rec, ...window.map((r) => r.replicas)), policy.minReplicas, policy.maxReplicas);
  const desired = current < rec ? rec : current > highest ? highest : current;
  if (desired > rec) return decide(desired, rec, "stabilizing", "stabilizing");
  if (holding) return decide(desired, rec, "cooldown", "cooldown");
  return decide(desired, rec, "backlog", `backlog ${backlog}`);
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

function validate(input: ScaleInput): void {
  const counts: Array<[string, number]> = [
    ["backlog", input.backlog],
    ["inFlight", input.inFlight],
    ["current", input.current],
    ["policy.minReplicas", input.policy.minReplicas],
    ["policy.maxReplicas", input.policy.maxReplicas],
  ];
  for (const [name, v] of counts) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`decide replicas: ${name} must be a non-negative integer, got ${v}`);
  }
  const numbers: Array<[string, number]> = [
    ["now", input.now],
    ["policy.activationBacklog", input.policy.activationBacklog],
    ["policy.scaleDownStabilizationSeconds", input.policy.scaleDownStabilizationSeconds],
    ["policy.cooldownSeconds", input.policy.cooldownSeconds],
  ];
  for (const [name, v] of numbers) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`decide replicas: ${name} must be a finite number ≥ 0, got ${v}`);
  }
  if (!Number.isFinite(input.policy.targetBacklogPerReplica) || input.policy.targetBacklogPerReplica < 1) {
    throw new RangeError(`decide replicas: policy.targetBacklogPerReplica must be ≥ 1, got ${input.policy.targetBacklogPerReplica}`);
  }
  if (input.policy.minReplicas > input.policy.maxReplicas) {
    throw new RangeError(`decide replicas: policy.minReplicas ${input.policy.minReplicas} exceeds maxReplicas ${input.policy.maxReplicas}`);
  }
}
