/**
 * One KV watch per results bucket shared by every pending `result()` call of a client: no polling,
 * and one server-side consumer however many results are awaited. Started on the first waiter,
 * stopped 5 s after the last one left.
 */
import { KvWatchInclude, type KV, type KvEntry, type KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import { isTerminalPhase } from "../api/constants.js";
import type { TaskRecord } from "../api/message.js";

type Waiter = (r: TaskRecord) => void;

/** How long a watch with no waiters is kept before it is stopped, in ms. */
const IDLE_STOP_MS = 5000;

function decode(e: KvEntry | null): TaskRecord | undefined {
  if (!e || e.operation !== "PUT") return undefined;
  try {
    return e.json<TaskRecord>();
  } catch {
    return undefined;
  }
}

/** Waits for terminal records in one results bucket. */
export class ResultWatcher {
  readonly #kv: KV;
  readonly #waiters = new Map<string, Set<Waiter>>();
  #iter: Promise<QueuedIterator<KvWatchEntry>> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(kv: KV) {
    this.#kv = kv;
  }

  #ensureWatch(): Promise<QueuedIterator<KvWatchEntry>> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (!this.#iter) {
      const p = this.#kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true });
      this.#iter = p;
      void p.then(async (iter) => {
        for await (const e of iter) {
          const set = this.#waiters.get(e.key);
          if (!set) continue;
          const rec = decode(e);
          if (rec && isTerminalPhase(rec.status.phase)) for (const w of [...set]) w(rec);
        }
      }).catch(() => undefined);
      p.catch(() => {
        if (this.#iter === p) this.#iter = undefined;
      });
    }
    return this.#iter;
  }

  #remove(id: string, w: Waiter): void {
    const set = this.#waiters.get(id);
    set?.delete(w);
    if (set && set.size === 0) this.#waiters.delete(id);
    if (this.#waiters.size === 0 && this.#iter && !this.#idleTimer) {
      // keep the watch a little while: bursts of result() calls reuse it instead of churning consumers
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        if (this.#waiters.size > 0 || !this.#iter) return;
        const p = this.#iter;
        this.#iter = undefined;
        void p.then((it) => it.stop()).catch(() => undefined);
      }, IDLE_STOP_MS);
      this.#idleTimer.unref();
    }
  }

  /**
   * Resolves with the task's record once it is terminal (Succeeded, Failed, Cancelled, Expired).
   * @param timeoutMs give up after this many ms (rejects with `onTimeout()`); undefined = wait forever
   */
  wait(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<TaskRecord> {
    return new Promise<TaskRecord>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#remove(id, w);
        fn();
      };
      const w: Waiter = (r) => finish(() => resolve(r));
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      set.add(w);
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(() => reject(onTimeout())), timeoutMs);
      // watch first, then read the current value, so nothing written in between is missed
      this.#ensureWatch()
        .then(() => this.#kv.get(id))
        .then((e) => {
          const rec = decode(e);
          if (rec && isTerminalPhase(rec.status.phase)) w(rec);
        })
        .catch((err: unknown) => finish(() => reject(new Error(`watch results of task ${id}: ${(err as Error).message}`, { cause: err }))));
    });
  }

  /** Stops the watch and rejects nothing (pending waits time out or are abandoned). */
  stop(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#waiters.clear();
    const p = this.#iter;
    this.#iter = undefined;
    void p?.then((it) => it.stop()).catch(() => undefined);
  }
}
