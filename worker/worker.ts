/**
 * The worker runtime: pulls task messages from a queue's shared durable consumer, runs registered
 * handlers with bounded concurrency, records each outcome through the status sinks, and only then
 * acks, naks (retry with our backoff) or dead-letters + terms the message.
 *
 * Data flow: consumer (fetch of exactly the free slots) → runner (slot) → executor (timeout, revoke,
 * heartbeat) → handler → `classifyOutcome` → status write → ack.
 */
import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { hostname } from "node:os";
import { pino, type Logger } from "pino";
import { HEADERS, parseTaskMessage, type DeadLetterReason, type TaskMessage, type TaskRecord } from "../api/message.js";
import { DEFAULT_NAMESPACE, queueNames, type QueueNames } from "../api/naming.js";
import { resolveRetryPolicy, type ResolvedRetryPolicy } from "../api/policies.js";
import { DEFAULT_CONCURRENCY } from "../api/defaults.js";
import type { TaskStatus } from "../api/task.js";
import { isTerminalPhase } from "../api/constants.js";
import { ensureQueueResources, queueSettings, type QueueSettings } from "../nats/index.js";
import { collectTasks, type TaskContext, type TaskDefinition } from "./define-task.js";
import { CancelledError, RetryError, TimeoutError, UnknownTaskError, UnrecoverableError, WorkerLostError } from "./errors.js";
import { classifyOutcome, describeError, type Outcome } from "./outcome.js";
import { KvStatusSink, TASK_ID_PATTERN, type StatusSink } from "./status-sink.js";
import { createWorkerMetrics, type TaskOutcomeLabel, type WorkerMetrics } from "./metrics.js";
import { RevocationWatcher } from "./revocations.js";
import { DelayMover } from "../nats/delay-mover.js";

/** Options of a `Worker`. Times in seconds unless the name says ms. */
export interface WorkerOptions {
  /** An open NATS connection; the worker does not close it (the caller drains it after `close()`). */
  nc: NatsConnection;
  /** Task definitions: a tasks module namespace, an array, or a name → definition map. */
  tasks: Record<string, unknown> | readonly unknown[] | ReadonlyMap<string, TaskDefinition>;
  /** Queue name (DNS-1123 label). */
  queue: string;
  /** Kubernetes namespace of the queue. Default `default`. */
  namespace?: string;
  /** Most handlers running at once in this worker. Default 4. */
  concurrency?: number;
  /** Name recorded in `status.worker`. Default `$POD_NAME` or `<host>:<pid>`. */
  workerName?: string;
  /** Settings used to create missing NATS resources (ack wait, results TTL…). */
  settings?: Partial<QueueSettings>;
  /** Create missing streams/consumers/bucket at start. Default true. */
  ensureResources?: boolean;
  /**
   * After a handler's signal is aborted (timeout or revoke), how long to wait for it to settle
   * before the attempt is treated as over and its slot freed, in seconds. Default 5.
   */
  abortGraceSeconds?: number;
  /** On `close()`, how long in-flight handlers may run before they are aborted and naked, in seconds. Default 25. */
  shutdownGraceSeconds?: number;
  /** pino logger; default a new one at level `info`. */
  logger?: Logger;
  /** Metrics to update; default a new set (`worker.metrics`). */
  metrics?: WorkerMetrics;
  /**
   * Status sinks written (in order) for every state change; the message is acked only after all
   * succeed. Default: the results bucket (`KvStatusSink`). Use `extraSinks` to add to it.
   */
  sinks?: StatusSink[];
  /** Sinks written after the default results-bucket sink. */
  extraSinks?: StatusSink[];
  /** Called with the new in-flight count whenever it changes (e.g. to keep pod-deletion-cost equal to it). */
  onInFlightChange?: (inFlight: number) => void;
  /** Pull request expiry, in ms (≥ 1000). Also bounds how long `close()` waits for the last pull. Default 2000. */
  fetchExpiresMs?: number;
  /** A `Running` record is written only for attempts still running after this many ms. Default 1000. */
  runningRecordDelayMs?: number;
  /** How long a failing status write is retried before the message is left for redelivery, in ms. Default 60000. */
  statusWriteTimeoutMs?: number;
  /** Jitter source for backoff (tests). Default Math.random. */
  random?: () => number;
}

type ResolvedWorkerOptions = Required<
  Pick<WorkerOptions, "concurrency" | "abortGraceSeconds" | "shutdownGraceSeconds" | "fetchExpiresMs" | "runningRecordDelayMs" | "statusWriteTimeoutMs" | "random" | "workerName">
> &
  WorkerOptions;

interface Beat {
  readonly msg: JsMsg;
  last: number;
  /** When to write the `Running` record (ms epoch), and the writer; cleared once done. */
  runningDueAt?: number;
  writeRunning?: () => void;
  /** The attempt's time limit (ms epoch), and what to do then; cleared once done. */
  deadlineAt?: number;
  onDeadline?: () => void;
}

/**
 * The abort side of one attempt. The AbortController behind `signal` is created only when the
 * handler reads `ctx.signal` (most short tasks never do), and an abort before that is replayed on it.
 */
class AttemptAbort {
  aborted = false;
  reason: unknown = undefined;
  #ac: AbortController | undefined;
  readonly #onAbort: () => void;
  constructor(onAbort: () => void) {
    this.#onAbort = onAbort;
  }
  get signal(): AbortSignal {
    if (!this.#ac) {
      this.#ac = new AbortController();
      if (this.aborted) this.#ac.abort(this.reason);
    }
    return this.#ac.signal;
  }
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#ac?.abort(reason);
    this.#onAbort();
  }
}

interface Running {
  readonly id: string;
  readonly msg: JsMsg;
  readonly ac: AttemptAbort;
  abandoned: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Default worker name: `$POD_NAME`, else `<hostname>:<pid>`. */
export function defaultWorkerName(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || `${hostname()}:${process.pid}`;
}

/** Error used to abort handlers when the worker is forced to stop. */
export class WorkerShutdownError extends Error {
  override readonly name = "WorkerShutdownError";
}

/**
 * A worker for one queue. `start()` begins pulling; `close()` (memoised) shuts down gracefully.
 */
export class Worker {
  /** The queue's NATS names. */
  readonly names: QueueNames;
  /** The worker's metrics (registry included). */
  readonly metrics: WorkerMetrics;
  /** Registered tasks by name. */
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly #o: ResolvedWorkerOptions;
  readonly #log: Logger;
  readonly #js: JetStreamClient;
  readonly #settings: QueueSettings;
  #kv: KV | undefined;
  #sinks: StatusSink[] = [];
  #consumer: Consumer | undefined;
  #revocations: RevocationWatcher | undefined;
  #mover: DelayMover | undefined;
  #heartbeatMs = 10_000;
  /** Messages being worked on: heartbeated by one shared ticker (not a timer per task). */
  readonly #beats = new Set<Beat>();
  #ticker: NodeJS.Timeout | undefined;
  #refillThreshold = 1;
  /** Slots reserved by open pull requests and not yet delivered. */
  #requested = 0;
  #inFlightGauge: { set(v: number): void } | undefined;
  #inFlight = 0;
  #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  readonly #running = new Map<string, Running>();
  #stopping = false;
  #started = false;
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /** @throws Error when the queue/namespace is invalid or `tasks` holds no task */
  constructor(options: WorkerOptions) {
    this.#o = {
      concurrency: DEFAULT_CONCURRENCY,
      abortGraceSeconds: 5,
      shutdownGraceSeconds: 25,
      fetchExpiresMs: 2000,
      runningRecordDelayMs: 1000,
      statusWriteTimeoutMs: 60_000,
      random: Math.random,
      workerName: defaultWorkerName(),
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as ResolvedWorkerOptions;
    if (!Number.isInteger(this.#o.concurrency) || this.#o.concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${this.#o.concurrency}`);
    this.#refillThreshold = Math.max(1, Math.floor(this.#o.concurrency / 4));
    this.names = queueNames(options.namespace ?? DEFAULT_NAMESPACE, options.queue);
    this.tasks = options.tasks instanceof Map ? new Map(options.tasks) : collectTasks(options.tasks as Record<string, unknown>);
    this.metrics = options.metrics ?? createWorkerMetrics();
    this.#log = (options.logger ?? pino({ level: "info" })).child({ queue: options.queue, namespace: options.namespace ?? DEFAULT_NAMESPACE, worker: this.#o.workerName });
    this.#js = jetstream(options.nc);
    this.#settings = queueSettings(options.settings);
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** True after `start()` succeeded and before `close()` began. */
  get ready(): boolean {
    return this.#started && !this.#stopping && !this.#o.nc.isClosed();
  }

  /**
   * Ensures the queue's NATS resources (unless disabled), starts the revocation watch and the delay
   * mover, and begins pulling tasks.
   * @throws Error when NATS resources cannot be created or opened
   */
  async start(): Promise<void> {
    if (this.#started) return;
    const jsm = await jetstreamManager(this.#o.nc);
    if (this.#o.ensureResources !== false) {
      const report = await ensureQueueResources(jsm, this.names, this.#settings);
      for (const r of report) if (r.action !== "unchanged") this.#log.info({ resource: r.name, kind: r.kind, action: r.action, drift: r.drift }, "Ensured queue resource");
    }
    this.#kv = await new Kvm(this.#js).open(this.names.resultsBucket);
    this.#sinks = this.#o.sinks ?? [new KvStatusSink(this.#kv), ...(this.#o.extraSinks ?? [])];
    const info = await jsm.consumers.info(this.names.stream, this.names.workerConsumer);
    // heartbeat at a third of the ack wait: comfortably below half
    this.#heartbeatMs = Math.max(100, Math.floor((info.config.ack_wait ?? 30e9) / 1e6 / 3));
    this.#consumer = await this.#js.consumers.get(this.names.stream, this.names.workerConsumer);
    this.#revocations = new RevocationWatcher(this.#kv, this.#log, (id) => this.#onRevoke(id));
    await this.#revocations.start();
    this.#mover = new DelayMover(this.#js, this.names, this.#log);
    await this.#mover.start();
    this.#started = true;
    this.#ticker = setInterval(() => this.#tick(), Math.max(20, Math.min(250, Math.floor(this.#heartbeatMs / 2))));
    this.#loop = this.#pullLoop();
    this.#log.info({ tasks: [...this.tasks.keys()], concurrency: this.#o.concurrency, heartbeatMs: this.#heartbeatMs }, "Worker started");
  }

  #tick(): void {
    const now = Date.now();
    for (const b of this.#beats) {
      if (now - b.last >= this.#heartbeatMs) {
        b.msg.working();
        b.last = now;
      }
      if (b.onDeadline && b.deadlineAt !== undefined && now >= b.deadlineAt) {
        const d = b.onDeadline;
        b.onDeadline = undefined;
        d();
      }
      if (b.writeRunning && b.runningDueAt !== undefined && now >= b.runningDueAt) {
        const w = b.writeRunning;
        b.writeRunning = undefined;
        w();
      }
    }
  }

  /**
   * Pulls exactly the free slots: each pull request asks for at most the slots neither running nor
   * already requested, so nothing waits in this worker for a slot (no prefetch starving other
   * workers). Several pulls may be open at once, so a refill overlaps the work in flight. While
   * busy, refills wait for a quarter of the slots rather than pull one by one.
   */
  async #pullLoop(): Promise<void> {
    const open = new Set<Promise<void>>();
    let failures = 0;
    while (!this.#stopping) {
      const avail = this.#o.concurrency - this.#inFlight - this.#requested;
      if (avail <= 0 || (this.#inFlight + this.#requested > 0 && avail < this.#refillThreshold)) {
        await new Promise<void>((r) => this.#slotWaiters.push(r));
        continue;
      }
      if (failures > 0) await sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
      if (this.#stopping) break;
      this.#requested += avail;
      let iter: Awaited<ReturnType<Consumer["fetch"]>>;
      try {
        iter = await this.#consumer!.fetch({ max_messages: avail, expires: this.#o.fetchExpiresMs });
      } catch (err) {
        this.#requested -= avail;
        failures++;
        this.#log.warn({ err, failures }, "Pull failed; retrying");
        continue;
      }
      const reader = (async () => {
        let got = 0;
        try {
          for await (const m of iter) {
            got++;
            this.#requested--;
            // Stopping: a message the last pull still delivers is handed back at once (no delay) so
            // another worker runs it; starting it here would delay this worker's exit.
            if (this.#stopping) m.nak();
            else this.#dispatch(m);
          }
          failures = 0;
        } catch (err) {
          failures++;
          if (!this.#stopping) this.#log.warn({ err, failures }, "Pull failed; retrying");
        } finally {
          this.#requested -= avail - got;
          this.#slotWaiters.splice(0).forEach((r) => r());
        }
      })();
      open.add(reader);
      void reader.finally(() => open.delete(reader));
    }
    // the last pulls end within fetchExpiresMs; what they still deliver is naked (see the reader)
    await Promise.all(open);
  }

  #setInFlight(delta: number): void {
    this.#inFlight += delta;
    (this.#inFlightGauge ??= this.metrics.inFlight.labels({ queue: this.#o.queue })).set(this.#inFlight);
    try {
      this.#o.onInFlightChange?.(this.#inFlight);
    } catch (err) {
      this.#log.warn({ err }, "onInFlightChange threw");
    }
    if (delta < 0) {
      this.#slotWaiters.splice(0).forEach((r) => r());
      if (this.#inFlight === 0) this.#idleWaiters.splice(0).forEach((r) => r());
    }
  }

  #dispatch(m: JsMsg): void {
    this.#setInFlight(+1);
    void this.#handle(m)
      .catch((err) => this.#log.error({ err, seq: m.seq }, "Task message handling failed; it will be redelivered"))
      .finally(() => this.#setInFlight(-1));
  }

  #onRevoke(id: string): void {
    const r = this.#running.get(id);
    if (r && !r.ac.aborted) {
      this.#log.info({ taskId: id }, "Revoked running task");
      r.ac.abort(new CancelledError(`task ${id} was revoked`));
    }
  }

  #queueLabel(): string {
    return this.#o.queue;
  }

  readonly #counters = new Map<string, { inc(): void }>();
  readonly #durations = new Map<string, { observe(v: number): void }>();
  #count(task: string, outcome: TaskOutcomeLabel): void {
    const key = `${task}\u0000${outcome}`;
    let c = this.#counters.get(key);
    if (!c) this.#counters.set(key, (c = this.metrics.tasksTotal.labels({ queue: this.#queueLabel(), task, outcome })));
    c.inc();
  }

  #record(msg: Pick<TaskMessage, "id" | "task" | "queue" | "namespace" | "origin">, status: TaskStatus): TaskRecord {
    return { id: msg.id, task: msg.task, queue: msg.queue, namespace: msg.namespace, origin: msg.origin, status, updatedAt: new Date().toISOString() };
  }

  /** Writes through every sink, retrying failures until `statusWriteTimeoutMs`; throws after that. */
  async #write(record: TaskRecord): Promise<void> {
    for (const sink of this.#sinks) {
      const end = Date.now() + this.#o.statusWriteTimeoutMs;
      for (let i = 0; ; i++) {
        try {
          await sink.write(record);
          break;
        } catch (err) {
          if (Date.now() > end || this.#o.nc.isClosed()) throw new Error(`write status of task ${record.id} to ${sink.name}`, { cause: err });
          if (i === 0) this.#log.warn({ err, taskId: record.id, sink: sink.name }, "Status write failed; retrying");
          await sleep(Math.min(2000, 50 * 2 ** Math.min(i, 6)));
        }
      }
    }
  }

  async #deadLetter(m: JsMsg, reason: DeadLetterReason, detail: string, attempts: number, record: TaskRecord | undefined, task: string): Promise<void> {
    const h = natsHeaders();
    h.set(HEADERS.deadReason, reason);
    h.set(HEADERS.deadDetail, detail.replace(/[\r\n]+/g, " ").slice(0, 1024));
    h.set(HEADERS.deadStreamSeq, String(m.seq));
    h.set(HEADERS.deadAttempts, String(attempts));
    h.set(HEADERS.deadStream, this.names.stream);
    h.set(HEADERS.task, task);
    const beat: Beat = { msg: m, last: Date.now() };
    this.#beats.add(beat);
    try {
      await this.#js.publish(this.names.deadLetterSubject, m.data, { headers: h, msgID: `dlq-${this.names.stream}-${m.seq}` });
      if (record) await this.#write(record);
    } finally {
      this.#beats.delete(beat);
    }
    m.term();
    this.#count(task, "dead_lettered");
    this.#log.warn({ taskId: record?.id, reason, detail, attempts }, "Dead-lettered task");
  }

  async #handle(m: JsMsg): Promise<void> {
    const attempt = m.info.deliveryCount;
    const parsed = parseTaskMessage(m.data);
    if (!parsed.ok) {
      // best effort: a record for an id we can find, so result() callers learn why
      const id = m.headers?.get(HEADERS.msgId) ?? "";
      const task = m.headers?.get(HEADERS.task) || "unknown";
      const rec = TASK_ID_PATTERN.test(id)
        ? this.#record({ id, task, queue: this.#o.queue, namespace: this.#o.namespace ?? DEFAULT_NAMESPACE, origin: { kind: "Client" } }, {
            phase: "Failed",
            attempts: attempt,
            completionTime: new Date().toISOString(),
            worker: this.#o.workerName,
            error: { type: "InvalidMessage", message: parsed.reason },
            deadLettered: true,
          })
        : undefined;
      await this.#deadLetter(m, "InvalidMessage", parsed.reason, attempt, rec, task);
      return;
    }
    const msg: TaskMessage = parsed.message;
    if (!TASK_ID_PATTERN.test(msg.id)) {
      await this.#deadLetter(m, "InvalidMessage", `id: "${msg.id.slice(0, 80)}" is not a valid task id: use 1-256 of A-Z a-z 0-9 _ = -`, attempt, undefined, msg.task);
      return;
    }
    const def = this.tasks.get(msg.task);
    const policy = resolveRetryPolicy(def?.options.retry, msg.retry);
    const now = new Date().toISOString();
    const base = { attempts: attempt, queuedTime: msg.createdAt, worker: this.#o.workerName };

    if (attempt > 1 && this.#kv) {
      // a redelivery: if a previous attempt already recorded a final outcome, only its ack was lost
      try {
        const prev = await this.#kv.get(msg.id);
        const phase = prev?.operation === "PUT" ? (prev.json<TaskRecord>().status.phase) : undefined;
        if (prev && isTerminalPhase(phase)) {
          // write it again through every sink (one may have failed before), then ack
          await this.#write(prev.json<TaskRecord>());
          this.#log.info({ taskId: msg.id, phase }, "Redelivered task already finished; acked");
          m.ack();
          return;
        }
      } catch (err) {
        this.#log.warn({ err, taskId: msg.id }, "Check of previous record failed");
        throw err;
      }
    }
    if (this.#revocations?.has(msg.id)) {
      await this.#write(this.#record(msg, { ...base, phase: "Cancelled", completionTime: now, error: { type: "CancelledError", message: "revoked before it started" } }));
      m.ack();
      this.#count(msg.task, "cancelled");
      return;
    }
    if (msg.expires && Date.parse(msg.expires) < Date.now()) {
      await this.#write(this.#record(msg, { ...base, phase: "Expired", completionTime: now, error: { type: "ExpiredError", message: `not started before it expired at ${msg.expires}` } }));
      m.ack();
      this.#count(msg.task, "expired");
      return;
    }
    if (!def) {
      const registered = [...this.tasks.keys()].sort().join(", ");
      const text = `no handler registered for "${msg.task}" on queue "${msg.queue}"; registered: ${registered}`;
      const err = new UnknownTaskError(text);
      await this.#deadLetter(m, "UnknownTask", text, attempt, this.#record(msg, { ...base, phase: "Failed", completionTime: now, error: { type: err.name, message: text }, deadLettered: true }), msg.task);
      return;
    }
    if (attempt > policy.maxAttempts) {
      const text = `attempt ${attempt - 1} of ${policy.maxAttempts} did not finish: its worker was lost`;
      const err = new WorkerLostError(text);
      await this.#deadLetter(m, "MaxAttemptsExceeded", text, attempt - 1, this.#record(msg, { ...base, attempts: attempt - 1, phase: "Failed", completionTime: now, error: { type: err.name, message: text }, deadLettered: true }), msg.task);
      return;
    }
    await this.#run(m, msg, def, attempt, policy, base);
  }

  async #run(m: JsMsg, msg: TaskMessage, def: TaskDefinition, attempt: number, policy: ResolvedRetryPolicy, base: { attempts: number; queuedTime: string; worker: string }): Promise<void> {
    const startTime = new Date().toISOString();
    const timeoutMs = (def.options.timeoutSeconds ?? msg.timeoutSeconds) * 1000;
    const timers: NodeJS.Timeout[] = [];
    // the attempt is over when the handler settles, or `abortGraceSeconds` after it was aborted
    let rejectAbandoned: (reason: unknown) => void = () => undefined;
    const abandoned = new Promise<never>((_, reject) => (rejectAbandoned = reject));
    abandoned.catch(() => undefined);
    const ac = new AttemptAbort(() => timers.push(setTimeout(() => rejectAbandoned(ac.reason), this.#o.abortGraceSeconds * 1000)));
    const entry: Running = { id: msg.id, msg: m, ac, abandoned: false };
    this.#running.set(msg.id, entry);
    let childLog: Logger | undefined;
    const log = (): Logger => (childLog ??= this.#log.child({ taskId: msg.id, task: msg.task, attempt }));
    let runningWrite: Promise<void> | undefined;
    const now = Date.now();
    const beat: Beat = {
      msg: m,
      last: now,
      runningDueAt: now + this.#o.runningRecordDelayMs,
      writeRunning: () => {
        runningWrite = this.#write(this.#record(msg, { ...base, phase: "Running", startTime })).catch((err) => log().warn({ err }, "Running record write failed"));
      },
      // checked by the shared ticker, so a time limit is enforced within a tick (≤ 250 ms) late
      deadlineAt: now + timeoutMs,
      onDeadline: () => ac.abort(new TimeoutError(`task exceeded its time limit of ${timeoutMs / 1000} s`)),
    };
    this.#beats.add(beat);
    const ctx: TaskContext = {
      taskId: msg.id,
      attempt,
      maxAttempts: policy.maxAttempts,
      task: msg.task,
      queue: msg.queue,
      namespace: msg.namespace,
      get signal() {
        return ac.signal;
      },
      deadline: new Date(now + timeoutMs),
      get log() {
        return log();
      },
      heartbeat: () => m.working(),
      retry: (opts = {}) => {
        throw new RetryError(opts.message ?? "retry requested", opts.countdownSeconds === undefined ? {} : { countdownSeconds: opts.countdownSeconds });
      },
    };
    const t0 = performance.now();
    let result: unknown;
    let error: unknown;
    try {
      result = await Promise.race([Promise.resolve().then(() => def.handler(msg.args, msg.kwargs as Record<string, unknown>, ctx)), abandoned]);
      if (ac.aborted) error = ac.reason;
    } catch (err) {
      error = ac.aborted ? ac.reason : err;
    }
    const seconds = (performance.now() - t0) / 1000;
    timers.forEach(clearTimeout);
    beat.writeRunning = undefined;
    beat.onDeadline = undefined;
    if (this.#running.get(msg.id) === entry) this.#running.delete(msg.id);
    try {
      if (entry.abandoned) return; // forced shutdown already naked it
      if (error instanceof WorkerShutdownError) return;
      let encoded: unknown = null;
      if (error === undefined) {
        try {
          encoded = result === undefined ? null : JSON.parse(JSON.stringify(result));
        } catch (err) {
          error = new UnrecoverableError(`result is not JSON-serialisable: ${(err as Error).message}`);
        }
      }
      let h = this.#durations.get(msg.task);
      if (!h) this.#durations.set(msg.task, (h = this.metrics.taskDuration.labels({ queue: this.#queueLabel(), task: msg.task })));
      h.observe(seconds);
      const outcome: Outcome = classifyOutcome(error, attempt, policy, this.#o.random);
      if (runningWrite) await runningWrite;
      const completionTime = new Date().toISOString();
      switch (outcome.action) {
        case "ack":
          await this.#write(this.#record(msg, { ...base, phase: "Succeeded", startTime, completionTime, result: encoded }));
          m.ack();
          this.#count(msg.task, "succeeded");
          if (this.#log.isLevelEnabled("debug")) log().debug({ seconds }, "Task succeeded");
          return;
        case "fail":
          await this.#write(this.#record(msg, { ...base, phase: outcome.phase, startTime, completionTime, error: describeError(error) }));
          m.ack();
          this.#count(msg.task, "cancelled");
          log().info("Task cancelled");
          return;
        case "retry": {
          const nextRetryTime = new Date(Date.now() + outcome.delayMs).toISOString();
          await this.#write(this.#record(msg, { ...base, phase: "Retrying", startTime, nextRetryTime, error: describeError(error) }));
          m.nak(outcome.delayMs);
          this.#count(msg.task, error instanceof TimeoutError ? "timed_out" : "retried");
          log().info({ err: error, delayMs: outcome.delayMs }, "Task failed; retry scheduled");
          return;
        }
        case "deadLetter": {
          const e = describeError(error);
          await this.#deadLetter(m, outcome.reason, `${e.type}: ${e.message}`, attempt, this.#record(msg, { ...base, phase: "Failed", startTime, completionTime, error: e, deadLettered: true }), msg.task);
          this.#count(msg.task, "failed");
          return;
        }
      }
    } finally {
      this.#beats.delete(beat);
    }
  }

  /**
   * Graceful shutdown (memoised): stop pulling, let in-flight handlers finish for up to
   * `shutdownGraceSeconds`, then abort the rest (`WorkerShutdownError`) and nak them with no delay
   * so another worker picks them up at once; stop the revocation watch and the delay mover. Does not
   * close the NATS connection (drain it afterwards).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    this.#slotWaiters.splice(0).forEach((r) => r());
    const deadline = Date.now() + this.#o.shutdownGraceSeconds * 1000;
    const steps: [string, () => Promise<void>][] = [
      // the last pull ends within fetchExpiresMs; what it still delivers is naked for another worker
      ["stop pulling", async () => void (await this.#loop)],
      [
        "finish in-flight",
        async () => {
          if (this.#inFlight === 0) return;
          this.#log.info({ inFlight: this.#inFlight, graceSeconds: this.#o.shutdownGraceSeconds }, "Waiting for in-flight tasks");
          let t: NodeJS.Timeout | undefined;
          await Promise.race([
            new Promise<void>((r) => this.#idleWaiters.push(r)),
            new Promise<void>((r) => (t = setTimeout(r, Math.max(0, deadline - Date.now())))),
          ]);
          clearTimeout(t);
        },
      ],
      [
        "nak unfinished",
        async () => {
          for (const r of this.#running.values()) {
            r.abandoned = true;
            r.ac.abort(new WorkerShutdownError("worker shut down"));
            r.msg.nak();
            this.#count(r.msg.headers?.get(HEADERS.task) ?? "unknown", "shutdown");
            this.#log.warn({ taskId: r.id }, "Naked unfinished task at shutdown");
          }
          this.#running.clear();
        },
      ],
      ["stop delay mover", async () => void (await this.#mover?.stop())],
      ["stop revocation watch", async () => this.#revocations?.stop()],
      ["stop heartbeats", async () => clearInterval(this.#ticker)],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (err) {
        this.#log.error({ err, step: name }, "Shutdown step failed");
      }
    }
    this.#log.info("Worker stopped");
  }
}
