/**
 * What `celeriac queue list|status` show of a queue (`QueueStatusOutput`, api/queue-ops.ts), read
 * from JetStream: the depth (nats/queue-depth.ts, shared with the operator), the held stream of a
 * flow-controlled queue, the pause (nats/queue-pause.ts), the age of the oldest queued task, the
 * worker registry count and, for `status`, the settle rate sampled over a window.
 */
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { heldNames } from "../api/flow.js";
import type { QueueNames } from "../api/naming.js";
import type { QueueStatusOutput } from "../api/queue-ops.js";
import { depthKey, readQueueDepth, readQueueDepths } from "./queue-depth.js";
import { readQueuePaused } from "./queue-pause.js";
import { isConsumerNotFound, isPermissionViolation, isStreamNotFound } from "./queue-resources.js";

/** Key prefix of the worker registry (design-ops decision 1): `worker.<token>`, `{…, lastSeen}`. */
export const WORKER_REGISTRY_PREFIX = "worker.";
/** A registry entry seen within this long counts as a live worker, ms. */
export const LIVE_WORKER_MS = 30_000;

/** Options of {@link readQueueReport}. */
export interface ReportOptions {
  /** Sample the settle rate over this long, ms (`--sample`); 0 or undefined: no rate. */
  sampleMs?: number;
  /** Current time, ms (tests). */
  now?: () => number;
}

/** The work stream's last sequence and message count (the settle rate's two readings; also the dashboard's sampler). */
export async function workCounters(jsm: JetStreamManager, stream: string): Promise<{ last: number; messages: number; at: number }> {
  try {
    const s = (await jsm.streams.info(stream)).state;
    return { last: s.last_seq, messages: s.messages, at: performance.now() };
  } catch (err) {
    if (isStreamNotFound(err)) return { last: 0, messages: 0, at: performance.now() };
    throw err;
  }
}

/**
 * Tasks settled per second between two readings of the work stream: messages removed (acked or
 * terminated by a worker, or deleted) = Δ last sequence (published) − Δ messages. Pure.
 * @returns per second, rounded to 2 decimals; 0 for an empty window
 */
export function settleRate(a: { last: number; messages: number; at: number }, b: { last: number; messages: number; at: number }): number {
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return 0;
  const removed = Math.max(0, b.last - a.last - (b.messages - a.messages));
  return Math.round((removed / seconds) * 100) / 100;
}

/**
 * The oldest queued (not yet delivered) message of the work stream: the first one after the worker
 * consumer's delivered stream sequence.
 * @returns its stream timestamp, ms; undefined when nothing is queued, or when this credential may
 *   not read the work stream's messages (a minted producer's)
 */
export async function oldestQueuedAt(jsm: JetStreamManager, names: QueueNames): Promise<number | undefined> {
  let delivered: number;
  try {
    const ci = await jsm.consumers.info(names.stream, names.workerConsumer);
    if (ci.num_pending === 0) return undefined;
    delivered = ci.delivered.stream_seq;
  } catch (err) {
    if (isStreamNotFound(err) || isConsumerNotFound(err)) return undefined;
    throw err;
  }
  // STREAM.MSG.GET's next_by_subj (server 2.9+): the first message at or after seq on the subject
  const m = (await jsm.streams.getMessage(names.stream, { seq: delivered + 1, next_by_subj: names.taskSubject } as unknown as { seq: number }).catch((err: unknown) => {
    // a minted producer credential may not read work-stream messages: the age is then unknown
    if (isStreamNotFound(err) || isPermissionViolation(err)) return null;
    throw err;
  })) as StoredMsg | null;
  return m ? m.time.getTime() : undefined;
}

/**
 * Live workers in the registry: `worker.*` keys whose `lastSeen` is within {@link LIVE_WORKER_MS}.
 * @returns the count, or undefined when the bucket holds no registry key (workers that do not register)
 */
export async function liveWorkers(kv: KV, nowMs: number): Promise<number | undefined> {
  const keys: string[] = [];
  for await (const k of await kv.keys(`${WORKER_REGISTRY_PREFIX}*`)) keys.push(k);
  if (keys.length === 0) return undefined;
  let live = 0;
  for (const k of keys) {
    const e = await kv.get(k);
    if (!e || e.operation !== "PUT") continue;
    try {
      const seen = Date.parse((e.json<{ lastSeen?: string }>()).lastSeen ?? "");
      if (Number.isFinite(seen) && nowMs - seen <= LIVE_WORKER_MS) live++;
    } catch {
      // not JSON: not a live worker
    }
  }
  return live;
}

async function heldCount(jsm: JetStreamManager, names: QueueNames): Promise<number | undefined> {
  try {
    return (await jsm.streams.info(heldNames(names).stream)).state.messages;
  } catch (err) {
    if (isStreamNotFound(err) || isPermissionViolation(err)) return undefined;
    throw err;
  }
}

/** The parts of a report besides the depth: held, pause, oldest age, workers. */
async function extras(jsm: JetStreamManager, kv: KV, names: QueueNames, nowMs: number): Promise<Omit<QueueStatusOutput, "queue" | "namespace" | "backlog" | "inFlight" | "delayed" | "dead">> {
  const [held, paused, oldest, workers] = await Promise.all([heldCount(jsm, names), readQueuePaused(kv), oldestQueuedAt(jsm, names), liveWorkers(kv, nowMs)]);
  return {
    ...(held !== undefined ? { held } : {}),
    paused: paused !== undefined,
    ...(paused ? { pausedAt: paused.at, ...(paused.by ? { pausedBy: paused.by } : {}), ...(paused.reason ? { pausedReason: paused.reason } : {}) } : {}),
    ...(oldest !== undefined ? { oldestTaskAgeSeconds: Math.max(0, Math.round((nowMs - oldest) / 100) / 10) } : {}),
    ...(workers !== undefined ? { workers } : {}),
  };
}

/**
 * One queue's report (`queue status`): depth, held, pause, oldest age, workers and, when
 * `sampleMs` is set, the settle rate over that window (two readings of the work stream).
 * @param kv the queue's results bucket
 * @throws Error "read queue <q>: …" on JetStream or KV errors other than "not found"
 */
export async function readQueueReport(jsm: JetStreamManager, kv: KV, names: QueueNames, o: ReportOptions = {}): Promise<QueueStatusOutput> {
  const now = o.now ?? Date.now;
  try {
    const a = o.sampleMs ? await workCounters(jsm, names.stream) : undefined;
    if (a) await new Promise((r) => setTimeout(r, o.sampleMs));
    const b = a ? await workCounters(jsm, names.stream) : undefined;
    const [depth, more] = await Promise.all([readQueueDepth(jsm, names), extras(jsm, kv, names, now())]);
    return {
      queue: names.queue,
      namespace: names.namespace,
      backlog: depth.pending,
      inFlight: depth.inFlight,
      delayed: depth.delayed,
      dead: depth.deadLetters,
      ...more,
      ...(a && b ? { ratePerSecond: settleRate(a, b), sampleSeconds: Math.round(b.at - a.at) / 1000 } : {}),
    };
  } catch (err) {
    throw new Error(`read queue ${names.queue}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Many queues' reports without a rate (`queue list`): the depths in one pass (readQueueDepths), the
 * rest queue by queue.
 * @param kvOf the results bucket of a queue
 * @returns the reports in the order of `names`
 * @throws Error "read queue <q>: …" on the first queue whose read failed
 */
export async function readQueueReports(jsm: JetStreamManager, kvOf: (queue: string) => Promise<KV>, names: readonly QueueNames[], o: Pick<ReportOptions, "now"> = {}): Promise<QueueStatusOutput[]> {
  const now = o.now ?? Date.now;
  const depths = await readQueueDepths(jsm, names);
  return Promise.all(names.map(async (n) => {
    const d = depths.get(depthKey(n));
    if (!d || d instanceof Error) throw new Error(`read queue ${n.queue}: ${d?.message ?? "no result"}`, d ? { cause: d } : undefined);
    try {
      const more = await extras(jsm, await kvOf(n.queue), n, now());
      return { queue: n.queue, namespace: n.namespace, backlog: d.pending, inFlight: d.inFlight, delayed: d.delayed, dead: d.deadLetters, ...more };
    } catch (err) {
      throw new Error(`read queue ${n.queue}: ${(err as Error).message}`, { cause: err });
    }
  }));
}
