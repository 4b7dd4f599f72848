/**
 * The JetStream ceilings' process in the peers benchmark (spec and output: producer-common.ts):
 * `ceiling` and `ceilingLatency` of bench/throughput-phases.ts — raw JetStream publish + consume +
 * ack of task-sized messages, and (`spec.kv`) the same plus one KV put per message before its ack —
 * producer and consumer in this one process. The spec's `queue` prefixes the stream names.
 */
import { connect as natsConnect } from "@nats-io/transport-node";
import { ceiling, ceilingLatency, natsOpts, pct, taskPayloads } from "../throughput-phases.js";
import { finish, readSpec, runProducer } from "./producer-common.js";

async function main(): Promise<void> {
  const spec = readSpec() as ReturnType<typeof readSpec> & { kv?: boolean };
  const withKv = spec.kv === true;
  const base = spec.queue.toUpperCase().replace(/[^A-Z0-9]/g, "_");
  const nc = await natsConnect(natsOpts(spec.url));
  if (spec.warmup > 0) await ceiling(nc, `${base}_W`, withKv, taskPayloads(spec.warmup));
  const payloads = taskPayloads(spec.count);
  const perSecond = await ceiling(nc, `${base}_T`, withKv, payloads);
  const seconds = spec.count / perSecond;
  const l = await ceilingLatency(nc, `${base}_L`, withKv, taskPayloads(spec.latencyCount), spec.rateHz);
  await nc.close();
  finish({
    throughput: { n: spec.count, seconds, perSecond, enqueueSeconds: NaN },
    latency: { n: l.length, rateHz: spec.rateHz, p50Ms: pct(l, 50), p99Ms: pct(l, 99), maxMs: Math.max(...l) },
  });
}

runProducer(main);
