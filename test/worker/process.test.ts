import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, TaskFailedError, type CeleriacClient } from "../../client/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import type { TracedRecord } from "../../worker/attribution.js";
import { events, startWorkerChild, workerStarted, type WorkerChild } from "./child.js";

describe("when worker processes are killed or signalled", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  const dir = mkdtempSync(join(tmpdir(), "celeriac-proc-"));
  const children: WorkerChild[] = [];
  /** Starts a worker child and waits for "Worker started"; with `mayDie`, also for its exit (a poison task can kill it before that line). */
  const start = async (queue: string, log: string, flags: string[] = [], mayDie = false) => {
    const w = startWorkerChild(srv.url, queue, log, ["--ack-wait-seconds", "1", ...flags]);
    children.push(w);
    if (mayDie) await Promise.race([workerStarted(w).catch(() => undefined), w.exited]);
    else await workerStarted(w);
    return w;
  };
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queueSettings: { ackWaitSeconds: 1 } });
  });
  after(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited));
    await client.close();
    await srv.cleanup();
  });

  it("redelivers a task whose worker was SIGKILLed mid-task after the ack wait, and it completes once", async () => {
    const queue = uniqueQueue();
    const log = join(dir, `${queue}.log`);
    const a = await start(queue, log);
    const h = await client.enqueue("test.sleep", [1500], {}, { queue });
    await waitFor("task started", () => events(log, h.id).includes("start 1"));
    a.kill("SIGKILL");
    await a.exited;
    await start(queue, log);
    const result = await h.result({ timeoutMs: 15_000 });
    // the lost run is recorded but not counted: it was not running alone, so the crash is not
    // known to be its own (worker/attribution.ts); the redelivery ran alone
    assert.deepEqual(result, { slept: 1500, attempt: 1 });
    assert.deepEqual(events(log, h.id), ["start 1", "start 1", "done"]);
    assert.deepEqual((await h.record() as TracedRecord | undefined)?.delivery, { count: 2, alone: true, workerLost: 1, workerLostAlone: 0, workerLostWaiting: 0 });
  });

  it("dead-letters a poison task that kills its worker instead of looping (crashes while it ran alone count as attempts)", async () => {
    const queue = uniqueQueue();
    const log = join(dir, `${queue}.log`);
    const h = await client.enqueue("test.poison", [], {}, { queue, retry: { maxAttempts: 2 } });
    let rec;
    for (let i = 0; i < 5 && !rec; i++) {
      // the redelivered poison task may kill a worker before it logs "Worker started"
      const w = await start(queue, log, [], true);
      const outcome = await Promise.race([w.exited.then(() => "died"), h.record().then(async function poll(): Promise<string> {
        const r = await h.record();
        if (r?.status.deadLettered) return "dead";
        if (w.proc.exitCode !== null || w.proc.signalCode !== null) return "died";
        await new Promise((res) => setTimeout(res, 50));
        return poll();
      })]);
      if (outcome === "dead") {
        rec = await h.record();
        w.kill("SIGTERM");
        await w.exited;
      }
    }
    assert.ok(rec, "task never dead-lettered");
    assert.equal(rec.status.phase, "Failed");
    assert.equal(rec.status.error?.type, "WorkerLostError");
    // the first crash (a first delivery, run beside whatever else was pulled) is not counted; the
    // redeliveries run alone, and their two crashes are
    assert.deepEqual(events(log, h.id), ["start 1", "start 1", "start 2"]);
  });

  it("on SIGTERM finishes in-flight tasks, exits 0, and leaves unstarted ones for other workers", async () => {
    const queue = uniqueQueue();
    const log = join(dir, `${queue}.log`);
    const a = await start(queue, log, ["--concurrency", "2", "--grace-period-seconds", "10"]);
    const hs = await Promise.all([0, 1, 2].map(() => client.enqueue("test.sleep", [1200], {}, { queue })));
    await waitFor("two started", () => hs.filter((h) => events(log, h.id).length > 0).length === 2);
    a.kill("SIGTERM");
    assert.equal(await a.exited, 0);
    const started = hs.filter((h) => events(log, h.id).length > 0);
    for (const h of started) assert.deepEqual(events(log, h.id), ["start 1", "done"]);
    const rest = hs.filter((h) => events(log, h.id).length === 0);
    assert.equal(rest.length, 1);
    await start(queue, log);
    assert.deepEqual(await rest[0]!.result({ timeoutMs: 10_000 }), { slept: 1200, attempt: 1 });
  });

  it("naks a task still running at the end of the grace period so another worker takes it at once", async () => {
    const queue = uniqueQueue();
    const log = join(dir, `${queue}.log`);
    // long ack wait: a redelivery before it proves the nak
    const a = startWorkerChild(srv.url, queue, log, ["--ack-wait-seconds", "30", "--grace-period-seconds", "0.5"]);
    children.push(a);
    await workerStarted(a);
    const h = await client.enqueue("test.sleep", [3000], {}, { queue });
    await waitFor("task started", () => events(log, h.id).includes("start 1"));
    a.kill("SIGTERM");
    assert.equal(await a.exited, 0);
    const b = startWorkerChild(srv.url, queue, log, ["--ack-wait-seconds", "30"]);
    children.push(b);
    const t0 = Date.now();
    await h.result({ timeoutMs: 15_000 });
    assert.ok(Date.now() - t0 < 10_000, "redelivered only after the ack wait");
    // handed back, not failed: the attempt is not counted (the redelivery runs alone, as after a lost worker)
    assert.deepEqual(events(log, h.id).filter((e) => e.startsWith("start")), ["start 1", "start 1"]);
  });

  it("exits at once on a second signal, and the task still completes elsewhere", async () => {
    const queue = uniqueQueue();
    const log = join(dir, `${queue}.log`);
    const a = await start(queue, log, ["--grace-period-seconds", "30"]);
    const h = await client.enqueue("test.sleep", [2500], {}, { queue });
    await waitFor("task started", () => events(log, h.id).includes("start 1"));
    const t0 = Date.now();
    a.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 100));
    a.kill("SIGTERM");
    assert.equal(await a.exited, 1);
    assert.ok(Date.now() - t0 < 1500, `exit took ${Date.now() - t0} ms`);
    await start(queue, log);
    await h.result({ timeoutMs: 15_000 });
  });

  it("serves /healthz, /readyz and /metrics with the task metrics", async () => {
    const queue = uniqueQueue();
    const log = join(dir, `${queue}.log`);
    const a = await start(queue, log);
    const port = await a.port();
    const h = await client.enqueue("test.sleep", [1], {}, { queue });
    await h.result({ timeoutMs: 10_000 });
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, new RegExp(`celeriac_tasks_total\\{queue="${queue}",task="test.sleep",outcome="succeeded"\\} 1`));
    assert.match(metrics, /celeriac_task_duration_seconds_bucket/);
    assert.match(metrics, /celeriac_tasks_in_flight\{queue=".*"\} 0/);
    a.kill("SIGTERM");
    await a.exited;
    void TaskFailedError;
  });
});
