/**
 * Prometheus metrics of a worker: `celeriac_tasks_total{queue,task,outcome}`,
 * `celeriac_task_duration_seconds{queue,task}` and `celeriac_tasks_in_flight{queue}`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Outcomes counted by `celeriac_tasks_total`. */
export type TaskOutcomeLabel = "succeeded" | "retried" | "failed" | "dead_lettered" | "cancelled" | "expired" | "timed_out" | "shutdown";

/** The worker's metric handles, on their own registry. */
export interface WorkerMetrics {
  readonly registry: Registry;
  readonly tasksTotal: Counter<"queue" | "task" | "outcome">;
  readonly taskDuration: Histogram<"queue" | "task">;
  readonly inFlight: Gauge<"queue">;
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
  };
}
