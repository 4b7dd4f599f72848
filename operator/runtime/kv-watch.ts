/**
 * A KV watch the operator keeps open: opened on a bucket, each entry handed to a callback, opened
 * again (after 1 s) whenever it ends or fails, until stopped. The results-bucket watches of the
 * Task reconciler's purge notices (operator/task/purge-notices.ts) and the Workflow reconciler's
 * step notices (operator/workflow/step-notices.ts) are each one per queue of it.
 */
import type { KV, KvEntry, KvWatchOptions } from "@nats-io/kv";
import type { Logger } from "pino";

/** Wait before a watch that ended or failed is opened again, in ms. */
export const REWATCH_MS = 1000;

/** Options of {@link keepWatching}. */
export interface KeepWatchingOptions {
  /** The bucket to watch (called again on each reopening). */
  bucket: () => Promise<KV>;
  /** The watch: key filter, what to include (nats.js `kv.watch` options). */
  watch: KvWatchOptions;
  /** Called with each entry, in order; a throw is logged and the watch goes on. */
  onEntry: (e: KvEntry) => void;
  /** Where a failed watch is logged (warn), with `fields`. */
  log?: Pick<Logger, "warn">;
  /** What the watch is, for the log line: "Queue purge-notice watch". */
  what: string;
  /** Fields of the log lines (e.g. namespace, queue). */
  fields?: Record<string, unknown>;
}

/**
 * Watches until `stop()`: opens the watch, hands each entry to `onEntry`, and opens it again
 * {@link REWATCH_MS} after it ends or fails (a NATS restart, a bucket not there yet), logging the
 * failure. Never throws.
 * @returns `stop()`: ends the watch now and opens no other
 */
export function keepWatching(o: KeepWatchingOptions): { stop(): void } {
  let stopped = false;
  let iter: { stop(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        const kv = await o.bucket();
        const w = await kv.watch(o.watch);
        iter = w;
        if (stopped) w.stop();
        for await (const e of w) {
          try {
            o.onEntry(e);
          } catch (err) {
            o.log?.warn({ err, key: e.key, ...o.fields }, `${o.what}: an entry could not be handled`);
          }
        }
      } catch (err) {
        if (!stopped) o.log?.warn({ err, ...o.fields }, `${o.what} failed; opening it again`);
      }
      if (stopped) return;
      await new Promise<void>((r) => (timer = setTimeout(r, REWATCH_MS)));
    }
  };
  void run();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      iter?.stop();
    },
  };
}
