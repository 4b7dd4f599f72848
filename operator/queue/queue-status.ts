/**
 * Pure status builders of a Queue. The status has two writers with disjoint fields, both through
 * the `/status` subresource with merge patches:
 * - the Queue reconcile writes {@link RECONCILE_STATUS_FIELDS}: conditions, observedGeneration,
 *   streamName and the Deployment's replicas/readyReplicas (and lastScaleTime when it creates the
 *   Deployment);
 * - the scale loop writes {@link SCALE_STATUS_FIELDS}: backlog, inFlight, delayed, deadLetters,
 *   desiredReplicas and lastScaleTime, on a flow-controlled Queue `flow` (the dispatcher's
 *   snapshot, {@link flowStatusField}), and `paused` while the queue is paused ({@link pausedStatusField}).
 * Each writes only the fields whose values changed ({@link statusChanges}), so an idle Queue's status
 * is not rewritten.
 */
import { CONDITION_TYPES, REASONS } from "../../api/constants.js";
import { setCondition, type Condition, type ConditionInput } from "../../api/conditions.js";
import type { QueueFlowStatus } from "../../api/flow.js";
import type { QueueStatus } from "../../api/queue.js";
import type { QueuePaused } from "../../api/queue-ops.js";

/** A condition a sub-step reports, before the generation and transition time are added. */
export type StepCondition = Omit<ConditionInput, "observedGeneration">;

/** Status fields the Queue reconcile writes. */
export const RECONCILE_STATUS_FIELDS = ["conditions", "observedGeneration", "streamName", "replicas", "readyReplicas", "lastScaleTime"] as const;
/** Status fields the scale loop writes. */
export const SCALE_STATUS_FIELDS = ["backlog", "inFlight", "delayed", "deadLetters", "desiredReplicas", "lastScaleTime", "flow", "paused"] as const;

/**
 * The `flow` part of the scale loop's status: the dispatcher's snapshot on a flow-controlled Queue
 * (absent until its first snapshot; `keys: null` when the snapshot has no keys but the status
 * still lists some); `null` (a merge patch that removes it) when the Queue is no longer
 * flow-controlled but its status still shows one; else nothing. Pure.
 */
export function flowStatusField(flowControlled: boolean, snapshot: QueueFlowStatus | undefined, current: QueueStatus | undefined): { flow?: QueueFlowStatus } {
  if (flowControlled) {
    if (!snapshot) return {};
    // a merge patch keeps what it leaves out: `keys` gone from the snapshot is removed with null
    return { flow: snapshot.keys === undefined && current?.flow?.keys !== undefined ? { ...snapshot, keys: null as unknown as undefined } : snapshot };
  }
  return current?.flow ? { flow: null as unknown as QueueFlowStatus } : {};
}

/**
 * The `paused` part of the scale loop's status: the pause (`at` in whole seconds, `by`, `reason`)
 * while the queue is paused; `null` (a merge patch that removes it) when it runs but the status
 * still shows a pause; else nothing. Pure.
 */
export function pausedStatusField(paused: QueuePaused | undefined, current: QueueStatus | undefined): { paused?: NonNullable<QueueStatus["paused"]> } {
  if (paused) {
    const at = Date.parse(paused.at);
    return { paused: { at: Number.isFinite(at) ? rfc3339(at) : paused.at, ...(paused.by ? { by: paused.by } : {}), ...(paused.reason ? { reason: paused.reason } : {}) } };
  }
  return current?.paused ? { paused: null as unknown as NonNullable<QueueStatus["paused"]> } : {};
}

/**
 * The backlog autoscaling counts: the work stream's pending and in-flight messages, the due delayed
 * ones and, on a flow-controlled Queue, the held tasks no limit holds back (`flow.runnable`) —
 * never the raw held count, so work held back by a rate or key limit does not scale workers up. Pure.
 */
export function scaleBacklog(depth: { pending: number; inFlight: number; dueDelayed: number }, flow: QueueFlowStatus | undefined): number {
  return depth.pending + depth.inFlight + depth.dueDelayed + (flow?.runnable ?? 0);
}

/** WorkersReady message of a `provider: keda` Queue on a cluster without KEDA's CRD. */
export const KEDA_MISSING_MESSAGE =
  "autoscaling.provider is keda but the API server does not serve scaledobjects.keda.sh (KEDA is not installed): install KEDA, or set spec.autoscaling.provider to builtin";

/** What the WorkersReady condition is computed from: the worker Deployment as applied. */
export interface WorkersFacts {
  /** `spec.autoscaling.provider`. */
  provider: "builtin" | "keda";
  /** KEDA mode on a cluster without the ScaledObject CRD. */
  kedaMissing: boolean;
  /** `spec.suspend`. */
  suspended: boolean;
  /** The Deployment's `spec.replicas` (what the scale loop or KEDA set). */
  desired: number;
  /** The Deployment's `status.readyReplicas`. */
  ready: number;
  /** Why worker Pods do not run, from their container states ({@link workerPodProblem}). */
  problem?: WorkerPodProblem;
}

/** Why worker Pods do not run: a reason (WorkersCrashLooping, WorkersCannotStart) and what the Pod status says. */
export interface WorkerPodProblem {
  reason: string;
  message: string;
  /** The container's last termination message line (the error), when there is one. */
  lastError?: string;
}

/** The container-status fields {@link workerPodProblem} reads (wire form of `V1ContainerStatus`). */
interface ContainerStatusFacts {
  name?: string;
  restartCount?: number;
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { exitCode?: number; message?: string } };
  lastState?: { terminated?: { exitCode?: number; reason?: string; message?: string } };
}

/** Waiting reasons of a container that cannot be created or started (not a crash). */
const CANNOT_START = new Set(["CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ImageNotRunnable", "RunContainerError"]);

/**
 * The last line of a termination message that says what went wrong: the last non-empty line that
 * is not a stack frame. Pure.
 */
export function lastErrorLine(message: string | undefined): string | undefined {
  const lines = (message ?? "").split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() !== "" && !/^\s+at\s/.test(l));
  return lines.at(-1)?.trim();
}

/**
 * Why a Queue's worker Pods do not run, from their status as the kubelet reports it: a container
 * in CrashLoopBackOff (or restarted after a failed exit) → WorkersCrashLooping with its restart
 * count, exit code and last error line (`lastState.terminated.message`); a container waiting with
 * a creation error → WorkersCannotStart with the kubelet's message. The first such Pod by name. Pure.
 * @param pods the Queue's worker Pods (wire form)
 * @returns undefined when no Pod shows a problem
 */
export function workerPodProblem(pods: readonly { metadata?: { name?: string; deletionTimestamp?: unknown }; status?: { containerStatuses?: unknown } }[]): WorkerPodProblem | undefined {
  const sorted = [...pods].filter((p) => !p.metadata?.deletionTimestamp).sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
  let cannotStart: WorkerPodProblem | undefined;
  for (const p of sorted) {
    for (const c of (p.status?.containerStatuses ?? []) as ContainerStatusFacts[]) {
      const waiting = c.state?.waiting;
      const last = c.lastState?.terminated ?? c.state?.terminated;
      const crashed = waiting?.reason === "CrashLoopBackOff" || ((c.restartCount ?? 0) > 0 && last !== undefined && last.exitCode !== 0 && waiting !== undefined);
      if (crashed) {
        const lastError = lastErrorLine(last?.message);
        const exit = last?.exitCode !== undefined ? `, last exit code ${last.exitCode}` : "";
        return {
          reason: REASONS.WorkersCrashLooping,
          message: `pod ${p.metadata?.name}: container ${c.name} is crash-looping (${c.restartCount ?? 0} restarts${exit})${lastError ? `: ${lastError}` : ""}`,
          ...(lastError ? { lastError } : {}),
        };
      }
      if (!cannotStart && waiting?.reason && CANNOT_START.has(waiting.reason)) {
        cannotStart = { reason: REASONS.WorkersCannotStart, message: `pod ${p.metadata?.name}: container ${c.name} cannot start (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ""}` };
      }
    }
  }
  return cannotStart;
}

/**
 * The WorkersReady condition: KedaNotInstalled, Suspended, ScaledToZero, WorkersAvailable
 * (`N of M workers ready`) or WorkersUnavailable, in that order of precedence.
 */
export function workersCondition(f: WorkersFacts): StepCondition {
  const type = CONDITION_TYPES.Queue.WorkersReady;
  if (f.kedaMissing) return { type, status: "False", reason: REASONS.KedaNotInstalled, message: KEDA_MISSING_MESSAGE };
  if (f.suspended) return { type, status: "True", reason: REASONS.Suspended, message: "the queue is suspended: no workers run and tasks wait in the stream" };
  if (f.desired === 0) {
    return {
      type, status: "True", reason: REASONS.ScaledToZero,
      message: f.provider === "keda" ? "KEDA scales the workers; none run now" : "no backlog: workers are scaled to zero and start when tasks arrive",
    };
  }
  const why = f.problem ? `; ${f.problem.message}` : "";
  if (f.ready > 0) return { type, status: "True", reason: REASONS.WorkersAvailable, message: `${f.ready} of ${f.desired} workers ready${why}` };
  return { type, status: "False", reason: f.problem?.reason ?? REASONS.WorkersUnavailable, message: `0 of ${f.desired} workers ready${why}` };
}

/** Input of {@link queueStatus}. */
export interface QueueStatusInput {
  /** The status as read (conditions keep their transition times). */
  current: QueueStatus | undefined;
  /** `metadata.generation` reconciled. */
  generation: number | undefined;
  /** The current time. */
  now: Date;
  /** `status.streamName`. */
  streamName: string;
  /** The StreamReady condition from the ensure-streams step. */
  stream: StepCondition;
  /** The WorkersReady condition from the ensure-workers step. */
  workers: StepCondition;
  /** `spec.suspend` (the Ready message says so). */
  suspended: boolean;
  /** The worker Deployment's `status.replicas` and `status.readyReplicas`. */
  replicas: number;
  readyReplicas: number;
  /** Set when this reconcile created the Deployment (its first size counts as a scale). */
  lastScaleTime?: string;
}

/**
 * The reconcile's part of a Queue's status: StreamReady and WorkersReady as the steps report them,
 * Ready = both true, observedGeneration, streamName and the Deployment's pod counts.
 * `lastTransitionTime` changes only on a flip, so the same input gives the same output.
 */
export function queueStatus(input: QueueStatusInput): QueueStatus {
  const gen = input.generation;
  let conditions = (input.current?.conditions ?? []) as Condition[];
  const set = (c: StepCondition) => {
    conditions = setCondition(conditions, { ...c, ...(gen !== undefined ? { observedGeneration: gen } : {}) }, input.now);
  };
  set(input.stream);
  set(input.workers);
  const streamReady = input.stream.status === "True";
  const workersReady = input.workers.status === "True";
  if (streamReady && workersReady) {
    set({ type: CONDITION_TYPES.Queue.Ready, status: "True", reason: REASONS.Reconciled, message: input.suspended ? "the queue is suspended" : "the queue accepts and runs tasks" });
  } else {
    set({ type: CONDITION_TYPES.Queue.Ready, status: "False", reason: streamReady ? REASONS.WorkersUnavailable : REASONS.StreamError, message: "waiting for the stream and workers" });
  }
  return {
    conditions,
    ...(gen !== undefined ? { observedGeneration: gen } : {}),
    streamName: input.streamName,
    replicas: input.replicas,
    readyReplicas: input.readyReplicas,
    ...(input.lastScaleTime !== undefined ? { lastScaleTime: input.lastScaleTime } : {}),
  };
}

/**
 * The status of a Queue whose spec cannot be reconciled: Ready False with reason InvalidSpec and
 * `message`; the other conditions are kept as they were.
 */
export function invalidSpecStatus(current: QueueStatus | undefined, generation: number | undefined, message: string, now: Date, workers?: StepCondition): QueueStatus {
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  let conditions = current?.conditions as Condition[] | undefined;
  if (workers) conditions = setCondition(conditions, { ...workers, ...gen }, now);
  conditions = setCondition(conditions, { type: CONDITION_TYPES.Queue.Ready, status: "False", reason: REASONS.InvalidSpec, message, ...gen }, now);
  return { conditions, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
}

/**
 * The fields of `desired` whose values differ from `current` (deep equality, key order ignored),
 * as a merge patch; fields `desired` leaves out are left alone (never nulled).
 * @returns the patch, or undefined when nothing changed
 */
export function statusChanges(current: QueueStatus | undefined, desired: QueueStatus): Partial<QueueStatus> | undefined {
  const patch: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(desired)) {
    if (v === undefined) continue;
    if (!deepEqual(v, (current as Record<string, unknown> | undefined)?.[k])) patch[k] = v;
  }
  return Object.keys(patch).length > 0 ? (patch as Partial<QueueStatus>) : undefined;
}

/** RFC 3339 in whole seconds, as Kubernetes writes times. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => deepEqual(ao[k], bo[k]));
}
