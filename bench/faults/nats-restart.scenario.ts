/**
 * Fault scenario `nats-restart`: 1,000 SDK tasks (`faults.work`, 50 ms each) enqueued at a steady
 * 100/s on 3 `celeriac worker` processes (concurrency 8, ack wait 2 s), while nats-server is
 * restarted twice: at 2.5 s stopped with SIGTERM and started again at once, at 6 s SIGKILLed and
 * started again 2 s later. Enqueues go on during both outages: each one either resolves once the
 * client has reconnected, or rejects with a clear error (the client's `enqueueTimeoutMs`, 10 s here,
 * longer than the outages) — rejections are counted as errors surfaced, not as lost. Lost = an
 * accepted enqueue without a final record; duplicates are explained when the execution before was
 * in flight during an outage (its ack or status write could be lost).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { connect as natsConnect } from "@nats-io/transport-node";
import { connect } from "../../client/index.js";
import { queueNames } from "../../api/naming.js";
import { startNatsServer, uniqueQueue } from "../../test/helpers/nats-server.js";
import type { FaultRow, FaultScenario } from "./report.js";
import { analyseExecutions, describeErrors, enqueueMany, FaultLog, lostTasks, phaseCounts, pollUntil, readExecLog, readResults, scenarioDir, startWorkerProcess, type WorkerProcess } from "./harness.js";

const TASKS = 1000;
const WORKERS = 3;
const TASK_MS = 50;
const ENQUEUE_EVERY_MS = 10;
const ENQUEUE_TIMEOUT_MS = 10_000;
const SIGKILL_DOWN_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const scenario: FaultScenario = {
  name: "nats-restart",
  async run({ deadlineMs, log }) {
    const t0 = Date.now();
    const end = t0 + deadlineMs - 15_000;
    const dir = scenarioDir("nats-restart");
    const execLog = join(dir, "exec.log");
    const faults = new FaultLog();
    const srv = await startNatsServer();
    const queue = uniqueQueue("nr");
    const workers: WorkerProcess[] = [];
    const client = await connect({ servers: srv.url, queue, queueSettings: { ackWaitSeconds: 2 }, enqueueTimeoutMs: ENQUEUE_TIMEOUT_MS });
    try {
      const ws = Array.from({ length: WORKERS }, () => startWorkerProcess({ url: srv.url, queue, concurrency: 8, ackWaitSeconds: 2, execLog, faults }));
      workers.push(...ws);
      await Promise.all(ws.map((w) => w.started()));
      log(`${WORKERS} workers up; enqueueing ${TASKS} at ${1000 / ENQUEUE_EVERY_MS}/s`);
      const tStart = Date.now();
      const enqueued = enqueueMany(client, TASKS, () => ["faults.work", [TASK_MS], {}, {}], 500, ENQUEUE_EVERY_MS);
      const outages = (async () => {
        await sleep(tStart + 2500 - Date.now());
        let back = faults.outageBegins("nats", "SIGTERM, restarted at once");
        await srv.stop();
        await srv.restart();
        back();
        log("nats-server restarted after SIGTERM");
        await sleep(tStart + 6000 - Date.now());
        back = faults.outageBegins("nats", `SIGKILL, restarted after ${SIGKILL_DOWN_MS / 1000} s`);
        await srv.kill();
        await sleep(SIGKILL_DOWN_MS);
        await srv.restart();
        back();
        log("nats-server restarted after SIGKILL");
      })();
      const [enq] = await Promise.all([enqueued, outages]);
      const ids = enq.handles.map((h) => h.id);
      const rel = (t: number) => ((t - tStart) / 1000).toFixed(1);
      for (const f of faults.list()) if (f.kind === "outage") log(`outage ${f.how}: ${rel(f.from)}-${rel(f.to)} s`);
      if (enq.rejected.length) log(`rejected enqueues (made-rejected, s): ${enq.rejected.slice(0, 40).map((r) => `${rel(r.startMs)}-${rel(r.endMs)}`).join(" ")}`);
      log(`enqueued ${ids.length}, rejected ${TASKS - ids.length} ${JSON.stringify(Object.fromEntries(enq.firstMessages))}`);
      const nc = await natsConnect({ servers: srv.url });
      try {
        const bucket = queueNames("default", queue).resultsBucket;
        let records = await readResults(nc, bucket, ids);
        await pollUntil("every accepted task finished", end, async () => {
          records = await readResults(nc, bucket, ids);
          return lostTasks(ids, records).length === 0;
        }, 500).catch((err: Error) => log(`${err.message}: ${lostTasks(ids, records).length} unfinished`));
        const lost = lostTasks(ids, records);
        const phases = phaseCounts(records.values());
        const events = readExecLog(execLog);
        const a = analyseExecutions(events, faults.list());
        const accepted = new Set(ids);
        const ranRejected = new Set(events.filter((e) => !accepted.has(e.id)).map((e) => e.id)).size;
        log(`phases ${JSON.stringify(phases)}; executions ${a.executions}; duplicates ${a.duplicates} (${a.duplicatesExplained} explained); rejected yet stored and run: ${ranRejected}`);
        for (const u of a.unexplained.slice(0, 5)) log(`unexplained duplicate: ${JSON.stringify(u)}`);
        const failed = phases.Failed ?? 0;
        const errors = [describeErrors(enq.errors), failed ? `${failed} dead-lettered` : "", ranRejected ? `${ranRejected} of the rejected ran (stored, ack lost)` : ""].filter((s) => s && s !== "none");
        const row: FaultRow = {
          scenario: "SDK, nats-server restarted mid-run, enqueueing through the outages",
          tasks: TASKS,
          faults: "nats-server SIGTERM + restart; SIGKILL + restart 2 s later",
          lost: lost.length,
          duplicates: a.duplicates,
          duplicatesExplained: a.duplicatesExplained,
          errorsSurfaced: errors.length ? errors.join("; ") : `none (${ids.length} enqueues, all confirmed)`,
          seconds: (Date.now() - t0) / 1000,
        };
        return row;
      } finally {
        await nc.close().catch(() => undefined);
      }
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await client.close().catch(() => undefined);
      await srv.cleanup();
      if (!process.env.CELERIAC_FAULTS_KEEP) rmSync(dir, { recursive: true, force: true }); // the exec log; keep it with CELERIAC_FAULTS_KEEP=1
    }
  },
};

export default scenario;
