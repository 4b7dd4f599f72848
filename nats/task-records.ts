/**
 * Reading and acting on task records in a queue's results bucket, for `celeriac tasks
 * get|list|result|revoke|retry` (cli/commands/tasks.ts): one record, a filtered stream of records,
 * a task's arguments from where they are still kept, its timeline, and retry links.
 *
 * The results bucket keeps one value per key (history 1), so a record is the task's latest state;
 * the timeline is made of the times the record carries (see `taskTimeline`).
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { Static } from "@sinclair/typebox";
import type { ArgsSourceSchema, RevokeOutcomeSchema, TimelineEventSchema } from "../api/cli-output.js";
import type { KV } from "@nats-io/kv";
import { randomUUID } from "node:crypto";
import { heldNames } from "../api/flow.js";
import { canvasKey, type CanvasRecord, type FrozenNode } from "../api/canvas.js";
import { isTerminalPhase } from "../api/constants.js";
import { parseTaskMessage, type TaskMessage, type TaskRecord } from "../api/message.js";
import { RETRIES_PREFIX, RETRY_PREFIX, REVOKED_PREFIX, TASK_ID_PATTERN, type QueueNames } from "../api/naming.js";
import { publishTaskMessage, revokeTask } from "./task-publish.js";

/**
 * A retry link (`retry.<id>` in the results bucket): task `id` re-runs task `retryOf` — written by
 * `celeriac tasks retry`, and by `celeriac dlq replay` with `replayOf` naming the dead letter (the
 * record of a replay does not carry it, the link keeps it after the message is gone).
 */
export interface RetryLink {
  v: 1;
  id: string;
  retryOf: string;
  /** A replay's dead letter: its stream and sequence. */
  replayOf?: { stream: string; seq: number };
  /** RFC 3339. */
  createdAt: string;
}

/** Reads task `id`'s record; undefined when there is none (never recorded, or expired by the bucket's TTL). */
export async function getTaskRecord(kv: KV, id: string): Promise<TaskRecord | undefined> {
  const e = await kv.get(id);
  if (!e || e.operation !== "PUT") return undefined;
  const rec = e.json<TaskRecord>();
  return rec && typeof rec === "object" && rec.status ? rec : undefined;
}

/** When task `id` was revoked (its `revoked.<id>` marker), or undefined. */
export async function revokedAt(kv: KV, id: string): Promise<string | undefined> {
  const e = await kv.get(`${REVOKED_PREFIX}${id}`);
  if (!e || e.operation !== "PUT") return undefined;
  try {
    return e.json<{ revokedAt?: string }>().revokedAt ?? e.created.toISOString();
  } catch {
    return e.created.toISOString();
  }
}

/** A filter of `listTaskRecords`. */
export interface RecordFilter {
  /** Keep records of these phases only. */
  phases?: readonly string[];
  /** Keep records of this task name only. */
  task?: string;
  /** Keep records written at or after this time (server-side: the consumer starts there; and the record's `updatedAt`). */
  since?: Date;
  /** Keep records whose `updatedAt` is at or before this time. */
  until?: Date;
  /** Keep records of this concurrency key only (the record's `concurrencyKey`, api/message.ts). */
  concurrencyKey?: string;
  /** Keep the newest this many matches (the scan reads every record; a ring buffer of `limit` holds the last matches). */
  limit?: number;
}

/** The outcome of `listTaskRecords`: the matches and how many records were read to find them. */
export interface RecordList {
  records: TaskRecord[];
  /** Records (task keys) delivered by the server and decoded. */
  scanned: number;
  /** True when more than `limit` records matched (the older ones were left out). */
  truncated: boolean;
}

/**
 * True when `rec` passes `f`'s phase, task, concurrency-key and time filters (the time is the
 * record's `updatedAt`, its last write; a record without a readable one fails a time filter). Pure.
 */
export function matchesFilter(rec: TaskRecord, f: Pick<RecordFilter, "phases" | "task" | "since" | "until" | "concurrencyKey">): boolean {
  if (f.phases && f.phases.length > 0 && !f.phases.includes(rec.status.phase ?? "")) return false;
  if (f.task !== undefined && rec.task !== f.task) return false;
  if (f.concurrencyKey !== undefined && rec.concurrencyKey !== f.concurrencyKey) return false;
  if (f.since || f.until) {
    const t = Date.parse(rec.updatedAt);
    if (!Number.isFinite(t)) return false;
    if (f.since && t < f.since.getTime()) return false;
    if (f.until && t > f.until.getTime()) return false;
  }
  return true;
}

/**
 * Lists task records of a results bucket with one ordered consumer on the bucket's stream
 * (`KV_<bucket>`), filtered to `$KV.<bucket>.*`: single-token keys are task ids (ids never contain
 * `.`), so the server never sends the `revoked.*`, `unique.*`, `canvas.*`, … records. Delivery is
 * last-per-subject (each key's current value once), or from `since` (server-side start time: older
 * records are never sent). Phase, task, concurrency-key and `until` filters are applied here, as records stream in; the
 * last `limit` matches are kept in a ring buffer (memory: `limit` records), so the answer is the newest
 * matches. Cost: one consumer, and one message per task record written since `since` (all of them
 * without it), streamed in batches of 1000.
 * @param bucket the results bucket's name (`queueNames(…).resultsBucket`)
 * @returns matches newest first (by their last write); `truncated` when older matches were left out
 */
export async function listTaskRecords(js: JetStreamClient, jsm: JetStreamManager, bucket: string, f: RecordFilter = {}): Promise<RecordList> {
  const stream = `KV_${bucket}`;
  const subject = `$KV.${bucket}.*`;
  const ring: TaskRecord[] = [];
  let matched = 0;
  const limit = f.limit ?? Number.POSITIVE_INFINITY;
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0 || limit < 1) return { records: [], scanned: 0, truncated: false };
  const c = await js.consumers.get(stream, {
    filter_subjects: subject,
    ...(f.since ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: f.since.toISOString() } : { deliver_policy: DeliverPolicy.LastPerSubject }),
  });
  let scanned = 0;
  try {
    const ci = await c.info(true);
    let pending = ci.num_pending;
    const decoder = new TextDecoder();
    while (pending > 0) {
      const batch = await c.fetch({ max_messages: Math.min(1000, pending), expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        pending = m.info.pending;
        const op = m.headers?.get("KV-Operation");
        if (op === "DEL" || op === "PURGE" || m.data.length === 0) continue;
        let rec: TaskRecord;
        try {
          rec = JSON.parse(decoder.decode(m.data)) as TaskRecord;
        } catch {
          continue;
        }
        if (!rec || typeof rec !== "object" || !rec.status) continue;
        scanned++;
        if (!matchesFilter(rec, f)) continue;
        if (ring.length < limit) ring.push(rec);
        else ring[matched % limit] = rec;
        matched++;
      }
      if (got === 0) break;
    }
  } finally {
    await c.delete().catch(() => undefined);
  }
  // the ring's oldest slot is at matched % limit once it wrapped
  const start = matched > ring.length ? matched % ring.length : 0;
  const records = [...ring.slice(start), ...ring.slice(0, start)].reverse();
  const truncated = matched > ring.length;
  return { records, scanned, truncated };
}

/** Where `taskArguments` found a task's args and kwargs (api/cli-output.ts `ArgsSourceSchema`). */
export type ArgsSource = Static<typeof ArgsSourceSchema>;

/** A task's args and kwargs and where they were found. */
export interface TaskArguments {
  args: unknown[];
  kwargs: Record<string, unknown>;
  source: ArgsSource;
  /** The whole message, when it was found (dead letter, queued message). */
  message?: TaskMessage;
}

/** Most messages `taskArguments` reads from a work, delayed or held stream looking for a queued task. */
export const MAX_QUEUED_SCAN = 10_000;

/**
 * The dead letter of task `id`: the original message, from the queue's dead-letter stream, newest
 * first (a task replayed and failed again has several: the latest wins). Read by direct get
 * (`DIRECT.GET`, the stream allows it), 64 sequences in flight, never by a consumer: a minted
 * producer credential may read the dead-letter stream but not create consumers on it
 * (api/nats-permissions.ts). Cost: up to the stream's size in gets, bounded by its max age.
 * @returns undefined when there is none, or the stream cannot be read
 */
export async function findDeadLetter(jsm: JetStreamManager, names: QueueNames, id: string): Promise<TaskMessage | undefined> {
  const stream = names.deadLetterStream;
  let first: number;
  let last: number;
  try {
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0) return undefined;
    first = info.state.first_seq;
    last = info.state.last_seq;
  } catch {
    return undefined;
  }
  const needle = `"id":${JSON.stringify(id)}`;
  const decoder = new TextDecoder();
  for (let hi = last; hi >= first; hi -= 64) {
    const seqs: number[] = [];
    for (let q = hi; q > hi - 64 && q >= first; q--) seqs.push(q);
    const got = await Promise.all(seqs.map((seq) => jsm.direct.getMessage(stream, { seq }).catch(() => null)));
    for (const m of got) {
      if (!m || m.subject !== names.deadLetterSubject) continue;
      const text = decoder.decode(m.data);
      if (!text.includes(needle)) continue;
      const p = parseTaskMessage(text);
      if (p.ok && p.message.id === id) return p.message;
    }
  }
  return undefined;
}

/** The frozen task `id` in a canvas tree, or undefined. Pure. */
export function frozenTaskIn(tree: FrozenNode | undefined, id: string): (FrozenNode & { kind: "task" }) | undefined {
  if (!tree) return undefined;
  const stack: unknown[] = [tree];
  while (stack.length) {
    const n = stack.pop();
    if (!n || typeof n !== "object") continue;
    if (Array.isArray(n)) {
      stack.push(...n);
      continue;
    }
    const o = n as Record<string, unknown>;
    if (o.kind === "task" && o.id === id) return o as unknown as FrozenNode & { kind: "task" };
    for (const v of Object.values(o)) if (v && typeof v === "object") stack.push(v);
  }
  return undefined;
}

/** Ids of the tasks of a canvas tree, in tree order. Pure. */
export function canvasTaskIdsOf(tree: FrozenNode): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (n: unknown): void => {
    if (!n || typeof n !== "object") return;
    if (Array.isArray(n)) return n.forEach(walk);
    const o = n as Record<string, unknown>;
    if (o.kind === "task" && typeof o.id === "string" && !seen.has(o.id)) {
      seen.add(o.id);
      out.push(o.id);
    }
    for (const v of Object.values(o)) if (v && typeof v === "object") walk(v);
  };
  walk(tree);
  return out;
}

/** The canvas record `canvas.<id>`, or undefined. */
export async function getCanvasRecord(kv: KV, id: string): Promise<CanvasRecord | undefined> {
  const e = await kv.get(canvasKey(id));
  return e?.operation === "PUT" ? e.json<CanvasRecord>() : undefined;
}

/**
 * Finds a task's args and kwargs where they are still kept. The results bucket keeps status only
 * and a message is deleted from the work stream once acked, so: a dead-lettered task's message is
 * in the dead-letter stream; a canvas step's signature is in its canvas record's tree (a chain
 * step's args there lack the parent's result, prepended at run time); a task not finished yet has
 * its message in the work, delayed or held stream (read by sequence, at most MAX_QUEUED_SCAN
 * messages per stream). A finished task that is none of these has none left.
 * @returns undefined when they are not kept anywhere
 */
export async function taskArguments(js: JetStreamClient, jsm: JetStreamManager, kv: KV, names: QueueNames, rec: TaskRecord | undefined, id: string): Promise<TaskArguments | undefined> {
  if (rec?.status.deadLettered) {
    const m = await findDeadLetter(jsm, names, id);
    if (m) return { args: m.args, kwargs: m.kwargs as Record<string, unknown>, source: "dead-letter", message: m };
  }
  const root = rec?.status.canvas?.root;
  if (root) {
    const cr = await getCanvasRecord(kv, root);
    const t = frozenTaskIn(cr?.tree, id);
    if (t) return { args: t.args ?? [], kwargs: t.kwargs ?? {}, source: "canvas" };
  }
  if (rec && isTerminalPhase(rec.status.phase)) return undefined;
  const m = await findQueuedMessage(jsm, names, id);
  return m ? { args: m.args, kwargs: m.kwargs as Record<string, unknown>, source: "queued-message", message: m } : undefined;
}

/**
 * Task `id`'s message while it is still in the queue's work, delayed or held stream (read by
 * sequence, newest first, at most MAX_QUEUED_SCAN messages per stream): a task not taken yet, or a
 * revoked one no worker has taken since (a revoked delayed task's message stays until it is due,
 * then a worker acks it without running it).
 * @returns undefined when none of the streams holds it (or they cannot be read)
 */
export async function findQueuedMessage(jsm: JetStreamManager, names: QueueNames, id: string): Promise<TaskMessage | undefined> {
  for (const stream of [names.stream, names.delayedStream, heldNames(names).stream]) {
    const m = await scanStream(jsm, stream, id);
    if (m) return m;
  }
  return undefined;
}

/** Reads a (work-queue) stream by sequence, newest first, for task `id`'s message. */
async function scanStream(jsm: JetStreamManager, stream: string, id: string): Promise<TaskMessage | undefined> {
  let first: number;
  let last: number;
  try {
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0) return undefined;
    first = info.state.first_seq;
    last = info.state.last_seq;
  } catch {
    return undefined;
  }
  const needle = `"id":${JSON.stringify(id)}`;
  const lowest = Math.max(first, last - MAX_QUEUED_SCAN + 1);
  for (let hi = last; hi >= lowest; hi -= 64) {
    const seqs = [];
    for (let s = hi; s > hi - 64 && s >= lowest; s--) seqs.push(s);
    const got = await Promise.all(seqs.map((seq) => jsm.streams.getMessage(stream, { seq }).catch(() => null)));
    for (const m of got) {
      if (!m) continue;
      const text = new TextDecoder().decode(m.data);
      if (!text.includes(needle)) continue;
      const p = parseTaskMessage(text);
      if (p.ok && p.message.id === id) return p.message;
    }
  }
  return undefined;
}

/** One event of a task's timeline (api/cli-output.ts `TimelineEventSchema`). */
export type TimelineEvent = Static<typeof TimelineEventSchema>;

/**
 * A task's timeline from its record (the results bucket keeps one value per key, so there is no
 * history of writes): queued (`queuedTime`); started: with `lastAttemptStartTime` (a Task
 * resource's status) `startTime` is the first attempt's and `lastAttemptStartTime` the latest's,
 * without it (a results-bucket record, which the worker rewrites at each attempt's start)
 * `startTime` is the latest attempt's, labelled with `attempts`; revoke requested (the `revoked.<id>` marker),
 * next retry due (`nextRetryTime`), finished (`completionTime`, with the phase), and the record's
 * last write (`updatedAt`, with the phase) when no other event has its time. Sorted by time (stable). Pure.
 */
export function taskTimeline(rec: TaskRecord, o: { revokedAt?: string } = {}): TimelineEvent[] {
  const s = rec.status;
  const ev: TimelineEvent[] = [];
  if (s.queuedTime) ev.push({ time: s.queuedTime, event: "Queued" });
  if (s.lastAttemptStartTime) {
    // a Task resource's status: startTime is the first attempt's, lastAttemptStartTime the latest's
    if (s.startTime) ev.push({ time: s.startTime, event: "Started (attempt 1)" });
    if (s.lastAttemptStartTime !== s.startTime) ev.push({ time: s.lastAttemptStartTime, event: `Started (attempt ${s.attempts ?? "?"})` });
  } else if (s.startTime) {
    // a results-bucket record: the worker writes each attempt's start over the last, so it is the latest attempt's
    ev.push({ time: s.startTime, event: `Started (attempt ${s.attempts ?? 1})` });
  }
  if (o.revokedAt) ev.push({ time: o.revokedAt, event: "Revoke requested" });
  if (s.nextRetryTime && s.phase === "Retrying") ev.push({ time: s.nextRetryTime, event: "Next attempt due" });
  if (s.completionTime) ev.push({ time: s.completionTime, event: s.phase ?? "Finished" });
  // the last write, when no other event accounts for it (e.g. a Running record's heartbeat-free update)
  if (!ev.some((e) => e.time === rec.updatedAt)) ev.push({ time: rec.updatedAt, event: `Record written (${s.phase ?? "no phase"})` });
  return ev.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/** The retry link of task `id` (it re-runs another task), or undefined. */
export async function retryLinkOf(kv: KV, id: string): Promise<RetryLink | undefined> {
  const e = await kv.get(`${RETRY_PREFIX}${id}`);
  return e?.operation === "PUT" ? e.json<RetryLink>() : undefined;
}

/** Ids of task `id`'s retries, oldest first. */
export async function retriesOf(kv: KV, id: string): Promise<string[]> {
  const e = await kv.get(`${RETRIES_PREFIX}${id}`);
  return e?.operation === "PUT" ? (e.json<{ ids?: string[] }>().ids ?? []) : [];
}

/** Phases `retryTask` accepts: a task that ended without success. */
export const RETRYABLE_PHASES = ["Failed", "Cancelled", "Expired"] as const;

/**
 * The id of retry `n` of task `id`: `<id>-retry-<n>` when it fits the id rules (256 characters),
 * else a UUID. A retry of a retry gets its own suffix (`a-retry-1-retry-1`). Pure apart from the UUID.
 */
export function retryId(id: string, n: number, uuid: () => string = randomUUID): string {
  const candidate = `${id}-retry-${n}`;
  return TASK_ID_PATTERN.test(candidate) ? candidate : uuid();
}

/**
 * The message re-running `old` under `id`: same task, args, kwargs, queue, namespace, timeout, retry
 * policy and flow (priority, concurrency key); `retryOf` = the old id; origin Client (a Task
 * resource's status stays the old run's); no eta/expires (the old times are past), no unique key
 * (its lock is not claimed again), no canvas (the retry runs alone: the old canvas does not
 * continue from it), no trace. Pure.
 */
export function retryMessage(old: TaskMessage, id: string, now: Date): TaskMessage {
  const { eta: _eta, expires: _expires, unique: _unique, canvas: _canvas, trace: _trace, retryOf: _retryOf, ...rest } = old;
  return { ...rest, id, origin: { kind: "Client" }, retryOf: old.id, createdAt: now.toISOString() };
}

/**
 * Re-enqueues a finished, unsuccessful task under a new id: claims `retry.<new id>` (create, so two
 * concurrent retries take different ids), records the id in `retries.<old id>` (compare-and-set),
 * then publishes `retryMessage`.
 * @param old the original message (from `taskArguments`)
 * @returns the new id
 * @throws Error from the KV writes or the publish
 */
export async function retryTask(js: JetStreamClient, kv: KV, names: QueueNames, old: TaskMessage, now = new Date()): Promise<string> {
  let id: string;
  for (let n = (await retriesOf(kv, old.id)).length + 1; ; n++) {
    id = retryId(old.id, n);
    const link: RetryLink = { v: 1, id, retryOf: old.id, createdAt: now.toISOString() };
    try {
      await kv.create(`${RETRY_PREFIX}${id}`, JSON.stringify(link));
      break;
    } catch (err) {
      if (n > 1000) throw new Error(`retry task ${old.id}: no free retry id`, { cause: err });
    }
  }
  for (let i = 0; i < 20; i++) {
    const e = await kv.get(`${RETRIES_PREFIX}${old.id}`);
    const ids = e?.operation === "PUT" ? (e.json<{ ids?: string[] }>().ids ?? []) : [];
    const value = JSON.stringify({ v: 1, id: old.id, ids: [...ids, id] });
    try {
      if (e?.operation === "PUT") await kv.update(`${RETRIES_PREFIX}${old.id}`, value, e.revision);
      else await kv.create(`${RETRIES_PREFIX}${old.id}`, value);
      break;
    } catch {
      // another retry wrote between: read again
    }
  }
  await publishTaskMessage(js, names, retryMessage(old, id, now));
  return id;
}

/**
 * What `revokeOne` found and did (api/cli-output.ts `RevokeOutcomeSchema`): `before`, the phase
 * before the revoke (absent: no record); `action`, `cancelled` (not started: it never runs),
 * `aborted` (running: its signal is aborted), `finished` (nothing to do), `marked` (no record yet:
 * it never starts).
 */
export type RevokeOutcome = Static<typeof RevokeOutcomeSchema>;

/**
 * Revokes one task (nats/task-publish.ts `revokeTask`: the `revoked.<id>` marker, and a Cancelled
 * record when it has not started); a finished task is left alone (no marker).
 * @param task the task name for the Cancelled record of a task no worker recorded yet (from its queued message)
 */
export async function revokeOne(kv: KV, t: { queue: string; namespace: string }, id: string, task?: string): Promise<RevokeOutcome> {
  const rec = await getTaskRecord(kv, id);
  const before = rec?.status.phase;
  if (rec && isTerminalPhase(before)) return { id, ...(before ? { before } : {}), action: "finished" };
  await revokeTask(kv, t, id, rec?.task ?? task);
  return { id, ...(before ? { before } : {}), action: !rec ? "marked" : before === "Running" ? "aborted" : "cancelled" };
}
