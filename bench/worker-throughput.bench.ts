/**
 * Worker throughput and latency benchmark, against a real nats-server started for the run.
 *
 *   npm run build && node dist/bench/worker-throughput.bench.js [--count 5000] [--rate 500] [--seconds 5]
 *
 * Measures, on the same server in the same run:
 * 1. ceiling A: raw JetStream publish + consume + ack;
 * 2. ceiling B: the same plus one KV put per message (what a task needs at minimum: run + record);
 *    A and B use nats.js's `js.publish` / `kv.put` (one request per publish, as a plain nats.js
 *    program would); A′ and B′ are the same through Celeriac's `PipelinedPublisher` / `kvPut`;
 *    both ceilings move the same bytes as Celeriac — a real task message with its headers and
 *    `Nats-Msg-Id`, and a record-sized KV value under the task id — so the ratio measures
 *    Celeriac's overhead, not a difference in payload;
 * 3. Celeriac: no-op task throughput, `client.enqueue` → result stored in the results bucket;
 * 4. Celeriac latency p50/p99 (enqueue → stored result) at a fixed offered rate (default 500/s);
 * 5. enqueue rate with no worker: `client.enqueueMany` of `--count` tasks vs `client.enqueue` ×
 *    `--count` with 1,000 in flight.
 * Throughput phases run `--rounds` times, interleaved (A, B, Celeriac, A, B, …), and the best of
 * each is reported, so a noisy neighbour on a small machine hits all three alike.
 * Prints figures and ratios. Bounded: every phase stops after 60 s.
 */
import { cpus, loadavg } from "node:os";
import { connect as natsConnect } from "@nats-io/transport-node";
import { startNatsServer } from "../test/helpers/nats-server.js";
import { celeriac, ceiling, enqueueRate, natsOpts, numberArg as arg, pct, taskPayloads } from "./throughput-phases.js";

const COUNT = arg("count", 20_000);
const ROUNDS = arg("rounds", 2);
const RATE = arg("rate", 500);
const SECONDS = arg("seconds", 5);
const CONCURRENCY = arg("concurrency", 256);

/** Task messages built before timing: the ceilings publish the same bytes and headers as an enqueue. */
const PAYLOADS = taskPayloads(COUNT);

async function main(): Promise<void> {
  const srv = await startNatsServer();
  const nc = await natsConnect(natsOpts(srv.url));
  try {
    const lat = await celeriac(srv.url, "bench-latency", 16);
    await lat.run(200, 200); // warm-up
    const l = await lat.run(RATE * SECONDS, RATE);
    await lat.close();
    let raw = 0;
    let rawKv = 0;
    let rawP = 0;
    let rawKvP = 0;
    let best = 0;
    let bulk = 0;
    let single = 0;
    const loads: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      raw = Math.max(raw, await ceiling(nc, `BENCH_RAW${r}`, false, PAYLOADS));
      rawKv = Math.max(rawKv, await ceiling(nc, `BENCH_RAWKV${r}`, true, PAYLOADS));
      rawP = Math.max(rawP, await ceiling(nc, `BENCH_RAWP${r}`, false, PAYLOADS, true));
      rawKvP = Math.max(rawKvP, await ceiling(nc, `BENCH_RAWKVP${r}`, true, PAYLOADS, true));
      const thr = await celeriac(srv.url, `bench-throughput-${r}`, CONCURRENCY);
      best = Math.max(best, (await thr.run(COUNT)).perSecond);
      await thr.close();
      bulk = Math.max(bulk, await enqueueRate(srv.url, `bench-bulk-${r}`, COUNT, true));
      single = Math.max(single, await enqueueRate(srv.url, `bench-single-${r}`, COUNT, false));
      loads.push(loadavg()[0]!);
    }
    const t = { perSecond: best };
    const f = (x: number) => x.toFixed(0).padStart(8);
    console.log(`nats-server ${"2.9"} · ${COUNT} messages per throughput phase · node ${process.version}`);
    console.log(`ceiling A  publish+consume+ack          ${f(raw)} msg/s`);
    console.log(`ceiling B  publish+consume+ack+KV put   ${f(rawKv)} msg/s`);
    console.log(`ceiling A′ the same, pipelined publisher    ${f(rawP)} msg/s`);
    console.log(`ceiling B′ the same, pipelined pub + put    ${f(rawKvP)} msg/s`);
    console.log(`celeriac   enqueue → stored result      ${f(t.perSecond)} tasks/s   = ${((100 * t.perSecond) / raw).toFixed(0)}% of A, ${((100 * t.perSecond) / rawKv).toFixed(0)}% of B, ${((100 * t.perSecond) / rawKvP).toFixed(0)}% of B′ (target ≥ 70% of B)`);
    console.log(`enqueue    no worker: enqueueMany(${COUNT}) ${f(bulk)} tasks/s, enqueue ×${COUNT} (1,000 in flight) ${f(single)} tasks/s`);
    console.log(`load average (1 min) after each round: ${loads.map((x) => x.toFixed(2)).join(", ")}`);
    console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} CPUs (other processes skew both figures)`);
    console.log(`latency at ${RATE}/s offered for ${SECONDS} s (${l.latencies.length} tasks): p50 ${pct(l.latencies, 50).toFixed(2)} ms, p99 ${pct(l.latencies, 99).toFixed(2)} ms (target p99 < 10 ms)`);
  } finally {
    await nc.close();
    await srv.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
