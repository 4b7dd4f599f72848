/**
 * Phases shared by the throughput benchmarks (`worker-throughput.bench.ts`, `sync-interval.bench.ts`):
 * the raw JetStream ceilings and Celeriac's enqueue → stored-result run, each against a given server.
 * Every connection uses Celeriac's own connection options, and the ceilings move the same bytes as
 * an enqueue (a real task message with its headers and `Nats-Msg-Id`; a record-sized KV value).
 */
import { performance } from "node:perf_hooks";
import { connect as natsConnect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { buildTaskMessage, connect } from "../client/index.js";
import { HEADERS } from "../api/message.js";
import { defineTask, Worker } from "../worker/index.js";
import { kvPut, natsConnectionOptions, natsSettingsFrom, PipelinedPublisher } from "../nats/index.js";

/** Longest any phase may run before it fails (ms): keeps every bench bounded. */
export const PHASE_LIMIT_MS = 60_000;
/** Publishes (or enqueues) in flight at once. */
export const WINDOW = 1000;

/** Celeriac's connection options for `url` (no credentials), used by every bench connection. */
export const natsOpts = (url: string) => natsConnectionOptions(natsSettingsFrom({ url }, {}));

/**
 * Reads `--name <number>` from the command line.
 * @returns the number, or `dflt` when the flag is absent
 */
export const numberArg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

/**
 * Awaits `p`, failing after {@link PHASE_LIMIT_MS}.
 * @throws Error naming `what` when the deadline passes
 */
export async function withDeadline<T>(what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: over ${PHASE_LIMIT_MS} ms`)), PHASE_LIMIT_MS)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Calls `publish(i)` for i in [0, n) with at most {@link WINDOW} calls in flight; resolves when all have. */
export async function publishAll(n: number, publish: (i: number) => Promise<unknown>): Promise<void> {
  // a counting window: Promise.race over the in-flight set costs O(WINDOW) per call
  let inflight = 0;
  let failed: unknown;
  let wake: (() => void) | undefined;
  const done = () => {
    inflight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  for (let i = 0; i < n && failed === undefined; i++) {
    while (inflight >= WINDOW) await new Promise<void>((r) => (wake = r));
    inflight++;
    publish(i).then(done, (err: unknown) => {
      failed ??= err;
      done();
    });
  }
  while (inflight > 0) await new Promise<void>((r) => (wake = r));
  if (failed !== undefined) throw failed;
}

/** A task message as an enqueue publishes it: its id (the `Nats-Msg-Id`), JSON body and headers. */
export interface TaskPayload {
  id: string;
  data: string;
  h: MsgHdrs;
}

/** Builds `count` no-op task messages before timing, so the ceilings publish the bytes an enqueue does. */
export function taskPayloads(count: number): TaskPayload[] {
  return Array.from({ length: count }, () => {
    const msg = buildTaskMessage("bench.noop", [], {}, { queue: "bench", namespace: "default" }, new Date());
    const h = natsHeaders();
    h.set(HEADERS.task, "bench.noop");
    h.set(HEADERS.version, "1");
    return { id: msg.id, data: JSON.stringify(msg), h };
  });
}

/** A results-bucket record of the size a no-op task's record has. */
export const RECORD = JSON.stringify({
  id: "00000000-0000-4000-8000-000000000000",
  task: "bench.noop",
  queue: "bench-throughput-0",
  namespace: "default",
  origin: { kind: "Client" },
  status: { attempts: 1, queuedTime: new Date().toISOString(), worker: "host:12345", phase: "Succeeded", startTime: new Date().toISOString(), completionTime: new Date().toISOString(), result: null },
  updatedAt: new Date().toISOString(),
});

/**
 * Ceiling: publishes every payload to a new work-queue stream `name`, consumes and acks them
 * (with `withKv`, one KV put of {@link RECORD} per message before its ack).
 * @param pipelined publish and put through {@link PipelinedPublisher} / `kvPut` (what Celeriac
 *   uses) instead of nats.js's `js.publish` / `kv.put` (one request each)
 * @returns messages per second, from the first publish to the last ack
 */
export async function ceiling(nc: NatsConnection, name: string, withKv: boolean, payloads: readonly TaskPayload[], pipelined = false): Promise<number> {
  const count = payloads.length;
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(name, { durable_name: "c", ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  const kv: KV | undefined = withKv ? await new Kvm(js).create(`${name}_KV`, { history: 1 }) : undefined;
  const consumer = await js.consumers.get(name, "c");
  const t0 = performance.now();
  let done = 0;
  const consumed = (async () => {
    const msgs = await consumer.consume({ max_messages: 1000 });
    await new Promise<void>((resolve) => {
      void (async () => {
        for await (const m of msgs) {
          if (kv) {
            const key = m.headers?.get("Nats-Msg-Id") ?? `k${m.seq}`;
            void (pipelined ? kvPut(kv, key, RECORD) : kv.put(key, RECORD)).then(() => {
              m.ack();
              if (++done === count) resolve();
            });
          } else {
            m.ack();
            if (++done === count) resolve();
          }
        }
      })();
    });
    await msgs.close();
  })();
  const pub = PipelinedPublisher.for(nc);
  await publishAll(count, (i) =>
    pipelined
      ? pub.publish(`${name}.x`, payloads[i]!.data, { msgID: payloads[i]!.id, headers: payloads[i]!.h })
      : js.publish(`${name}.x`, payloads[i]!.data, { msgID: payloads[i]!.id, headers: payloads[i]!.h }),
  );
  await withDeadline(name, consumed);
  return count / ((performance.now() - t0) / 1000);
}

const noop = defineTask("bench.noop", () => null);

/** A Worker and a client on one queue: {@link CeleriacRun.run} enqueues no-op tasks and waits for their results. */
export interface CeleriacRun {
  /**
   * Enqueues `n` tasks (as fast as {@link WINDOW} allows, or at `rateHz`) and resolves when every
   * result is stored in the results bucket.
   * @returns tasks per second (first enqueue → last stored result) and each task's latency (ms)
   */
  run(n: number, rateHz?: number): Promise<{ perSecond: number; latencies: number[] }>;
  /** Closes the worker, the client and the worker's connection. */
  close(): Promise<void>;
}

/** Starts a Worker (`concurrency` handlers) and a client on `queue` at `url`. */
export async function celeriac(url: string, queue: string, concurrency: number): Promise<CeleriacRun> {
  const wnc = await natsConnect(natsOpts(url));
  let onStored: (id: string) => void = () => undefined;
  // runs right after the results-bucket put resolved: the moment the result is stored
  const counter = { name: "bench-counter", write: async (r: { id: string; status: { phase?: string } }) => void (r.status.phase === "Succeeded" && onStored(r.id)) };
  const worker = new Worker({ nc: wnc, tasks: [noop], queue, concurrency, logger: pino({ level: "warn" }), extraSinks: [counter] });
  await worker.start();
  const client = await connect({ servers: url, queue });
  return {
    async run(n, rateHz) {
      const sent = new Map<string, number>();
      const latencies: number[] = [];
      let resolveAll: () => void = () => undefined;
      const allDone = new Promise<void>((r) => (resolveAll = r));
      onStored = (id) => {
        const t = sent.get(id);
        if (t === undefined) return;
        latencies.push(performance.now() - t);
        sent.delete(id);
        if (latencies.length === n) resolveAll();
      };
      const t0 = performance.now();
      if (rateHz) {
        const interval = 1000 / rateHz;
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < n; i++) {
          const due = t0 + i * interval;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          const id = `lat-${i}-${Math.random().toString(36).slice(2, 8)}`;
          sent.set(id, performance.now());
          pending.push(client.enqueue("bench.noop", [], {}, { taskId: id }));
        }
        await Promise.all(pending);
      } else {
        await publishAll(n, (i) => {
          const id = `thr-${i}-${Math.random().toString(36).slice(2, 8)}`;
          sent.set(id, performance.now());
          return client.enqueue("bench.noop", [], {}, { taskId: id });
        });
      }
      await withDeadline(`celeriac ${n}`, allDone);
      const perSecond = n / ((performance.now() - t0) / 1000);
      return { perSecond, latencies };
    },
    async close() {
      await worker.close();
      await client.close();
      await wnc.close();
    },
  };
}

/**
 * Enqueue rate with no worker: `n` no-op tasks to a new queue `queue`, either with one
 * `client.enqueueMany` call (`bulk`) or as `client.enqueue` calls with {@link WINDOW} in flight.
 * @returns tasks per second, from the first enqueue to the last confirmation
 */
export async function enqueueRate(url: string, queue: string, n: number, bulk: boolean): Promise<number> {
  const client = await connect({ servers: url, queue, createQueues: true });
  try {
    await client.enqueue("bench.noop", [], {}); // the queue's streams are made and cached first
    const tasks = Array.from({ length: n }, (_, i) => ({ name: "bench.noop", args: [] as unknown[], options: { taskId: `bulk-${i}-${Math.random().toString(36).slice(2, 8)}` } }));
    const t0 = performance.now();
    if (bulk) await withDeadline(`enqueueMany ${n}`, client.enqueueMany(tasks));
    else await withDeadline(`enqueue ${n}`, publishAll(n, (i) => client.enqueue(tasks[i]!.name, [], {}, tasks[i]!.options)));
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await client.close();
  }
}

/** The `p`th percentile (0–100) of `xs`, nearest rank; NaN for an empty list. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/**
 * Latency of the ceilings (see {@link ceiling}): publishes `payloads` at `rateHz` to a new
 * work-queue stream `name` (each publish at its due time, not waiting for earlier acks), consumes
 * and acks them (with `withKv`, one KV put of {@link RECORD} per message before its ack).
 * @returns each message's latency, ms from just before its publish to its ack (after the KV put
 *   resolved, with `withKv`)
 * @throws Error when they are not all acked within {@link PHASE_LIMIT_MS} of the last publish
 */
export async function ceilingLatency(nc: NatsConnection, name: string, withKv: boolean, payloads: readonly TaskPayload[], rateHz: number): Promise<number[]> {
  const count = payloads.length;
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(name, { durable_name: "c", ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  const kv: KV | undefined = withKv ? await new Kvm(js).create(`${name}_KV`, { history: 1 }) : undefined;
  const consumer = await js.consumers.get(name, "c");
  const sent = new Map<string, number>();
  const latencies: number[] = [];
  const msgs = await consumer.consume({ max_messages: 1000 });
  const consumed = new Promise<void>((resolve) => {
    const acked = (id: string) => {
      const t = sent.get(id);
      if (t !== undefined) latencies.push(performance.now() - t);
      if (latencies.length === count) resolve();
    };
    void (async () => {
      for await (const m of msgs) {
        const id = m.headers?.get("Nats-Msg-Id") ?? `k${m.seq}`;
        if (kv) {
          void kv.put(id, RECORD).then(() => {
            m.ack();
            acked(id);
          });
        } else {
          m.ack();
          acked(id);
        }
      }
    })();
  });
  const interval = 1000 / rateHz;
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const p = payloads[i]!;
    sent.set(p.id, performance.now());
    pending.push(js.publish(`${name}.x`, p.data, { msgID: p.id, headers: p.h }));
  }
  await Promise.all(pending);
  await withDeadline(`${name} latency`, consumed);
  await msgs.close();
  return latencies;
}
