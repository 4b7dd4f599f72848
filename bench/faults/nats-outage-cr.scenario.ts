/**
 * Fault scenario `nats-outage-cr` (issue 13 item 4; issue 10's case): a Queue with a 3 s duplicate
 * window; 40 Task objects before, 60 during and 40 after a nats-server outage of 10 s (SIGKILL, then
 * a restart on the same store), so the outage outlasts the window the operator could rely on for
 * JetStream's de-duplication. Each Task must run exactly once or have its duplicate explained by the
 * outage hitting the earlier execution in flight; none may stay Pending. While NATS is down the Tasks
 * created say so (Accepted=False NatsUnavailable): that is the error the user sees, counted.
 */
import type { FaultRow, FaultScenario } from "./report.js";
import {
  applyQueueAndWait, createTasks, crOutcome, crFaultRow, faultQueue, startCrEnv, taskStates, waitTerminal, type CreatedTasks,
} from "./cr-path.js";

const QUEUE = "outage";
const REPLICAS = 2;
const DUPLICATE_WINDOW = "3s";
const OUTAGE_MS = 10_000;

function merge(parts: CreatedTasks[]): CreatedTasks {
  const uids = new Map<string, string>();
  const errors = new Map<string, number>();
  for (const p of parts) {
    for (const [k, v] of p.uids) uids.set(k, v);
    for (const [k, v] of p.errors) errors.set(k, (errors.get(k) ?? 0) + v);
  }
  return { uids, errors };
}

const scenario: FaultScenario = {
  name: "nats-outage-cr",
  async run({ deadlineMs, log }): Promise<FaultRow> {
    const t0 = Date.now();
    const end = t0 + deadlineMs;
    const env = await startCrEnv("nats-outage-cr");
    try {
      await applyQueueAndWait(env, faultQueue(QUEUE, env.execLog, { replicas: REPLICAS, concurrency: 4, ackWaitSeconds: 3, duplicateWindow: DUPLICATE_WINDOW }), REPLICAS, Math.min(end, Date.now() + 90_000));
      log(`queue ${QUEUE} ready (duplicateWindow ${DUPLICATE_WINDOW})`);
      const createDeadline = end - 60_000;
      const before = await createTasks(env, { queue: QUEUE, prefix: "pre", n: 40, workMs: 300, perSecond: 10, deadline: createDeadline });
      log("SIGKILL nats-server");
      const back = env.faults.outageBegins("nats", "SIGKILL, restarted after 10 s");
      await env.platform.stopNats(true);
      const downAt = Date.now();
      const during = await createTasks(env, { queue: QUEUE, prefix: "during", n: 60, workMs: 300, perSecond: 60_000 / (OUTAGE_MS - 2000), deadline: Math.min(createDeadline, downAt + OUTAGE_MS - 1000) });
      await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now())));
      const seen = await taskStates(env.kc);
      const waiting = [...during.uids.keys()].filter((n) => seen.get(n)?.notAccepted === "NatsUnavailable").length;
      // Nothing can be published while NATS is down, so no Task created meanwhile may show a phase past Pending.
      const pastPending = [...during.uids.keys()].filter((n) => seen.get(n)?.phase !== undefined && seen.get(n)?.phase !== "Pending").length;
      const shown = new Map<string, number>();
      for (const n of during.uids.keys()) {
        const k = `${seen.get(n)?.phase ?? "no status"}${seen.get(n)?.notAccepted ? `/${seen.get(n)?.notAccepted}` : ""}`;
        shown.set(k, (shown.get(k) ?? 0) + 1);
      }
      log(`after ${OUTAGE_MS} ms down: ${waiting}/${during.uids.size} Tasks say NatsUnavailable, ${pastPending} show a phase past Pending (${[...shown].map(([k, v]) => `${v} ${k}`).join(", ")})`);
      await env.platform.startNats();
      back();
      log("nats-server back");
      const after = await createTasks(env, { queue: QUEUE, prefix: "post", n: 40, workMs: 300, perSecond: 10, deadline: createDeadline });
      const created = merge([before, during, after]);
      const states = await waitTerminal(env.kc, created.uids.keys(), end - 5_000);
      // An execution counts as hit by the outage only if it overlapped it (2 s before, 1 s after for reconnecting acks):
      // a Task published twice after NATS came back is not explained by it.
      const out = await crOutcome(env, QUEUE, created, states, { beforeOutageMs: 2000, afterOutageMs: 1000 });
      for (const n of out.lost) log(`lost: ${n} phase ${states.get(n)?.phase ?? "none"}${states.get(n)?.notAccepted ? ` (${states.get(n)?.notAccepted})` : ""}`);
      for (const n of out.mismatched) log(`phase does not match executions/record: ${n} (${states.get(n)?.phase})`);
      const nameOf = new Map([...created.uids].map(([n, u]) => [u, n]));
      for (const [id, runs] of out.analysis.byId) {
        if (runs.length < 2) continue;
        log(`ran ${runs.length}×: ${nameOf.get(id) ?? id}: ${runs.map((r) => `${r.start - downAt}..${r.end === undefined ? "cut" : r.end - downAt} ms`).join(", ")} (relative to NATS going down)`);
      }
      for (const u of out.analysis.unexplained) log(`unexplained duplicate of ${u.repeat.id}: previous ${u.previous.start}–${u.previous.end ?? "?"}, repeat at ${u.repeat.start}`);
      const extra = [`${waiting} Task Accepted=False NatsUnavailable while down`];
      if (pastPending > 0) extra.push(`${pastPending} Task shown past Pending while NATS was down (wrong: nothing was published)`);
      return crFaultRow({
        scenario: `NATS outage ${OUTAGE_MS / 1000} s > duplicateWindow ${DUPLICATE_WINDOW}, Task CRs applied during it`,
        faults: `1 × nats-server SIGKILL, down ${OUTAGE_MS / 1000} s (${during.uids.size} Tasks created meanwhile)`,
        created,
        out,
        t0,
        extraErrors: extra,
      });
    } finally {
      await env.stop();
    }
  },
};

export default scenario;
