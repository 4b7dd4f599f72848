// The operator's metrics (operator/metrics.ts): one read of a Queue sets every celeriac_queue_*
// gauge, forgetting the Queue removes its series, and the runtime's metrics share the registry.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createOperatorMetrics, forgetQueue, observeQueue } from "../../operator/metrics.js";

describe("when the operator's metrics observe a queue", () => {
  it("sets each queue gauge from the read, with its unit in the name", async () => {
    const m = createOperatorMetrics();
    observeQueue(m, "team-a", "emails", { backlog: 12, desiredReplicas: 3, readyReplicas: 2, delayed: 4, deadLetters: 1, oldestTaskAgeSeconds: 42.5 });
    const text = await m.registry.metrics();
    for (const [name, v] of [
      ["celeriac_queue_backlog", 12], ["celeriac_queue_desired_replicas", 3], ["celeriac_queue_ready_replicas", 2],
      ["celeriac_queue_delayed_tasks", 4], ["celeriac_queue_dead_letter_messages", 1], ["celeriac_queue_oldest_task_age_seconds", 42.5],
    ] as const) assert.match(text, new RegExp(`^${name}\\{namespace="team-a",queue="emails"\\} ${v}$`, "m"), name);
  });

  it("removes the queue's series when it is forgotten, leaving the others", async () => {
    const m = createOperatorMetrics();
    const o = { backlog: 1, desiredReplicas: 1, readyReplicas: 1, delayed: 0, deadLetters: 0, oldestTaskAgeSeconds: 0 };
    observeQueue(m, "team-a", "gone", o);
    observeQueue(m, "team-a", "kept", o);
    forgetQueue(m, "team-a", "gone");
    const text = await m.registry.metrics();
    assert.doesNotMatch(text, /queue="gone"/);
    assert.match(text, /^celeriac_queue_ready_replicas\{namespace="team-a",queue="kept"\} 1$/m);
  });

  it("registers the runtime's and the schedules' metrics on the same registry", async () => {
    const m = createOperatorMetrics();
    m.scheduleLateness.observe(0.3);
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    for (const n of ["celeriac_reconcile_total", "celeriac_reconcile_time_seconds", "celeriac_workqueue_depth", "celeriac_leader_election_is_leader", "celeriac_schedule_lateness_seconds"]) assert.ok(names.includes(n), n);
  });
});
