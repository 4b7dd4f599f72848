/**
 * Celeriac's producer process in the peers benchmark (spec and output: producer-common.ts).
 *
 * Enqueues `add(1, 2)` with `celeriac/client` (`client.enqueue`, one call per task, 1,000 in flight)
 * onto a queue whose `celeriac worker` processes the orchestrator started, and observes each result
 * stored with one KV watch on the queue's results bucket, on its own connection (as the client's
 * `result()` does: one watch per bucket): a task is complete when its `Succeeded` record is seen.
 *
 * With `spec.bulk`: times `client.enqueueMany` of that many tasks on a queue with no workers, when
 * the client has it (`typeof client.enqueueMany === "function"`), else reports `na`.
 */
import { performance } from "node:perf_hooks";
import { connect as natsConnect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { connect, type CeleriacClient } from "../../client/index.js";
import { queueNames } from "../../api/naming.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { natsOpts } from "../throughput-phases.js";
import { Completions, finish, latencyRun, readSpec, runProducer, throughputRun, type ProducerSpec } from "./producer-common.js";

/**
 * `enqueueMany` as the bench calls it (issue 14's contract): one `{ name, args, kwargs, options }`
 * per element, handles in order; a partial failure rejects with an error whose `results` hold
 * `{ ok: false, error }` for the failed elements.
 */
type EnqueueMany = (tasks: { name: string; args: unknown[]; kwargs: Record<string, unknown>; options?: Record<string, unknown> }[]) => Promise<unknown[]>;

/** Calls `many` and counts the failed elements (from the rejection's `results`, when it rejects). */
async function timedMany(client: CeleriacClient, many: EnqueueMany, items: Parameters<EnqueueMany>[0]): Promise<{ seconds: number; failed: number }> {
  const t0 = performance.now();
  try {
    await many.call(client, items);
    return { seconds: (performance.now() - t0) / 1000, failed: 0 };
  } catch (err) {
    const seconds = (performance.now() - t0) / 1000;
    const results = (err as { results?: { ok?: boolean }[] }).results;
    if (!Array.isArray(results)) throw err;
    return { seconds, failed: results.filter((r) => r.ok === false).length };
  }
}

async function bulk(spec: ProducerSpec & { bulk: number }): Promise<void> {
  const nc = await natsConnect(natsOpts(spec.url));
  // the queue's streams exist before timing, as a Queue's would
  await ensureQueueResources(await jetstreamManager(nc), queueNames("default", spec.queue), queueSettings());
  await nc.close();
  const client = await connect({ servers: spec.url, queue: spec.queue });
  const many = (client as unknown as { enqueueMany?: EnqueueMany }).enqueueMany;
  if (typeof many !== "function") {
    await client.close();
    finish({ bulk: { na: "client.enqueueMany is not a function in this build" } });
    return;
  }
  const items = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ name: "add", args: [1, 2], kwargs: {}, options: { taskId: `${tag}-${i}-${Math.random().toString(36).slice(2, 8)}` } }));
  await timedMany(client, many, items(Math.min(1000, spec.bulk), "bw")); // warm-up
  const { seconds, failed } = await timedMany(client, many, items(spec.bulk, "b"));
  await client.close();
  finish({ bulk: { n: spec.bulk, seconds, perSecond: spec.bulk / seconds, failed } });
}

async function main(): Promise<void> {
  const spec = readSpec();
  if (spec.bulk) return bulk({ ...spec, bulk: spec.bulk });
  const client: CeleriacClient = await connect({ servers: spec.url, queue: spec.queue });
  const wnc = await natsConnect(natsOpts(spec.url));
  const kv = await new Kvm(jetstream(wnc)).open(queueNames("default", spec.queue).resultsBucket);
  const c = new Completions();
  const watch = await kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
  void (async () => {
    for await (const e of watch) if (e.operation === "PUT" && e.string().includes('"phase":"Succeeded"')) c.done(e.key);
  })();
  let seq = 0;
  const send = async () => {
    const id = `t${seq++}-${Math.random().toString(36).slice(2, 8)}`;
    c.bind(id);
    await client.enqueue("add", [1, 2], {}, { taskId: id });
  };
  await throughputRun("celeriac warm-up", c, spec.warmup, send);
  const throughput = await throughputRun("celeriac", c, spec.count, send);
  const latency = await latencyRun("celeriac latency", c, spec.latencyCount, spec.rateHz, send);
  watch.stop();
  await client.close();
  await wnc.close();
  finish({ throughput, latency });
}

runProducer(main);
