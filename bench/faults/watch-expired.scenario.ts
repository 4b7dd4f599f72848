/**
 * Fault scenario `watch-expired` (issue 13 item 4): 200 Task objects created at 10 a second while
 * the API server's watch history is compacted every second (the in-memory server's fault hook,
 * `POST /debug/celeriac/compact`): every open watch — the operator's informers, the kubelet's — ends
 * with ERROR 410 Expired, and every second compaction is doubled 30 ms later so a re-watch from the
 * just-listed resourceVersion expires too. The operator must relist each time and miss no Task:
 * every Task reaches a terminal phase matching its executions. No process is hit, so any duplicate
 * is unexplained.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { FaultRow, FaultScenario } from "./report.js";
import { applyQueueAndWait, compactWatchHistory, createTasks, crOutcome, crFaultRow, faultQueue, startCrEnv, waitTerminal, type CrEnv } from "./cr-path.js";

const QUEUE = "expiry";
const TASKS = 200;
const REPLICAS = 2;

/** How often the operators logged a relist of their Task informer after a 410 (from logs/operator-*.log). */
function taskInformerRelists(env: CrEnv): number {
  const logs = join(env.dir, "logs");
  let n = 0;
  for (const f of readdirSync(logs).filter((x) => /^operator-\d+\.log$/.test(x))) {
    for (const line of readFileSync(join(logs, f), "utf8").split("\n")) {
      if (line.includes("Informer watch expired, relisting") && line.includes('"informer":"tasks"')) n++;
    }
  }
  return n;
}

const scenario: FaultScenario = {
  name: "watch-expired",
  async run({ deadlineMs, log }): Promise<FaultRow> {
    const t0 = Date.now();
    const end = t0 + deadlineMs;
    const env = await startCrEnv("watch-expired");
    try {
      await applyQueueAndWait(env, faultQueue(QUEUE, env.execLog, { replicas: REPLICAS, concurrency: 4 }), REPLICAS, Math.min(end, Date.now() + 90_000));
      log(`queue ${QUEUE} ready`);
      const relistsBefore = taskInformerRelists(env);
      let compactions = 0;
      let watchesEnded = 0;
      const compact = async (): Promise<void> => {
        compactions++;
        watchesEnded += await compactWatchHistory(env);
      };
      const created = await createTasks(env, {
        queue: QUEUE,
        prefix: "exp",
        n: TASKS,
        workMs: 200,
        perSecond: 10,
        deadline: end - 60_000,
        during: async (i) => {
          if (i % 10 !== 5) return;
          await compact();
          if (i % 20 === 15) {
            await new Promise((r) => setTimeout(r, 30));
            await compact();
          }
        },
      });
      log(`created ${created.uids.size} Tasks; ${compactions} compactions ended ${watchesEnded} watches`);
      const states = await waitTerminal(env.kc, created.uids.keys(), end - 5_000);
      const out = await crOutcome(env, QUEUE, created, states);
      const relists = taskInformerRelists(env) - relistsBefore;
      for (const n of out.lost) log(`lost (missed): ${n} phase ${states.get(n)?.phase ?? "none"}`);
      for (const n of out.mismatched) log(`phase does not match executions/record: ${n} (${states.get(n)?.phase})`);
      for (const u of out.analysis.unexplained) log(`unexplained duplicate of ${u.repeat.id}: previous ${u.previous.start}–${u.previous.end ?? "?"}, repeat at ${u.repeat.start}`);
      if (relists === 0) throw new Error("watch-expired: the operator's Task informer never logged a relist: the fault did not hit it");
      return crFaultRow({
        scenario: `${TASKS} Task CRs, API server watch expired (410) ×${compactions}`,
        faults: `${compactions} × watch history compacted (${watchesEnded} open watches ended with 410); operator Task informer relisted ${relists}×`,
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
