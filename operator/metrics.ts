/**
 * The operator's Prometheus metrics on one registry: the controller runtime's
 * (runtime/metrics.ts: reconciles, work queues, leader election) and what the scale loops read of
 * every Queue (`celeriac_queue_*{namespace,queue}`) and the Schedules' lateness.
 */
import { Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { runtimeMetrics, type RuntimeMetrics } from "./runtime/metrics.js";

/** What one scale-loop read saw of a Queue (operator/queue/scale-loop.ts). */
export interface QueueObservation {
  /** Pending plus in-flight tasks, plus delayed ones now due (and runnable held ones under flow control). */
  backlog: number;
  /** Worker replicas the autoscaler wants (the Deployment's replicas when it does not decide). */
  desiredReplicas: number;
  /** Worker pods ready (the Deployment's `status.readyReplicas`). */
  readyReplicas: number;
  /** Tasks waiting for their countdown/eta in the delay stream. */
  delayed: number;
  /** Messages in the dead-letter stream. */
  deadLetters: number;
  /** Age of the oldest message in the work stream (waiting, running or waiting for a retry), seconds; 0 when empty. */
  oldestTaskAgeSeconds: number;
}

/** The operator's metric handles, on one registry. */
export interface OperatorMetrics extends RuntimeMetrics {
  readonly registry: Registry;
  /** `celeriac_queue_backlog{namespace,queue}`, tasks. */
  readonly queueBacklog: Gauge<"namespace" | "queue">;
  /** `celeriac_queue_desired_replicas{namespace,queue}`, replicas. */
  readonly queueDesiredReplicas: Gauge<"namespace" | "queue">;
  /** `celeriac_queue_ready_replicas{namespace,queue}`, replicas. */
  readonly queueReadyReplicas: Gauge<"namespace" | "queue">;
  /** `celeriac_queue_delayed_tasks{namespace,queue}`, tasks. */
  readonly queueDelayedTasks: Gauge<"namespace" | "queue">;
  /** `celeriac_queue_dead_letter_messages{namespace,queue}`, messages. */
  readonly queueDeadLetters: Gauge<"namespace" | "queue">;
  /** `celeriac_queue_oldest_task_age_seconds{namespace,queue}`, seconds. */
  readonly queueOldestTaskAge: Gauge<"namespace" | "queue">;
  /** `celeriac_schedule_lateness_seconds`, seconds. */
  readonly scheduleLateness: Histogram;
}

/**
 * Creates the operator metrics on `registry` (a new one by default), plus Node's default process
 * metrics (`celeriac_operator_*`) when `defaults` is true.
 */
export function createOperatorMetrics(defaults = false, registry: Registry = new Registry()): OperatorMetrics {
  if (defaults) collectDefaultMetrics({ register: registry, prefix: "celeriac_operator_" });
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ["namespace", "queue"] as const, registers: [registry] });
  return {
    ...runtimeMetrics(registry),
    registry,
    queueBacklog: gauge("celeriac_queue_backlog", "Pending plus in-flight tasks of a queue (plus delayed ones now due), in tasks, as last read."),
    queueDesiredReplicas: gauge("celeriac_queue_desired_replicas", "Worker replicas the autoscaler wants, in replicas."),
    queueReadyReplicas: gauge("celeriac_queue_ready_replicas", "Worker pods of a queue that are ready, in replicas."),
    queueDelayedTasks: gauge("celeriac_queue_delayed_tasks", "Tasks waiting for their countdown or eta, in tasks."),
    queueDeadLetters: gauge("celeriac_queue_dead_letter_messages", "Messages in a queue's dead-letter stream, in messages."),
    queueOldestTaskAge: gauge("celeriac_queue_oldest_task_age_seconds", "Age of the oldest message in a queue's work stream (waiting, running or waiting for a retry), in seconds; 0 when empty."),
    scheduleLateness: new Histogram({
      name: "celeriac_schedule_lateness_seconds",
      help: "Delay from a Schedule run's nominal time to its Task's creation, in seconds.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
  };
}

/** Sets every `celeriac_queue_*` gauge of Queue `namespace/queue` from one read. */
export function observeQueue(m: OperatorMetrics, namespace: string, queue: string, o: QueueObservation): void {
  const l = { namespace, queue };
  m.queueBacklog.set(l, o.backlog);
  m.queueDesiredReplicas.set(l, o.desiredReplicas);
  m.queueReadyReplicas.set(l, o.readyReplicas);
  m.queueDelayedTasks.set(l, o.delayed);
  m.queueDeadLetters.set(l, o.deadLetters);
  m.queueOldestTaskAge.set(l, o.oldestTaskAgeSeconds);
}

/** Removes the `celeriac_queue_*` series of Queue `namespace/queue` (deleted, or no longer read). */
export function forgetQueue(m: OperatorMetrics, namespace: string, queue: string): void {
  const l = { namespace, queue };
  for (const g of [m.queueBacklog, m.queueDesiredReplicas, m.queueReadyReplicas, m.queueDelayedTasks, m.queueDeadLetters, m.queueOldestTaskAge]) g.remove(l);
}
