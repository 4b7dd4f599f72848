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

/** What `PurgeNotices` needs. */
export interface PurgeNoticesDeps {
  /** The results bucket of a queue. */
  bucket(namespace: string, queue: string): Promise<KV>;
  /** Called with each notice: the queue and when it was purged (epoch ms). Never throws. */
  onPurge(namespace: string, queue: string, atMs: number): void;
  log?: Logger;
}

/** Back-off before a failed or ended watch is opened again, ms. */
const REWATCH_MS = 1000;

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
    let stopped = false;
    let iter: { stop(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    this.#watches.set(k, {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
        iter?.stop();
      },
    });
    const run = async (): Promise<void> => {
      while (!stopped) {
        try {
          const kv = await this.#d.bucket(namespace, queue);
          // the current value first (a purge before this watch opened), then every later one
          const w = await kv.watch({ key: QUEUE_PURGED_KEY, ignoreDeletes: true });
          iter = w;
          if (stopped) w.stop();
          for await (const e of w) {
            if (e.operation !== "PUT") continue;
            const p = parseQueuePurged(e.value);
            if ("error" in p) {
              this.#d.log?.warn({ namespace, queue, error: p.error }, "Ignored a malformed queue purge notice");
              continue;
            }
            const at = Date.parse(p.purged.at);
            if ((this.#last.get(k) ?? -Infinity) >= at) continue;
            this.#last.set(k, at);
            this.#d.onPurge(namespace, queue, at);
          }
        } catch (err) {
          if (!stopped) this.#d.log?.warn({ err, namespace, queue }, "Queue purge-notice watch failed; opening it again");
        }
        if (stopped) return;
        await new Promise<void>((r) => (timer = setTimeout(r, REWATCH_MS)));
      }
    };
    void run();
  }

  /** Stops every watch. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#watches.values()) w.stop();
    this.#watches.clear();
  }
}
