/**
 * The pipelined JetStream publisher: the hot path of every publish that waits for a stream's
 * confirmation (enqueue, the worker's result put, the delay mover's move).
 *
 * `js.publish` makes each publish a nats.js request: a random reply token, a timer, a
 * `RequestError` built on every success (nats.js 3.4 `RequestOne.resolver` → `cancel()` rejects
 * its already-resolved deferred with a fresh error), and a socket write per microtask. Here every
 * publish of a connection shares one wildcard subscription `<inbox>.*` (under the connection's
 * `inboxPrefix`, so a minted user, who may subscribe to its own inbox only, can use it), carries
 * reply subject `<inbox>.<counter>`, and is resolved from a map by that token; one sweep timer per
 * publisher (not one per message) rejects what is overdue; publishes queued in one event-loop turn
 * go out in one write. The PubAck is parsed as `js.publish` parses it, with the same error classes.
 *
 * Reconnects: nats.js drops what it had not sent when it dials again, so every publish pending when
 * the connection reconnects is rejected with {@link PublishInterruptedError} (its outcome is unknown:
 * publish again with the same `Nats-Msg-Id` and JetStream drops a repeat).
 */
import { JetStreamApiCodes, jserrors, type PubAck } from "@nats-io/jetstream/internal";
import {
  ClosedConnectionError,
  createInbox,
  headers as natsHeaders,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";

/** Options of one {@link PipelinedPublisher.publish}. */
export interface PipelinedPublishOptions {
  /** `Nats-Msg-Id`: JetStream drops a repeat of it within the stream's duplicate window. */
  msgID?: string;
  /** Headers to send (the publisher sets `Nats-Msg-Id` / `Nats-Expected-*` on this object, as nats.js does). */
  headers?: MsgHdrs;
  /** Expectations checked by the server, as `js.publish`'s `expect`. */
  expect?: {
    /** `Nats-Expected-Stream`: fail unless the subject is stored by this stream. */
    streamName?: string;
    /** `Nats-Expected-Last-Subject-Sequence` (a KV update's compare-and-set). */
    lastSubjectSequence?: number;
  };
  /** Reject with a `TimeoutError` when no PubAck came within this long, ms (default: the publisher's). */
  timeoutMs?: number;
}

/** Options of a {@link PipelinedPublisher}. */
export interface PipelinedPublisherOptions {
  /** Default time to wait for a PubAck, ms. Default 5000 (as `js.publish`). */
  timeoutMs?: number;
  /** How often overdue publishes are looked for, ms: a timeout fires up to this late. Default 100. */
  sweepMs?: number;
}

/**
 * A pending publish lost to a reconnect: nats.js dropped it, or its PubAck, when the connection
 * dropped. The message may or may not be stored; publishing again with the same `Nats-Msg-Id` is safe.
 */
export class PublishInterruptedError extends Error {
  /** @param subject the subject published to */
  constructor(readonly subject: string) {
    super(`publish to ${subject}: the connection reconnected before JetStream confirmed`);
    this.name = "PublishInterruptedError";
  }
}

interface Pending {
  readonly subject: string;
  readonly deadline: number;
  readonly resolve: (pa: PubAck) => void;
  readonly reject: (err: Error) => void;
}

interface Outgoing {
  readonly subject: string;
  readonly data: string | Uint8Array;
  readonly reply: string;
  readonly headers: MsgHdrs;
}

const decoder = new TextDecoder();

/**
 * Parses a PubAck message exactly as nats.js `js.publish` does: a 503 status with no body is "no
 * responders" (no stream stores the subject), `{"error":{…}}` a JetStream API error, an ack without
 * `stream` invalid; `duplicate` defaults to false.
 * @throws JetStreamNotEnabled "jetstream is not enabled" (cause: RequestError → NoRespondersError), as `js.publish`
 * @throws StreamNotFoundError / JetStreamApiError with the server's `code`, `err_code` and description
 * @throws JetStreamError "invalid ack response" when the ack names no stream
 */
export function parsePubAck(m: Pick<Msg, "data" | "headers">, subject: string): PubAck {
  if (m.data.length === 0 && m.headers?.code === 503) {
    const nr = new NoRespondersError(subject);
    throw new jserrors.JetStreamNotEnabled("jetstream is not enabled", { cause: new RequestError(nr.message, { cause: nr }) });
  }
  let v: { error?: { code: number; err_code?: number; description: string } } & Partial<PubAck>;
  try {
    v = JSON.parse(decoder.decode(m.data)) as typeof v;
  } catch (err) {
    throw new jserrors.JetStreamError("invalid ack response", { cause: err });
  }
  if (v.error) {
    switch (v.error.err_code) {
      case JetStreamApiCodes.ConsumerNotFound:
        throw new jserrors.ConsumerNotFoundError(v.error as never);
      case JetStreamApiCodes.StreamNotFound:
        throw new jserrors.StreamNotFoundError(v.error as never);
      case JetStreamApiCodes.JetStreamNotEnabledForAccount: {
        const e = new jserrors.JetStreamApiError(v.error as never);
        throw new jserrors.JetStreamNotEnabled(e.message, { cause: e });
      }
      default:
        throw new jserrors.JetStreamApiError(v.error as never);
    }
  }
  if (!v.stream) throw new jserrors.JetStreamError("invalid ack response");
  return { ...(v as PubAck), duplicate: v.duplicate ? v.duplicate : false };
}

/** One publisher per connection (see {@link PipelinedPublisher.for}). */
const perConnection = new WeakMap<NatsConnection, PipelinedPublisher>();

/** Publishes to JetStream with many PubAcks awaited at once; see the module header. */
export class PipelinedPublisher {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  readonly #sweepMs: number;
  readonly #pending = new Map<string, Pending>();
  #outgoing: Outgoing[] = [];
  #flushScheduled = false;
  #sub: Subscription | undefined;
  #inbox = "";
  #counter = 0;
  #sweep: NodeJS.Timeout | undefined;
  #watching = false;
  #closed = false;

  /**
   * The publisher of `nc`, made on first use; closed with the connection.
   * @param nc an open connection
   */
  static for(nc: NatsConnection): PipelinedPublisher {
    let p = perConnection.get(nc);
    if (!p) {
      p = new PipelinedPublisher(nc);
      perConnection.set(nc, p);
    }
    return p;
  }

  /**
   * @param nc the connection to publish on (its `inboxPrefix` names the reply subjects)
   * @param opts default timeout and sweep interval, ms
   */
  constructor(nc: NatsConnection, opts: PipelinedPublisherOptions = {}) {
    this.#nc = nc;
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#sweepMs = opts.sweepMs ?? 100;
    void nc.closed().then(() => this.close());
  }

  /** Publishes whose PubAck has not come yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Publishes `data` to `subject` and resolves with the stream's PubAck.
   * @throws (rejects) as {@link parsePubAck}; `TimeoutError` ("timeout", nats.js's class, as
   *   `js.publish`) after `timeoutMs`; {@link PublishInterruptedError} when the connection reconnected
   *   first; `RequestError` with a `PermissionViolationError` cause when the server refused the
   *   publish or the reply subscription; `ClosedConnectionError` when the connection is closed
   */
  publish(subject: string, data: string | Uint8Array, opts: PipelinedPublishOptions = {}): Promise<PubAck> {
    if (this.#closed || this.#nc.isClosed()) return Promise.reject(new ClosedConnectionError());
    const h = opts.headers ?? natsHeaders();
    if (opts.msgID) h.set("Nats-Msg-Id", opts.msgID);
    if (opts.expect?.streamName) h.set("Nats-Expected-Stream", opts.expect.streamName);
    if (typeof opts.expect?.lastSubjectSequence === "number") h.set("Nats-Expected-Last-Subject-Sequence", `${opts.expect.lastSubjectSequence}`);
    this.#ensureSubscription();
    const token = (this.#counter++).toString(36);
    const deadline = Date.now() + (opts.timeoutMs ?? this.#timeoutMs);
    return new Promise<PubAck>((resolve, reject) => {
      this.#pending.set(token, { subject, deadline, resolve, reject });
      this.#outgoing.push({ subject, data, reply: this.#inbox + token, headers: h });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
      this.#sweep ??= setInterval(() => this.#expire(), this.#sweepMs);
    });
  }

  /** Rejects every pending publish with `ClosedConnectionError` and stops the subscription. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#outgoing = [];
    this.#failAll(() => new ClosedConnectionError());
    if (this.#sub && !this.#nc.isClosed()) this.#sub.unsubscribe();
    this.#sub = undefined;
    if (perConnection.get(this.#nc) === this) perConnection.delete(this.#nc);
  }

  /** Sends what was queued this turn: one synchronous run, so nats.js writes it in one go. */
  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#outgoing;
    this.#outgoing = [];
    for (const o of out) {
      try {
        this.#nc.publish(o.subject, o.data, { reply: o.reply, headers: o.headers });
      } catch (err) {
        this.#settle(o.reply.slice(this.#inbox.length), undefined, err as Error);
      }
    }
  }

  #ensureSubscription(): void {
    if (this.#sub && !this.#sub.isClosed()) return;
    const prefix = (this.#nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.#inbox = `${createInbox(prefix)}.`;
    const inbox = this.#inbox;
    this.#sub = this.#nc.subscribe(`${inbox}*`, {
      callback: (err, m) => {
        if (err) {
          // the server refused the reply subscription (or it ended): nothing pending can be answered
          const cause = err;
          this.#failAll(() => new RequestError(cause.message, { cause }));
          this.#sub = undefined;
          return;
        }
        if (!m.subject.startsWith(inbox)) return;
        this.#settle(m.subject.slice(inbox.length), m);
      },
    });
    if (!this.#watching) {
      this.#watching = true;
      void this.#watchStatus();
    }
  }

  /** Reconnects and publish permission errors, from the connection's status events. */
  async #watchStatus(): Promise<void> {
    try {
      for await (const s of this.#nc.status()) {
        if (this.#closed) break;
        if (s.type === "reconnect") {
          // what is still queued here goes out on the new connection; the rest was sent on the old one
          const queued = new Set(this.#outgoing.map((o) => o.reply.slice(this.#inbox.length)));
          this.#failAll((p) => new PublishInterruptedError(p.subject), queued);
        } else if (s.type === "error" && s.error instanceof PermissionViolationError && s.error.operation === "publish") {
          // the server answers each refused publish with one -ERR naming its subject: fail the oldest
          const pe = s.error;
          for (const [token, p] of this.#pending) {
            if (p.subject === pe.subject) {
              this.#settle(token, undefined, new RequestError(pe.message, { cause: pe }));
              break;
            }
          }
        }
      }
    } catch {
      // the connection closed
    }
  }

  #settle(token: string, m: Msg | undefined, err?: Error): void {
    const p = this.#pending.get(token);
    if (!p) return; // late ack of a publish already timed out
    this.#pending.delete(token);
    if (this.#pending.size === 0) this.#stopSweep();
    if (err) return p.reject(err);
    try {
      p.resolve(parsePubAck(m!, p.subject));
    } catch (e) {
      p.reject(e as Error);
    }
  }

  #expire(): void {
    const now = Date.now();
    for (const [token, p] of this.#pending) {
      if (p.deadline <= now) {
        this.#pending.delete(token);
        p.reject(new TimeoutError());
      }
    }
    if (this.#pending.size === 0) this.#stopSweep();
  }

  #failAll(err: (p: Pending) => Error, except?: ReadonlySet<string>): void {
    const failed: Pending[] = [];
    for (const [token, p] of this.#pending) {
      if (except?.has(token)) continue;
      this.#pending.delete(token);
      failed.push(p);
    }
    if (this.#pending.size === 0) this.#stopSweep();
    for (const p of failed) p.reject(err(p));
  }

  #stopSweep(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}
