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

/** `enqueueMany` as the bench calls it: one `{ task, args, kwargs, options }` per element. */
type EnqueueMany = (tasks: { task: string; args: unknown[]; kwargs: Record<string, unknown>; options?: Record<string, unknown> }[]) => Promise<unknown[]>;

/** Counts the elements of an `enqueueMany` answer that report a failure (an Error, or `{ error }`, or `{ status: "rejected" }`). */
function failures(out: unknown): number {
  if (!Array.isArray(out)) return 0;
  return out.filter((e) => e instanceof Error || (typeof e === "object" && e !== null && ("error" in e || (e as { status?: unknown }).status === "rejected"))).length;
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
  const items = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ task: "add", args: [1, 2], kwargs: {}, options: { taskId: `${tag}-${i}-${Math.random().toString(36).slice(2, 8)}` } }));
  await many.call(client, items(Math.min(1000, spec.bulk), "bw")); // warm-up
  const batch = items(spec.bulk, "b");
  const t0 = performance.now();
  const out = await many.call(client, batch);
  const seconds = (performance.now() - t0) / 1000;
  await client.close();
  finish({ bulk: { n: spec.bulk, seconds, perSecond: spec.bulk / seconds, failed: failures(out) } });
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
