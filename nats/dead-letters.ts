/**
 * Dead letters of a queue (its `_DLQ` stream, docs/protocol.md): reading them with their reason
 * headers, selecting some, replaying one as a new task and deleting them. The logic behind
 * `celeriac dlq`; the pure parts (`deadLetterFrom`, `matches`, `replayId`, `replayMessage`) take
 * data and give data.
 *
 * A replay is the dead letter's original envelope published to the work subject of its queue (or of
 * another queue of the namespace) as a **new task** whose id is `<old id>-r<dead-letter seq>`
 * (`replayId`), with `replayOf` naming the dead letter: the old id has a final record, which a worker
 * would replay rather than run. The id is deterministic, so a replay is idempotent (the same id's
 * publish is dropped within the duplicate window, and a worker never runs an id with a final record
 * twice), and the replay's state is that id's record in the results bucket.
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Static } from "@sinclair/typebox";
import type { DeadLetterSchema, ReplayOutcomeSchema } from "../api/cli-output.js";
import { messageFlow, type ProducerFlow } from "../api/flow.js";
import { HEADERS, parseTaskMessage, type TaskMessage, type TaskRecord } from "../api/message.js";
import { TASK_ID_PATTERN, QUEUE_SETTINGS_KEY, RETRY_PREFIX, type QueueNames } from "../api/naming.js";
import { parseQueueProducerSettings } from "../api/queue-settings.js";
import { isTerminalPhase } from "../api/constants.js";
import { isPermissionViolation } from "./queue-resources.js";
import { publishTaskMessage } from "./task-publish.js";
import type { RetryLink } from "./task-records.js";

/**
 * One dead letter as `celeriac dlq` shows it: the stable `-o json` shape, api/cli-output.ts
 * `DeadLetterSchema` (its descriptions document each field).
 */
export type DeadLetter = Static<typeof DeadLetterSchema>;

/** A dead letter with its raw message, for `dlq show` and replays. */
export interface RawDeadLetter extends DeadLetter {
  /** Every header of the dead letter (first value of each). */
  headers: Record<string, string>;
  /** The original message body, byte for byte. */
  data: Uint8Array;
}

/** Which dead letters a command acts on; an absent field matches everything. */
export interface DeadLetterSelection {
  /** Stream sequences. */
  seqs?: readonly number[];
  /** Reasons (any of). */
  reasons?: readonly string[];
  /** Task names (any of). */
  tasks?: readonly string[];
  /** Dead-lettered at or after this time (ms since the epoch). */
  sinceMs?: number;
  /** Text the error (`Celeriac-Dead-Detail`) contains, in any case. */
  errorText?: string;
  /** Replay state: `none` (never replayed), `any` (replayed), or a phase of the replay's record (`Succeeded`, `Failed`, …). */
  replayState?: string;
}

/** Headers a direct get adds to a stored message. */
const DIRECT_GET_HEADERS = new Set(["Nats-Stream", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Subject", "Nats-Last-Sequence", "Nats-Num-Pending"]);

const decoder = new TextDecoder("utf-8", { fatal: false });

/** Reads a header's value, or undefined when absent or empty. */
function header(m: StoredMsg, name: string): string | undefined {
  const v = m.header?.get(name);
  return v ? v : undefined;
}

/**
 * The dead letter of a stored message: headers, the body's id and task. Pure; never throws (a body
 * that is not a JSON object gives no id).
 */
export function deadLetterFrom(m: StoredMsg): RawDeadLetter {
  let body: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(decoder.decode(m.data));
    if (v && typeof v === "object" && !Array.isArray(v)) body = v as Record<string, unknown>;
  } catch {
    // not JSON: shown as is
  }
  const headers: Record<string, string> = {};
  // a direct get adds Nats-Stream, Nats-Sequence, …: not the dead letter's own
  if (m.header) for (const [k] of m.header) if (!DIRECT_GET_HEADERS.has(k)) headers[k] = m.header.get(k);
  const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);
  const task = header(m, HEADERS.task) ?? (typeof body?.task === "string" ? body.task : undefined);
  const out: RawDeadLetter = {
    seq: m.seq,
    deadLetteredAt: m.time.toISOString(),
    ...(typeof body?.id === "string" ? { id: body.id } : {}),
    ...(task !== undefined ? { task } : {}),
    ...(header(m, HEADERS.deadReason) ? { reason: header(m, HEADERS.deadReason) } : {}),
    ...(num(header(m, HEADERS.deadAttempts)) !== undefined ? { attempts: num(header(m, HEADERS.deadAttempts)) } : {}),
    ...(header(m, HEADERS.deadDetail) ? { error: header(m, HEADERS.deadDetail) } : {}),
    ...(header(m, HEADERS.deadStream) ? { originalStream: header(m, HEADERS.deadStream) } : {}),
    ...(num(header(m, HEADERS.deadStreamSeq)) !== undefined ? { originalSeq: num(header(m, HEADERS.deadStreamSeq)) } : {}),
    headers,
    data: m.data,
  };
  return out;
}

/** True when the dead letter is in the selection. Pure. */
export function matches(d: DeadLetter, s: DeadLetterSelection): boolean {
  if (s.seqs && !s.seqs.includes(d.seq)) return false;
  if (s.reasons && !s.reasons.includes(d.reason ?? "")) return false;
  if (s.tasks && !s.tasks.includes(d.task ?? "")) return false;
  if (s.sinceMs !== undefined && Date.parse(d.deadLetteredAt) < s.sinceMs) return false;
  if (s.errorText !== undefined && !(d.error ?? "").toLowerCase().includes(s.errorText.toLowerCase())) return false;
  if (s.replayState !== undefined) {
    if (s.replayState === "none") return d.replay?.phase === undefined;
    if (s.replayState === "any") return d.replay?.phase !== undefined;
    return d.replay?.phase === s.replayState;
  }
  return true;
}

/** Longest task id (TASK_ID_PATTERN, TaskMessageSchema's `id`). */
const MAX_TASK_ID = 256;

/**
 * The task id of dead letter `seq`'s replay: `<old id>-r<seq>`, the old id cut so the whole stays
 * within 256 characters. A dead letter without a valid id (a body that did not parse) gives
 * `dlq-<seq>`. Pure.
 */
export function replayId(oldId: string | undefined, seq: number): string {
  const suffix = `-r${seq}`;
  if (oldId === undefined || !TASK_ID_PATTERN.test(oldId)) return `dlq${suffix}`;
  return `${oldId.slice(0, MAX_TASK_ID - suffix.length)}${suffix}`;
}

/** How to change a dead letter's message for its replay. */
export interface ReplayEdits {
  /** Replace `args` (a JSON array). */
  args?: unknown[];
  /** Replace `kwargs` (a JSON object). */
  kwargs?: Record<string, unknown>;
  /** Target queue (same namespace); default the dead letter's own. */
  queue?: string;
}

/**
 * The message of a dead letter's replay: its original envelope with a new `id` (`replayId`),
 * `createdAt` now, `replayOf` naming the dead letter, the target `queue` and the namespace of the
 * dead-letter stream, `args`/`kwargs` as edited, no `canvas` (the canvas or Workflow it was a step
 * of has already failed: the replay runs the task alone) and `flow` resolved again for the target
 * queue's producer settings (`flow`: undefined when the target is not flow-controlled). Pure.
 * @param names the target queue's names (`queue` and `namespace` of the message)
 * @param deadLetterStream the stream the dead letter is in (default: the target's)
 * @returns the message, or `{problem}` saying why this dead letter cannot be replayed
 */
export function replayMessage(d: RawDeadLetter, names: QueueNames, edits: ReplayEdits, flow: ProducerFlow | undefined, now: Date, deadLetterStream = names.deadLetterStream): { message: TaskMessage } | { problem: string } {
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(d.data));
  } catch {
    return { problem: "its body is not JSON: nothing to replay (see it with dlq show)" };
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) return { problem: "its body is not a JSON object: nothing to replay (see it with dlq show)" };
  const old = body as Record<string, unknown>;
  const queue = edits.queue ?? names.queue;
  const next: Record<string, unknown> = { ...old, id: replayId(d.id, d.seq), queue, namespace: names.namespace, createdAt: now.toISOString() };
  next.replayOf = { stream: deadLetterStream, seq: d.seq, ...(d.id !== undefined ? { id: d.id } : {}) };
  if (edits.args) next.args = edits.args;
  if (edits.kwargs) next.kwargs = edits.kwargs;
  delete next.canvas;
  delete next.flow;
  const parsed = parseTaskMessage(JSON.stringify(next));
  if (!parsed.ok) return { problem: `its message is not a valid task message: ${parsed.reason}` };
  const msg = parsed.message;
  const prev = old.flow as { priority?: number; key?: string } | undefined;
  try {
    const f = flow
      ? messageFlow(queue, flow, {
          ...(typeof prev?.priority === "number" && prev.priority < flow.levels ? { priority: prev.priority } : {}),
          ...(typeof prev?.key === "string" && flow.keys ? { concurrencyKey: prev.key } : {}),
        }, msg.args, msg.kwargs as Record<string, unknown>)
      : undefined;
    if (f) msg.flow = f;
  } catch (err) {
    return { problem: (err as Error).message };
  }
  return { message: msg };
}

/** Options of `readDeadLetters`. */
export interface ReadOptions {
  /** The results bucket, to fill each dead letter's `replay` state; omitted: `replay` is the id alone. */
  results?: KV;
  /** Stop after this many matching dead letters. */
  limit?: number;
}

/**
 * Reads a queue's dead letters in stream order, one `STREAM.MSG.GET` (`next_by_subj`) per message
 * (nats-server 2.9 has no batched direct get), up to the stream's last sequence when it started,
 * keeping those in the selection. Sequences in `sel.seqs` are read directly.
 * @throws Error "read dead letters of <stream>: …" from JetStream (e.g. stream not found)
 */
export async function readDeadLetters(jsm: JetStreamManager, names: QueueNames, sel: DeadLetterSelection = {}, o: ReadOptions = {}): Promise<RawDeadLetter[]> {
  const stream = names.deadLetterStream;
  const out: RawDeadLetter[] = [];
  try {
    const info = await jsm.streams.info(stream);
    const last = info.state.last_seq;
    const push = async (m: StoredMsg) => {
      const d = deadLetterFrom(m);
      await fillReplay(d, names, o.results);
      if (matches(d, sel)) out.push(d);
    };
    if (sel.seqs) {
      for (const seq of [...new Set(sel.seqs)].sort((a, b) => a - b)) {
        const m = await jsm.streams.getMessage(stream, { seq });
        if (m && m.subject === names.deadLetterSubject) await push(m);
        if (o.limit !== undefined && out.length >= o.limit) break;
      }
      return out;
    }
    if (info.state.messages === 0) return out;
    for (let seq = info.state.first_seq; seq <= last; ) {
      const m = await jsm.direct.getMessage(stream, { seq, next_by_subj: names.deadLetterSubject });
      if (!m || m.seq > last) break;
      await push(m);
      if (o.limit !== undefined && out.length >= o.limit) break;
      seq = m.seq + 1;
    }
    return out;
  } catch (err) {
    throw new Error(`read dead letters of ${stream}: ${(err as Error).message}`, { cause: err });
  }
}

/** Sets `d.replay` from the results bucket: the replay id, and its record's phase when there is one. */
async function fillReplay(d: RawDeadLetter, names: QueueNames, results: KV | undefined): Promise<void> {
  const id = replayId(d.id, d.seq);
  if (!results) return;
  const e = await results.get(id);
  if (!e || e.operation !== "PUT") return;
  let phase: string | undefined;
  try {
    phase = e.json<TaskRecord>().status?.phase;
  } catch {
    phase = undefined;
  }
  d.replay = { id, ...(phase ? { phase } : {}) };
  void names;
}

/** What happened to one dead letter in `replayDeadLetters` (api/cli-output.ts `ReplayOutcomeSchema`). */
export type ReplayOutcome = Static<typeof ReplayOutcomeSchema>;

/** Options of `replayDeadLetters`. */
export interface ReplayOptions extends ReplayEdits {
  /** The names of the target queue (default: the dead letters' queue). */
  target?: QueueNames;
  /** The target queue's results bucket: a replay id with a record there is skipped (already replayed). */
  targetResults?: KV;
  /** Delete each dead letter once its replay's publish is confirmed. */
  remove?: boolean;
  /** Publish timeout per replay, ms (default 30 000). */
  timeoutMs?: number;
  /** Now (tests). */
  now?: () => Date;
}

/**
 * Replays dead letters (`replayMessage`), up to 64 publishes in flight. A dead letter whose replay
 * id already has a record in the target's results bucket is skipped (it was replayed: its replay is
 * running or ended; a failed replay was dead-lettered in its turn, under the replay's id), as is one
 * whose message cannot be a valid task. With `remove`, each dead letter is deleted right after its
 * replay's publish was confirmed; a delete the credential may not do leaves it, `removed` false and
 * `message` saying so ({@link deleteRefused}).
 * @param names the queue whose dead letters these are
 * @throws Error from JetStream other than a single publish failing (those are outcomes)
 */
export async function replayDeadLetters(js: JetStreamClient, jsm: JetStreamManager, names: QueueNames, dls: readonly RawDeadLetter[], o: ReplayOptions = {}): Promise<ReplayOutcome[]> {
  const target = o.target ?? names;
  const now = o.now ?? (() => new Date());
  let flow: ProducerFlow | undefined;
  if (o.targetResults) {
    const e = await o.targetResults.get(QUEUE_SETTINGS_KEY);
    const parsed = e && e.operation === "PUT" ? parseQueueProducerSettings(e.value) : undefined;
    flow = parsed && "settings" in parsed ? parsed.settings.flow : undefined;
  }
  const one = async (d: RawDeadLetter): Promise<ReplayOutcome> => {
    const rid = replayId(d.id, d.seq);
    const base = { seq: d.seq, ...(d.id !== undefined ? { id: d.id } : {}), replayId: rid, queue: target.queue, removed: false };
    const built = replayMessage(d, target, o, flow, now(), names.deadLetterStream);
    if ("problem" in built) return { ...base, outcome: "Skipped", message: built.problem };
    if (o.targetResults) {
      const e = await o.targetResults.get(rid);
      if (e && e.operation === "PUT") {
        let phase: string;
        try {
          phase = e.json<TaskRecord>().status?.phase ?? "";
        } catch {
          phase = "";
        }
        const why = isTerminalPhase(phase)
          ? `already replayed as ${rid}, which ended ${phase}${phase === "Failed" ? " (its own dead letter can be replayed)" : ""}`
          : `already replayed as ${rid}, which is ${phase || "recorded"}`;
        return { ...base, outcome: "Skipped", message: why };
      }
    }
    try {
      await publishTaskMessage(js, target, built.message, { timeoutMs: o.timeoutMs ?? 30_000 });
    } catch (err) {
      return { ...base, outcome: "Skipped", message: (err as Error).message };
    }
    let removed = false;
    let why: string | undefined;
    if (o.targetResults && d.id !== undefined) {
      // `tasks get <replay id>` names the dead letter after its message is gone (the record does not carry it)
      const link: RetryLink = { v: 1, id: rid, retryOf: d.id, replayOf: { stream: names.deadLetterStream, seq: d.seq }, createdAt: now().toISOString() };
      await o.targetResults.put(`${RETRY_PREFIX}${rid}`, JSON.stringify(link)).catch((err: unknown) => {
        why = `replayed; its link to the dead letter was not written (${(err as Error).message})`;
      });
    }
    if (o.remove) {
      try {
        removed = await jsm.streams.deleteMessage(names.deadLetterStream, d.seq, false);
      } catch (err) {
        why = `replayed, not removed: ${isPermissionViolation(err) ? deleteRefused(names) : (err as Error).message}`;
      }
    }
    return { ...base, outcome: "Replayed", removed, ...(why ? { message: why } : {}) };
  };
  const out: ReplayOutcome[] = new Array(dls.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < dls.length; i = next++) out[i] = await one(dls[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(64, dls.length) }, lane));
  return out;
}

/**
 * What to say when the credential may not delete dead letters (a minted producer credential:
 * api/nats-permissions.ts), naming the credential that can. Pure.
 */
export function deleteRefused(names: QueueNames): string {
  return `this NATS credential may not delete dead letters of ${names.deadLetterStream} (STREAM.MSG.DELETE, STREAM.PURGE): a namespace's minted producer credential reads and replays them only; delete them with an unrestricted credential (the Celeriac operator's or the NATS account admin's: CELERIAC_NATS_CREDS=<that .creds file>)`;
}

/**
 * Deletes dead letters: when `all` (the selection was everything) a stream purge up to and
 * including the last listed sequence (so a dead letter that arrived since is kept), else one
 * message delete each.
 * @returns how many were deleted
 */
export async function purgeDeadLetters(jsm: JetStreamManager, names: QueueNames, dls: readonly DeadLetter[], all: boolean): Promise<number> {
  if (dls.length === 0) return 0;
  if (all) {
    const last = Math.max(...dls.map((d) => d.seq));
    const r = await jsm.streams.purge(names.deadLetterStream, { seq: last + 1 });
    return r.purged;
  }
  let n = 0;
  for (const d of dls) if (await jsm.streams.deleteMessage(names.deadLetterStream, d.seq, false)) n++;
  return n;
}
