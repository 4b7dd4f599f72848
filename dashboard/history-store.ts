/**
 * The dashboard's history across restarts (docs/dashboard.md "History"): the sampler's figures
 * per queue, one point per resolution slot (default 10 s), kept for the window (default one hour)
 * in the namespace's NATS KV bucket {@link dashboardBucket} (`CELERIAC_<ns>_DASHBOARD`, history 1,
 * max age = the window). A point's key is `<queue>.<slot start, unix seconds>`, so several
 * dashboards of one namespace that write the same slot overwrite each other, never duplicate.
 * JetStream 2.9 features only: the bucket's max age expires old points (no per-message TTL).
 *
 * A slot is written once, when the sampler moves past it (and the unfinished ones on close): the
 * gauges (backlog, in flight, dead) of its last sample, the rates (settled/s, started/s, failed/s)
 * averaged over its samples. On start the window is read back with one ordered consumer from
 * `now − window` (server-side start time), bounded by {@link MAX_STORED_POINTS}.
 *
 * When the bucket cannot be opened or created (no rights, no JetStream) or a write fails, the store
 * turns to memory only and says why (`kind: "memory"`, `reason`); the dashboard keeps working.
 *
 * Also here: the counters the rates come from ({@link readCounters}, {@link ratesBetween}).
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { dashboardBucket, type QueueNames } from "../api/naming.js";
import { isConsumerNotFound, isPermissionViolation, isStreamNotFound } from "../nats/queue-resources.js";
import { withDeadline } from "./bounded.js";

/** Default history window, ms (one hour). */
export const DEFAULT_HISTORY_WINDOW_MS = 3_600_000;
/** Default resolution of stored points, ms (one point per queue per 10 s). */
export const DEFAULT_HISTORY_RESOLUTION_MS = 10_000;
/** Most stored points read back on start (all queues). */
export const MAX_STORED_POINTS = 100_000;
/** Bound on the bucket's size, bytes (a point is about 150 bytes). */
export const HISTORY_BUCKET_MAX_BYTES = 64 * 1024 * 1024;
/** How long opening the bucket or reading it back may take before the store gives up (memory), ms. */
export const HISTORY_OPEN_TIMEOUT_MS = 5_000;

/** One point of a queue's history: a sample (1 per `sampleMs`, in memory) or a stored slot. */
export interface HistoryPoint {
  /** Time, ms since the epoch: the sample's, or the slot's start for a stored point. */
  t: number;
  /** Queued tasks (the work consumer's pending) at the end of the sample or slot. */
  backlog: number;
  /** Delivered, not yet acked. */
  inFlight: number;
  /** Messages in the dead-letter stream. */
  dead: number;
  /** Tasks settled (removed from the work stream) per second. */
  rate?: number;
  /** Deliveries to workers per second (the work consumer's delivered count; redeliveries included). */
  started?: number;
  /** Dead letters added per second (the dead-letter stream's last sequence): tasks failed for good. */
  failed?: number;
  /** Stored points only: how many samples the slot averages. */
  n?: number;
}

/** The readings the rates come from (one per queue per sample). */
export interface QueueCounters {
  /** `performance.now()` of the reading, ms. */
  at: number;
  /** Work stream: last sequence (tasks published so far). */
  last: number;
  /** Work stream: messages in it. */
  messages: number;
  /** Work consumer: deliveries so far (`delivered.consumer_seq`); undefined without the consumer. */
  delivered?: number;
  /** Dead-letter stream: last sequence (dead letters added so far). */
  deadLast: number;
}

/** Rates between two readings, per second, rounded to 2 decimals. */
export interface QueueRates {
  /** Tasks settled per second: Δ last − Δ messages of the work stream. */
  settled: number;
  /** Deliveries per second (absent when either reading lacks the consumer). */
  started?: number;
  /** Dead letters added per second. */
  failed: number;
}

async function orZero<T>(p: Promise<T>, dflt: T): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (isStreamNotFound(err) || isConsumerNotFound(err)) return dflt;
    throw err;
  }
}

/**
 * Reads a queue's counters: the work stream's and the dead-letter stream's info and the work
 * consumer's info (3 requests, in parallel). A missing stream or consumer reads as 0 / undefined.
 * @throws the nats.js error of any other failure
 */
export async function readCounters(jsm: JetStreamManager, names: QueueNames): Promise<QueueCounters> {
  const [work, dlq, delivered] = await Promise.all([
    orZero(jsm.streams.info(names.stream).then((i) => i.state), undefined),
    orZero(jsm.streams.info(names.deadLetterStream).then((i) => i.state.last_seq), 0),
    orZero(jsm.consumers.info(names.stream, names.workerConsumer).then((c) => c.delivered.consumer_seq), undefined),
  ]);
  return { at: performance.now(), last: work?.last_seq ?? 0, messages: work?.messages ?? 0, ...(delivered !== undefined ? { delivered } : {}), deadLast: dlq };
}

const perSecond = (n: number, seconds: number) => Math.round((Math.max(0, n) / seconds) * 100) / 100;

/**
 * The rates between readings `a` and `b` (b later). A counter that went down (a stream or consumer
 * re-created) counts as 0. Pure.
 * @returns per second; all 0 for an empty or negative window
 */
export function ratesBetween(a: QueueCounters, b: QueueCounters): QueueRates {
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return { settled: 0, failed: 0, ...(a.delivered !== undefined && b.delivered !== undefined ? { started: 0 } : {}) };
  return {
    settled: perSecond(b.last - a.last - (b.messages - a.messages), seconds),
    failed: perSecond(b.deadLast - a.deadLast, seconds),
    ...(a.delivered !== undefined && b.delivered !== undefined ? { started: perSecond(b.delivered - a.delivered, seconds) } : {}),
  };
}

/** The start of the slot holding time `t`, ms. Pure. */
export function slotStart(t: number, resolutionMs: number): number {
  return Math.floor(t / resolutionMs) * resolutionMs;
}

/** The KV key of a queue's point of the slot starting at `startMs`: `<queue>.<unix seconds>`. Pure. */
export function slotKey(queue: string, startMs: number): string {
  return `${queue}.${Math.floor(startMs / 1000)}`;
}

const mean = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 100) / 100;

/**
 * One stored point of the slot starting at `startMs` from its samples (at least one): the last
 * sample's gauges, the mean of each rate over the samples that have it. Pure.
 * @throws Error when `samples` is empty
 */
export function slotPoint(startMs: number, samples: readonly HistoryPoint[]): HistoryPoint {
  const last = samples[samples.length - 1];
  if (!last) throw new Error("slot point: no samples");
  const avg = (k: "rate" | "started" | "failed") => {
    const xs = samples.map((s) => s[k]).filter((x): x is number => x !== undefined);
    return xs.length ? { [k]: mean(xs) } : {};
  };
  return { t: startMs, backlog: last.backlog, inFlight: last.inFlight, dead: last.dead, ...avg("rate"), ...avg("started"), ...avg("failed"), n: samples.length };
}

/**
 * A stored value as a point, or undefined when it is not one (another writer's junk is skipped). Pure.
 */
export function parsePoint(data: Uint8Array | string): HistoryPoint | undefined {
  let v: unknown;
  try {
    v = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
  const p = v as Record<string, unknown>;
  if (!p || typeof p !== "object" || p.v !== 1) return undefined;
  const num = (k: string) => (typeof p[k] === "number" && Number.isFinite(p[k]) ? (p[k] as number) : undefined);
  const t = num("t");
  const backlog = num("backlog");
  const inFlight = num("inFlight");
  const dead = num("dead");
  if (t === undefined || backlog === undefined || inFlight === undefined || dead === undefined) return undefined;
  const opt = (k: "rate" | "started" | "failed" | "n") => (num(k) !== undefined ? { [k]: num(k) } : {});
  return { t, backlog, inFlight, dead, ...opt("rate"), ...opt("started"), ...opt("failed"), ...opt("n") };
}

/** Options of {@link openHistoryStore}. */
export interface HistoryStoreOptions {
  /** Keep this long, ms (default {@link DEFAULT_HISTORY_WINDOW_MS}; the bucket's max age when this dashboard creates it). */
  windowMs?: number;
  /** One stored point per queue per this long, ms (default {@link DEFAULT_HISTORY_RESOLUTION_MS}; at least 1000). */
  resolutionMs?: number;
  /** False: memory only, not even trying the bucket (reason "disabled"). */
  enabled?: boolean;
  logger?: Logger;
  /** Current time, ms (tests). */
  now?: () => number;
}

/** Where the history is kept, as `/api/history` says. */
export interface HistoryStoreState {
  /** `nats`: in the bucket (and memory); `memory`: since this dashboard started only. */
  kind: "nats" | "memory";
  /** The bucket's name (also when it could not be used). */
  bucket: string;
  /** Why the history is in memory only. */
  reason?: string;
  windowMs: number;
  resolutionMs: number;
}

/** The dashboard's history store (see the module comment). */
export interface HistoryStore {
  /** Where the history is kept now (turns to `memory` when a write fails). */
  state(): HistoryStoreState;
  /**
   * The stored points of the window, per queue, oldest first (empty in memory mode). Reads the
   * bucket once per call. Never throws: a failed read turns the store to memory.
   */
  load(): Promise<Map<string, HistoryPoint[]>>;
  /** Adds a queue's sample to its slot; writes the slot it finished, if any (in the background). */
  add(queue: string, sample: HistoryPoint): void;
  /** Writes every unfinished slot and waits for the writes in flight (idempotent per slot). Never throws. */
  flush(): Promise<void>;
}

/** Why a bucket operation failed, for `reason`. */
function why(what: string, bucket: string, err: unknown): string {
  if (isPermissionViolation(err)) {
    return `${what} ${bucket}: this NATS credential may not use the history bucket (it needs the rights listed in docs/security.md, which minted producer credentials have); history is kept in memory since the dashboard started`;
  }
  return `${what} ${bucket}: ${(err as Error).message}; history is kept in memory since the dashboard started`;
}

/**
 * Opens (or creates) the namespace's history bucket; never throws: without it the store is in
 * memory with the reason.
 * @param js a JetStream client of the dashboard's connection
 * @param jsm its manager
 * @throws Error naming the option when `windowMs` or `resolutionMs` is out of range
 */
export async function openHistoryStore(js: JetStreamClient, jsm: JetStreamManager, namespace: string, o: HistoryStoreOptions = {}): Promise<HistoryStore> {
  const windowMs = o.windowMs ?? DEFAULT_HISTORY_WINDOW_MS;
  const resolutionMs = o.resolutionMs ?? DEFAULT_HISTORY_RESOLUTION_MS;
  if (!Number.isInteger(windowMs) || windowMs < 60_000 || windowMs > 7 * 86_400_000) throw new Error(`history window (--history, windowMs): ${windowMs} ms is out of range: use 1m to 168h (60000 to 604800000 ms)`);
  if (!Number.isInteger(resolutionMs) || resolutionMs < 1000 || resolutionMs > windowMs) throw new Error(`history resolution (--history-resolution, resolutionMs): ${resolutionMs} ms is out of range: use 1s (1000 ms) up to the window (${windowMs} ms)`);
  const now = o.now ?? Date.now;
  const log = o.logger;
  const bucket = dashboardBucket(namespace);
  let kv: KV | undefined;
  let reason: string | undefined;
  if (o.enabled === false) reason = "history store disabled: history is kept in memory since the dashboard started";
  else {
    try {
      kv = await withDeadline(new Kvm(js).create(bucket, { history: 1, ttl: windowMs, max_bytes: HISTORY_BUCKET_MAX_BYTES }), HISTORY_OPEN_TIMEOUT_MS, `open ${bucket}`);
    } catch (err) {
      reason = why("open bucket", bucket, err);
      log?.warn({ bucket, reason }, "Dashboard history kept in memory");
    }
  }
  const toMemory = (what: string, err: unknown) => {
    if (!kv) return;
    kv = undefined;
    reason = why(what, bucket, err);
    log?.warn({ bucket, reason }, "Dashboard history kept in memory");
  };

  /** Per queue: the slot being filled and its samples. */
  const open = new Map<string, { start: number; samples: HistoryPoint[] }>();
  const inFlight = new Set<Promise<void>>();
  const write = (queue: string, start: number, samples: HistoryPoint[]) => {
    const k = kv;
    if (!k || samples.length === 0) return;
    const p = k.put(slotKey(queue, start), JSON.stringify({ v: 1, ...slotPoint(start, samples) }))
      .then(() => undefined, (err: unknown) => toMemory("write to", err))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  return {
    state: () => ({ kind: kv ? "nats" : "memory", bucket, ...(reason ? { reason } : {}), windowMs, resolutionMs }),

    async load() {
      const out = new Map<string, HistoryPoint[]>();
      if (!kv) return out;
      const stream = `KV_${bucket}`;
      try {
        await withDeadline((async () => {
          const info = await jsm.streams.info(stream);
          if (info.state.messages === 0) return;
          const c = await js.consumers.get(stream, { filter_subjects: `$KV.${bucket}.>`, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(now() - windowMs).toISOString() });
          try {
            let pending = (await c.info(true)).num_pending;
            let read = 0;
            const prefix = `$KV.${bucket}.`;
            while (pending > 0 && read < MAX_STORED_POINTS) {
              const batch = await c.fetch({ max_messages: Math.min(1000, pending, MAX_STORED_POINTS - read), expires: 2000 });
              let got = 0;
              for await (const m of batch) {
                got++;
                read++;
                pending = m.info.pending;
                const op = m.headers?.get("KV-Operation");
                if (op === "DEL" || op === "PURGE" || m.data.length === 0) continue;
                const key = m.subject.slice(prefix.length);
                const dot = key.lastIndexOf(".");
                const p = dot > 0 ? parsePoint(m.data) : undefined;
                if (!p || p.t < now() - windowMs) continue;
                const q = key.slice(0, dot);
                let xs = out.get(q);
                if (!xs) out.set(q, (xs = []));
                xs.push(p);
              }
              if (got === 0) break;
            }
          } finally {
            await c.delete().catch(() => undefined);
          }
        })(), HISTORY_OPEN_TIMEOUT_MS * 2, `read ${bucket}`);
      } catch (err) {
        toMemory("read bucket", err);
        return new Map();
      }
      for (const xs of out.values()) xs.sort((a, b) => a.t - b.t);
      return out;
    },

    add(queue, sample) {
      const start = slotStart(sample.t, resolutionMs);
      const cur = open.get(queue);
      if (cur && cur.start === start) {
        cur.samples.push(sample);
        return;
      }
      if (cur) write(queue, cur.start, cur.samples);
      open.set(queue, { start, samples: [sample] });
    },

    async flush() {
      for (const [q, cur] of open) write(q, cur.start, cur.samples);
      open.clear();
      await Promise.allSettled([...inFlight]);
    },
  };
}
