/**
 * Revocations: `revoked.<id>` markers in the results bucket, watched by every worker. The watch first
 * replays existing markers (so a worker started after a revoke knows it), then streams new ones.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { REVOKED_PREFIX } from "../api/naming.js";

/** Keeps the set of revoked task ids of one queue current. */
export class RevocationWatcher {
  readonly #kv: KV;
  readonly #log: Logger;
  readonly #onRevoke: (id: string) => void;
  readonly #revoked = new Set<string>();
  #iter: QueuedIterator<KvWatchEntry> | undefined;
  #closed = false;

  /**
   * @param kv the queue's results bucket
   * @param onRevoke called for every newly seen revoked id
   */
  constructor(kv: KV, log: Logger, onRevoke: (id: string) => void) {
    this.#kv = kv;
    this.#log = log;
    this.#onRevoke = onRevoke;
  }

  /** Starts watching; resolves once the watch is established. */
  async start(): Promise<void> {
    this.#iter = await this.#kv.watch({ key: `${REVOKED_PREFIX}>` });
    void (async () => {
      try {
        for await (const e of this.#iter!) {
          if (e.operation !== "PUT") continue;
          const id = e.key.slice(REVOKED_PREFIX.length);
          if (this.#revoked.has(id)) continue;
          this.#revoked.add(id);
          this.#onRevoke(id);
        }
      } catch (err) {
        if (!this.#closed) this.#log.error({ err }, "Revocation watch ended");
      }
    })();
  }

  /** True when task `id` has been revoked. */
  has(id: string): boolean {
    return this.#revoked.has(id);
  }

  /** Stops watching. */
  stop(): void {
    this.#closed = true;
    this.#iter?.stop();
  }
}
