/**
 * Shared parts of the fault suite's CR-path scenarios (`operator-kill`, `nats-outage-cr`,
 * `watch-expired`): the local platform (in-memory API server, nats-server, operator processes,
 * process kubelet) with a Queue running the fault tasks module, Task objects created at a bounded
 * rate, the faults those scenarios inject (operator SIGKILL, worker pod force-delete, watch-history
 * compaction), and the outcome: each Task's phase against its executions (per-execution log) and its
 * record (results bucket). The in-process kubelet logs to `kubelet.log` in the scenario dir.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { isTerminalPhase } from "../../api/constants.js";
import { queueNames } from "../../api/naming.js";
import { CELERIAC_TYPES } from "../../api/objects.js";
import { COMPACT_PATH } from "../../devcluster/server/http.js";
import { startPlatform, type Platform } from "../../devcluster/platform/platform.js";
import { BUILTIN_TYPES, createObject, getObject, kubeRequest, listObjects, resourcePath, type KubeObject } from "../../kube/k8s-client.js";
import { loadKubeConfig } from "../../kube/kubeconfig.js";
import type { FaultRow } from "./report.js";
import { EXEC_LOG_ENV, FAULT_TASKS_MODULE, FaultLog, analyseExecutions, pollUntil, readExecLog, readResults, scenarioDir, type ExecutionAnalysis, type ExplainSlack } from "./harness.js";

/** The namespace every CR-path scenario uses. */
export const NS = "default";

/** Operator flags for fast leader hand-over after a SIGKILL: 3 s lease, 2 s renew deadline, 0.5 s retry. */
export const FAST_LEASE_ARGS: readonly string[] = ["--lease-duration-seconds", "3", "--renew-deadline-seconds", "2", "--retry-period-seconds", "0.5"];

/** A running CR-path scenario environment. */
export interface CrEnv {
  platform: Platform;
  kc: KubeConfig;
  dir: string;
  /** The per-execution log the workers append to. */
  execLog: string;
  faults: FaultLog;
  /** Stops the platform and removes the temp dir (kept when `CELERIAC_FAULTS_KEEP=1`, to debug a run). Memoised. */
  stop(): Promise<void>;
}

/**
 * Starts the local platform in a fresh temp dir (restart back-offs of 200 ms, the operator with
 * {@link FAST_LEASE_ARGS}).
 * @param name scenario name, for the temp dir
 * @throws Error when the platform cannot start (everything it started is stopped again)
 */
export async function startCrEnv(name: string): Promise<CrEnv> {
  const dir = scenarioDir(name);
  let platform: Platform;
  try {
    // the kubelet's JSON log lines go to a file in the scenario dir, not before the results table
    platform = await startPlatform({
      dir, restartBackoffBaseMs: 200, processRestartBackoffBaseMs: 200, operatorArgs: [...FAST_LEASE_ARGS],
      kubeletLog: pino({ name: "dev-kubelet" }, pino.destination({ dest: join(dir, "kubelet.log"), mkdir: true, sync: true })),
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const kc = loadKubeConfig({ kubeconfig: platform.kubeconfigPath, env: {} });
  let stopping: Promise<void> | undefined;
  return {
    platform,
    kc,
    dir,
    execLog: join(dir, "executions.log"),
    faults: new FaultLog(),
    stop: () =>
      (stopping ??= (async () => {
        await platform.stop();
        if (process.env.CELERIAC_FAULTS_KEEP !== "1") rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/** Settings of the scenarios' Queue. */
export interface FaultQueueSpec {
  /** Worker replicas (min = max). Default 2. */
  replicas?: number;
  /** Handlers in flight per worker. Default 4. */
  concurrency?: number;
  /** JetStream ack wait, s. Default 3 (a killed worker's tasks are redelivered after it). */
  ackWaitSeconds?: number;
  /** The stream's duplicate window (Go duration), e.g. `3s`. Default: the CRD's. */
  duplicateWindow?: string;
}

/**
 * The Queue object: workers run `celeriac worker` on the fault tasks module and append to `execLog`;
 * fixed replicas; retries after 0.2 s. Pure.
 */
export function faultQueue(name: string, execLog: string, s: FaultQueueSpec = {}): KubeObject {
  const replicas = s.replicas ?? 2;
  return {
    apiVersion: "celeriac.io/v1alpha1",
    kind: "Queue",
    metadata: { namespace: NS, name },
    spec: {
      worker: {
        image: "celeriac-faults:dev",
        command: ["celeriac", "worker"],
        env: [
          { name: "CELERIAC_TASKS", value: FAULT_TASKS_MODULE },
          { name: EXEC_LOG_ENV, value: execLog },
        ],
      },
      concurrency: s.concurrency ?? 4,
      ackWaitSeconds: s.ackWaitSeconds ?? 3,
      retry: { backoff: { initialSeconds: 0.2, factor: 1 } },
      autoscaling: { minReplicas: replicas, maxReplicas: replicas },
      ...(s.duplicateWindow ? { stream: { duplicateWindow: s.duplicateWindow } } : {}),
    },
  };
}

/**
 * Creates the Queue and waits until it is Ready with `replicas` worker pods running.
 * @throws Error when it is not ready by `deadline` (ms since the epoch)
 */
export async function applyQueueAndWait(env: CrEnv, queue: KubeObject, replicas: number, deadline: number): Promise<void> {
  await createObject(env.kc, CELERIAC_TYPES.Queue, queue, "celeriac-faults");
  const name = queue.metadata!.name!;
  await pollUntil(`Queue ${name} Ready`, deadline, async () => {
    const q = await getObject<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(env.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });
    return q.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
  }, 200);
  await pollUntil(`${replicas} worker pods of ${name} running`, deadline, async () => (await workerPods(env.kc, name)).length >= replicas, 200);
}

/** A running worker pod and the pid of its worker process. */
export interface WorkerPod {
  name: string;
  pid: number;
}

/** The queue's running worker pods (containerID `local://<pid>` from the process kubelet), terminating ones left out. */
export async function workerPods(kc: KubeConfig, queue: string): Promise<WorkerPod[]> {
  type Pod = KubeObject & { metadata: { deletionTimestamp?: string }; status?: { phase?: string; containerStatuses?: Array<{ containerID?: string; state?: { running?: unknown } }> } };
  const pods = await listObjects<Pod>(kc, BUILTIN_TYPES.Pod, { namespace: NS, labelSelector: `celeriac.io/queue=${queue}` });
  const out: WorkerPod[] = [];
  for (const p of pods.items) {
    if (p.metadata.deletionTimestamp || p.status?.phase !== "Running") continue;
    const c = p.status.containerStatuses?.[0];
    const pid = Number(/^local:\/\/(\d+)$/.exec(c?.containerID ?? "")?.[1]);
    if (c?.state?.running && pid > 0) out.push({ name: p.metadata.name!, pid });
  }
  return out;
}

/**
 * The worker pods with handlers running now (a `start` without an `end` in the per-execution log),
 * busiest first: the victims a fault hits in flight.
 * @param min fewest handlers in flight a pod must have to be listed (default 1)
 */
export async function busyWorkerPods(env: CrEnv, queue: string, min = 1): Promise<WorkerPod[]> {
  const open = new Map<number, number>();
  const running = new Map<string, number>();
  for (const e of readExecLog(env.execLog)) {
    const key = `${e.id}\u0000${e.pid}`;
    if (e.event === "start") running.set(key, e.pid);
    else running.delete(key);
  }
  for (const pid of running.values()) open.set(pid, (open.get(pid) ?? 0) + 1);
  return (await workerPods(env.kc, queue)).filter((p) => (open.get(p.pid) ?? 0) >= min).sort((a, b) => (open.get(b.pid) ?? 0) - (open.get(a.pid) ?? 0));
}

/**
 * Force-deletes a worker pod (`--grace-period=0 --force`: the kubelet SIGKILLs its process at once),
 * waits until the process is gone, and records its death in `env.faults` at that time (a handler can
 * still start between the delete call and the SIGKILL arriving).
 * @throws Error when the process is still alive 10 s after the delete
 */
export async function forceDeletePod(env: CrEnv, pod: WorkerPod): Promise<void> {
  await kubeRequest(env.kc, {
    method: "DELETE",
    path: resourcePath(BUILTIN_TYPES.Pod, NS, pod.name),
    query: { gracePeriodSeconds: 0 },
    body: { kind: "DeleteOptions", apiVersion: "v1", gracePeriodSeconds: 0 },
  });
  const alive = (): boolean => {
    try {
      process.kill(pod.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await pollUntil(`worker process ${pod.pid} of ${pod.name} gone`, Date.now() + 10_000, () => !alive(), 10);
  env.faults.processDied(pod.pid, "worker pod", "force delete (grace 0)");
}

/**
 * SIGKILLs operator 0 (the platform's supervisor restarts it), records it in `env.faults`, and waits
 * until the new process answers /readyz.
 * @throws Error when it is not ready again by `deadline` (ms since the epoch)
 */
export async function killOperator(env: CrEnv, deadline: number): Promise<void> {
  const old = env.platform.operators[0];
  const pid = old?.pid;
  if (!old || pid === undefined) throw new Error("operator 0 is not running");
  env.faults.processDied(pid, "operator", "SIGKILL");
  process.kill(pid, "SIGKILL");
  await pollUntil("operator restarted", deadline, () => env.platform.operators[0]?.pid !== pid && env.platform.operators[0]?.pid !== undefined, 50);
  await pollUntil("restarted operator ready", deadline, async () => {
    try {
      return (await fetch(`http://127.0.0.1:${env.platform.operatorPorts[0]}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
    } catch {
      return false;
    }
  }, 100);
}

/**
 * Compacts the API server's watch history and ends every open watch with ERROR 410 Expired (the
 * in-memory server's fault hook `POST /debug/celeriac/compact`); records nothing in the fault log
 * (no process or connection to NATS is hit).
 * @returns how many watches it ended
 * @throws Error when the hook does not answer 200
 */
export async function compactWatchHistory(env: CrEnv): Promise<number> {
  const res = await fetch(`${env.platform.apiUrl}${COMPACT_PATH}`, { method: "POST" });
  if (!res.ok) throw new Error(`compact watch history: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { watchesEnded: number }).watchesEnded;
}

/** What `createTasks` did. */
export interface CreatedTasks {
  /** Task name → uid, for each create the API server accepted. */
  readonly uids: Map<string, string>;
  /** Rejected creates by error text (first 120 characters). */
  readonly errors: Map<string, number>;
}

/**
 * Creates `n` Task objects `<prefix>-<i>` running `faults.work` for `workMs`, at most `perSecond` a
 * second, calling `during(i)` before create `i` (to inject faults at chosen points). Bounded: stops
 * creating at `deadline` (ms since the epoch).
 */
export async function createTasks(env: CrEnv, o: { queue: string; prefix: string; n: number; workMs: number; perSecond: number; deadline: number; during?: (i: number) => Promise<void> }): Promise<CreatedTasks> {
  const uids = new Map<string, string>();
  const errors = new Map<string, number>();
  const t0 = Date.now();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < o.n && Date.now() < o.deadline; i++) {
    await o.during?.(i);
    const due = t0 + (i * 1000) / o.perSecond;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const name = `${o.prefix}-${i}`;
    const p = createObject<KubeObject>(env.kc, CELERIAC_TYPES.Task, { apiVersion: "celeriac.io/v1alpha1", kind: "Task", metadata: { namespace: NS, name }, spec: { queue: o.queue, task: "faults.work", args: [o.workMs] } }, "celeriac-faults")
      .then((t) => void uids.set(name, t.metadata?.uid ?? ""))
      .catch((err: unknown) => {
        const text = (err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ""}` : String(err)).slice(0, 120);
        errors.set(text, (errors.get(text) ?? 0) + 1);
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= 32) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return { uids, errors };
}

/** A Task's observable state. */
export interface TaskState {
  uid: string;
  phase: string | undefined;
  /** `reason` of the Accepted condition, when it is False. */
  notAccepted?: string;
}

/** Every Task of the namespace, by name. */
export async function taskStates(kc: KubeConfig): Promise<Map<string, TaskState>> {
  type T = KubeObject & { status?: { phase?: string; conditions?: Array<{ type: string; status: string; reason?: string }> } };
  const list = await listObjects<T>(kc, CELERIAC_TYPES.Task, { namespace: NS });
  const out = new Map<string, TaskState>();
  for (const t of list.items) {
    const a = t.status?.conditions?.find((c) => c.type === "Accepted" && c.status === "False");
    out.set(t.metadata!.name!, { uid: t.metadata?.uid ?? "", phase: t.status?.phase, ...(a?.reason ? { notAccepted: a.reason } : {}) });
  }
  return out;
}

/**
 * Polls until every Task in `names` has a terminal phase, or `deadline` (ms since the epoch) passes.
 * @returns the last states read (some may still be non-terminal at the deadline)
 */
export async function waitTerminal(kc: KubeConfig, names: Iterable<string>, deadline: number): Promise<Map<string, TaskState>> {
  const want = [...names];
  for (;;) {
    const s = await taskStates(kc);
    if (want.every((n) => isTerminalPhase(s.get(n)?.phase)) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The outcome of a CR-path run, per Task. */
export interface CrOutcome {
  /** Names of Tasks not terminal on the Task object, or without a terminal results record. */
  readonly lost: string[];
  /** Names of terminal Tasks whose phase does not match their executions or results record (e.g. Succeeded, never ran to the end). */
  readonly mismatched: string[];
  /** Task phases, counted. */
  readonly phases: Record<string, number>;
  /** Executions that never logged their end on a process recorded as killed (what the faults cut off in flight). */
  readonly cutOff: number;
  readonly analysis: ExecutionAnalysis;
}

/**
 * Compares each created Task's phase with its executions (per-execution log) and its record
 * (results bucket, read over a fresh NATS connection).
 * @param states `waitTerminal`'s result
 * @param slack how far around a fault a duplicate counts as explained (`analyseExecutions`)
 * @throws Error when NATS cannot be reached to read the results bucket
 */
export async function crOutcome(env: CrEnv, queue: string, created: CreatedTasks, states: Map<string, TaskState>, slack: ExplainSlack = {}): Promise<CrOutcome> {
  const analysis = analyseExecutions(readExecLog(env.execLog), env.faults.list(), slack);
  const nc = await connect({ servers: env.platform.natsUrl, timeout: 5000 });
  let records;
  try {
    records = await readResults(nc, queueNames(NS, queue).resultsBucket, [...created.uids.values()]);
  } finally {
    await nc.close();
  }
  const lost: string[] = [];
  const mismatched: string[] = [];
  const phases: Record<string, number> = {};
  for (const [name, uid] of created.uids) {
    const phase = states.get(name)?.phase;
    phases[phase ?? "none"] = (phases[phase ?? "none"] ?? 0) + 1;
    const rec = records.get(uid)?.status.phase;
    if (!isTerminalPhase(phase) || !isTerminalPhase(rec)) {
      lost.push(name);
      continue;
    }
    const runs = analysis.byId.get(uid) ?? [];
    const completed = runs.some((r) => r.end !== undefined);
    if (rec !== phase || (phase === "Succeeded" && !completed) || (phase !== "Succeeded" && completed)) mismatched.push(name);
  }
  const killed = new Set(env.faults.list().flatMap((f) => (f.kind === "process" ? [f.pid] : [])));
  let cutOff = 0;
  for (const runs of analysis.byId.values()) cutOff += runs.filter((r) => r.end === undefined && killed.has(r.pid)).length;
  return { lost, mismatched, phases, cutOff, analysis };
}

/** `3 create rejected: …; 2 Failed` text for the errors column; `none` when empty. Pure. */
export function describeCrErrors(created: CreatedTasks, phases: Record<string, number>, extra: string[] = []): string {
  const parts = [...created.errors].map(([msg, n]) => `${n} create rejected: ${msg}`);
  for (const [phase, n] of Object.entries(phases)) if (phase !== "Succeeded") parts.push(`${n} Task ${phase}`);
  parts.push(...extra);
  return parts.length ? parts.join("; ") : "none";
}

/**
 * A CR-path scenario's table row from what it measured: lost = Tasks not terminal or whose phase
 * disagrees with their executions/record; duplicates from the execution analysis; errors from
 * {@link describeCrErrors}. Pure.
 * @param t0 the scenario's start, in ms since the epoch (for `seconds`)
 */
export function crFaultRow(o: { scenario: string; faults: string; created: CreatedTasks; out: CrOutcome; t0: number; extraErrors?: string[] }): FaultRow {
  return {
    scenario: o.scenario,
    tasks: o.created.uids.size,
    faults: o.faults,
    lost: o.out.lost.length + o.out.mismatched.length,
    duplicates: o.out.analysis.duplicates,
    duplicatesExplained: o.out.analysis.duplicatesExplained,
    errorsSurfaced: describeCrErrors(o.created, o.out.phases, o.extraErrors),
    seconds: (Date.now() - o.t0) / 1000,
  };
}
