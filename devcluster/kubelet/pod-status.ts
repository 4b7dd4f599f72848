/**
 * Pod status from the local processes' state: phase, conditions and containerStatuses in upstream's
 * shapes. Pure: a snapshot and the previous conditions in, the status object out.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { rfc3339, toMillis } from "./pod-facts.js";

/** One container's state, as the process runner tracks it. Times are epoch ms. */
export type ContainerState =
  | { kind: "waiting"; reason: string; message?: string }
  | { kind: "running"; startedAt: number }
  | { kind: "terminated"; exitCode: number; signal?: string; reason: string; startedAt: number; finishedAt: number; message?: string };

/** A container's observable state. */
export interface ContainerSnapshot {
  name: string;
  image: string;
  state: ContainerState;
  lastTerminated?: Extract<ContainerState, { kind: "terminated" }>;
  restartCount: number;
  ready: boolean;
  /** The OS process id while running (reported as `containerID: local://<pid>`). */
  pid?: number;
  /** True once the container will not be started again (restartPolicy Never/OnFailure). */
  done: boolean;
}

/** A pod's observable state; `startedAt` is when the kubelet accepted it (epoch ms). */
export interface PodSnapshot {
  startedAt: number;
  containers: ContainerSnapshot[];
}

function wireState(s: ContainerState): Record<string, unknown> {
  switch (s.kind) {
    case "waiting":
      return { waiting: { reason: s.reason, ...(s.message ? { message: s.message } : {}) } };
    case "running":
      return { running: { startedAt: rfc3339(s.startedAt) } };
    case "terminated":
      return {
        terminated: {
          exitCode: s.exitCode,
          ...(s.signal ? { signal: signalNumber(s.signal) } : {}),
          reason: s.reason,
          ...(s.message ? { message: s.message } : {}),
          startedAt: rfc3339(s.startedAt),
          finishedAt: rfc3339(s.finishedAt),
        },
      };
  }
}

function signalNumber(name: string): number {
  return ({ SIGTERM: 15, SIGKILL: 9, SIGINT: 2, SIGHUP: 1, SIGABRT: 6, SIGSEGV: 11 } as Record<string, number>)[name] ?? 0;
}

/**
 * Computes `.status` for a local Pod.
 * @param pod the Pod as last seen (its conditions keep their lastTransitionTime while unchanged)
 * @param snap the containers' state
 * @param nowMs now, epoch ms (for condition transitions)
 * @returns the status object in wire form
 */
export function podStatus(pod: V1Pod, snap: PodSnapshot, nowMs: number): Record<string, unknown> {
  const cs = snap.containers;
  const allReady = cs.length > 0 && cs.every((c) => c.ready);
  const everStarted = cs.some((c) => c.state.kind !== "waiting" || c.restartCount > 0 || c.lastTerminated);
  let phase = "Pending";
  if (cs.length > 0 && cs.every((c) => c.done)) {
    phase = cs.every((c) => c.state.kind === "terminated" && c.state.exitCode === 0) ? "Succeeded" : "Failed";
  } else if (everStarted) {
    phase = "Running";
  }
  const notReady = cs.filter((c) => !c.ready).map((c) => c.name);
  const prev = (pod.status?.conditions ?? []) as { type: string; status: string; lastTransitionTime?: Date | string }[];
  const cond = (type: string, ok: boolean, reason?: string, message?: string): Record<string, unknown> => {
    const status = ok ? "True" : "False";
    const old = prev.find((c) => c.type === type);
    const since = old && old.status === status && old.lastTransitionTime ? toMillis(old.lastTransitionTime) : nowMs;
    return {
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: rfc3339(since),
      ...(ok || !reason ? {} : { reason, message }),
    };
  };
  const unready = `containers with unready status: [${notReady.join(" ")}]`;
  const conditions = [
    cond("Initialized", true),
    cond("Ready", allReady, "ContainersNotReady", unready),
    cond("ContainersReady", allReady, "ContainersNotReady", unready),
    cond("PodScheduled", true),
  ];
  return {
    phase,
    conditions,
    hostIP: "127.0.0.1",
    hostIPs: [{ ip: "127.0.0.1" }],
    podIP: "127.0.0.1",
    podIPs: [{ ip: "127.0.0.1" }],
    startTime: rfc3339(snap.startedAt),
    containerStatuses: cs.map((c) => ({
      name: c.name,
      state: wireState(c.state),
      lastState: c.lastTerminated ? wireState(c.lastTerminated) : {},
      ready: c.ready,
      restartCount: c.restartCount,
      image: c.image,
      imageID: "",
      ...(c.pid !== undefined && c.state.kind === "running" ? { containerID: `local://${c.pid}` } : {}),
      started: c.state.kind === "running",
    })),
  };
}
