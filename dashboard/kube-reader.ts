/**
 * What the dashboard reads from the Kubernetes API (docs/dashboard.md): the namespace's Queue
 * resources (workers ready/desired, `spec.suspend`, `status.paused`, conditions), its worker pods
 * (labelled `app.kubernetes.io/component=worker`, `managed-by=celeriac-operator` and
 * `celeriac.io/queue` by operator/queue/labels.ts) and the Events about its Queues (the
 * autoscaler's `Scaled` decisions among them), newest first.
 *
 * One reader per dashboard lists the three every `intervalMs` (default 5 s, one read at a time, each
 * list bounded by a timeout), never per page request, and keeps the last good answer of each; an
 * API that is absent or unreachable is reported in the snapshot (`configured`, `error`) so the pages
 * say so while the NATS pages keep working. The `*View` functions are pure mappings.
 */
import type { Logger } from "pino";
import { LABELS, MANAGED_BY, RESOURCES } from "../api/constants.js";
import { CELERIAC_TYPES, type Queue } from "../api/objects.js";
import { BUILTIN_TYPES, listObjects, type KubeClient, type KubeObject } from "../kube/k8s-client.js";
import { WORKER_COMPONENT } from "../operator/queue/labels.js";

/** Most Events a snapshot keeps (the newest). */
export const MAX_EVENTS = 500;
/** Label selector of the worker pods the operator runs (operator/queue/labels.ts `workerLabels`). */
export const WORKER_POD_SELECTOR = `${LABELS.component}=${WORKER_COMPONENT},${LABELS.managedBy}=${MANAGED_BY},${LABELS.queue}`;

/** A condition as the page shows it. */
export interface ConditionView {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** One Queue resource, as `/api/kube/queues` answers it. */
export interface KubeQueueView {
  /** The Queue's name (= the NATS queue name). */
  name: string;
  /** The `Ready` condition's status (`True`, `False`, `Unknown`), absent before the first reconcile. */
  ready?: string;
  /** Worker pods ready (`status.readyReplicas`, 0 when absent). */
  workersReady: number;
  /** Worker pods the autoscaler wants (`status.desiredReplicas`), absent before the first decision. */
  workersDesired?: number;
  /** Worker pods running (`status.replicas`). */
  replicas?: number;
  /** `spec.suspend`: workers scaled to zero, tasks wait. */
  suspended: boolean;
  /** `status.paused` (`celeriac queue pause`): workers pull nothing. */
  paused?: { at: string; by?: string; reason?: string };
  /** `status.backlog`, the autoscaler's figure (waiting plus in flight). */
  backlog?: number;
  /** `status.lastScaleTime`. */
  lastScaleTime?: string;
  /** `spec.autoscaling.provider` when set (`builtin`, `keda`). */
  autoscaler?: string;
  conditions: ConditionView[];
  createdAt?: string;
}

/** One worker pod, as `/api/kube/pods` answers it. */
export interface WorkerPodView {
  name: string;
  /** Its Queue (`celeriac.io/queue` label). */
  queue: string;
  /** `status.phase` (Pending, Running, Succeeded, Failed, Unknown). */
  phase: string;
  /** Why it is not running well, when a container says so (e.g. `CrashLoopBackOff`, `ImagePullBackOff`), or the pod's `status.reason`. */
  reason?: string;
  /** Containers ready / containers, as kubectl's READY column (`1/1`). */
  ready: string;
  /** True when the pod's `Ready` condition is True. */
  isReady: boolean;
  /** Container restarts, summed. */
  restarts: number;
  /** `spec.nodeName`, once scheduled. */
  node?: string;
  /** `metadata.creationTimestamp`. */
  createdAt?: string;
  /** Seconds since creation at the time of the snapshot. */
  ageSeconds?: number;
  /** Being deleted (`metadata.deletionTimestamp` set). */
  terminating: boolean;
}

/** One Event about a Queue, as `/api/kube/events` answers it. */
export interface QueueEventView {
  /** When it last happened: `lastTimestamp`, else `eventTime`, `firstTimestamp`, creation. */
  time?: string;
  /** `Normal` or `Warning`. */
  type: string;
  /** E.g. `Scaled` (the autoscaler's decisions), `StreamCreated`, `WorkersCrashLooping`. */
  reason: string;
  message: string;
  /** The Queue it is about (`involvedObject.name`). */
  queue: string;
  /** Times it happened (repeats within 10 minutes are folded into one Event). */
  count: number;
  /** `source.component` / `reportingComponent`. */
  source?: string;
}

/** What a reader knows: the last read of each resource. */
export interface KubeSnapshot {
  /** False when the dashboard was started without a Kubernetes API. */
  configured: boolean;
  /** The namespace read. */
  namespace: string;
  /** When the last read finished (absent before the first). */
  at?: string;
  /** The last read's failures, per resource (`queues`, `pods`, `events`); the items are then the last good ones. */
  errors: Partial<Record<"queues" | "pods" | "events", string>>;
  queues: KubeQueueView[];
  pods: WorkerPodView[];
  /** Newest first, at most {@link MAX_EVENTS}. */
  events: QueueEventView[];
}

type Cond = { type?: string; status?: string; reason?: string; message?: string; lastTransitionTime?: string };

/** Maps a Queue resource to its view. Pure. */
export function queueView(q: Queue | KubeObject): KubeQueueView {
  const o = q as { metadata?: { name?: string; creationTimestamp?: string }; spec?: { suspend?: boolean; autoscaling?: { provider?: string } }; status?: Queue["status"] };
  const st = o.status ?? {};
  const conditions: ConditionView[] = ((st.conditions ?? []) as Cond[]).map((c) => ({
    type: c.type ?? "",
    status: c.status ?? "Unknown",
    ...(c.reason ? { reason: c.reason } : {}),
    ...(c.message ? { message: c.message } : {}),
    ...(c.lastTransitionTime ? { lastTransitionTime: c.lastTransitionTime } : {}),
  }));
  const ready = conditions.find((c) => c.type === "Ready")?.status;
  return {
    name: o.metadata?.name ?? "",
    ...(ready ? { ready } : {}),
    workersReady: st.readyReplicas ?? 0,
    ...(st.desiredReplicas !== undefined ? { workersDesired: st.desiredReplicas } : {}),
    ...(st.replicas !== undefined ? { replicas: st.replicas } : {}),
    suspended: o.spec?.suspend === true,
    ...(st.paused ? { paused: { at: st.paused.at, ...(st.paused.by ? { by: st.paused.by } : {}), ...(st.paused.reason ? { reason: st.paused.reason } : {}) } } : {}),
    ...(st.backlog !== undefined ? { backlog: st.backlog } : {}),
    ...(st.lastScaleTime ? { lastScaleTime: st.lastScaleTime } : {}),
    ...(o.spec?.autoscaling?.provider ? { autoscaler: o.spec.autoscaling.provider } : {}),
    conditions,
    ...(o.metadata?.creationTimestamp ? { createdAt: o.metadata.creationTimestamp } : {}),
  };
}

type ContainerStatus = { ready?: boolean; restartCount?: number; state?: { waiting?: { reason?: string }; terminated?: { reason?: string; exitCode?: number } } };
type PodLike = {
  metadata?: { name?: string; labels?: Record<string, string>; creationTimestamp?: string; deletionTimestamp?: string };
  spec?: { nodeName?: string; containers?: unknown[] };
  status?: { phase?: string; reason?: string; conditions?: Cond[]; containerStatuses?: ContainerStatus[]; initContainerStatuses?: ContainerStatus[] };
};

/**
 * Maps a worker Pod to its view. Pure.
 * @param now the snapshot's time, ms since the epoch (for `ageSeconds`)
 */
export function podView(pod: KubeObject, now: number): WorkerPodView {
  const p = pod as PodLike;
  const cs = p.status?.containerStatuses ?? [];
  const containers = Math.max(cs.length, p.spec?.containers?.length ?? 0);
  const readyN = cs.filter((c) => c.ready === true).length;
  const restarts = [...cs, ...(p.status?.initContainerStatuses ?? [])].reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const waiting = cs.map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason).find((r) => r !== undefined && r !== "Completed");
  const reason = waiting ?? p.status?.reason;
  const created = p.metadata?.creationTimestamp;
  const createdMs = created ? Date.parse(created) : NaN;
  return {
    name: p.metadata?.name ?? "",
    queue: p.metadata?.labels?.[LABELS.queue] ?? "",
    phase: p.status?.phase ?? "Unknown",
    ...(reason ? { reason } : {}),
    ready: `${readyN}/${containers}`,
    isReady: (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
    restarts,
    ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
    ...(created ? { createdAt: created } : {}),
    ...(Number.isFinite(createdMs) ? { ageSeconds: Math.max(0, Math.floor((now - createdMs) / 1000)) } : {}),
    terminating: p.metadata?.deletionTimestamp !== undefined,
  };
}

/** Maps a core/v1 Event to its view. Pure. */
export function eventView(ev: KubeObject): QueueEventView {
  const e = ev as {
    metadata?: { creationTimestamp?: string };
    involvedObject?: { name?: string };
    type?: string;
    reason?: string;
    message?: string;
    count?: number;
    lastTimestamp?: string | null;
    eventTime?: string | null;
    firstTimestamp?: string | null;
    series?: { count?: number; lastObservedTime?: string };
    source?: { component?: string };
    reportingComponent?: string;
  };
  const time = e.series?.lastObservedTime || e.lastTimestamp || e.eventTime || e.firstTimestamp || e.metadata?.creationTimestamp || undefined;
  const source = e.reportingComponent || e.source?.component;
  return {
    ...(time ? { time } : {}),
    type: e.type ?? "Normal",
    reason: e.reason ?? "",
    message: e.message ?? "",
    queue: e.involvedObject?.name ?? "",
    count: e.series?.count ?? e.count ?? 1,
    ...(source ? { source } : {}),
  };
}

/** Events newest first (by `time`; ties keep their order), at most `max`. Pure. */
export function newestFirst(events: QueueEventView[], max = MAX_EVENTS): QueueEventView[] {
  const t = (e: QueueEventView) => (e.time ? Date.parse(e.time) : 0) || 0;
  return events.map((e, i) => ({ e, i })).sort((a, b) => t(b.e) - t(a.e) || a.i - b.i).slice(0, max).map((x) => x.e);
}

/** Options of {@link startKubeReader}. */
export interface KubeReaderOptions {
  /** The Kubernetes API; absent: the snapshot says `configured: false` and nothing is read. */
  kube?: KubeClient;
  namespace: string;
  /** Time between the end of one read and the start of the next, ms (default 5000). */
  intervalMs?: number;
  /** Most time one list may take, ms (default 4000); then it counts as failed. */
  timeoutMs?: number;
  logger?: Logger;
}

/** A running reader. */
export interface KubeReader {
  /** The last snapshot (never waits). */
  snapshot(): KubeSnapshot;
  /** Resolves after the next read completes (for tests; immediately when not configured). */
  next(): Promise<KubeSnapshot>;
  /** Stops reading (idempotent). */
  close(): void;
}

/** The message of an error and its causes: "list queues ns: connect ECONNREFUSED …". */
function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) {
    const m = (e as Error).message ?? String(e);
    if (m && !parts.includes(m)) parts.push(m);
  }
  return parts.join(": ") || "unknown error";
}

/**
 * Starts reading Queues, worker pods and Queue Events of `namespace` every `intervalMs` (the first
 * read starts at once). Never throws: a failed list is recorded in `errors` and logged at warn once
 * per change of message.
 */
export function startKubeReader(o: KubeReaderOptions): KubeReader {
  const snap: KubeSnapshot = { configured: o.kube !== undefined, namespace: o.namespace, errors: {}, queues: [], pods: [], events: [] };
  const kube = o.kube;
  if (!kube) {
    return { snapshot: () => snap, next: () => Promise.resolve(snap), close: () => undefined };
  }
  const intervalMs = o.intervalMs ?? 5000;
  const timeoutMs = o.timeoutMs ?? 4000;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const waiters: Array<(s: KubeSnapshot) => void> = [];
  const lastLogged: Record<string, string | undefined> = {};

  const read = async () => {
    const signal = AbortSignal.timeout(timeoutMs);
    const ns = o.namespace;
    const [queues, pods, events] = await Promise.allSettled([
      listObjects(kube, CELERIAC_TYPES.Queue, { namespace: ns, signal }),
      listObjects(kube, BUILTIN_TYPES.Pod, { namespace: ns, labelSelector: WORKER_POD_SELECTOR, signal }),
      listObjects(kube, BUILTIN_TYPES.Event, { namespace: ns, fieldSelector: `involvedObject.kind=${RESOURCES.Queue.kind}`, signal }),
    ]);
    const now = Date.now();
    const take = <T>(key: "queues" | "pods" | "events", r: PromiseSettledResult<{ items: KubeObject[] }>, map: (items: KubeObject[]) => T[], set: (v: T[]) => void) => {
      if (r.status === "fulfilled") {
        set(map(r.value.items));
        delete snap.errors[key];
        lastLogged[key] = undefined;
      } else {
        const msg = signal.aborted ? `${describe(r.reason)} (no answer within ${timeoutMs} ms)` : describe(r.reason);
        snap.errors[key] = msg;
        if (lastLogged[key] !== msg) o.logger?.warn({ err: r.reason, resource: key }, "Dashboard could not read the Kubernetes API");
        lastLogged[key] = msg;
      }
    };
    take("queues", queues, (items) => items.map(queueView).sort((a, b) => a.name.localeCompare(b.name)), (v) => (snap.queues = v));
    take("pods", pods, (items) => items.map((p) => podView(p, now)).sort((a, b) => a.queue.localeCompare(b.queue) || a.name.localeCompare(b.name)), (v) => (snap.pods = v));
    take("events", events, (items) => newestFirst(items.map(eventView)), (v) => (snap.events = v));
    snap.at = new Date(now).toISOString();
  };
  const loop = async () => {
    try {
      await read();
    } catch (err) {
      o.logger?.error({ err }, "Dashboard Kubernetes read failed");
    }
    for (const w of waiters.splice(0)) w(snap);
    if (!closed) timer = setTimeout(() => void loop(), intervalMs).unref();
  };
  void loop();
  return {
    snapshot: () => snap,
    next: () => (closed ? Promise.resolve(snap) : new Promise((r) => waiters.push(r))),
    close: () => {
      closed = true;
      clearTimeout(timer);
      for (const w of waiters.splice(0)) w(snap);
    },
  };
}
