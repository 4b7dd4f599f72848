/**
 * The Deployment status the kubelet's controller reports, following upstream's deployment controller
 * (`pkg/controller/deployment/sync.go`, `util/deployment_util.go`) closely enough that
 * `kubectl rollout status` and `helm --wait` read it the same way. Pure: pods and a clock value in.
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { POD_TEMPLATE_HASH } from "./pod-template.js";
import { isPodReady, podReadySince, rfc3339, toMillis } from "./pod-facts.js";

/** A Deployment condition in wire form (timestamps as RFC 3339 strings). */
export interface DeploymentCondition {
  type: "Available" | "Progressing";
  status: "True" | "False";
  lastUpdateTime: string;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** The status object written to `deployments/status`; zero counters are omitted, as upstream's JSON does. */
export interface DeploymentStatusJson {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: DeploymentCondition[];
}

/** Resolves an int-or-percent against `total` (percent rounds up for surge, down for unavailable, as upstream). */
export function intOrPercent(v: number | string | undefined, total: number, fallback: string, roundUp: boolean): number {
  const raw = v ?? fallback;
  if (typeof raw === "number") return raw;
  const m = /^(\d+)%$/.exec(raw);
  if (!m) return Number.parseInt(raw, 10) || 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

/** Normalises a condition read from the cache (typed lists hold `Date`s) to wire form. */
function wireCondition(c: Record<string, unknown>): DeploymentCondition {
  const t = (x: unknown): string => (x === undefined || x === null ? "" : rfc3339(toMillis(x as Date | string)));
  return {
    type: c.type as DeploymentCondition["type"],
    status: c.status as DeploymentCondition["status"],
    lastUpdateTime: t(c.lastUpdateTime),
    lastTransitionTime: t(c.lastTransitionTime),
    reason: String(c.reason ?? ""),
    message: String(c.message ?? ""),
  };
}

/** Reads a Deployment's current status in wire form, for comparison with the desired one. */
export function currentDeploymentStatus(d: V1Deployment): DeploymentStatusJson {
  const s = (d.status ?? {}) as Record<string, unknown>;
  const out: DeploymentStatusJson = {};
  for (const k of ["observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"] as const) {
    if (typeof s[k] === "number" && s[k] !== 0) out[k] = s[k];
  }
  const conds = (s.conditions as Record<string, unknown>[] | undefined) ?? [];
  if (conds.length > 0) out.conditions = conds.map(wireCondition);
  return out;
}

/** Inputs of {@link desiredDeploymentStatus}. */
export interface StatusInput {
  deployment: V1Deployment;
  /** The Deployment's active (not deleted) pods. */
  pods: readonly V1Pod[];
  /** {@link templateHash} of the current template. */
  hash: string;
  /** Now, epoch ms. */
  nowMs: number;
}

/**
 * Computes the Deployment's status.
 *
 * Counters: `replicas` = active pods, `updatedReplicas` = those with the current template hash,
 * `readyReplicas` = ready ones, `availableReplicas` = ready for at least `minReadySeconds`,
 * `unavailableReplicas` = `spec.replicas - availableReplicas` (not below 0).
 * Conditions: `Available` True/`MinimumReplicasAvailable` when `available >= spec.replicas - maxUnavailable`,
 * else False/`MinimumReplicasUnavailable`. `Progressing` True/`NewReplicaSetAvailable` once the rollout
 * is complete; True/`ReplicaSetUpdated` while counters move (lastUpdateTime = now); False/
 * `ProgressDeadlineExceeded` when nothing moved for `progressDeadlineSeconds`; True/`NewReplicaSetCreated`
 * at first. lastTransitionTime changes only when a condition's status flips.
 * @returns the status, and `recheckInMs` when a timer (minReadySeconds, the progress deadline) may change it
 */
export function desiredDeploymentStatus(input: StatusInput): { status: DeploymentStatusJson; recheckInMs?: number } {
  const { deployment: d, pods, hash, nowMs } = input;
  const now = rfc3339(nowMs);
  const want = d.spec?.replicas ?? 1;
  const minReadyMs = (d.spec?.minReadySeconds ?? 0) * 1000;
  const rsName = `${d.metadata?.name ?? ""}-${hash}`;
  let recheck: number | undefined;
  const soonest = (ms: number): void => {
    if (ms > 0 && (recheck === undefined || ms < recheck)) recheck = ms;
  };

  const replicas = pods.length;
  const updated = pods.filter((p) => p.metadata?.labels?.[POD_TEMPLATE_HASH] === hash).length;
  const ready = pods.filter(isPodReady);
  const available = ready.filter((p) => {
    const left = podReadySince(p) + minReadyMs - nowMs;
    if (minReadyMs > 0 && left > 0) {
      soonest(left);
      return false;
    }
    return true;
  }).length;

  const prev = currentDeploymentStatus(d);
  const prevCond = (type: string): DeploymentCondition | undefined => prev.conditions?.find((c) => c.type === type);
  const cond = (type: DeploymentCondition["type"], status: "True" | "False", reason: string, message: string, touch: boolean): DeploymentCondition => {
    const old = prevCond(type);
    if (old && old.status === status && old.reason === reason && old.message === message && !touch) return old;
    return {
      type,
      status,
      lastUpdateTime: touch || !old || old.reason !== reason ? now : old.lastUpdateTime,
      lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now,
      reason,
      message,
    };
  };

  const maxUnavailable = Math.min(
    want,
    intOrPercent(d.spec?.strategy?.rollingUpdate?.maxUnavailable as number | string | undefined, want, "25%", false),
  );
  const availableCond =
    available >= want - maxUnavailable
      ? cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", false)
      : cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", false);

  const complete = updated === want && replicas === want && available === want;
  const moved =
    prev.observedGeneration !== undefined &&
    ((prev.updatedReplicas ?? 0) < updated ||
      (prev.replicas ?? 0) - (prev.updatedReplicas ?? 0) > replicas - updated ||
      (prev.readyReplicas ?? 0) < ready.length ||
      (prev.availableReplicas ?? 0) < available);
  const oldProgressing = prevCond("Progressing");
  const deadlineMs = d.spec?.progressDeadlineSeconds !== undefined ? d.spec.progressDeadlineSeconds * 1000 : 600_000;
  let progressing: DeploymentCondition;
  if (complete) {
    progressing = cond("Progressing", "True", "NewReplicaSetAvailable", `ReplicaSet "${rsName}" has successfully progressed.`, false);
  } else if (!oldProgressing) {
    progressing = cond("Progressing", "True", "NewReplicaSetCreated", `Created new replica set "${rsName}"`, true);
    soonest(deadlineMs);
  } else if (moved || oldProgressing.reason === "NewReplicaSetAvailable" || (prev.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) {
    progressing = cond("Progressing", "True", "ReplicaSetUpdated", `ReplicaSet "${rsName}" is progressing.`, true);
    soonest(deadlineMs);
  } else {
    const since = toMillis(oldProgressing.lastUpdateTime);
    const left = since + deadlineMs - nowMs;
    if (oldProgressing.reason !== "ProgressDeadlineExceeded" && left <= 0) {
      progressing = cond("Progressing", "False", "ProgressDeadlineExceeded", `ReplicaSet "${rsName}" has timed out progressing.`, true);
    } else {
      progressing = oldProgressing;
      if (oldProgressing.reason !== "ProgressDeadlineExceeded") soonest(left);
    }
  }

  const status: DeploymentStatusJson = {};
  const put = (k: keyof Omit<DeploymentStatusJson, "conditions">, v: number): void => {
    if (v !== 0) status[k] = v;
  };
  put("observedGeneration", d.metadata?.generation ?? 0);
  put("replicas", replicas);
  put("updatedReplicas", updated);
  put("readyReplicas", ready.length);
  put("availableReplicas", available);
  put("unavailableReplicas", Math.max(0, want - available));
  status.conditions = [availableCond, progressing];
  return recheck === undefined ? { status } : { status, recheckInMs: recheck };
}

/**
 * The JSON merge patch that turns `current` into `desired` at the top level of `.status` (fields that
 * disappear are set to `null`; `conditions` is replaced whole).
 * @returns the patch body `{status: …}`, or `undefined` when nothing changed (a no-op write is skipped)
 */
export function statusMergePatch(current: DeploymentStatusJson, desired: DeploymentStatusJson): { status: Record<string, unknown> } | undefined {
  if (JSON.stringify(current) === JSON.stringify(desired)) return undefined;
  const patch: Record<string, unknown> = { ...desired };
  for (const k of Object.keys(current)) if (!(k in desired)) patch[k] = null;
  return { status: patch };
}
