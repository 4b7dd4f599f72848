/**
 * Fault scenario `operator-kill` (issue 13 item 4): 200 Task objects created at 10 a second on the
 * local platform while the operator is SIGKILLed twice (the platform restarts it; a new leader takes
 * the 3 s lease) and two worker pods are force-deleted (grace 0: the kubelet SIGKILLs the worker and
 * the Deployment replaces the pod). Every Task must reach a terminal phase that matches its
 * executions and its results record; a duplicate is explained only by a worker death that hit the
 * earlier execution in flight (an operator death explains none: it never runs a handler).
 */
import type { FaultRow, FaultScenario } from "./report.js";
import {
  applyQueueAndWait, busyWorkerPods, createTasks, crOutcome, crFaultRow, faultQueue, forceDeletePod, killOperator, startCrEnv, waitTerminal, workerPods,
} from "./cr-path.js";
import { pollUntil } from "./harness.js";

const QUEUE = "opkill";
const TASKS = 200;
const REPLICAS = 2;
/** Fault at create index → what. */
const PLAN: ReadonlyMap<number, "operator" | "pod"> = new Map([
  [30, "operator"],
  [70, "pod"],
  [110, "operator"],
  [150, "pod"],
]);

const scenario: FaultScenario = {
  name: "operator-kill",
  async run({ deadlineMs, log }): Promise<FaultRow> {
    const t0 = Date.now();
    const end = t0 + deadlineMs;
    const env = await startCrEnv("operator-kill");
    try {
      await applyQueueAndWait(env, faultQueue(QUEUE, env.execLog, { replicas: REPLICAS, concurrency: 4, ackWaitSeconds: 3 }), REPLICAS, Math.min(end, Date.now() + 90_000));
      log(`queue ${QUEUE} ready with ${REPLICAS} workers`);
      const injected: Array<Promise<void>> = [];
      const faultErrors: string[] = [];
      let operatorKills = 0;
      let podDeletes = 0;
      const inject = async (i: number): Promise<void> => {
        const what = PLAN.get(i);
        if (what === "operator") {
          operatorKills++;
          log(`task ${i}: SIGKILL operator`);
          // Not awaited: Tasks keep being created while no operator leads.
          injected.push(killOperator(env, Math.min(end, Date.now() + 60_000)).catch((e: unknown) => void faultErrors.push(String(e))));
        } else if (what === "pod") {
          // A pod with 3 of its 4 handler slots busy (waiting up to 5 s; else any busy pod, else any pod), so the fault cuts executions off.
          const busy = (min: number) => pollUntil("a busy worker pod", Date.now() + 5000, async () => (await busyWorkerPods(env, QUEUE, min))[0], 20).catch(() => undefined);
          const victim = (await busy(3)) ?? (await busy(1)) ?? (await workerPods(env.kc, QUEUE))[0];
          if (!victim) {
            faultErrors.push(`task ${i}: no running worker pod to delete`);
            return;
          }
          podDeletes++;
          log(`task ${i}: force-delete pod ${victim.name} (pid ${victim.pid})`);
          await forceDeletePod(env, victim);
        }
      };
      const created = await createTasks(env, { queue: QUEUE, prefix: "opk", n: TASKS, workMs: 800, perSecond: 10, deadline: end - 60_000, during: inject });
      await Promise.all(injected);
      if (faultErrors.length) throw new Error(`operator-kill: a fault could not be injected: ${faultErrors.join("; ")}`);
      log(`created ${created.uids.size} Tasks (${[...created.errors.values()].reduce((a, b) => a + b, 0)} rejected); waiting for terminal phases`);
      const states = await waitTerminal(env.kc, created.uids.keys(), end - 5_000);
      const out = await crOutcome(env, QUEUE, created, states);
      for (const n of out.lost) log(`lost: ${n} phase ${states.get(n)?.phase ?? "none"}`);
      for (const n of out.mismatched) log(`phase does not match executions/record: ${n} (${states.get(n)?.phase})`);
      for (const u of out.analysis.unexplained) log(`unexplained duplicate of ${u.repeat.id}: previous on pid ${u.previous.pid} ${u.previous.start}–${u.previous.end ?? "?"}, repeat on pid ${u.repeat.pid} at ${u.repeat.start}`);
      return crFaultRow({
        scenario: `${TASKS} Task CRs, operator SIGKILL ×${operatorKills}, worker pods force-deleted ×${podDeletes}`,
        faults: `${operatorKills} × operator SIGKILL; ${podDeletes} × worker pod force-delete (grace 0), ${out.cutOff} executions cut off`,
        created,
        out,
        t0,
      });
    } finally {
      await env.stop();
    }
  },
};

export default scenario;
