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
/** How long records of expected tasks (`expect`) are kept for a `wait` that has not come, in ms. */
export const EXPECT_TTL_MS = 10 * 60_000;
/** Most tasks expected at once per bucket; beyond, `expect` does nothing (waits read the record). */
export const MAX_EXPECTED = 200_000;
/** A wait for an expected task not seen yet reads its record after this many ms all the same. */
export const EXPECTED_READ_AFTER_MS = 3000;
/** A record larger than this (bytes) is not kept for an expected task: its wait reads it. */
export const MAX_KEPT_RECORD_BYTES = 16 * 1024;

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
  /**
   * Tasks announced by `expect` before they were published, with their terminal record once the
   * watch saw it (null until then); valid only while the watch they were announced on runs.
   */
  readonly #expected = new Map<string, TaskRecord | null>();
  #expectedOn: Promise<QueuedIterator<KvWatchEntry>> | undefined;
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
          if (!set) {
            if (this.#expected.get(e.key) === null) {
              if (e.length > MAX_KEPT_RECORD_BYTES) this.#expected.delete(e.key); // large: its wait reads it
              else {
                const rec = decode(e);
                if (rec && isTerminalPhase(rec.status.phase)) this.#expected.set(e.key, rec);
              }
            }
            continue;
          }
          const rec = decode(e);
          if (rec && isTerminalPhase(rec.status.phase)) for (const w of [...set]) w(rec);
        }
      }).catch(() => undefined).finally(() => this.#watchEnded(p));
      p.catch(() => {
        if (this.#iter === p) this.#iter = undefined;
      });
    }
    return this.#iter;
  }

  /**
   * The watch `p` ended (stopped, or its consumer lost): expected tasks fall back to reading their
   * record, and waiters still pending get a new watch and a read, so none is left hanging.
   */
  #watchEnded(p: Promise<QueuedIterator<KvWatchEntry>>): void {
    if (this.#iter !== p) return;
    this.#iter = undefined;
    this.#expected.clear();
    this.#expectedOn = undefined;
    const ids = [...this.#waiters.keys()];
    if (ids.length === 0) return;
    void this.#ensureWatch().then(async () => {
      for (const id of ids) {
        const rec = decode(await this.#kv.get(id));
        if (rec && isTerminalPhase(rec.status.phase)) for (const w of [...(this.#waiters.get(id) ?? [])]) w(rec);
      }
    }).catch(() => undefined);
  }

  /**
   * Announces tasks about to be published (a canvas's steps): the watch is started (and awaited)
   * now, and their terminal records are kept as it sees them, so a later `wait` for one needs no
   * read of the bucket (10,000 reads took 1–3 s here). Kept EXPECT_TTL_MS at most; ignored when
   * more than MAX_EXPECTED would be expected; a record over MAX_KEPT_RECORD_BYTES is not kept (its
   * wait reads it), so memory stays bounded by about MAX_EXPECTED × 16 KiB.
   * @param ids task ids, not yet published
   * @throws Error when the watch cannot be started
   */
  async expect(ids: readonly string[]): Promise<void> {
    if (this.#expected.size + ids.length > MAX_EXPECTED) return;
    const p = this.#ensureWatch();
    await p;
    if (this.#iter !== p) return;
    if (this.#expectedOn !== p) {
      this.#expected.clear();
      this.#expectedOn = p;
    }
    for (const id of ids) if (!this.#expected.has(id)) this.#expected.set(id, null);
    const t = setTimeout(() => {
      for (const id of ids) this.#expected.delete(id);
      this.#idleCheck();
    }, EXPECT_TTL_MS);
    t.unref();
  }

  #idleCheck(): void {
    if (this.#waiters.size === 0 && this.#expected.size === 0 && this.#iter && !this.#idleTimer) {
      // keep the watch a little while: bursts of result() calls reuse it instead of churning consumers
      this.#idleTimer = setTimeout(() => {
        this.#idleTimer = undefined;
        if (this.#waiters.size > 0 || this.#expected.size > 0 || !this.#iter) return;
        const p = this.#iter;
        this.#iter = undefined;
        void p.then((it) => it.stop()).catch(() => undefined);
      }, IDLE_STOP_MS);
      this.#idleTimer.unref();
    }
  }

  #remove(id: string, w: Waiter): void {
    const set = this.#waiters.get(id);
    set?.delete(w);
    if (set && set.size === 0) this.#waiters.delete(id);
    this.#idleCheck();
  }

  /**
   * Resolves with the task's record once it is terminal (Succeeded, Failed, Cancelled, Expired).
   * @param timeoutMs give up after this many ms (rejects with `onTimeout()`); undefined = wait forever
   */
  wait(id: string, timeoutMs: number | undefined, onTimeout: () => Error): Promise<TaskRecord> {
    return new Promise<TaskRecord>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let late: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(late);
        this.#remove(id, w);
        fn();
      };
      const w: Waiter = (r) => finish(() => resolve(r));
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      set.add(w);
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(() => reject(onTimeout())), timeoutMs);
      if (this.#expected.has(id) && this.#expectedOn === this.#iter) {
        // announced before it was published, on the watch still running: it saw every write
        const seen = this.#expected.get(id);
        this.#expected.delete(id);
        if (seen) {
          w(seen);
          return;
        }
        // not seen yet: the watch brings it; a read after EXPECTED_READ_AFTER_MS still covers a
        // record that was there before the announcement (an id that was taken already)
        late = setTimeout(() => {
          if (done) return;
          this.#kv
            .get(id)
            .then((e) => {
              const rec = decode(e);
              if (rec && isTerminalPhase(rec.status.phase)) w(rec);
            })
            .catch(() => undefined);
        }, EXPECTED_READ_AFTER_MS);
        late.unref();
        return;
      }
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
    this.#expected.clear();
    this.#expectedOn = undefined;
    const p = this.#iter;
    this.#iter = undefined;
    void p?.then((it) => it.stop()).catch(() => undefined);
  }
}
