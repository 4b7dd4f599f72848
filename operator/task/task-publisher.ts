/**
 * The operator's `TaskPublisher`: publishes Task messages and revokes deleted Tasks over JetStream,
 * with the same code as `celeriac/client` (nats/task-publish.ts), and answers "is this task already
 * in NATS?" for a Task whose publish outcome is unknown beyond the duplicate window.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { heldNames } from "../../api/flow.js";
import type { TaskMessage, TaskRecord } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { publishTaskMessage, revokeTask } from "../../nats/task-publish.js";
import { isStreamNotFound } from "../../nats/queue-resources.js";
import { claimUnique, confirmUnique } from "../../nats/unique.js";
import type { TaskPublisher, UniqueClaim, UniqueClaimSpec } from "./task-reconciler.js";
import type { TenantConnection, TenantNats } from "../credentials/tenant-connections.js";

/** Default publish timeout, ms: short, so a NATS outage never holds a controller worker for long. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 2000;

/** Thrown by {@link JetStreamTaskPublisher.publish} when the connection is down: nothing was sent. */
export class NatsDisconnectedError extends Error {
  constructor(servers: string) {
    super(`not connected to NATS at ${servers} (reconnecting)`);
    this.name = "NatsDisconnectedError";
  }
}

/** Options of {@link JetStreamTaskPublisher}. */
export interface JetStreamTaskPublisherOptions {
  /** The connection, to publish only while connected and to report reconnects. */
  nc?: NatsConnection;
  /** Publish timeout, ms (default {@link DEFAULT_PUBLISH_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Called after each reconnect (the operator re-enqueues Tasks waiting on NATS). */
  onReconnect?: () => void;
}

/** Per stream, the `Nats-Msg-Id`s seen by sequence and the next sequence to read. */
interface StreamIndex {
  next: number;
  ids: Map<string, number>;
}

/** Publishes over JetStream; opens each queue's results bucket once. */
export class JetStreamTaskPublisher implements TaskPublisher {
  readonly #js: JetStreamClient;
  readonly #buckets = new Map<string, Promise<KV>>();
  readonly #timeoutMs: number;
  readonly #nc: NatsConnection | undefined;
  readonly #index = new Map<string, StreamIndex>();
  readonly #scans = new Map<string, Promise<unknown>>();
  #connected = true;
  #jsm: Promise<JetStreamManager> | undefined;

  constructor(js: JetStreamClient, opts: JetStreamTaskPublisherOptions = {}) {
    this.#js = js;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    this.#nc = opts.nc;
    if (opts.nc) {
      const nc = opts.nc;
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === "disconnect") this.#connected = false;
          if (s.type === "reconnect") {
            this.#connected = true;
            opts.onReconnect?.();
          }
        }
      })();
    }
  }

  /**
   * Publishes `msg` and resolves once JetStream acknowledged it (a PubAck, possibly `duplicate`).
   * @throws NatsDisconnectedError at once while the connection is down (nothing is sent)
   * @throws Error when JetStream does not confirm within the publish timeout
   */
  publish(msg: TaskMessage): Promise<void> {
    if (!this.#connected || this.#nc?.isClosed()) return Promise.reject(new NatsDisconnectedError(this.#nc?.getServer() ?? "?"));
    return publishTaskMessage(this.#js, queueNames(msg.namespace, msg.queue), msg, {
      timeoutMs: this.#timeoutMs,
      ...(this.#nc ? { isClosed: () => this.#nc!.isClosed() } : {}),
    });
  }

  /**
   * True when the task is known to NATS: a record in its results bucket (a worker has seen it), or a
   * message with `Nats-Msg-Id` = the task id in the work, delay or held stream (the held stream of
   * a flow-controlled queue: published, not yet released by the dispatcher). Each stream's message ids are
   * read once (incrementally, by sequence), so repeated checks cost only the messages added since.
   * @throws NatsDisconnectedError at once while the connection is down, so an outage never holds a
   *   controller worker for a request timeout (found by the fault suite's nats-outage-cr scenario:
   *   Tasks created during an outage sat without status while 4 workers each waited ~5 s here)
   * @throws Error when NATS cannot be read (the caller retries)
   */
  async isStored(msg: TaskMessage): Promise<boolean> {
    if (!this.#connected || this.#nc?.isClosed()) throw new NatsDisconnectedError(this.#nc?.getServer() ?? "?");
    const names = queueNames(msg.namespace, msg.queue);
    try {
      const e = await (await this.#bucket(names.resultsBucket)).get(msg.id);
      if (e && e.operation === "PUT") return true;
    } catch (err) {
      if (!isStreamNotFound(err)) throw new Error(`read results bucket ${names.resultsBucket}`, { cause: err });
    }
    for (const stream of [names.stream, names.delayedStream, heldNames(names).stream]) {
      if (await this.#inStream(stream, msg.id)) return true;
    }
    return false;
  }

  /**
   * Task `id`'s record in the queue's results bucket (undefined when it has none, or the bucket does not exist).
   * @throws Error "read results bucket <name>" when the bucket cannot be read
   */
  async record(namespace: string, queue: string, id: string): Promise<TaskRecord | undefined> {
    const bucket = queueNames(namespace, queue).resultsBucket;
    try {
      const e = await (await this.#bucket(bucket)).get(id);
      return e && e.operation === "PUT" ? e.json<TaskRecord>() : undefined;
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw new Error(`read results bucket ${bucket}`, { cause: err });
    }
  }

  /** @throws Error when the results bucket cannot be opened or written */
  async revoke(namespace: string, queue: string, id: string): Promise<void> {
    await revokeTask(await this.#bucket(queueNames(namespace, queue).resultsBucket), { namespace, queue }, id);
  }

  /**
   * Takes the singleton lock `msg.unique` in the task's results bucket (`claimUnique`, nats/unique.ts).
   * @throws NatsDisconnectedError at once while the connection is down
   * @throws Error when the bucket cannot be read or written (the caller retries)
   */
  async claimUnique(msg: TaskMessage, unique: UniqueClaimSpec): Promise<UniqueClaim> {
    if (!this.#connected || this.#nc?.isClosed()) throw new NatsDisconnectedError(this.#nc?.getServer() ?? "?");
    return claimUnique(await this.#bucket(queueNames(msg.namespace, msg.queue).resultsBucket), msg, unique);
  }

  /**
   * Marks `msg` published in its unique lock (`confirmUnique`, nats/unique.ts), after its PubAck.
   * @throws Error when the bucket cannot be read or written
   */
  async confirmUnique(msg: TaskMessage): Promise<void> {
    await confirmUnique(await this.#bucket(queueNames(msg.namespace, msg.queue).resultsBucket), msg);
  }

  #bucket(bucket: string): Promise<KV> {
    let kv = this.#buckets.get(bucket);
    if (!kv) {
      kv = new Kvm(this.#js).open(bucket);
      kv.catch(() => this.#buckets.delete(bucket));
      this.#buckets.set(bucket, kv);
    }
    return kv;
  }

  /** Serialised per stream: reads the messages added since the last scan and looks `id` up. */
  async #inStream(stream: string, id: string): Promise<boolean> {
    const prev = this.#scans.get(stream) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => this.#scan(stream));
    this.#scans.set(stream, run);
    await run;
    return this.#index.get(stream)?.ids.has(id) ?? false;
  }

  async #scan(stream: string): Promise<void> {
    this.#jsm ??= this.#js.jetstreamManager();
    const jsm = await this.#jsm;
    let state;
    try {
      state = (await jsm.streams.info(stream)).state;
    } catch (err) {
      if (isStreamNotFound(err)) return;
      throw new Error(`read stream ${stream}`, { cause: err });
    }
    const idx = this.#index.get(stream) ?? { next: 0, ids: new Map<string, number>() };
    this.#index.set(stream, idx);
    for (let seq = Math.max(idx.next, state.first_seq); seq <= state.last_seq && state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      const mid = m?.header?.get("Nats-Msg-Id");
      if (mid) idx.ids.set(mid, seq);
      idx.next = seq + 1;
    }
    idx.next = Math.max(idx.next, state.last_seq + 1);
    // Messages below the first sequence are gone (acked, so their task has a results record, or
    // aged out): forget them, so the index holds about as many ids as the stream holds messages.
    for (const [mid, seq] of idx.ids) if (seq < state.first_seq) idx.ids.delete(mid);
  }
}

/**
 * A `TaskPublisher` over the connection of each Task's namespace (accounts mode: the namespace's
 * own account): one {@link JetStreamTaskPublisher} per connection, made the first time it is needed.
 */
export class TenantTaskPublisher implements TaskPublisher {
  readonly #tenants: Pick<TenantNats, "forNamespace">;
  readonly #opts: Omit<JetStreamTaskPublisherOptions, "nc">;
  readonly #publishers = new Map<TenantConnection, JetStreamTaskPublisher>();

  /**
   * @param opts as for {@link JetStreamTaskPublisher}; `onReconnect` is called on each connection's reconnects
   */
  constructor(tenants: Pick<TenantNats, "forNamespace">, opts: Omit<JetStreamTaskPublisherOptions, "nc"> = {}) {
    this.#tenants = tenants;
    this.#opts = opts;
  }

  /** As {@link JetStreamTaskPublisher.publish}; also throws when the namespace's connection cannot be opened. */
  async publish(msg: TaskMessage): Promise<void> {
    return (await this.#for(msg.namespace)).publish(msg);
  }

  /** As {@link JetStreamTaskPublisher.isStored}; also throws when the namespace's connection cannot be opened. */
  async isStored(msg: TaskMessage): Promise<boolean> {
    return (await this.#for(msg.namespace)).isStored(msg);
  }

  /** As {@link JetStreamTaskPublisher.revoke}; also throws when the namespace's connection cannot be opened. */
  async revoke(namespace: string, queue: string, id: string): Promise<void> {
    return (await this.#for(namespace)).revoke(namespace, queue, id);
  }

  /** As {@link JetStreamTaskPublisher.record}; also throws when the namespace's connection cannot be opened. */
  async record(namespace: string, queue: string, id: string): Promise<TaskRecord | undefined> {
    return (await this.#for(namespace)).record(namespace, queue, id);
  }

  /** As {@link JetStreamTaskPublisher.confirmUnique}; also throws when the namespace's connection cannot be opened. */
  async confirmUnique(msg: TaskMessage): Promise<void> {
    return (await this.#for(msg.namespace)).confirmUnique(msg);
  }

  /** As {@link JetStreamTaskPublisher.claimUnique}; also throws when the namespace's connection cannot be opened. */
  async claimUnique(msg: TaskMessage, unique: UniqueClaimSpec): Promise<UniqueClaim> {
    return (await this.#for(msg.namespace)).claimUnique(msg, unique);
  }

  async #for(namespace: string): Promise<JetStreamTaskPublisher> {
    const t = await this.#tenants.forNamespace(namespace);
    let p = this.#publishers.get(t);
    if (!p) {
      p = new JetStreamTaskPublisher(t.js, { ...this.#opts, nc: t.nc });
      this.#publishers.set(t, p);
    }
    return p;
  }
}
