/**
 * BullMQ's producer process in the peers benchmark (spec and output: producer-common.ts).
 *
 * `Queue.add("add", { a: 1, b: 2 })` per job, 1,000 in flight (ioredis pipelines them), onto the
 * queue the orchestrator's `bullmq-worker.ts` process consumes; each job's completion (its return
 * value stored, `moveToCompleted`) is observed through a `QueueEvents` "completed" event, which
 * BullMQ emits in the same script that stores the result. The events stream is sized so that no
 * event is trimmed before it is read.
 *
 * With `spec.bulk`: times one `Queue.addBulk` of that many jobs on a queue with no worker.
 */
import { performance } from "node:perf_hooks";
import { Queue, QueueEvents } from "bullmq";
import { Completions, finish, latencyRun, readSpec, runProducer, throughputRun } from "./producer-common.js";

async function main(): Promise<void> {
  const spec = readSpec();
  const u = new URL(spec.url);
  const connection = { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null };
  const total = spec.warmup + spec.count + spec.latencyCount + (spec.bulk ?? 0) * 2;
  const queue = new Queue(spec.queue, { connection, streams: { events: { maxLen: Math.max(10_000, total * 6) } } });
  await queue.waitUntilReady();
  if (spec.bulk) {
    const jobs = (n: number) => Array.from({ length: n }, () => ({ name: "add", data: { a: 1, b: 2 } }));
    await queue.addBulk(jobs(Math.min(1000, spec.bulk))); // warm-up
    const batch = jobs(spec.bulk);
    const t0 = performance.now();
    const out = await queue.addBulk(batch);
    const seconds = (performance.now() - t0) / 1000;
    await queue.close();
    finish({ bulk: { n: spec.bulk, seconds, perSecond: spec.bulk / seconds, failed: spec.bulk - out.length } });
    return;
  }
  const events = new QueueEvents(spec.queue, { connection, lastEventId: "0-0" });
  const c = new Completions();
  events.on("completed", ({ jobId }) => c.done(jobId));
  await events.waitUntilReady();
  const send = async () => {
    const t = performance.now();
    const job = await queue.add("add", { a: 1, b: 2 });
    c.bind(job.id!, t);
  };
  await throughputRun("bullmq warm-up", c, spec.warmup, send);
  const throughput = await throughputRun("bullmq", c, spec.count, send);
  const latency = await latencyRun("bullmq latency", c, spec.latencyCount, spec.rateHz, send);
  await events.close();
  await queue.close();
  finish({ throughput, latency });
}

runProducer(main);
