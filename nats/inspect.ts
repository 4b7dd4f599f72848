/**
 * The asking side of `celeriac inspect` (api/control.ts): one request on a queue's control subject,
 * every reply until the deadline, and the worker registry that says who should have answered; and
 * the delayed tasks of a queue, read from its delayed stream.
 */
import type { JetStreamManager, MsgRequest } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { CONTROL_VERSION, WORKER_REGISTRY_PREFIX, isLiveEntry, type ControlCommand, type ScheduledTask, type WorkerRegistryEntry, type WorkerReport } from "../api/control.js";
import { parseTaskMessage } from "../api/message.js";
import type { QueueNames } from "../api/naming.js";
import { isNoResponders } from "../client/queue-lookup.js";

/** One worker's reply. */
export interface WorkerReply {
  readonly report: WorkerReport;
  /** Milliseconds from the request to this reply. */
  readonly replyMs: number;
}

/** What asking one queue's workers found. */
export interface QueueInspection {
  /** The replies, in arrival order. */
  readonly replies: WorkerReply[];
  /** Live registry entries (lastSeen within 30 s) of workers that did not reply by the deadline. */
  readonly notAnswering: WorkerRegistryEntry[];
  /** Live registry entries, by worker name (answered or not). */
  readonly registry: ReadonlyMap<string, WorkerRegistryEntry>;
  /** Registry entries older than 30 s (gone workers), ignored. */
  readonly stale: number;
}

/**
 * The registry entries of a queue (every `worker.*` key of its results bucket that holds a valid v1
 * entry), split into live and stale by `lastSeen` against `nowMs`.
 * @throws the nats.js error when the bucket cannot be read
 */
export async function readWorkerRegistry(kv: KV, nowMs = Date.now()): Promise<{ live: WorkerRegistryEntry[]; stale: number }> {
  const keys: string[] = [];
  for await (const k of await kv.keys(`${WORKER_REGISTRY_PREFIX}*`)) keys.push(k);
  const entries = await Promise.all(keys.map((k) => kv.get(k)));
  const live: WorkerRegistryEntry[] = [];
  let stale = 0;
  for (const e of entries) {
    if (!e || e.operation !== "PUT") continue;
    let v: WorkerRegistryEntry;
    try {
      v = e.json<WorkerRegistryEntry>();
    } catch {
      continue;
    }
    if (v?.v !== CONTROL_VERSION || typeof v.name !== "string" || typeof v.lastSeen !== "string") continue;
    if (isLiveEntry(v, nowMs)) live.push(v);
    else stale++;
  }
  return { live, stale };
}

/**
 * Asks a queue's workers: reads the registry, sends one `{v: 1, command}` request on `subject`
 * (`nc.requestMany`), and collects replies until `timeoutMs` has passed — or earlier, once every
 * live registry entry has replied. A worker that does not reply in time is never waited for beyond
 * the deadline; with no worker subscribed at all (no responders) there are no replies.
 * @param subject the queue's control subject (`controlSubject(ns, q)`)
 * @param timeoutMs the deadline, in ms (> 0)
 * @throws the nats.js error when the registry cannot be read or the request not sent (e.g. a permission violation)
 */
export async function inspectQueue(nc: NatsConnection, kv: KV, subject: string, command: ControlCommand, timeoutMs: number): Promise<QueueInspection> {
  const { live, stale } = await readWorkerRegistry(kv);
  const registry = new Map(live.map((e) => [e.name, e]));
  const waiting = new Set(registry.keys());
  const replies: WorkerReply[] = [];
  const t0 = performance.now();
  try {
    const iter = await nc.requestMany(subject, JSON.stringify({ v: CONTROL_VERSION, command }), { strategy: "timer", maxWait: Math.max(1, Math.round(timeoutMs)) });
    for await (const m of iter) {
      let report: WorkerReport;
      try {
        report = m.json<WorkerReport>();
      } catch {
        continue;
      }
      if (report?.v !== CONTROL_VERSION || typeof report.name !== "string") continue;
      replies.push({ report, replyMs: Math.round(performance.now() - t0) });
      waiting.delete(report.name);
      // every live worker answered: no need to wait out the deadline (unregistered ones may still be missed)
      if (registry.size > 0 && waiting.size === 0) break;
    }
  } catch (err) {
    if (!isNoResponders(err)) throw err;
  }
  return { replies, notAnswering: [...waiting].map((n) => registry.get(n)!), registry, stale };
}

/** What `listDelayedTasks` read. */
export interface DelayedTasks {
  /** The tasks read, soonest first. */
  readonly tasks: ScheduledTask[];
  /** Messages in the delayed stream when the read started. */
  readonly total: number;
}

/**
 * The delayed tasks of a queue (enqueued with a countdown or eta, not yet due; a retry waiting for
 * its backoff is a nak with a delay on the work stream, not here): the
 * first `limit` messages of its delayed stream in stream order, one `STREAM.MSG.GET` (`next_by_subj`)
 * each — no consumer is created (the stream has work-queue retention: a second consumer could not
 * be added beside the delay mover's) — returned soonest first.
 * @throws Error "read delayed tasks of <stream>: …" from JetStream
 */
export async function listDelayedTasks(jsm: JetStreamManager, names: QueueNames, limit: number, nowMs = Date.now()): Promise<DelayedTasks> {
  const stream = names.delayedStream;
  const tasks: ScheduledTask[] = [];
  try {
    const info = await jsm.streams.info(stream);
    const total = info.state.messages;
    if (total === 0) return { tasks, total };
    const last = info.state.last_seq;
    for (let seq = info.state.first_seq; seq <= last && tasks.length < limit; ) {
      // null: no message at or after seq (the mover took the rest meanwhile)
      // STREAM.MSG.GET takes next_by_subj since nats-server 2.9 (nats.js types it for direct gets only)
      const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: names.delayedSubject } as unknown as MsgRequest);
      if (!m || m.seq > last) break;
      const p = parseTaskMessage(m.data);
      const eta = p.ok ? p.message.eta : undefined;
      const due = eta ? Date.parse(eta) : NaN;
      tasks.push({
        queue: names.queue,
        id: p.ok ? p.message.id : "unknown",
        task: p.ok ? p.message.task : "unknown",
        ...(eta ? { eta } : {}),
        ...(Number.isFinite(due) ? { dueInSeconds: Math.round((due - nowMs) / 100) / 10 } : {}),
        seq: m.seq,
        ...(p.ok && p.message.createdAt ? { createdAt: p.message.createdAt } : {}),
      });
      seq = m.seq + 1;
    }
    tasks.sort((a, b) => (a.eta ? Date.parse(a.eta) : 0) - (b.eta ? Date.parse(b.eta) : 0) || a.seq - b.seq);
    return { tasks, total };
  } catch (err) {
    throw new Error(`read delayed tasks of ${stream}: ${(err as Error).message}`, { cause: err });
  }
}
