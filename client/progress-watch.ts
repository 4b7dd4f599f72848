/**
 * `handle.onProgress`: a KV watch of one task's key in its results bucket (no polling) that calls
 * back with each new `status.progress` the worker wrote, in order, and ends by itself once the
 * task's record is final.
 */
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import { isTerminalPhase } from "../api/constants.js";
import type { TaskRecord } from "../api/message.js";
import type { TaskProgress } from "../api/task.js";

/** Called with each new progress report and the record that carried it. */
export type ProgressCallback = (progress: TaskProgress, record: TaskRecord) => void;

/**
 * What `onProgress` returns: call it to stop watching (idempotent; nothing is called back after).
 * `ended` resolves with the task's final record once it is final (its last progress delivered
 * first), or with undefined when stopped before that; it rejects when the watch could not be
 * started or failed (a rejection nobody awaits is not reported as unhandled).
 */
export type ProgressSubscription = (() => void) & { readonly ended: Promise<TaskRecord | undefined> };

/** Progress of a record's status as one comparable string ("" for none). */
const key = (p: TaskProgress | undefined): string => (p ? JSON.stringify(p) : "");

/**
 * Watches task `id` in `kv`: the current record first (when it has progress), then every write;
 * `cb` gets each progress that differs from the last one delivered (a record rewritten with the
 * same progress, e.g. the final one, is not delivered twice). A throwing `cb` does not stop the
 * watch. The watch stops at the first final record (Succeeded, Failed, Cancelled, Expired) or
 * when the subscription is called.
 * @param kv the task's results bucket
 * @param id the task id (its key)
 * @param cb the callback
 * @param onStop called once when the watch ended, however (the client forgets the subscription)
 */
export function watchProgress(kv: KV, id: string, cb: ProgressCallback, onStop: () => void = () => undefined): ProgressSubscription {
  let stopped = false;
  let iter: QueuedIterator<KvWatchEntry> | undefined;
  let finish: (r: TaskRecord | undefined) => void = () => undefined;
  let fail: (err: unknown) => void = () => undefined;
  const ended = new Promise<TaskRecord | undefined>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  ended.catch(() => undefined);
  const stop = (r?: TaskRecord) => {
    if (stopped) return;
    stopped = true;
    iter?.stop();
    onStop();
    finish(r);
  };
  void (async () => {
    let last = "";
    try {
      iter = await kv.watch({ key: id, ignoreDeletes: true });
      if (stopped) {
        iter.stop();
        return;
      }
      for await (const e of iter) {
        if (stopped) break;
        if (e.operation !== "PUT") continue;
        let rec: TaskRecord;
        try {
          rec = e.json<TaskRecord>();
        } catch {
          continue;
        }
        const p = rec.status?.progress;
        const k = key(p);
        if (p && k !== last) {
          last = k;
          try {
            cb(p, rec);
          } catch {
            // the caller's callback threw: keep watching
          }
        }
        if (isTerminalPhase(rec.status?.phase)) {
          stop(rec);
          break;
        }
      }
      if (!stopped) throw new Error("the watch ended before the task was final");
    } catch (err) {
      if (!stopped) {
        stopped = true;
        onStop();
        fail(new Error(`watch progress of task ${id}: ${(err as Error).message}`, { cause: err }));
      }
    }
  })();
  const sub = () => stop();
  return Object.assign(sub, { ended });
}
