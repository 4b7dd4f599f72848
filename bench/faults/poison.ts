/**
 * The poison-task fault scenarios (`poison`, `poison-held`), one body with its sizes as options.
 *
 * Scenario `poison`: a poison task (`faults.poison`, kills its own worker process with
 * SIGKILL every time, maxAttempts 3) enqueued among 200 innocent tasks (`faults.work`, 100 ms,
 * maxAttempts 1: a single crash counted against one of them would dead-letter it) on 3
 * `celeriac worker` processes with concurrency 4; a dead worker is started again (bounded). Passes
 * when the poison task is dead-lettered after exactly maxAttempts attributed crashes and every
 * innocent Succeeded on attempt 1. Lost = innocents not Succeeded (they must lose nothing) plus the
 * poison task if it did not end dead-lettered; duplicates are explained by the process deaths (the
 * poison's own, and the innocents in flight beside its first, uncounted, crash).
 *
 * Scenario `poison-held` (found by a new-user trial): one worker, a poison task with maxAttempts 12
 * and slow innocents (maxAttempts 1) pulled beside it. After each crash the innocents come back as
 * suspects too and wait, held by the worker, to run alone while the poison task runs alone and kills
 * the process again; those losses must not count against them.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { connect as natsConnect } from "@nats-io/transport-node";
import { connect } from "../../client/index.js";
import { queueNames } from "../../api/naming.js";
import type { TracedRecord } from "../../worker/attribution.js";
import { startNatsServer, uniqueQueue } from "../../test/helpers/nats-server.js";
import type { FaultRow, FaultScenario } from "./report.js";
import { analyseExecutions, describeErrors, enqueueMany, FaultLog, phaseCounts, pollUntil, readExecLog, readResults, scenarioDir, startWorkerProcess, type WorkerProcess } from "./harness.js";

/** Sizes of a poison scenario. */
export interface PoisonOptions {
  /** Scenario name (the file name without `.scenario.ts`). */
  name: string;
  /** Innocent tasks (maxAttempts 1). */
  innocents: number;
  /** How long each innocent runs, in ms. */
  innocentMs: number;
  /** Worker processes (concurrency 4 each). */
  workers: number;
  /** The poison task's maxAttempts. */
  maxAttempts: number;
  /** Worker restarts allowed in all (bounds the run). */
  maxRestarts: number;
  /** Innocents enqueued before the poison task (the rest after it). */
  poisonAfter: number;
}

/** A poison scenario of the given sizes. */
export function poisonScenario(o: PoisonOptions): FaultScenario {
  const { innocents: INNOCENTS, workers: WORKERS, maxAttempts: MAX_ATTEMPTS, maxRestarts: MAX_RESTARTS, innocentMs } = o;
  return {
  name: o.name,
  async run({ deadlineMs, log }) {
    const t0 = Date.now();
    const end = t0 + deadlineMs - 15_000;
    const dir = scenarioDir(o.name);
    const execLog = join(dir, "exec.log");
    const faults = new FaultLog();
    const srv = await startNatsServer();
    const queue = uniqueQueue("px");
    const pool: WorkerProcess[] = [];
    const all: WorkerProcess[] = [];
    const client = await connect({ servers: srv.url, queue, queueSettings: { ackWaitSeconds: 2 } });
    const nc = await natsConnect({ servers: srv.url });
    try {
      const spawn = () => {
        const w = startWorkerProcess({ url: srv.url, queue, concurrency: 4, ackWaitSeconds: 2, execLog, faults });
        all.push(w);
        return w;
      };
      for (let i = 0; i < WORKERS; i++) pool.push(spawn());
      await Promise.all(pool.map((w) => w.started()));
      // the poison task goes in after the first `poisonAfter` innocents, so it is pulled beside some of them
      const innocentOpts = { retry: { maxAttempts: 1 } };
      const first = await enqueueMany(client, Math.min(o.poisonAfter, INNOCENTS), () => ["faults.work", [innocentMs], {}, innocentOpts]);
      const poison = await client.enqueue("faults.poison", [], {}, { retry: { maxAttempts: MAX_ATTEMPTS } });
      const rest = await enqueueMany(client, INNOCENTS - Math.min(o.poisonAfter, INNOCENTS), () => ["faults.work", [innocentMs], {}, innocentOpts]);
      const ids = [...first.handles, ...rest.handles].map((h) => h.id);
      const errors = new Map([...first.errors, ...rest.errors]);
      log(`enqueued ${ids.length} innocents and the poison task ${poison.id}`);
      const bucket = queueNames("default", queue).resultsBucket;
      let restarts = 0;
      let records = new Map<string, TracedRecord>();
      const finished = (r: TracedRecord | undefined) => r?.status.phase === "Succeeded" || r?.status.phase === "Failed";
      await pollUntil("every task finished", end, async () => {
        for (let i = 0; i < pool.length; i++) {
          if (!pool[i]!.alive() && restarts < MAX_RESTARTS) {
            restarts++;
            pool[i] = spawn();
          }
        }
        records = await readResults(nc, bucket, [poison.id, ...ids]);
        return [poison.id, ...ids].every((id) => finished(records.get(id)));
      }, 200).catch((err: Error) => log(err.message));
      const p = records.get(poison.id);
      const innocents = ids.map((id) => records.get(id));
      const notSucceeded = innocents.filter((r) => r?.status.phase !== "Succeeded").length;
      const attemptsUsed = innocents.filter((r) => (r?.status.attempts ?? 0) > 1).length;
      const hit = innocents.filter((r) => (r?.delivery?.workerLost ?? 0) > 0).length;
      const poisonOk = p?.status.phase === "Failed" && p.status.deadLettered === true && p.status.attempts === MAX_ATTEMPTS;
      const a = analyseExecutions(readExecLog(execLog), faults.list());
      const poisonRuns = a.byId.get(poison.id)?.length ?? 0;
      log(`poison: ${p?.status.phase} after ${p?.status.attempts} attempts, ${poisonRuns} runs, ${JSON.stringify(p?.delivery)}: ${p?.status.error?.message}`);
      log(`innocents: ${JSON.stringify(phaseCounts(innocents.filter((r): r is TracedRecord => !!r)))}; ${hit} lost a worker beside the poison task, ${attemptsUsed} had an attempt counted; worker restarts ${restarts}`);
      for (const u of a.unexplained.slice(0, 5)) log(`unexplained duplicate: ${JSON.stringify(u)}`);
      const surfaced = [`poison task dead-lettered after ${p?.status.attempts} attempts (${poisonRuns} runs): ${p?.status.error?.type ?? "?"}`];
      if (describeErrors(errors) !== "none") surfaced.push(describeErrors(errors));
      const row: FaultRow = {
        scenario: `SDK, poison task beside ${INNOCENTS} innocents, ${WORKERS} workers × concurrency 4, maxAttempts ${MAX_ATTEMPTS}`,
        tasks: INNOCENTS + 1,
        faults: `${faults.count("process", "worker")} × worker killed by the poison task (restarted); ${hit} innocents in flight beside it`,
        lost: notSucceeded + (poisonOk ? 0 : 1),
        duplicates: a.duplicates,
        duplicatesExplained: a.duplicatesExplained,
        errorsSurfaced: surfaced.join("; "),
        seconds: (Date.now() - t0) / 1000,
      };
      return row;
    } finally {
      await Promise.all(all.map((w) => w.kill()));
      await client.close().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await srv.cleanup();
      if (!process.env.CELERIAC_FAULTS_KEEP) rmSync(dir, { recursive: true, force: true }); // the exec log; keep it with CELERIAC_FAULTS_KEEP=1
    }
  },
  };
}
