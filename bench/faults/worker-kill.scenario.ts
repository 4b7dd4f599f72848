/**
 * Fault scenario `worker-kill`: 1,000 SDK tasks (`client.enqueue` of `faults.work`, 200 ms each) on
 * 3 `celeriac worker` processes (concurrency 8, ack wait 2 s); every 600 ms one worker is SIGKILLed
 * and started again, 10 times. Counts: results from the results bucket (lost = enqueued without a
 * final record), executions and duplicates from the per-execution log, each duplicate explained
 * when the execution before it was on the killed process when it died.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { connect as natsConnect } from "@nats-io/transport-node";
import { connect } from "../../client/index.js";
import { queueNames } from "../../api/naming.js";
import { startNatsServer, uniqueQueue } from "../../test/helpers/nats-server.js";
import type { TracedRecord } from "../../worker/attribution.js";
import type { FaultRow, FaultScenario } from "./report.js";
import { analyseExecutions, describeErrors, enqueueMany, FaultLog, lostTasks, phaseCounts, pollUntil, readExecLog, readResults, scenarioDir, startWorkerProcess, type WorkerProcess } from "./harness.js";

const TASKS = 1000;
const WORKERS = 3;
const KILLS = 10;
const KILL_EVERY_MS = 600;
const TASK_MS = 200;

const scenario: FaultScenario = {
  name: "worker-kill",
  async run({ deadlineMs, log }) {
    const t0 = Date.now();
    const end = t0 + deadlineMs - 15_000; // leave time to clean up
    const dir = scenarioDir("worker-kill");
    const execLog = join(dir, "exec.log");
    const faults = new FaultLog();
    const srv = await startNatsServer();
    const queue = uniqueQueue("wk");
    const workers: WorkerProcess[] = [];
    const client = await connect({ servers: srv.url, queue, queueSettings: { ackWaitSeconds: 2 } });
    const nc = await natsConnect({ servers: srv.url });
    try {
      const up = new Set<WorkerProcess>();
      const spawnWorker = async () => {
        const w = startWorkerProcess({ url: srv.url, queue, concurrency: 8, ackWaitSeconds: 2, execLog, faults });
        workers.push(w);
        await w.started();
        up.add(w);
        return w;
      };
      await Promise.all(Array.from({ length: WORKERS }, spawnWorker));
      log(`${WORKERS} workers up; enqueueing ${TASKS}`);
      const enq = await enqueueMany(client, TASKS, () => ["faults.work", [TASK_MS], {}, {}]);
      const ids = enq.handles.map((h) => h.id);
      log(`enqueued ${ids.length}, rejected ${TASKS - ids.length}; killing a worker every ${KILL_EVERY_MS} ms, ${KILLS} times`);
      // the replacement starts in the background (a worker takes ~1-2 s to start here), so the kills
      // keep coming while the tasks run; the victim is always a started worker
      let kills = 0;
      const restarts: Promise<unknown>[] = [];
      for (let i = 0; i < KILLS && Date.now() < end; i++) {
        await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
        const victim = await pollUntil("a started worker to kill", end, () => [...up].find((w) => w.alive()), 50);
        up.delete(victim);
        await victim.kill();
        kills++;
        restarts.push(spawnWorker());
      }
      await Promise.all(restarts);
      log(`${kills} kills done; waiting for every result`);
      const bucket = queueNames("default", queue).resultsBucket;
      let records = await readResults(nc, bucket, ids);
      await pollUntil("every task finished", end, async () => {
        records = await readResults(nc, bucket, ids);
        return lostTasks(ids, records).length === 0;
      }, 500).catch((err: Error) => log(`${err.message}: ${lostTasks(ids, records).length} unfinished`));
      const lost = lostTasks(ids, records);
      const phases = phaseCounts(records.values());
      const a = analyseExecutions(readExecLog(execLog), faults.list());
      log(`phases ${JSON.stringify(phases)}; executions ${a.executions}; duplicates ${a.duplicates} (${a.duplicatesExplained} explained)`);
      const traced = [...records.values()] as TracedRecord[];
      log(`tasks that lost a worker: ${traced.filter((r) => (r.delivery?.workerLost ?? 0) > 0).length}; of them with an attempt counted (lost while alone): ${traced.filter((r) => (r.delivery?.workerLostAlone ?? 0) > 0).length}`);
      for (const u of a.unexplained.slice(0, 5)) log(`unexplained duplicate: ${JSON.stringify(u)}`);
      const failed = phases.Failed ?? 0;
      const errors = [describeErrors(enq.errors), failed ? `${failed} dead-lettered` : ""].filter((s) => s && s !== "none");
      const row: FaultRow = {
        scenario: `SDK, ${WORKERS} workers, worker SIGKILL ×${kills}`,
        tasks: TASKS,
        faults: `${faults.count("process", "worker")} × worker SIGKILL (restarted)`,
        lost: lost.length,
        duplicates: a.duplicates,
        duplicatesExplained: a.duplicatesExplained,
        errorsSurfaced: errors.length ? errors.join("; ") : "none",
        seconds: (Date.now() - t0) / 1000,
      };
      return row;
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await client.close().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await srv.cleanup();
      if (!process.env.CELERIAC_FAULTS_KEEP) rmSync(dir, { recursive: true, force: true }); // the exec log; keep it with CELERIAC_FAULTS_KEEP=1
    }
  },
};

export default scenario;
