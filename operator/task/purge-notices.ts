/**
 * Queue purge notices: one KV watch of the `queue.purged` key (`QUEUE_PURGED_KEY`) per results bucket
 * that holds a Queued Task resource. `celeriac queue purge` records each removed task Cancelled in
 * the results bucket and then writes that key; no worker ever sees a purged message, so no worker
 * writes the Task. On each notice (and on the key's current value when a watch opens) the queue's
 * last purge time is kept and `onPurge` is called, which enqueues the queue's Queued Tasks; the Task
 * reconciler then reads each one's record and, when it is Cancelled, ends the Task Cancelled
 * (task-reconciler.ts, `#purged`). Data flows one way: NATS → operator → Task status.
 * A broken watch is opened again after a back-off; a notice missed meanwhile is the key's current
 * value when it reopens.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { QUEUE_PURGED_KEY } from "../../api/naming.js";
import { parseQueuePurged } from "../../api/queue-ops.js";
import { keepWatching } from "../runtime/kv-watch.js";

/** What `PurgeNotices` needs. */
export interface PurgeNoticesDeps {
  /** The results bucket of a queue. */
  bucket(namespace: string, queue: string): Promise<KV>;
  /** Called with each notice: the queue and when it was purged (epoch ms). Never throws. */
  onPurge(namespace: string, queue: string, atMs: number): void;
  log?: Logger;
}

/** Watches the purge notices of the results buckets it is asked to (see the module header). */
export class PurgeNotices {
  readonly #d: PurgeNoticesDeps;
  readonly #watches = new Map<string, { stop: () => void }>();
  /** Per `namespace/queue`, the last purge notice's time, epoch ms. */
  readonly #last = new Map<string, number>();
  #stopped = false;

  /** @param deps buckets, the notice callback and a logger */
  constructor(deps: PurgeNoticesDeps) {
    this.#d = deps;
  }

  /** The time of queue `queue`'s last purge notice seen (epoch ms), or undefined when none was (yet). */
  lastPurgeMs(namespace: string, queue: string): number | undefined {
    return this.#last.get(`${namespace}/${queue}`);
  }

  /** Starts watching queue `queue`'s purge notice in `namespace` (once; later calls do nothing). */
  watch(namespace: string, queue: string): void {
    const k = `${namespace}/${queue}`;
    if (this.#stopped || this.#watches.has(k)) return;
    this.#watches.set(
      k,
      keepWatching({
        bucket: () => this.#d.bucket(namespace, queue),
        // the current value first (a purge before this watch opened), then every later one
        watch: { key: QUEUE_PURGED_KEY, ignoreDeletes: true },
        what: "Queue purge-notice watch",
        fields: { namespace, queue },
        ...(this.#d.log ? { log: this.#d.log } : {}),
        onEntry: (e) => {
          if (e.operation !== "PUT") return;
          const p = parseQueuePurged(e.value);
          if ("error" in p) {
            this.#d.log?.warn({ namespace, queue, error: p.error }, "Ignored a malformed queue purge notice");
            return;
          }
          const at = Date.parse(p.purged.at);
          if ((this.#last.get(k) ?? -Infinity) >= at) return;
          this.#last.set(k, at);
          this.#d.onPurge(namespace, queue, at);
        },
      }),
    );
  }

  /** Stops every watch. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#watches.values()) w.stop();
    this.#watches.clear();
  }
}
