/**
 * The controller runtime's Prometheus metrics (names follow controller-runtime with our prefix),
 * created once per prom-client registry so several controllers can share one registry.
 */
import { Counter, Gauge, Histogram, register as defaultRegistry } from "prom-client";
import type { Registry } from "prom-client";

/** The runtime's metric objects in one registry. */
export interface RuntimeMetrics {
  /** `celeriac_reconcile_total{controller,result}`; result = success | error | requeue | terminal. */
  reconcileTotal: Counter<"controller" | "result">;
  /** `celeriac_reconcile_time_seconds{controller}`: duration of each reconcile call, seconds. */
  reconcileTime: Histogram<"controller">;
  /** `celeriac_workqueue_depth{name}`: keys ready in a work queue. */
  workqueueDepth: Gauge<"name">;
  /** `celeriac_leader_election_is_leader{lease}`: 1 while this replica holds the lease. */
  isLeader: Gauge<"lease">;
}

const byRegistry = new WeakMap<Registry, RuntimeMetrics>();

/**
 * Returns the runtime metrics registered in `registry` (prom-client's global registry by default),
 * registering them on first use.
 */
export function runtimeMetrics(registry: Registry = defaultRegistry): RuntimeMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const m: RuntimeMetrics = {
    reconcileTotal: new Counter({
      name: "celeriac_reconcile_total",
      help: "Reconcile calls per controller and result (success, error, requeue, terminal).",
      labelNames: ["controller", "result"] as const,
      registers: [registry],
    }),
    reconcileTime: new Histogram({
      name: "celeriac_reconcile_time_seconds",
      help: "Duration of reconcile calls in seconds.",
      labelNames: ["controller"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    workqueueDepth: new Gauge({
      name: "celeriac_workqueue_depth",
      help: "Keys ready in the work queue.",
      labelNames: ["name"] as const,
      registers: [registry],
    }),
    isLeader: new Gauge({
      name: "celeriac_leader_election_is_leader",
      help: "1 while this replica holds the leader lease, else 0.",
      labelNames: ["lease"] as const,
      registers: [registry],
    }),
  };
  byRegistry.set(registry, m);
  return m;
}
