/**
 * When a delivered message may be a redelivery of a task that already finished (its final record
 * stored, its ack lost), so that the results bucket is worth a look before running it.
 *
 * The delivery count is not enough: a nats-server that crashes (SIGKILL, OOM, node loss) loses the
 * consumer's recent delivery state, and the messages come back with delivery count 1. What such a
 * message always has is a stream timestamp from before the crash — and every crash disconnects this
 * worker, so it is older than the worker's last (re)connect. A message stored after that instant
 * cannot have been delivered before a crash this worker has not seen. So a message is checked when
 * its delivery count is above 1, or it was stored before the worker's epoch: the later of its start
 * and its last reconnect (plus a margin for clock skew between worker and server). In steady state
 * neither holds and a delivery costs no KV read; after a start or a reconnect, the backlog that was
 * already stored costs one KV read per message, once.
 */
import type { NatsConnection } from "@nats-io/transport-node";

/** Margin for clock skew between the worker and the server, in ms: messages stored this soon after the epoch are checked too. */
export const CLOCK_SKEW_MARGIN_MS = 2000;

/**
 * True when a delivery should be checked against the results bucket. Pure.
 * @param deliveryCount the JetStream delivery count, 1-based
 * @param storedMs when the stream stored the message (server clock, ms since the epoch)
 * @param epochMs the worker's epoch: the later of its start and its last reconnect (worker clock, ms)
 * @param marginMs clock skew allowance, ms
 */
export function mayBeRedelivery(deliveryCount: number, storedMs: number, epochMs: number, marginMs = CLOCK_SKEW_MARGIN_MS): boolean {
  return deliveryCount > 1 || storedMs < epochMs + marginMs;
}

/** Tracks a connection's epoch: set at `start()`, moved to now on every reconnect. */
export class ConnectionEpoch {
  #epochMs = Date.now();
  #stopped = false;
  readonly #nc: NatsConnection;
  /** @param nc the worker's connection */
  constructor(nc: NatsConnection) {
    this.#nc = nc;
  }
  /** The epoch, ms since the epoch (worker clock). */
  get ms(): number {
    return this.#epochMs;
  }
  /** Sets the epoch to now and follows the connection's reconnects (until `stop()` or the connection closes). */
  start(): void {
    this.#epochMs = Date.now();
    void (async () => {
      for await (const s of this.#nc.status()) {
        if (this.#stopped) break;
        if (s.type === "reconnect") this.#epochMs = Date.now();
      }
    })().catch(() => undefined);
  }
  /** Stops following reconnects. */
  stop(): void {
    this.#stopped = true;
  }
}
