/**
 * Shared parts of the fault suite's scenarios (`bench/faults/*.scenario.ts`):
 * - the per-execution log (exec-log.ts, re-exported) and the tasks module that writes it (tasks.ts);
 * - `FaultLog`: the faults a scenario injected (or saw), with their times;
 * - `analyseExecutions`: executions and duplicates from the log, and which duplicates a fault
 *   explains (the earlier execution was in flight when a fault hit it);
 * - `readResults` / `countLost`: results from the queue's results bucket;
 * - `startWorkerProcess`: a real `celeriac worker` child process that records its own death as a fault;
 * - `enqueueMany`, `describeErrors`, `withDeadline`: bounded load and its errors.
 *
 * Exports are stable: the CR-path scenarios import them too.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { TaskRecord } from "../../api/message.js";
import { isTerminalPhase } from "../../api/constants.js";
import type { CeleriacClient, EnqueueOptions, TaskHandle } from "../../client/index.js";
import { EXEC_LOG_ENV, type ExecEvent } from "./exec-log.js";

export { EXEC_LOG_ENV, noteExecution, readExecLog, type ExecEvent } from "./exec-log.js";

/** Repository root (where `bin/celeriac.js` is), from `dist/bench/faults/`. */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The compiled fault tasks module (`faults.work`, `faults.poison`), for `--tasks` / `CELERIAC_TASKS`. */
export const FAULT_TASKS_MODULE = fileURLToPath(new URL("./tasks.js", import.meta.url));

/**
 * A fault the scenario injected or observed. Times in ms since the epoch.
 * - `process`: process `pid` died at `t` (SIGKILLed by the scenario, or killed itself, e.g. a poison
 *   task); `what` says which (`worker`, `operator`, `kubelet pod`…).
 * - `outage`: a server (`what`: `nats`, `apiserver`…) was unavailable from `from` to `to`
 *   (`to` = when it listened again).
 */
export type Fault =
  | { readonly kind: "process"; readonly pid: number; readonly t: number; readonly what: string; readonly how?: string }
  | { readonly kind: "outage"; readonly from: number; readonly to: number; readonly what: string; readonly how?: string };

/** The faults of one scenario run, in the order recorded. */
export class FaultLog {
  readonly #faults: Fault[] = [];

  /** Every fault recorded so far. */
  list(): readonly Fault[] {
    return this.#faults;
  }

  /**
   * Records that process `pid` died.
   * @param pid the process id
   * @param what what it was, e.g. `worker`
   * @param how e.g. `SIGKILL`, `self-kill`
   * @param t when, ms since the epoch (default now)
   */
  processDied(pid: number, what: string, how?: string, t = Date.now()): void {
    this.#faults.push({ kind: "process", pid, t, what, ...(how ? { how } : {}) });
  }

  /**
   * Records that `what` is unavailable from now; call the returned function when it is back.
   * @param what e.g. `nats`
   * @param how e.g. `SIGTERM restart`
   * @returns `end()`: records the outage, ending now
   */
  outageBegins(what: string, how?: string): () => void {
    const from = Date.now();
    return () => void this.#faults.push({ kind: "outage", from, to: Date.now(), what, ...(how ? { how } : {}) });
  }

  /** Faults of a kind and `what`, counted: e.g. `count("process", "worker")`. */
  count(kind: Fault["kind"], what?: string): number {
    return this.#faults.filter((f) => f.kind === kind && (what === undefined || f.what === what)).length;
  }
}

/** One handler execution, from a `start` line and (when it returned) its `end` line. Times in ms. */
export interface Execution {
  readonly id: string;
  readonly pid: number;
  readonly start: number;
  /** Undefined when the handler never returned (its process died, or it threw). */
  readonly end: number | undefined;
  readonly attempt: number | undefined;
}

/** What `analyseExecutions` found. */
export interface ExecutionAnalysis {
  /** Executions by task id, in start order. */
  readonly byId: ReadonlyMap<string, readonly Execution[]>;
  /** All executions. */
  readonly executions: number;
  /** Executions beyond the first of each task id. */
  readonly duplicates: number;
  /** Of `duplicates`, those whose previous execution a fault hit in flight. */
  readonly duplicatesExplained: number;
  /** The unexplained duplicates: the execution that repeated, and the previous one. */
  readonly unexplained: readonly { readonly previous: Execution; readonly repeat: Execution }[];
}

/** Slack of `analyseExecutions`, in ms. */
export interface ExplainSlack {
  /**
   * A process death explains an execution on that process that started before it and had not
   * ended, or ended at most this long before it (its record or ack not yet written). Default 2000.
   */
  readonly settleMs?: number;
  /** An outage explains an execution that ended at most this long before it began (its ack not yet persisted by a server that crashed). Default 2000. */
  readonly beforeOutageMs?: number;
  /** …or that started at most this long after the server was back (heartbeats, acks and status writes reconnecting). Default 5000. */
  readonly afterOutageMs?: number;
}

/**
 * True when fault `f` hit execution `e` in flight (see `ExplainSlack`). Pure.
 * @param e the execution
 * @param f the fault
 * @param slack ms, see `ExplainSlack`
 */
export function faultHit(e: Execution, f: Fault, slack: ExplainSlack = {}): boolean {
  if (f.kind === "process") {
    return e.pid === f.pid && e.start <= f.t && (e.end === undefined || e.end >= f.t - (slack.settleMs ?? 2000));
  }
  return e.start <= f.to + (slack.afterOutageMs ?? 5000) && (e.end === undefined || e.end >= f.from - (slack.beforeOutageMs ?? 2000));
}

/**
 * Pairs the log's `start`/`end` lines into executions (an `end` closes the open `start` of the same
 * id on the same pid), counts duplicates per task id, and explains each duplicate by a fault that
 * hit the execution before it (`faultHit`). Pure.
 * @param events the log (`readExecLog`)
 * @param faults the faults recorded (`FaultLog.list()`)
 * @param slack see `ExplainSlack`
 */
export function analyseExecutions(events: readonly ExecEvent[], faults: readonly Fault[], slack: ExplainSlack = {}): ExecutionAnalysis {
  const open = new Map<string, { id: string; pid: number; start: number; end: number | undefined; attempt: number | undefined }[]>();
  const byId = new Map<string, Execution[]>();
  for (const ev of events) {
    const key = `${ev.id}\u0000${ev.pid}`;
    if (ev.event === "start") {
      const x = { id: ev.id, pid: ev.pid, start: ev.t, end: undefined, attempt: ev.attempt };
      open.set(key, [...(open.get(key) ?? []), x]);
      byId.set(ev.id, [...(byId.get(ev.id) ?? []), x]);
    } else {
      const x = open.get(key)?.find((o) => o.end === undefined);
      if (x) x.end = ev.t;
    }
  }
  let executions = 0;
  let duplicates = 0;
  let explained = 0;
  const unexplained: { previous: Execution; repeat: Execution }[] = [];
  for (const list of byId.values()) {
    list.sort((a, b) => a.start - b.start);
    executions += list.length;
    for (let i = 1; i < list.length; i++) {
      duplicates++;
      const previous = list[i - 1]!;
      if (faults.some((f) => faultHit(previous, f, slack))) explained++;
      else unexplained.push({ previous, repeat: list[i]! });
    }
  }
  return { byId, executions, duplicates, duplicatesExplained: explained, unexplained };
}

/**
 * Reads the records of `ids` from a results bucket (64 gets in flight).
 * @param nc a connection
 * @param bucket the results bucket (`queueNames(ns, queue).resultsBucket`)
 * @param ids task ids
 * @returns id → record, for the ids that have one
 * @throws the KV error when the bucket cannot be opened or a get fails
 */
export async function readResults(nc: NatsConnection, bucket: string, ids: readonly string[]): Promise<Map<string, TaskRecord>> {
  const { jetstream } = await import("@nats-io/jetstream");
  const kv = await new Kvm(jetstream(nc)).open(bucket);
  const out = new Map<string, TaskRecord>();
  for (let i = 0; i < ids.length; i += 64) {
    await Promise.all(
      ids.slice(i, i + 64).map(async (id) => {
        const e = await kv.get(id);
        if (e?.operation === "PUT") out.set(id, e.json<TaskRecord>());
      }),
    );
  }
  return out;
}

/**
 * Tasks lost: enqueued (not rejected to the caller) and without a terminal record (Succeeded,
 * Failed — dead-lettered included —, Cancelled, Expired). Pure.
 * @param ids the ids the callers got back from a successful enqueue
 * @param records `readResults` of them
 * @returns the lost ids
 */
export function lostTasks(ids: readonly string[], records: ReadonlyMap<string, TaskRecord>): string[] {
  return ids.filter((id) => !isTerminalPhase(records.get(id)?.status.phase));
}

/** Counts records by phase, e.g. `{Succeeded: 998, Failed: 2}`. Pure. */
export function phaseCounts(records: Iterable<TaskRecord>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[r.status.phase ?? "none"] = (out[r.status.phase ?? "none"] ?? 0) + 1;
  return out;
}

/** A `celeriac worker` child process. */
export interface WorkerProcess {
  /** Its pid. */
  readonly pid: number;
  /** Resolves with the exit code, or the signal name, when it has exited. */
  readonly exited: Promise<number | string>;
  /** True until it has exited. */
  alive(): boolean;
  /** Resolves when it logged "Worker started"; rejects (with its output) if it exits first or after 20 s. */
  started(): Promise<void>;
  /** SIGKILLs it (recorded as a fault when it has exited) and waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERMs it (a graceful stop: not a fault) and waits for the exit (SIGKILL after `graceMs`, default 30000). */
  stop(graceMs?: number): Promise<void>;
  /** The last 64 KiB of its stdout and stderr. */
  output(): string;
}

/** Options of `startWorkerProcess`. Times in seconds, like the worker's flags. */
export interface WorkerProcessOptions {
  /** NATS URL. */
  readonly url: string;
  readonly queue: string;
  /** Default `default`. */
  readonly namespace?: string;
  /** `--concurrency`. Default 4. */
  readonly concurrency?: number;
  /** `--ack-wait-seconds` (used when the worker creates the consumer). Default 2. */
  readonly ackWaitSeconds?: number;
  /** `--grace-period-seconds`. Default 5. */
  readonly graceSeconds?: number;
  /** The per-execution log file (`CELERIAC_FAULTS_LOG`). */
  readonly execLog: string;
  /** Where the process's death is recorded (unless it was stopped with `stop()`). */
  readonly faults: FaultLog;
  /** Tasks module; default `FAULT_TASKS_MODULE`. */
  readonly tasks?: string;
  /** Extra environment. */
  readonly env?: NodeJS.ProcessEnv;
  /** `CELERIAC_LOG_LEVEL`. Default `info` (needed: `started()` waits for the "Worker started" line). */
  readonly logLevel?: string;
}

/**
 * Starts `node bin/celeriac.js worker` for the fault tasks module, with no Kubernetes access
 * (results bucket only). Any exit the caller did not ask for with `stop()` — a SIGKILL from `kill()`,
 * a poison task killing its own process, a crash — is recorded in `faults` as a `process` fault at
 * the time the exit was seen.
 * @param o see `WorkerProcessOptions`
 */
export function startWorkerProcess(o: WorkerProcessOptions): WorkerProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env, [EXEC_LOG_ENV]: o.execLog, CELERIAC_LOG_LEVEL: o.logLevel ?? "info", CELERIAC_KUBE_STATUS: "false" };
  delete env.KUBECONFIG;
  delete env.KUBERNETES_SERVICE_HOST;
  const args = [
    "bin/celeriac.js", "worker",
    "--tasks", o.tasks ?? FAULT_TASKS_MODULE,
    "--queue", o.queue,
    "--namespace", o.namespace ?? "default",
    "--nats", o.url,
    "--port", "0",
    "--concurrency", String(o.concurrency ?? 4),
    "--ack-wait-seconds", String(o.ackWaitSeconds ?? 2),
    "--grace-period-seconds", String(o.graceSeconds ?? 5),
  ];
  const proc: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (d: Buffer) => void (out = (out + d.toString()).slice(-65_536));
  proc.stdout!.on("data", keep);
  proc.stderr!.on("data", keep);
  let stopping = false;
  let killedBy: string | undefined;
  const pid = proc.pid ?? -1;
  const exited = new Promise<number | string>((resolve) =>
    proc.once("exit", (code, sig) => {
      if (!stopping) o.faults.processDied(pid, "worker", killedBy ?? (sig ? `${sig} (self)` : `exit ${code}`));
      resolve(code ?? sig ?? -1);
    }),
  );
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    pid,
    exited,
    alive,
    output: () => out,
    async started() {
      const end = Date.now() + 20_000;
      while (!out.includes('"msg":"Worker started"')) {
        if (!alive()) throw new Error(`worker ${pid} exited before it started:\n${out}`);
        if (Date.now() > end) throw new Error(`worker ${pid} did not start within 20 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async kill() {
      if (!alive()) return;
      killedBy = "SIGKILL";
      proc.kill("SIGKILL");
      await exited;
    },
    async stop(graceMs = 30_000) {
      if (!alive()) return;
      stopping = true;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** What `enqueueMany` returns. */
export interface EnqueueOutcome {
  /** Handles of the enqueues that succeeded, in call order. */
  readonly handles: TaskHandle[];
  /** Rejected enqueues by error class name (`EnqueueError`, …). */
  readonly errors: Map<string, number>;
  /** The first message of each error class, for the report. */
  readonly firstMessages: Map<string, string>;
  /** Each rejected call: its index, error class, and when it was made and rejected (ms since the epoch). */
  readonly rejected: { readonly i: number; readonly name: string; readonly startMs: number; readonly endMs: number }[];
}

/**
 * Enqueues `n` tasks with at most `window` calls in flight, counting rejections instead of throwing.
 * @param client the client
 * @param n how many (bounded by the caller)
 * @param make the `enqueue` arguments of task `i`
 * @param window calls in flight at once (default 200)
 * @param intervalMs pace: at least this long between two calls' starts, in ms (default 0: as fast as the window allows)
 */
export async function enqueueMany(
  client: CeleriacClient,
  n: number,
  make: (i: number) => [task: string, args: unknown[], kwargs: Record<string, unknown>, options: EnqueueOptions],
  window = 200,
  intervalMs = 0,
): Promise<EnqueueOutcome> {
  const t0 = Date.now();
  const handles: (TaskHandle | undefined)[] = new Array<TaskHandle | undefined>(n);
  const errors = new Map<string, number>();
  const firstMessages = new Map<string, string>();
  const rejected: EnqueueOutcome["rejected"] = [];
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < n; i++) {
    const due = t0 + i * intervalMs - Date.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    const [task, args, kwargs, options] = make(i);
    const startMs = Date.now();
    const p: Promise<void> = (client.enqueue as (t: string, a: unknown[], k: Record<string, unknown>, o: EnqueueOptions) => Promise<TaskHandle>)(task, args, kwargs, options)
      .then((h) => void (handles[i] = h))
      .catch((err: unknown) => {
        const name = err instanceof Error ? err.name : "Error";
        errors.set(name, (errors.get(name) ?? 0) + 1);
        if (!firstMessages.has(name)) firstMessages.set(name, err instanceof Error ? err.message : String(err));
        rejected.push({ i, name, startMs, endMs: Date.now() });
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= window) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return { handles: handles.filter((h): h is TaskHandle => h !== undefined), errors, firstMessages, rejected };
}

/** `3 enqueue rejected: EnqueueError` style text for the table's `errors surfaced` column; `none` when empty. Pure. */
export function describeErrors(errors: ReadonlyMap<string, number>, what = "enqueue rejected"): string {
  const parts = [...errors].filter(([, n]) => n > 0).map(([name, n]) => `${n} ${what}: ${name}`);
  return parts.length ? parts.join("; ") : "none";
}

/**
 * Races `p` against a deadline.
 * @throws Error "`what`: over `ms` ms" when the deadline passes first (p is left running)
 */
export async function withDeadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: over ${Math.round(ms)} ms`)), Math.max(0, ms))));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Polls `check` every `intervalMs` until it returns a truthy value or `deadlineMs` (an absolute
 * time, ms since the epoch) passes.
 * @returns the truthy value
 * @throws Error naming `what` at the deadline
 */
export async function pollUntil<T>(what: string, deadlineMs: number, check: () => T | Promise<T>, intervalMs = 100): Promise<NonNullable<T>> {
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A fresh temp directory for one scenario run (`celeriac-faults-<name>-…`). */
export function scenarioDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `celeriac-faults-${name}-`));
}
