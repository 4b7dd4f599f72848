/**
 * The queue settings that shape a queue's NATS resources (streams, consumers, results bucket), with
 * the documented defaults used when no Queue resource exists. Pure.
 */
import {
  DEFAULT_ACK_WAIT_SECONDS,
  DEFAULT_DEAD_LETTER_MAX_AGE,
  DEFAULT_DUPLICATE_WINDOW,
  DEFAULT_RESULTS_TTL_SECONDS,
} from "../api/defaults.js";

/** Settings of one queue that its NATS resources derive from. Durations as noted per field. */
export interface QueueSettings {
  /** Worker consumer ack wait, in seconds: a task unacked and not heartbeated this long is redelivered. */
  readonly ackWaitSeconds: number;
  /** Most unacknowledged messages the worker consumer allows across all workers. */
  readonly maxAckPending: number;
  /** How long task records and results stay in the results bucket, in seconds. */
  readonly resultsTtlSeconds: number;
  /** Duplicate window of the work and delayed streams (Go duration, e.g. `2m`). */
  readonly duplicateWindow: string;
  /** How long dead letters are kept (Go duration, e.g. `336h`). */
  readonly deadLetterMaxAge: string;
  /** Stream and bucket replicas (1, 3 or 5). */
  readonly replicas: number;
  /** Storage of streams and bucket. */
  readonly storage: "file" | "memory";
  /**
   * Flow control (api/flow.ts): set when the Queue is flow-controlled, then the queue also has a
   * held stream with one `dispatch-<level>` consumer per priority level (`levels`: 1 when the
   * Queue has no priorities). Undefined: no held stream (the queue is as before flow control).
   */
  readonly flow?: { readonly levels: number } | undefined;
}

/** Default most-unacked messages on the worker consumer. */
export const DEFAULT_MAX_ACK_PENDING = 10_000;

/** The documented defaults (`api/defaults.ts`), frozen. */
export const DEFAULT_QUEUE_SETTINGS: QueueSettings = Object.freeze({
  ackWaitSeconds: DEFAULT_ACK_WAIT_SECONDS,
  maxAckPending: DEFAULT_MAX_ACK_PENDING,
  resultsTtlSeconds: DEFAULT_RESULTS_TTL_SECONDS,
  duplicateWindow: DEFAULT_DUPLICATE_WINDOW,
  deadLetterMaxAge: DEFAULT_DEAD_LETTER_MAX_AGE,
  replicas: 1,
  storage: "file",
  flow: undefined,
});

/** Settings with every absent field taken from `DEFAULT_QUEUE_SETTINGS`; frozen. */
export function queueSettings(partial: Partial<QueueSettings> = {}): QueueSettings {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  return Object.freeze({ ...DEFAULT_QUEUE_SETTINGS, ...defined });
}

const UNITS_NS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * Parses a Go duration (`1h30m`, `2m`, `500ms`, `0`) to nanoseconds.
 * @throws Error naming the value when it is not a Go duration
 */
export function parseGoDuration(d: string): number {
  if (d === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(d); m; m = re.exec(d)) {
    total += Number(m[1]) * (UNITS_NS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (matched !== d.length || d.length === 0) {
    throw new Error(`duration "${d}" is not a Go duration: use e.g. 90s, 2m, 1h30m`);
  }
  return Math.round(total);
}
