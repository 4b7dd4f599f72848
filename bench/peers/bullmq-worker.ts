/**
 * BullMQ's worker process in the peers benchmark:
 *
 *   node dist/bench/peers/bullmq-worker.js '{"url":"redis://127.0.0.1:<port>","queue":"<name>","concurrency":50}'
 *
 * One `bullmq` Worker (default options: results kept, locks and stalled checks on) processing
 * `add` jobs (`job.data.a + job.data.b`); prints `READY` once connected. SIGTERM closes it.
 */
import { Worker } from "bullmq";

const spec = JSON.parse(process.argv[2] ?? "{}") as { url?: string; queue?: string; concurrency?: number };
if (!spec.url || !spec.queue || !spec.concurrency) {
  console.error('bullmq-worker: pass {"url","queue","concurrency"} as JSON in argv[2]');
  process.exit(2);
}
const u = new URL(spec.url);
const worker = new Worker<{ a: number; b: number }, number>(spec.queue, async (job) => job.data.a + job.data.b, {
  connection: { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null },
  concurrency: spec.concurrency,
});
worker.on("error", (err) => console.error(`bullmq worker error: ${err.message}`));
let closing = false;
process.on("SIGTERM", () => {
  if (closing) process.exit(1);
  closing = true;
  void worker.close().finally(() => process.exit(0));
});
await worker.waitUntilReady();
console.log("READY");
