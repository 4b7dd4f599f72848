/**
 * A queue's pause (design-ops decision 2): the `queue.paused` key of its results bucket
 * (`QUEUE_PAUSED_KEY`, record `QueuePaused` in api/queue-ops.ts). `celeriac queue pause` creates
 * it, `queue resume` deletes it; workers (worker/pause.ts) and the operator's scale loop follow it
 * with {@link QueuePauseWatch}. The key's presence is the pause: a value that does not parse still
 * pauses (its fields are then filled from the entry).
 */
import type { KV, KvEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import type { KvWatchEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { QUEUE_PAUSED_KEY } from "../api/naming.js";
import { parseQueuePaused, QUEUE_PAUSED_VERSION, type QueuePaused } from "../api/queue-ops.js";

/** The pause an entry of key `queue.paused` stands for: undefined for a delete, a purge or no entry. Pure. */
export function pausedFromEntry(e: Pick<KvEntry, "operation" | "value" | "created"> | null | undefined): QueuePaused | undefined {
  if (!e || e.operation !== "PUT") return undefined;
  const p = parseQueuePaused(e.value);
  return "paused" in p ? p.paused : { v: QUEUE_PAUSED_VERSION, paused: true, at: e.created.toISOString() };
}

/**
 * Reads a queue's pause.
 * @param kv the queue's results bucket
 * @returns the record, or undefined when the queue runs
 * @throws the nats.js error of the get
 */
export async function readQueuePaused(kv: KV): Promise<QueuePaused | undefined> {
  return pausedFromEntry(await kv.get(QUEUE_PAUSED_KEY));
}

/**
 * Pauses a queue: creates `queue.paused` (a compare-and-set create, so two pauses never overwrite
 * each other's reason).
 * @param o `reason` and `by` are recorded; `now` (ms) is the pause time
 * @returns `{paused}` the record written, or `{already}` the pause that was there
 * @throws Error "pause queue: …" when the write fails for another reason
 */
export async function pauseQueue(kv: KV, o: { reason?: string; by?: string; now?: number } = {}): Promise<{ paused: QueuePaused } | { already: QueuePaused }> {
  const rec: QueuePaused = {
    v: QUEUE_PAUSED_VERSION,
    paused: true,
    at: new Date(o.now ?? Date.now()).toISOString(),
    ...(o.by ? { by: o.by } : {}),
    ...(o.reason ? { reason: o.reason } : {}),
  };
  try {
    await kv.create(QUEUE_PAUSED_KEY, JSON.stringify(rec));
    return { paused: rec };
  } catch (err) {
    const current = await readQueuePaused(kv);
    if (current) return { already: current };
    throw new Error(`pause queue: write ${QUEUE_PAUSED_KEY}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Resumes a queue: deletes `queue.paused`.
 * @returns the pause that was lifted, or undefined when the queue was not paused (nothing written)
 * @throws Error "resume queue: …" when the delete fails
 */
export async function resumeQueue(kv: KV): Promise<QueuePaused | undefined> {
  const current = await readQueuePaused(kv);
  if (!current) return undefined;
  try {
    await kv.delete(QUEUE_PAUSED_KEY);
  } catch (err) {
    throw new Error(`resume queue: delete ${QUEUE_PAUSED_KEY}: ${(err as Error).message}`, { cause: err });
  }
  return current;
}

/**
 * Follows a queue's pause through a KV watch of `queue.paused` (an ordered consumer: it survives
 * reconnects). `start()` resolves once the current state is known (the watch is set up first and a
 * get read after it, so no change between the two is missed; the entry with the higher revision
 * wins). `onChange` is called on every flip, with the new state.
 */
export class QueuePauseWatch {
  readonly #kv: KV;
  readonly #log: Logger;
  readonly #onChange: (paused: QueuePaused | undefined) => void;
  #iter: QueuedIterator<KvWatchEntry> | undefined;
  #revision = 0;
  #paused: QueuePaused | undefined;
  #closed = false;

  /**
   * @param kv the queue's results bucket
   * @param onChange called when the queue turns paused (the record) or running (undefined)
   */
  constructor(kv: KV, log: Logger, onChange: (paused: QueuePaused | undefined) => void = () => undefined) {
    this.#kv = kv;
    this.#log = log;
    this.#onChange = onChange;
  }

  /** The pause now, or undefined when the queue runs. */
  get paused(): QueuePaused | undefined {
    return this.#paused;
  }

  /**
   * Starts watching; resolves once the current state is known (`paused` is then current).
   * @throws the nats.js error when the watch or the get fails
   */
  async start(): Promise<void> {
    const iter = (this.#iter = await this.#kv.watch({ key: QUEUE_PAUSED_KEY }));
    void (async () => {
      try {
        for await (const e of iter) this.#apply(e);
      } catch (err) {
        if (!this.#closed) this.#log.error({ err }, "Pause watch ended");
      }
    })();
    const e = await this.#kv.get(QUEUE_PAUSED_KEY);
    if (e) this.#apply(e);
  }

  #apply(e: KvEntry): void {
    if (e.revision <= this.#revision) return;
    this.#revision = e.revision;
    const next = pausedFromEntry(e);
    const flipped = (next === undefined) !== (this.#paused === undefined);
    this.#paused = next;
    if (flipped) this.#onChange(next);
  }

  /** Stops watching (idempotent). */
  stop(): void {
    this.#closed = true;
    this.#iter?.stop();
  }
}
