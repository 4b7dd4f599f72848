/**
 * Publishing and revoking tasks: the one implementation behind `celeriac/client`'s enqueue/revoke and
 * the operator's Task reconciler.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { isTerminalPhase } from "../api/constants.js";
import { HEADERS, MESSAGE_VERSION, REVOKED_BEFORE_START, taskRecord, type TaskMessage, type TaskRecord } from "../api/message.js";
import { REVOKED_PREFIX, type QueueNames } from "../api/naming.js";

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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One reconnect watch per connection: `next` resolves at its next reconnect. */
const reconnectWatches = new WeakMap<object, { next: Promise<void> }>();

/**
 * A promise of the next reconnect of the connection behind `js` (its `nc`, a public field of the
 * nats.js v3 client implementation), or undefined when it cannot be watched. One status watch per
 * connection, for as long as it lives.
 */
function nextReconnect(js: JetStreamClient): Promise<void> | undefined {
  const nc = (js as unknown as { nc?: { status?: () => AsyncIterable<{ type: string }>; isClosed?: () => boolean } }).nc;
  if (!nc || typeof nc.status !== "function") return undefined;
  let w = reconnectWatches.get(nc);
  if (!w) {
    let fire: () => void = () => undefined;
    const watch = { next: new Promise<void>((r) => (fire = r)) };
    reconnectWatches.set(nc, watch);
    w = watch;
    void (async () => {
      for await (const st of nc.status!()) {
        if (st.type !== "reconnect") continue;
        const f = fire;
        watch.next = new Promise<void>((r) => (fire = r));
        f();
      }
    })().catch(() => undefined);
  }
  return w.next;
}

/** What `js.publish` lost to: the connection reconnected while it waited for JetStream's ack. */
const RECONNECTED = Symbol("reconnected");

/** The subject a message goes to: the delay stream's when its eta is in the future, else the work stream's. Pure. */
export function subjectFor(names: QueueNames, msg: TaskMessage, nowMs: number): string {
  return msg.eta !== undefined && Date.parse(msg.eta) > nowMs ? names.delayedSubject : names.taskSubject;
}

/**
 * Publishes a task message with `Nats-Msg-Id` = task id and waits for JetStream's ack, retrying
 * across reconnects until `timeoutMs` (publishing again at once when the connection reconnects while
 * an ack is awaited: nats.js drops what it had not sent when the connection dropped). A repeat within the stream's duplicate window is dropped by
 * JetStream, so retrying (or publishing the same task again) never runs it twice.
 * @throws Error "publish task <id> to <subject>: …" when JetStream did not confirm in time
 */
export async function publishTaskMessage(js: JetStreamClient, names: QueueNames, msg: TaskMessage, opts: PublishOptions = {}): Promise<void> {
  const now = opts.now ?? Date.now;
  const h = natsHeaders();
  h.set(HEADERS.task, msg.task);
  h.set(HEADERS.version, String(MESSAGE_VERSION));
  if (msg.trace) h.set(HEADERS.traceparent, msg.trace.traceparent);
  const data = JSON.stringify(msg);
  const subject = subjectFor(names, msg, now());
  const limit = opts.timeoutMs ?? 30_000;
  const end = now() + limit;
  for (let i = 0; ; i++) {
    try {
      // nats.js v3 drops its outbound buffer on every dial (protocol.js prepare() → resetOutbound()),
      // so a publish made while disconnected, or whose ack was due when the connection dropped, is
      // lost without an error: on the next reconnect, publish again at once (same Nats-Msg-Id, so
      // JetStream drops a repeat) rather than wait out the attempt's timeout
      const reconnected = nextReconnect(js);
      const pub = js.publish(subject, data, { msgID: msg.id, headers: h, timeout: Math.max(1000, Math.min(5000, end - now())) });
      const won = reconnected ? await Promise.race([pub, reconnected.then(() => RECONNECTED)]) : await pub;
      if (won !== RECONNECTED) return;
      pub.catch(() => undefined);
      if (now() >= end) throw new Error("connection reconnected before JetStream confirmed");
      i = -1; // a fresh connection: no backoff before this publish
      continue;
    } catch (err) {
      if (opts.onError) await opts.onError(err);
      if (opts.isClosed?.() || now() >= end) {
        throw new Error(`publish task ${msg.id} to ${subject}: JetStream did not confirm within ${limit} ms (${(err as Error).message})`, { cause: err });
      }
      await sleep(Math.min(1000, 50 * 2 ** i));
    }
  }
}

/**
 * Revokes a task: writes the `revoked.<id>` marker to the results bucket (workers check it before
 * running and watch it while running, aborting the handler's signal), and when the task has not
 * started, records it Cancelled at once (compare-and-set, so a worker's concurrent write wins).
 * @param kv the queue's results bucket
 * @param t the task's queue and namespace (for a record that does not exist yet)
 * @throws Error from the KV put of the marker
 */
export async function revokeTask(kv: KV, t: { queue: string; namespace: string }, id: string): Promise<void> {
  const now = () => new Date().toISOString();
  await kv.put(`${REVOKED_PREFIX}${id}`, JSON.stringify({ id, revokedAt: now() }));
  const e = await kv.get(id);
  const cancelled = (base: TaskRecord | undefined): string =>
    JSON.stringify(
      taskRecord(
        { id, task: base?.task ?? "", queue: t.queue, namespace: t.namespace, origin: base?.origin ?? { kind: "Client" } },
        { ...(base?.status ?? {}), phase: "Cancelled", completionTime: now(), error: { ...REVOKED_BEFORE_START } },
        now(),
      ),
    );
  try {
    if (!e || e.operation !== "PUT") await kv.create(id, cancelled(undefined));
    else {
      const rec = e.json<TaskRecord>();
      if (!isTerminalPhase(rec.status.phase) && rec.status.phase !== "Running") await kv.update(id, cancelled(rec), e.revision);
    }
  } catch {
    // a worker wrote first: it has seen, or will see, the revocation marker
  }
}
