/**
 * `celeriac queue purge` (design-ops decision 3): removes a queue's queued tasks — the work stream's
 * messages not yet delivered to a worker (after the `workers` consumer's delivered stream sequence),
 * with `delayed` the delay stream's, and a flow-controlled queue's held stream's — message by
 * message, and records each removed task Cancelled (error `PURGED_ERROR`) with the compare-and-set
 * of `revokeTask` (`cancelIfNotStarted`, nats/task-publish.ts), so a client's `result()` ends.
 *
 * The work stream is purged from its last message backwards: workers take from the front, so the two
 * meet only at the end. Before each delete the consumer's delivered sequence is read again and the
 * purge stops where workers have reached; the read after a delete confirms it (a delivered sequence
 * still below the message's means no worker got it). A task a worker took meanwhile is counted as
 * started and left running. One case stays open, at the meeting point: the consumer's delivered
 * sequence also moves over deleted messages when a pull looks past them, so when it has passed a
 * just-deleted message, whether a worker took that one just before the delete or skipped it after
 * is unknown: it is recorded Cancelled only if its record shows no start within
 * {@link AMBIGUOUS_WAIT_MS} (at most one such task per purge in practice). A task taken in that
 * instant runs, but its message is gone: a retry of it is not redelivered.
 *
 * Held tasks of a flow-controlled queue sit unacked in the operator's dispatcher, which would still
 * release its copy of a deleted message: each one also gets its `revoked.<id>` marker, on which the
 * dispatcher releases it at once and a worker acks it as Cancelled without running it.
 *
 * A purge that removed tasks ends by writing the queue's purge notice (`QUEUE_PURGED_KEY`): no
 * worker ever sees a purged message, so the operator, which watches that key, ends the Task
 * resources still Queued whose record is now Cancelled (operator/task/purge-notices.ts). Each
 * removed task's record keeps its message's origin (a Task's name and uid), as a worker's would.
 */
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { heldNames } from "../api/flow.js";
import { eachLimited } from "../api/limited.js";
import { HEADERS, parseTaskMessage, type TaskMessage, type TaskRecord } from "../api/message.js";
import { QUEUE_PURGED_KEY, REVOKED_PREFIX, type QueueNames } from "../api/naming.js";
import { PURGED_ERROR, QUEUE_PURGED_VERSION, type QueuePurged } from "../api/queue-ops.js";
import { isConsumerNotFound, isStreamNotFound } from "./queue-resources.js";
import { cancelIfNotStarted } from "./task-publish.js";

/** How long a task whose delivery is unknown (see the file comment) may take to show a start, ms. */
export const AMBIGUOUS_WAIT_MS = 3000;

/** What a purge would remove now (the confirmation prompt): messages. */
export interface Purgeable {
  /** Queued in the work stream (the `workers` consumer's num_pending). */
  queued: number;
  /** In the delay stream (counted only when asked for). */
  delayed: number;
  /** In the held stream (flow-controlled queues; 0 when it has none). */
  held: number;
}

/** The result of {@link purgeQueue}. */
export interface PurgeResult {
  /** Tasks removed, from every stream. */
  removed: number;
  /** Of `removed`, from the delay stream. */
  removedDelayed: number;
  /** Of `removed`, from the held stream. */
  removedHeld: number;
  /** Tasks queued in the work stream when the purge began that a worker took meanwhile (left running). */
  started: number;
  /** The ids of the removed tasks, in the order removed. */
  ids: string[];
}

/** Options of {@link purgeQueue}. */
export interface PurgeOptions {
  /** Also remove the delay stream's tasks. Default false. */
  delayed?: boolean;
  /** See {@link AMBIGUOUS_WAIT_MS} (tests). */
  ambiguousWaitMs?: number;
}

async function messagesIn(jsm: JetStreamManager, stream: string): Promise<number> {
  try {
    return (await jsm.streams.info(stream)).state.messages;
  } catch (err) {
    if (isStreamNotFound(err)) return 0;
    throw err;
  }
}

/**
 * Counts what a purge would remove now.
 * @param o `delayed`: count the delay stream too
 * @throws Error "count queued tasks of <stream>: …" on JetStream errors other than "not found"
 */
export async function purgeable(jsm: JetStreamManager, names: QueueNames, o: { delayed?: boolean } = {}): Promise<Purgeable> {
  try {
    const [queued, delayed, held] = await Promise.all([
      jsm.consumers.info(names.stream, names.workerConsumer).then((ci) => ci.num_pending, (err: unknown) => {
        if (isStreamNotFound(err) || isConsumerNotFound(err)) return 0;
        throw err;
      }),
      o.delayed ? messagesIn(jsm, names.delayedStream) : 0,
      messagesIn(jsm, heldNames(names).stream),
    ]);
    return { queued, delayed, held };
  } catch (err) {
    throw new Error(`count queued tasks of ${names.stream}: ${(err as Error).message}`, { cause: err });
  }
}

/** A deleted message's task: its id (body, else Nats-Msg-Id), name and origin (body only). */
interface Removed {
  seq: number;
  id: string | undefined;
  task: string | undefined;
  origin?: TaskMessage["origin"];
}

function identify(m: StoredMsg): Removed {
  const p = parseTaskMessage(m.data);
  if (p.ok) return { seq: m.seq, id: p.message.id, task: p.message.task, origin: p.message.origin };
  return { seq: m.seq, id: m.header?.get(HEADERS.msgId) || undefined, task: m.header?.get(HEADERS.task) || undefined };
}

async function getMsg(jsm: JetStreamManager, stream: string, seq: number): Promise<StoredMsg | null> {
  try {
    return await jsm.streams.getMessage(stream, { seq });
  } catch (err) {
    if (isStreamNotFound(err)) return null;
    throw err;
  }
}

/** Deletes message `seq`; false when it was gone already. */
async function deleteMsg(jsm: JetStreamManager, stream: string, seq: number): Promise<boolean> {
  try {
    return await jsm.streams.deleteMessage(stream, seq, false);
  } catch (err) {
    if ((await getMsg(jsm, stream, seq)) === null) return false;
    throw err;
  }
}

async function deliveredSeq(jsm: JetStreamManager, names: QueueNames): Promise<{ delivered: number; pending: number }> {
  const ci = await jsm.consumers.info(names.stream, names.workerConsumer);
  return { delivered: ci.delivered.stream_seq, pending: ci.num_pending };
}

/** Deletes every message of `stream` (seq by seq from its first), returning their tasks. */
async function deleteAll(jsm: JetStreamManager, stream: string, before?: (r: Removed) => Promise<void>): Promise<Removed[]> {
  const out: Removed[] = [];
  let info;
  try {
    info = (await jsm.streams.info(stream)).state;
  } catch (err) {
    if (isStreamNotFound(err)) return out;
    throw err;
  }
  if (info.messages === 0) return out;
  for (let seq = info.first_seq; seq <= info.last_seq && out.length < info.messages; seq++) {
    const m = await getMsg(jsm, stream, seq);
    if (!m) continue;
    const r = identify(m);
    await before?.(r);
    if (await deleteMsg(jsm, stream, seq)) out.push(r);
  }
  return out;
}

/** True when the task's record shows a worker took it (Running or an outcome). */
async function hasStarted(kv: KV, id: string): Promise<boolean> {
  const e = await kv.get(id);
  if (!e || e.operation !== "PUT") return false;
  const phase = e.json<TaskRecord>().status?.phase;
  return phase !== undefined && phase !== "Pending" && phase !== "Queued";
}

/**
 * Purges the queue (see the file comment): the delay stream (with `delayed`) first and the held
 * stream, then the work stream, so a delayed or held task moved meanwhile is still caught there; a
 * task seen in two streams counts once.
 * @param kv the queue's results bucket
 * @returns what was removed, and how many queued tasks workers took meanwhile
 * @throws Error "purge <stream>: …" when a JetStream or KV request fails (what was removed before
 *   stays removed and recorded); "purge: write queue.purged: …" when the notice cannot be written
 *   (the tasks are removed and recorded; their Task resources stay Queued until a later purge's notice)
 */
export async function purgeQueue(jsm: JetStreamManager, kv: KV, names: QueueNames, o: PurgeOptions = {}): Promise<PurgeResult> {
  const t = { queue: names.queue, namespace: names.namespace };
  const seen = new Set<string>();
  const removed: Removed[] = [];
  const add = (rs: Removed[]) => {
    let n = 0;
    for (const r of rs) {
      if (r.id !== undefined && seen.has(r.id)) continue;
      if (r.id !== undefined) seen.add(r.id);
      removed.push(r);
      n++;
    }
    return n;
  };
  const step = async <T>(stream: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw new Error(`purge ${stream}: ${(err as Error).message}`, { cause: err });
    }
  };
  const cancel = (rs: Removed[]) =>
    eachLimited(rs.filter((r) => r.id !== undefined), 32, async (r) => void (await cancelIfNotStarted(kv, t, r.id!, PURGED_ERROR, r.task, r.origin)));

  const delayedStream = names.delayedStream;
  const removedDelayed = o.delayed ? add(await step(delayedStream, () => deleteAll(jsm, delayedStream))) : 0;
  const held = heldNames(names).stream;
  const removedHeld = add(await step(held, () => deleteAll(jsm, held, async (r) => {
    if (r.id !== undefined) await kv.put(`${REVOKED_PREFIX}${r.id}`, JSON.stringify({ id: r.id, revokedAt: new Date().toISOString(), purged: true }));
  })));
  await step(delayedStream, () => cancel(removed));

  const work = await step(names.stream, () => purgeWork(jsm, kv, names, o.ambiguousWaitMs ?? AMBIGUOUS_WAIT_MS));
  const before = removed.length;
  add(work.removed);
  await step(names.stream, () => cancel(removed.slice(before)));
  if (removed.length > 0) {
    const notice: QueuePurged = { v: QUEUE_PURGED_VERSION, at: new Date().toISOString(), removed: removed.length };
    try {
      await kv.put(QUEUE_PURGED_KEY, JSON.stringify(notice));
    } catch (err) {
      throw new Error(`purge: write ${QUEUE_PURGED_KEY}: ${(err as Error).message}`, { cause: err });
    }
  }
  return {
    removed: removed.length,
    removedDelayed,
    removedHeld,
    started: Math.max(0, work.queuedAtStart - work.removed.length),
    ids: removed.flatMap((r) => (r.id !== undefined ? [r.id] : [])),
  };
}

/** The work stream's part of {@link purgeQueue}: removed tasks (not yet recorded) and the queued count at the start. */
async function purgeWork(jsm: JetStreamManager, kv: KV, names: QueueNames, ambiguousWaitMs: number): Promise<{ removed: Removed[]; queuedAtStart: number }> {
  let start: { delivered: number; pending: number };
  try {
    start = await deliveredSeq(jsm, names);
  } catch (err) {
    if (isStreamNotFound(err) || isConsumerNotFound(err)) return { removed: [], queuedAtStart: 0 };
    throw err;
  }
  const removed: Removed[] = [];
  if (start.pending === 0) return { removed, queuedAtStart: 0 };
  const last = (await jsm.streams.info(names.stream)).state.last_seq;
  const ambiguous: Removed[] = [];
  let candidate: Removed | undefined;
  /** Classifies the last deleted message with a delivered sequence read after its delete. */
  const settle = (delivered: number) => {
    const c = candidate;
    candidate = undefined;
    if (!c) return;
    // no worker reached it before the delete; else unknown: the consumer's delivered sequence also
    // moves over deleted messages when a pull looks past them, so it may have been skipped, not taken
    if (delivered < c.seq) removed.push(c);
    else ambiguous.push(c);
  };
  for (let seq = last; seq > start.delivered; seq--) {
    const m = await getMsg(jsm, names.stream, seq);
    const { delivered } = await deliveredSeq(jsm, names);
    settle(delivered);
    if (delivered >= seq) break; // workers have reached here: the rest was delivered
    if (!m) continue;
    if (await deleteMsg(jsm, names.stream, seq)) candidate = identify(m);
  }
  if (candidate) settle((await deliveredSeq(jsm, names)).delivered);
  if (ambiguous.length) {
    const deadline = Date.now() + ambiguousWaitMs;
    const open = new Set(ambiguous);
    while (open.size && Date.now() < deadline) {
      for (const a of [...open]) if (a.id === undefined || (await hasStarted(kv, a.id))) open.delete(a);
      if (open.size) await new Promise((r) => setTimeout(r, 100));
    }
    removed.push(...open);
  }
  return { removed, queuedAtStart: start.pending };
}
