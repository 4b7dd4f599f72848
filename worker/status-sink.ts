/**
 * Where the worker records a task's state. The worker writes every state change through each
 * configured sink and acks a message only after all sinks succeeded.
 */
import type { KV } from "@nats-io/kv";
import type { TaskRecord } from "../api/message.js";
import { kvPut } from "../nats/kv-put.js";
import { KV_PROGRESS_INTERVAL_MS } from "./progress.js";

/** A place task records are written to. */
export interface StatusSink {
  /** Short name for logs and errors, e.g. `kv`. */
  readonly name: string;
  /**
   * Least time between two progress writes (`ctx.progress`) to this sink, in ms; default 1000
   * (DEFAULT_PROGRESS_INTERVAL_MS). A progress write is the `Running` record with `status.progress`,
   * tried once (a failure is logged; the next report or the final record covers it).
   */
  readonly progressIntervalMs?: number;
  /**
   * Writes (replaces) the record of `record.id`.
   * @throws when the write failed; the worker retries, and does not ack until it succeeds
   */
  write(record: TaskRecord): Promise<void>;
}

/** Key prefix of revocation markers and the task id pattern: defined with the other names in api/naming.ts. */
export { REVOKED_PREFIX, TASK_ID_PATTERN } from "../api/naming.js";

/**
 * The results-bucket sink: the record is the value of key `<task id>` (TTL = the bucket's). The put
 * is a publish through the connection's pipelined publisher (`kvPut`), resolved by the bucket
 * stream's PubAck: `write` resolves only once the server stored the record.
 */
export class KvStatusSink implements StatusSink {
  readonly name = "kv";
  readonly progressIntervalMs = KV_PROGRESS_INTERVAL_MS;
  readonly #kv: KV;
  constructor(kv: KV) {
    this.#kv = kv;
  }
  async write(record: TaskRecord): Promise<void> {
    await kvPut(this.#kv, record.id, JSON.stringify(record));
  }
}
