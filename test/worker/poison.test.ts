/**
 * Crash attribution with real worker processes (worker/attribution.ts): a poison task that kills its
 * worker process every time, running with concurrency > 1 beside innocent tasks, is dead-lettered
 * after maxAttempts crashes while it ran alone; the innocents beside it all succeed with their
 * attempts untouched, even with maxAttempts 1.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type CeleriacClient, type TaskHandle } from "../../client/index.js";
import type { TracedRecord } from "../../worker/attribution.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { events, startWorkerChild, workerStarted, type WorkerChild } from "./child.js";

const alive = (w: WorkerChild) => w.proc.exitCode === null && w.proc.signalCode === null;

describe("when a poison task kills its worker process beside innocent tasks", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  const dir = mkdtempSync(join(tmpdir(), "celeriac-poison-"));
  const children: WorkerChild[] = [];
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queueSettings: { ackWaitSeconds: 1 } });
  });
  after(async () => {
    for (const c of children) if (alive(c)) c.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited));
    await client.close();
    await srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [poisonTask, how] of [["test.poison", "SIGKILLs itself"], ["test.poison-exit", "calls process.exit"]] as const) {
    it(`dead-letters the poison task (it ${how}) after maxAttempts crashes alone, and every innocent succeeds on its first attempt`, async () => {
      const queue = uniqueQueue();
      const log = join(dir, `${queue}.log`);
      const start = async () => {
        const w = startWorkerChild(srv.url, queue, log, ["--ack-wait-seconds", "1", "--concurrency", "4"]);
        children.push(w);
        await workerStarted(w);
        return w;
      };
      const pool = [await start()];
      // the first worker pulls the first four at once: the poison and three innocents beside it
      const innocents: TaskHandle[] = [];
      for (let i = 0; i < 2; i++) innocents.push(await client.enqueue("test.sleep", [400], {}, { queue, retry: { maxAttempts: 1 } }));
      const poison = await client.enqueue(poisonTask, [], {}, { queue, retry: { maxAttempts: 2 } });
      for (let i = 0; i < 17; i++) innocents.push(await client.enqueue("test.sleep", [400], {}, { queue, retry: { maxAttempts: 1 } }));
      pool.push(await start());
      // keep two workers up (a bounded number of restarts) until everything has finished
      let restarts = 0;
      const done = async () => {
        for (let i = 0; i < pool.length; i++) {
          if (!alive(pool[i]!) && restarts < 10) {
            restarts++;
            pool[i] = await start();
          }
        }
        const recs = await Promise.all([poison, ...innocents].map((h) => h.record()));
        return recs.every((r) => r?.status.phase === "Succeeded" || r?.status.phase === "Failed") ? recs : undefined;
      };
      const recs = (await waitFor("every task finished", done, 60_000, 100)) as TracedRecord[];
      const [p, ...rest] = recs;
      assert.equal(p!.status.phase, "Failed");
      assert.equal(p!.status.deadLettered, true);
      assert.equal(p!.status.error?.type, "WorkerLostError");
      assert.match(p!.status.error?.message ?? "", /attempt 2 of 2 did not finish: its worker was lost while the task ran alone on it/);
      assert.equal(p!.status.attempts, 2);
      assert.deepEqual(p!.delivery, { count: 4, alone: true, workerLost: 3, workerLostAlone: 2, workerLostWaiting: 0 });
      // one crash beside the innocents (not counted), then two alone (counted)
      assert.deepEqual(events(log, poison.id), ["start 1", "start 1", "start 2"]);
      for (const [i, r] of rest.entries()) {
        assert.equal(r.status.phase, "Succeeded", `innocent ${i} ${r.id}: ${JSON.stringify(r.status)}`);
        assert.equal(r.status.attempts, 1, `innocent ${i} had an attempt counted`);
      }
      const hit = rest.filter((r) => (r.delivery?.workerLost ?? 0) > 0);
      assert.ok(hit.length >= 1, "no innocent ran beside the poison task: the test proved nothing");
      for (const r of hit) assert.equal(r.delivery?.alone, true, `innocent ${r.id} lost its worker and was not rerun alone`);
      assert.equal(restarts, 3, "one worker loss per poison run");
    });
  }
});
