/**
 * Prometheus metrics of a worker: `celeriac_tasks_total{queue,task,outcome}`,
 * `celeriac_task_duration_seconds{queue,task}`, `celeriac_task_queue_wait_seconds{queue,task}`,
 * `celeriac_tasks_in_flight{queue}` and `celeriac_worker_slots{queue}`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Outcomes counted by `celeriac_tasks_total`: exactly one per settled delivery.
 * - `succeeded`, `cancelled`, `expired`: as the phase says;
 * - `retried`: the handler failed and a retry is scheduled; `timed_out`: likewise after its time limit;
 * - `failed`: the handler's final failure (attempts exhausted, unrecoverable, or a final timeout),
 *   dead-lettered;
 * - `dead_lettered`: refused before any handler ran (invalid message, unknown task, its last
 *   attempt's worker lost);
 * - `shutdown`: handed back unfinished at shutdown.
 */
export type TaskOutcomeLabel = "succeeded" | "retried" | "failed" | "dead_lettered" | "cancelled" | "expired" | "timed_out" | "shutdown";

/** The worker's metric handles, on their own registry. */
export interface WorkerMetrics {
  readonly registry: Registry;
  readonly tasksTotal: Counter<"queue" | "task" | "outcome">;
  readonly taskDuration: Histogram<"queue" | "task">;
  readonly inFlight: Gauge<"queue">;
  /** `celeriac_task_queue_wait_seconds{queue,task}`: from when a task was due to its first handler start, seconds. */
  readonly queueWait: Histogram<"queue" | "task">;
  /** `celeriac_worker_slots{queue}`: handler slots of the worker (its concurrency). */
  readonly slots: Gauge<"queue">;
}

/**
 * Creates the worker metrics on a new registry (plus Node's default process metrics when
 * `defaults` is true).
 */
export function createWorkerMetrics(defaults = false): WorkerMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: "celeriac_worker_" });
  return {
    registry,
    tasksTotal: new Counter({ name: "celeriac_tasks_total", help: "Task attempts finished, by outcome.", labelNames: ["queue", "task", "outcome"], registers: [registry] }),
    taskDuration: new Histogram({
      name: "celeriac_task_duration_seconds",
      help: "Handler run time of an attempt, in seconds.",
      labelNames: ["queue", "task"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    inFlight: new Gauge({ name: "celeriac_tasks_in_flight", help: "Handlers running now.", labelNames: ["queue"], registers: [registry] }),
    queueWait: new Histogram({
      name: "celeriac_task_queue_wait_seconds",
      help: "Time from when a task was due (its eta, else its creation) to its first handler start, in seconds.",
      labelNames: ["queue", "task"],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400],
      registers: [registry],
    }),
    slots: new Gauge({ name: "celeriac_worker_slots", help: "Handler slots of the worker (its concurrency), in slots.", labelNames: ["queue"], registers: [registry] }),
  };
}

/**
 * The queue wait of a task's first attempt: seconds from when it was due — its `eta` when it has
 * one, else its `createdAt` — to `startTime`, its handler's start; 0 when the producer's clock is
 * ahead. Undefined when a time does not parse.
 */
export function queueWaitSeconds(message: { createdAt: string; eta?: string | undefined }, startTime: string): number | undefined {
  const due = Date.parse(message.eta ?? message.createdAt);
  const start = Date.parse(startTime);
  if (Number.isNaN(due) || Number.isNaN(start)) return undefined;
  return Math.max(0, (start - due) / 1000);
}

/** The `task` label of every task name that is not registered on the worker (bounds the label's cardinality). */
export const UNREGISTERED_TASK_LABEL = "<unregistered>";

/**
 * The worker's handles on its metrics for one queue, with the labelled children cached so the hot
 * path does no label lookup. Used inside the worker; not exported by the package. Never throws.
 */
export class QueueMetrics {
  readonly #metrics: WorkerMetrics;
  readonly #queue: string;
  readonly #counters = new Map<string, { inc(): void }>();
  readonly #durations = new Map<string, { observe(v: number): void }>();
  readonly #waits = new Map<string, { observe(v: number): void }>();
  #inFlight: { set(v: number): void } | undefined;
  readonly #registered: ReadonlySet<string>;
  /** Counts by outcome since construction, for the control report (`celeriac inspect stats`). */
  readonly #totals = new Map<TaskOutcomeLabel, number>();

  /**
   * @param metrics the metric set to update
   * @param queue the `queue` label of every series
   * @param registered the registered task names: the only `task` label values besides `<unregistered>`
   */
  constructor(metrics: WorkerMetrics, queue: string, registered: Iterable<string>) {
    this.#metrics = metrics;
    this.#queue = queue;
    this.#registered = new Set(registered);
  }

  /** The `task` label of a task name: the name when registered, else `<unregistered>`. */
  label(task: string): string {
    return this.#registered.has(task) ? task : UNREGISTERED_TASK_LABEL;
  }

  /** Adds 1 to `celeriac_tasks_total{queue, task, outcome}` (task names not registered share `<unregistered>`). */
  count(name: string, outcome: TaskOutcomeLabel): void {
    const task = this.label(name);
    const key = `${task}\u0000${outcome}`;
    let c = this.#counters.get(key);
    if (!c) this.#counters.set(key, (c = this.#metrics.tasksTotal.labels({ queue: this.#queue, task, outcome })));
    c.inc();
    this.#totals.set(outcome, (this.#totals.get(outcome) ?? 0) + 1);
  }

  /** How many deliveries ended with `outcome` since this worker started (all task names together). */
  total(outcome: TaskOutcomeLabel): number {
    return this.#totals.get(outcome) ?? 0;
  }

  /** Observes one attempt's handler run time, in seconds, in `celeriac_task_duration_seconds{queue, task}`. */
  observe(name: string, seconds: number): void {
    const task = this.label(name);
    let h = this.#durations.get(task);
    if (!h) this.#durations.set(task, (h = this.#metrics.taskDuration.labels({ queue: this.#queue, task })));
    h.observe(seconds);
  }

  /** Observes a first attempt's queue wait, in seconds, in `celeriac_task_queue_wait_seconds{queue, task}`. */
  observeWait(name: string, seconds: number): void {
    const task = this.label(name);
    let h = this.#waits.get(task);
    if (!h) this.#waits.set(task, (h = this.#metrics.queueWait.labels({ queue: this.#queue, task })));
    h.observe(seconds);
  }

  /** Sets `celeriac_worker_slots{queue}` to the worker's `n` handler slots. */
  setSlots(n: number): void {
    this.#metrics.slots.labels({ queue: this.#queue }).set(n);
  }

  /** Sets `celeriac_tasks_in_flight{queue}` to `n` handlers. */
  setInFlight(n: number): void {
    (this.#inFlight ??= this.#metrics.inFlight.labels({ queue: this.#queue })).set(n);
  }
}
