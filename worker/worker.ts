/**
 * The worker runtime: pulls task messages from a queue's shared durable consumer, runs registered
 * handlers with bounded concurrency, records each outcome through the status sinks, and only then
 * acks, naks (retry with our backoff) or dead-letters + terms the message.
 *
 * Data flow, one file per step: consumer (consumer.ts: fetch of exactly the free slots, one ticker
 * for heartbeats) → admission (admission.ts: run it, or an `Outcome` now) → attempt (attempt.ts:
 * time limit, revoke, `TaskContext`) → handler → `classifyOutcome` → settle (settle.ts: status
 * write → canvas continuation → ack/nak/term → metric → log). This file wires them together, with
 * one CanvasRuntime (canvas/runtime.ts) per worker for canvas tasks, and the control side of
 * `celeriac inspect`: answers from memory (control.ts) and the worker registry entry (registry.ts).
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino, type Logger } from "pino";
import { HEADERS, parseTaskMessage } from "../api/message.js";
import { DEFAULT_NAMESPACE, TASK_ID_PATTERN, queueNames, type QueueNames } from "../api/naming.js";
import { ensureQueueResources, queueSettings, type QueueSettings } from "../nats/index.js";
import { DelayMover } from "../nats/delay-mover.js";
import { CanvasRuntime } from "../canvas/runtime.js";
import { admit, admitUnique, previousRecord } from "./admission.js";
import { AloneGate } from "./alone-gate.js";
import { Attempts } from "./attempt.js";
import { TaskConsumer, handBack, type InFlight } from "./consumer.js";
import { collectTasks, type TaskDefinition } from "./define-task.js";
import { createWorkerMetrics, QueueMetrics, type WorkerMetrics } from "./metrics.js";
import { PauseGate } from "./pause.js";
import { ConnectionEpoch, mayBeRedelivery } from "./redelivery.js";
import { RevocationWatcher } from "./revocations.js";
import { Settler } from "./settle.js";
import { publishTaskDefaults } from "./task-defaults.js";
import { KvStatusSink, type StatusSink } from "./status-sink.js";
import { resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from "./options.js";
import { CONTROL_VERSION, controlSubject, type WorkerReport } from "../api/control.js";
import { ControlResponder } from "./control.js";
import { WorkerRegistration } from "./registry.js";
import { hostname } from "node:os";
import { readFileSync } from "node:fs";

export { WorkerShutdownError } from "./errors.js";
export { defaultWorkerName, type WorkerOptions } from "./options.js";

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
  readonly #queueMetrics: QueueMetrics;
  #kv: KV | undefined;
  #settler: Settler | undefined;
  #attempts: Attempts | undefined;
  #consumer: TaskConsumer | undefined;
  #revocations: RevocationWatcher | undefined;
  #pause: PauseGate | undefined;
  #mover: DelayMover | undefined;
  #epoch: ConnectionEpoch | undefined;
  #control: ControlResponder | undefined;
  #registration: WorkerRegistration | undefined;
  #startedAt = new Date();
  /** Lets an attempt whose previous delivery was lost with its worker run alone (attribution.ts). */
  readonly #gate = new AloneGate(() => this.#consumer?.resumePulls());
  #started = false;
  #closing: Promise<void> | undefined;
  readonly #canvas: CanvasRuntime;
  readonly #buckets = new Map<string, Promise<KV>>();

  /** @throws Error when the queue/namespace is invalid, `concurrency` is not a positive integer, or `tasks` holds no task */
  constructor(options: WorkerOptions) {
    this.#o = resolveWorkerOptions(options);
    this.names = queueNames(options.namespace ?? DEFAULT_NAMESPACE, options.queue);
    this.tasks = options.tasks instanceof Map ? new Map(options.tasks) : collectTasks(options.tasks as Record<string, unknown>);
    this.metrics = options.metrics ?? createWorkerMetrics();
    this.#queueMetrics = new QueueMetrics(this.metrics, options.queue, this.tasks.keys());
    this.#log = (options.logger ?? pino({ level: "info" })).child({ queue: options.queue, namespace: options.namespace ?? DEFAULT_NAMESPACE, worker: this.#o.workerName });
    this.#js = jetstream(options.nc);
    this.#settings = queueSettings(options.settings);
    const namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.#canvas = new CanvasRuntime({ js: this.#js, namespace, bucket: (q) => this.#bucket(q), log: this.#log, maxPayload: () => options.nc.info?.max_payload });
  }

  /**
   * The worker's canvas runtime (one per worker): its settle step continues canvases with it, and
   * its attempts resolve referenced args with it. Usable before `start()` (buckets open on demand).
   */
  get canvas(): CanvasRuntime {
    return this.#canvas;
  }

  /** The results bucket of `queue` in this worker's namespace (its own once started; others opened once, on first use). */
  #bucket(queue: string): Promise<KV> {
    if (queue === this.#o.queue && this.#kv) return Promise.resolve(this.#kv);
    let p = this.#buckets.get(queue);
    if (!p) {
      p = new Kvm(this.#js).open(queueNames(this.names.namespace, queue).resultsBucket);
      p.catch(() => this.#buckets.delete(queue));
      this.#buckets.set(queue, p);
    }
    return p;
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.#consumer?.inFlight ?? 0;
  }

  /** True after `start()` succeeded and before `close()` began. */
  get ready(): boolean {
    return this.#started && !this.#closing && !this.#o.nc.isClosed();
  }

  /**
   * Ensures the queue's NATS resources (unless disabled), publishes its tasks' code defaults
   * (rate limits, task-defaults.ts), starts the revocation and pause watches (pause.ts: a paused
   * queue is not pulled from) and the delay mover, begins pulling tasks, answers control requests
   * (`celeriac inspect`) and writes its worker registry entry (a failed write is logged and retried
   * by the heartbeat, not thrown).
   * @throws Error when NATS resources cannot be created or opened, or the task defaults written
   */
  async start(): Promise<void> {
    if (this.#started) return;
    const o = this.#o;
    const jsm = await jetstreamManager(o.nc);
    if (o.ensureResources !== false) {
      // with a minted credential the operator creates the streams: wait for it (logged) instead of failing
      const report = await ensureQueueResources(jsm, this.names, this.#settings, { waitForOperator: { log: this.#log } });
      for (const r of report) if (r.action !== "unchanged") this.#log.info({ resource: r.name, kind: r.kind, action: r.action, drift: r.drift }, "Ensured queue resource");
    }
    const kv = (this.#kv = await new Kvm(this.#js).open(this.names.resultsBucket));
    await publishTaskDefaults(kv, this.names.resultsBucket, this.tasks, this.#log);
    const sinks: StatusSink[] = o.sinks ?? [new KvStatusSink(kv), ...(o.extraSinks ?? [])];
    const settler = (this.#settler = new Settler({ js: this.#js, names: this.names, sinks, workerName: o.workerName, statusWriteTimeoutMs: o.statusWriteTimeoutMs, isClosed: () => o.nc.isClosed(), metrics: this.#queueMetrics, log: this.#log, uniqueKv: kv, afterFinal: (msg, record, x) => this.#canvas.afterFinal(msg, record, x) }));
    const attempts = (this.#attempts = new Attempts({ settler, log: this.#log, abortGraceSeconds: o.abortGraceSeconds, runningRecordDelayMs: o.runningRecordDelayMs, random: o.random, resolveArgs: (msg) => this.#canvas.resolveArgs(msg), resolveKwargs: (msg) => this.#canvas.resolveKwargs(msg), maxResultBytes: () => maxResultBytes(o.nc) }));
    const info = await jsm.consumers.info(this.names.stream, this.names.workerConsumer);
    // heartbeat at a third of the ack wait: comfortably below half
    const heartbeatMs = Math.max(100, Math.floor((info.config.ack_wait ?? 30e9) / 1e6 / 3));
    const consumer = await this.#js.consumers.get(this.names.stream, this.names.workerConsumer);
    this.#revocations = new RevocationWatcher(kv, this.#log, (id) => attempts.revoke(id));
    await this.#revocations.start();
    // the queue's pause is known before the first pull: a worker started while paused pulls nothing
    this.#pause = new PauseGate(kv, this.#log, () => this.#consumer?.resumePulls());
    await this.#pause.start();
    this.#mover = new DelayMover(this.#js, this.names, this.#log);
    await this.#mover.start();
    (this.#epoch = new ConnectionEpoch(o.nc)).start();
    this.#started = true;
    const onInFlightChange = (n: number) => this.#onInFlightChange(n);
    this.#consumer = new TaskConsumer({ consumer, concurrency: o.concurrency, fetchExpiresMs: o.fetchExpiresMs, heartbeatMs, log: this.#log, process: (m, f) => this.#process(m, f), onInFlightChange, holdPulls: () => this.#gate.holding || (this.#pause?.holding ?? false) });
    this.#queueMetrics.setSlots(o.concurrency);
    this.#consumer.start();
    // answers `celeriac inspect` from memory; the registry entry says it should answer
    this.#startedAt = new Date();
    (this.#control = new ControlResponder({ nc: o.nc, subject: controlSubject(this.names.namespace, this.names.queue), report: () => this.report(), log: this.#log })).start();
    const pod = process.env.POD_NAME;
    this.#registration = new WorkerRegistration({
      kv,
      log: this.#log,
      entry: { name: o.workerName, ...(pod ? { pod } : {}), host: hostname(), pid: process.pid, startedAt: this.#startedAt.toISOString(), concurrency: o.concurrency, version: VERSION },
    });
    await this.#registration.start().catch((err: unknown) => this.#log.warn({ err, key: this.#registration?.key }, "Registry entry write failed; retrying every 10 s (until one succeeds, inspect lists this worker only while it answers)"));
    this.#log.info({ tasks: [...this.tasks.keys()], concurrency: o.concurrency, heartbeatMs }, "Worker started");
  }

  /** One delivered message: admission → (unique key) → (gate: shared, or alone) → (attempt) → settle. */
  async #process(m: JsMsg, f: InFlight): Promise<void> {
    // a pull opened before a pause may still deliver: the message waits (heartbeated) for the resume
    if (this.#pause?.holding && !(await this.#pause.runnable())) return handBack(m);
    const parsed = parseTaskMessage(m.data);
    const attempt = m.info.deliveryCount;
    // maybe a redelivery (see redelivery.ts: the delivery count, or stored before this worker's
    // start/reconnect, as a server crash resets the count): if a previous attempt already recorded
    // a final outcome, only its ack was lost; if it recorded Running, its worker was lost
    const suspect = mayBeRedelivery(attempt, m.info.timestampNanos / 1e6, this.#epoch?.ms ?? 0);
    const previous = suspect && parsed.ok && TASK_ID_PATTERN.test(parsed.message.id) && this.#kv ? await previousRecord(this.#kv, parsed.message.id, this.#log) : undefined;
    const a = admit({
      parsed,
      attempt,
      headers: { id: m.headers?.get(HEADERS.msgId), task: m.headers?.get(HEADERS.task) },
      queue: this.#o.queue,
      namespace: this.#o.namespace ?? DEFAULT_NAMESPACE,
      subject: m.subject,
      tasks: this.tasks,
      isRevoked: (id) => this.#revocations?.has(id) ?? false,
      previous,
      nowMs: Date.now(),
    });
    if ("settle" in a) return this.#settler!.settle(m, a.settle);
    // a unique task runs only while its key's lock names it, else it waits (recorded Queued, naked):
    // checked before the gate, so a waiting delivery never holds it. The Running record written
    // before the lock is taken says shared: a loss while waiting at the gate is not the task's
    const r = a.run;
    const waiting = await admitUnique(this.#kv!, r, previous, () => this.#settler!.writeRunning(r.message, r.attempt, r.message.createdAt, new Date().toISOString(), r.alone ? { ...r.trace, alone: false } : r.trace), { random: this.#o.random });
    if (waiting) return this.#settler!.settle(m, waiting);
    // held through settle: the next attempt beside an alone one starts only once its outcome is recorded
    const g = this.#gate;
    if (a.run.alone) this.#log.info({ taskId: a.run.message.id, attempt: a.run.attempt, workerLost: a.run.trace.workerLost }, "Redelivered task lost its worker; running it alone");
    const pending = a.run.alone ? g.alone() : g.shared();
    const release = typeof pending === "function" ? pending : await pending;
    try {
      const ending = await this.#attempts!.run(m, f, a.run);
      if (ending) await this.#settler!.settle(m, ending);
    } finally {
      release();
    }
  }

  /**
   * The worker's control report now (api/control.ts `WorkerReport`): identity, running attempts
   * with their progress, messages delivered and not started, task names and counters. Synchronous,
   * from memory. Usable before `start()` (empty lists).
   */
  report(): WorkerReport {
    const o = this.#o;
    const running = this.#attempts?.running() ?? [];
    const ids = new Set(running.map((r) => r.id));
    const reserved = (this.#consumer?.held() ?? [])
      .map((f) => ({ id: f.msg.headers?.get(HEADERS.msgId) || "unknown", task: f.msg.headers?.get(HEADERS.task) || "unknown", attempt: Math.max(1, f.msg.info.deliveryCount), receivedAt: new Date(f.receivedAt).toISOString() }))
      .filter((r) => !ids.has(r.id));
    const m = this.#queueMetrics;
    const failed = m.total("failed");
    const stats = {
      processed: (["succeeded", "retried", "failed", "dead_lettered", "cancelled", "expired", "timed_out"] as const).reduce((n, k) => n + m.total(k), 0),
      succeeded: m.total("succeeded"),
      failed,
      retried: m.total("retried") + m.total("timed_out"),
      deadLettered: failed + m.total("dead_lettered"),
      revoked: m.total("cancelled"),
      rssBytes: process.memoryUsage.rss(),
    };
    const pod = process.env.POD_NAME;
    return {
      v: CONTROL_VERSION,
      name: o.workerName,
      ...(pod ? { pod } : {}),
      host: hostname(),
      pid: process.pid,
      queue: this.names.queue,
      namespace: this.names.namespace,
      version: VERSION,
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.max(0, (Date.now() - this.#startedAt.getTime()) / 1000),
      concurrency: o.concurrency,
      active: running,
      reserved,
      registered: [...this.tasks.keys()].sort(),
      stats,
    };
  }

  #onInFlightChange(n: number): void {
    this.#queueMetrics.setInFlight(n);
    try {
      this.#o.onInFlightChange?.(n);
    } catch (err) {
      this.#log.warn({ err }, "onInFlightChange threw");
    }
  }

  /**
   * Graceful shutdown (memoised): stop pulling, let in-flight handlers finish for up to
   * `shutdownGraceSeconds`, then abort the rest (`WorkerShutdownError`) and nak them with no delay
   * so another worker picks them up at once; stop the revocation watch and the delay mover, stop
   * answering control requests and delete the worker's registry entry. Does not
   * close the NATS connection (drain it afterwards). Never rejects: a failing step is logged.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const deadline = Date.now() + this.#o.shutdownGraceSeconds * 1000;
    const c = this.#consumer;
    const steps: [string, () => Promise<void>][] = [
      // the last pull ends within fetchExpiresMs; what it still delivers is handed back for another worker
      ["stop pulling", async () => c?.stop()],
      // deliveries waiting for a resume are handed back for another worker
      ["stop pause watch", async () => this.#pause?.stop()],
      [
        "finish in-flight",
        async () => {
          if (!c || c.inFlight === 0) return;
          this.#log.info({ inFlight: c.inFlight, graceSeconds: this.#o.shutdownGraceSeconds }, "Waiting for in-flight tasks");
          await c.idle(deadline - Date.now());
        },
      ],
      [
        "nak unfinished",
        async () => {
          for (const r of this.#attempts?.abandonAll() ?? []) {
            handBack(r.msg);
            this.#queueMetrics.count(r.msg.headers?.get(HEADERS.task) ?? "unknown", "shutdown");
            this.#log.warn({ taskId: r.id }, "Naked unfinished task at shutdown");
          }
        },
      ],
      ["stop delay mover", async () => void (await this.#mover?.stop())],
      ["stop revocation watch", async () => this.#revocations?.stop()],
      ["stop answering inspect", async () => this.#control?.stop()],
      ["leave the worker registry", async () => this.#registration?.stop()],
      ["stop heartbeats", async () => c?.stopTicker()],
      ["stop reconnect watch", async () => this.#epoch?.stop()],
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

/** This package's version (package.json), as the control report and registry entry give it; `unknown` when unreadable. */
const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
})();

/** Room in a task's record for everything but the result (status, error, trace, canvas), in bytes. */
export const RECORD_HEADROOM_BYTES = 64 * 1024;

/** Most bytes of JSON a result may have on `nc`'s server: its max_payload (1 MiB if unknown) less RECORD_HEADROOM_BYTES. */
function maxResultBytes(nc: NatsConnection): number {
  return Math.max(RECORD_HEADROOM_BYTES, (nc.info?.max_payload ?? 1024 * 1024) - RECORD_HEADROOM_BYTES);
}
