/**
 * Publishing and revoking tasks: the one implementation behind `celeriac/client`'s enqueue/revoke and
 * the operator's Task reconciler.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { isTerminalPhase } from "../api/constants.js";
import { heldSubject } from "../api/flow.js";
import { HEADERS, MESSAGE_VERSION, REVOKED_BEFORE_START, taskRecord, type TaskMessage, type TaskRecord } from "../api/message.js";
import type { TaskError } from "../api/task.js";
import { REVOKED_PREFIX, type QueueNames } from "../api/naming.js";
import { PipelinedPublisher, PublishInterruptedError } from "./pipelined-publisher.js";
import { endSpan, startEnqueueSpan } from "../tracing/spans.js";

/** Options of `publishTaskMessage`. */
export interface PublishOptions {
  /** Give up after this long, ms (default 30 000). Retries use the same Nats-Msg-Id, so none duplicates. */
  timeoutMs?: number;
  /** True when the connection is closed for good (stop retrying at once). */
  isClosed?: () => boolean;
  /** Current time in ms (tests). */
  now?: () => number;
  /**
   * Called after each failed attempt, before the next; when it throws, the publish ends at once
   * with that error (e.g. the client's "queue does not exist" once the stream is found deleted).
   */
  onError?: (err: unknown) => Promise<void>;
}

const encoder = new TextEncoder();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The connection behind `js` (its `nc`, a public field of the nats.js v3 client implementation). */
function connectionOf(js: JetStreamClient): NatsConnection | undefined {
  const nc = (js as unknown as { nc?: NatsConnection }).nc;
  return nc && typeof nc.publish === "function" && typeof nc.subscribe === "function" ? nc : undefined;
}

/**
 * The pipelined publisher of the connection behind `js` (shared by every publish on it), or
 * undefined when `js` is not nats.js's client (then `js.publish` is used).
 */
export function publisherOf(js: JetStreamClient): PipelinedPublisher | undefined {
  const nc = connectionOf(js);
  return nc ? PipelinedPublisher.for(nc) : undefined;
}

/**
 * The subject a message goes to: the delay stream's when its eta is in the future; else, when the
 * message has `flow` (a flow-controlled queue's task, api/flow.ts), the held stream's subject of its
 * priority level (`heldSubject`), from which the operator's dispatcher releases it; else the work
 * stream's. Pure.
 */
export function subjectFor(names: QueueNames, msg: TaskMessage, nowMs: number): string {
  if (msg.eta !== undefined && Date.parse(msg.eta) > nowMs) return names.delayedSubject;
  return msg.flow ? heldSubject(names, msg.flow.priority) : names.taskSubject;
}

/**
 * Publishes a task message with `Nats-Msg-Id` = task id and waits for JetStream's ack, retrying
 * across reconnects until `timeoutMs` (publishing again at once when the connection reconnects while
 * an ack is awaited: nats.js drops what it had not sent when the connection dropped). Publishes go
 * through the connection's `PipelinedPublisher` (one reply subscription and one timeout sweep for
 * all; concurrent calls share socket writes). A repeat within the stream's duplicate window is dropped by
 * JetStream, so retrying (or publishing the same task again) never runs it twice. Traced as
 * `celeriac.enqueue` (tracing/spans.ts), whose context the published envelope's `trace` carries.
 * @throws Error "publish task <id> to <subject>: …" when JetStream did not confirm in time
 */
export async function publishTaskMessage(js: JetStreamClient, names: QueueNames, msg: TaskMessage, opts: PublishOptions = {}): Promise<void> {
  const now = opts.now ?? Date.now;
  const subject = subjectFor(names, msg, now());
  // the span's context goes into the envelope (and the traceparent header) before it is encoded
  const { span, message } = startEnqueueSpan(msg, subject);
  try {
    await publishEncoded(js, message, subject, now, opts);
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
  endSpan(span);
}

/** The publish loop of `publishTaskMessage`, for a message whose trace context is final. */
async function publishEncoded(js: JetStreamClient, msg: TaskMessage, subject: string, now: () => number, opts: PublishOptions): Promise<void> {
  const h = natsHeaders();
  h.set(HEADERS.task, msg.task);
  h.set(HEADERS.version, String(MESSAGE_VERSION));
  if (msg.trace) h.set(HEADERS.traceparent, msg.trace.traceparent);
  const data = encoder.encode(JSON.stringify(msg));
  const limit = opts.timeoutMs ?? 30_000;
  const end = now() + limit;
  const pub = publisherOf(js);
  for (let i = 0; ; i++) {
    try {
      // each attempt waits at most 5 s and never past the deadline, so the last one ends on time
      const timeout = Math.max(1, Math.min(5000, end - now()));
      if (pub) await pub.publish(subject, data, { msgID: msg.id, headers: h, timeoutMs: timeout });
      else await js.publish(subject, data, { msgID: msg.id, headers: h, timeout: Math.max(1000, timeout) });
      return;
    } catch (err) {
      // nats.js v3 drops its outbound buffer on every dial (protocol.js prepare() → resetOutbound()),
      // so a publish made while disconnected, or whose ack was due when the connection dropped, is
      // lost without an error: the publisher rejects it at the reconnect, and it is published again
      // at once (same Nats-Msg-Id, so JetStream drops a repeat) rather than after the attempt's timeout
      if (err instanceof PublishInterruptedError && !opts.isClosed?.()) {
        if (now() >= end) throw new Error(`publish task ${msg.id} to ${subject}: JetStream did not confirm within ${limit} ms (${err.message})`, { cause: err });
        i = -1; // a fresh connection: no backoff before this publish
        continue;
      }
      if (opts.onError) await opts.onError(err);
      if (opts.isClosed?.() || now() >= end) {
        throw new Error(`publish task ${msg.id} to ${subject}: JetStream did not confirm within ${limit} ms (${(err as Error).message})`, { cause: err });
      }
      await sleep(Math.min(1000, 50 * 2 ** i, Math.max(0, end - now())));
    }
  }
}

/**
 * Revokes a task: writes the `revoked.<id>` marker to the results bucket (workers check it before
 * running and watch it while running, aborting the handler's signal), and when the task has not
 * started, records it Cancelled at once (compare-and-set, so a worker's concurrent write wins).
 * @param kv the queue's results bucket
 * @param t the task's queue and namespace (for a record that does not exist yet)
 * @param task the task name, when known, for a record that does not exist yet (a canvas step not published yet)
 * @throws Error from the KV put of the marker
 */
export async function revokeTask(kv: KV, t: { queue: string; namespace: string }, id: string, task?: string): Promise<void> {
  await kv.put(`${REVOKED_PREFIX}${id}`, JSON.stringify({ id, revokedAt: new Date().toISOString() }));
  await cancelIfNotStarted(kv, t, id, REVOKED_BEFORE_START, task);
}

/**
 * Records a task that has not started Cancelled with `error`, by compare-and-set: created when it
 * has no record, updated at the revision read while its phase is neither Running nor terminal, so
 * a worker's concurrent write wins. Used by `revokeTask` and by `celeriac queue purge`.
 * @param kv the queue's results bucket
 * @param t the task's queue and namespace (for a record that does not exist yet)
 * @param task the task name, when known, for a record that does not exist yet
 * @param origin the task's origin (its message's), when known, for a record that does not exist yet
 *   (default `{kind: "Client"}`)
 * @returns true when this call wrote the Cancelled record; false when the task had started or ended,
 *   or a concurrent write won. Never throws for a lost race; throws the nats.js error of the get.
 */
export async function cancelIfNotStarted(kv: KV, t: { queue: string; namespace: string }, id: string, error: TaskError, task?: string, origin?: TaskRecord["origin"]): Promise<boolean> {
  const now = () => new Date().toISOString();
  const e = await kv.get(id);
  const cancelled = (base: TaskRecord | undefined): string =>
    JSON.stringify(
      taskRecord(
        { id, task: base?.task ?? task ?? "", queue: t.queue, namespace: t.namespace, origin: base?.origin ?? origin ?? { kind: "Client" } },
        { ...(base?.status ?? {}), phase: "Cancelled", completionTime: now(), error: { ...error } },
        now(),
      ),
    );
  try {
    if (!e || e.operation !== "PUT") {
      await kv.create(id, cancelled(undefined));
      return true;
    }
    const rec = e.json<TaskRecord>();
    if (isTerminalPhase(rec.status.phase) || rec.status.phase === "Running") return false;
    await kv.update(id, cancelled(rec), e.revision);
    return true;
  } catch {
    // a worker wrote first (for a revoke: it has seen, or will see, the revocation marker)
    return false;
  }
}
