/**
 * Answers control requests (`celeriac inspect`): subscribes to the queue's control subject
 * (api/control.ts) and replies to each request with the worker's report, built synchronously from
 * in-memory state in the subscription callback (no I/O, no await), so an answer never waits for a
 * task and a task never waits for an answer.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { CONTROL_COMMANDS, CONTROL_VERSION, type WorkerReport } from "../api/control.js";

/** What a `ControlResponder` needs. */
export interface ControlResponderOptions {
  /** The worker's connection. */
  readonly nc: NatsConnection;
  /** The queue's control subject (`controlSubject(ns, q)`). */
  readonly subject: string;
  /** Builds the report now (synchronous, cheap). */
  readonly report: () => WorkerReport;
  /** The worker's logger. */
  readonly log: Logger;
}

/** Bytes of a report's JSON. */
const sizeOf = (r: WorkerReport): number => Buffer.byteLength(JSON.stringify(r));

/**
 * The report cut to at most `maxBytes` of JSON: first the progress `meta` of each active task is
 * dropped, then the active and reserved lists are halved until it fits (`truncated: true`). Pure.
 */
export function fitReport(r: WorkerReport, maxBytes: number): WorkerReport {
  if (sizeOf(r) <= maxBytes) return r;
  let out: WorkerReport = {
    ...r,
    truncated: true,
    active: r.active.map((a) => {
      if (!a.progress?.meta) return a;
      const { meta: _meta, ...progress } = a.progress;
      return { ...a, progress };
    }),
  };
  while (sizeOf(out) > maxBytes && (out.active.length > 0 || out.reserved.length > 0)) {
    out = { ...out, active: out.active.slice(0, Math.floor(out.active.length / 2)), reserved: out.reserved.slice(0, Math.floor(out.reserved.length / 2)) };
  }
  return out;
}

/**
 * Whether a request's reply subject is an inbox. Only inboxes are answered: the reply goes out under
 * the worker's response permission, and an inbox is never a stream's subject, so a request cannot
 * make the worker publish its report into a stream (a task subject, a bucket).
 */
export function isInbox(reply: string | undefined): reply is string {
  return typeof reply === "string" && reply.startsWith("_INBOX");
}

/** Subscribes to the control subject and answers each request with the report. */
export class ControlResponder {
  readonly #o: ControlResponderOptions;
  #sub: Subscription | undefined;

  /** @param options kept as given */
  constructor(options: ControlResponderOptions) {
    this.#o = options;
  }

  /** Subscribes (no queue group: every worker answers). */
  start(): void {
    this.#sub = this.#o.nc.subscribe(this.#o.subject, { callback: (err, msg) => (err ? this.#o.log.warn({ err }, "Control subscription failed") : this.#answer(msg)) });
  }

  #answer(msg: Msg): void {
    if (!isInbox(msg.reply)) return;
    let command: unknown;
    try {
      const req = msg.json<{ v?: unknown; command?: unknown }>();
      command = req.command;
      if (req.v !== CONTROL_VERSION || !(CONTROL_COMMANDS as readonly unknown[]).includes(command)) this.#o.log.debug({ request: req }, "Control request of another version or command; answering with the report");
    } catch {
      this.#o.log.debug("Control request is not JSON; answering with the report");
    }
    try {
      const max = (this.#o.nc.info?.max_payload ?? 1024 * 1024) - 1024;
      msg.respond(JSON.stringify(fitReport(this.#o.report(), max)));
    } catch (err) {
      this.#o.log.warn({ err, command }, "Control reply failed");
    }
  }

  /** Unsubscribes (idempotent). */
  stop(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }
}
