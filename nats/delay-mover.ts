/**
 * The delay mover: holds countdown/eta tasks in the queue's delayed stream (never unacked in a
 * worker slot) and moves each to the work stream when due.
 *
 * Each worker, and the operator for every Queue it manages, runs one mover on the shared durable `delay-mover` consumer. A message that is not due
 * is naked with the time left (`-NAK {"delay": …}`, server-side timer, so accuracy is well under 1 s);
 * a due one is published to the task subject with `Nats-Msg-Id` = task id (through the connection's
 * pipelined publisher, so many moves share one reply subscription) and acked once the work stream confirmed it. The work
 * stream has its own duplicate window, so the id recorded by the delayed stream at enqueue does not
 * drop the move; a move repeated after a crash (publish done, ack lost) is dropped as a duplicate
 * within the window.
 *
 * A due message whose body has `flow` (a flow-controlled queue's task, api/flow.ts) goes to the held
 * stream's subject of its priority level instead (`dueSubject`), from which the operator's
 * dispatcher releases it to the work stream; the held stream has its own duplicate window too.
 */
import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { heldSubject } from "../api/flow.js";
import type { QueueNames } from "../api/naming.js";
import { HEADERS } from "../api/message.js";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { publisherOf } from "./task-publish.js";

/** Longest single nak delay, in ms; longer waits are re-naked when redelivered (keeps timers sane). */
export const MAX_NAK_DELAY_MS = 60 * 60 * 1000;

/** The parsed body of a delayed message (`undefined` when it is not JSON). */
function bodyOf(body: Uint8Array): { eta?: unknown; flow?: { priority?: unknown } } | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(body)) as { eta?: unknown; flow?: { priority?: unknown } };
  } catch {
    return undefined;
  }
}

function msUntil(v: ReturnType<typeof bodyOf>, nowMs: number): number {
  if (typeof v?.eta !== "string") return 0;
  const t = Date.parse(v.eta);
  return Number.isFinite(t) ? Math.max(0, t - nowMs) : 0;
}

function subjectOf(names: QueueNames, v: ReturnType<typeof bodyOf>): string {
  const p = v?.flow?.priority;
  return typeof p === "number" && Number.isInteger(p) && p >= 0 ? heldSubject(names, p) : names.taskSubject;
}

/**
 * Milliseconds until a delayed message is due: `eta - now`, at least 0; 0 when the body has no
 * parseable eta (move it now and let the worker judge it). Pure.
 */
export function msUntilDue(body: Uint8Array, nowMs: number): number {
  return msUntil(bodyOf(body), nowMs);
}

/**
 * Where a due delayed message goes: `heldSubject(names, flow.priority)` when its body has a `flow`
 * with an integer priority ≥ 0, else the work subject (also for a body that is not JSON: the worker
 * dead-letters it). Pure; never throws.
 */
export function dueSubject(names: QueueNames, body: Uint8Array): string {
  return subjectOf(names, bodyOf(body));
}

/** Moves due tasks from the delayed stream to the work stream (or, with `flow`, the held stream). */
export class DelayMover {
  readonly #js: JetStreamClient;
  readonly #names: QueueNames;
  readonly #log: Logger;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;

  constructor(js: JetStreamClient, names: QueueNames, log: Logger) {
    this.#js = js;
    this.#names = names;
    this.#log = log;
  }

  /** Starts consuming the delayed stream. */
  async start(): Promise<void> {
    const consumer = await this.#js.consumers.get(this.#names.delayedStream, this.#names.delayConsumer);
    this.#messages = await consumer.consume({ max_messages: 256 });
    this.#loop = (async () => {
      try {
        for await (const m of this.#messages!) await this.#handle(m);
      } catch (err) {
        if (!this.#stopped) this.#log.error({ err }, "Delay mover stopped");
      }
    })();
  }

  async #handle(m: JsMsg): Promise<void> {
    const body = bodyOf(m.data); // parsed once for the due time and the subject
    const wait = msUntil(body, Date.now());
    if (wait > 0) {
      m.nak(Math.min(wait, MAX_NAK_DELAY_MS));
      return;
    }
    const id = m.headers?.get(HEADERS.msgId) ?? "";
    try {
      const h = natsHeaders();
      const task = m.headers?.get(HEADERS.task);
      if (task) h.set(HEADERS.task, task);
      h.set(HEADERS.version, m.headers?.get(HEADERS.version) || "1");
      const pub = publisherOf(this.#js);
      const o = { headers: h, ...(id ? { msgID: id } : {}) };
      const subject = subjectOf(this.#names, body);
      await (pub ? pub.publish(subject, m.data, o) : this.#js.publish(subject, m.data, o));
      m.ack();
    } catch (err) {
      this.#log.warn({ err, taskId: id }, "Delayed task move failed; retrying in 1 s");
      m.nak(1000);
    }
  }

  /** Stops consuming; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#messages?.close();
    await this.#loop;
  }
}
