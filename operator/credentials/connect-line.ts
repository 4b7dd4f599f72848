/**
 * Whether a minted credential can connect: its CONNECT line (the user JWT plus
 * {@link CONNECT_LINE_OVERHEAD_BYTES}) against the NATS server's `max_control_line` the operator is
 * told (`CELERIAC_NATS_MAX_CONTROL_LINE`, api/nats-control-line.ts). Pure. A credential over the limit
 * is still minted (the server may allow more than the operator was told); the Queue reconciler's
 * credentials sub-step records a Warning Event on the Queues that use it, with the message built here.
 */
import { CELERIAC_NATS_MAX_CONTROL_LINE, CONNECT_LINE_OVERHEAD_BYTES, connectLineBytes } from "../../api/nats-control-line.js";
import type { NatsCredsRole } from "../../api/nats-creds-secrets.js";

/** What {@link connectLineCheck} needs to know about one credential. */
export interface ConnectLineInput {
  /** `worker` or `producer`. */
  role: NatsCredsRole;
  /** The Secret holding it (`<queue>-worker-nats`, `celeriac-producer-nats`). */
  secretName: string;
  /** Length of its user JWT, in bytes. */
  jwtBytes: number;
  /** How many Queues its permissions cover (1 for a worker). */
  queues: number;
  /** The NATS server's `max_control_line` the operator is told, in bytes. */
  maxControlLine: number;
}

/** The outcome of {@link connectLineCheck}. */
export interface ConnectLineCheck {
  /** True when the CONNECT line fits the limit. */
  fits: boolean;
  /** Longest CONNECT line the credential makes, in bytes (JWT + {@link CONNECT_LINE_OVERHEAD_BYTES}). */
  connectBytes: number;
  /** Why clients cannot connect and what to do (only when it does not fit); starts with a capital, no final period. */
  message?: string;
}

/**
 * Checks one credential's CONNECT line against `max_control_line`.
 * @returns `fits`, the line's size, and when it does not fit a message naming the Secret, the size,
 *   the limit and the fixes: raise `max_control_line` in the NATS server config and tell the operator
 *   (`CELERIAC_NATS_MAX_CONTROL_LINE`, chart `natsAuth.maxControlLine`), or, for a producer, split the
 *   Queues across namespaces
 */
export function connectLineCheck(c: ConnectLineInput): ConnectLineCheck {
  const connectBytes = connectLineBytes(c.jwtBytes);
  if (connectBytes <= c.maxControlLine) return { fits: true, connectBytes };
  const raiseTo = Math.max(CELERIAC_NATS_MAX_CONTROL_LINE, nextPowerOfTwo(connectBytes));
  const what = c.role === "producer" ? `NATS producer credential (${c.queues} Queue${c.queues === 1 ? "" : "s"} of the namespace)` : "NATS worker credential";
  const split = c.role === "producer" ? ", or split the Queues across namespaces (each namespace gets its own producer credential)" : ", or shorten the namespace and Queue names";
  return {
    fits: false,
    connectBytes,
    message:
      `The ${what} in Secret ${c.secretName} has a ${c.jwtBytes}-byte user JWT: with the rest of the CONNECT line (${CONNECT_LINE_OVERHEAD_BYTES} bytes allowed) ` +
      `it needs up to ${connectBytes} bytes, over the NATS server's max_control_line of ${c.maxControlLine} bytes (CELERIAC_NATS_MAX_CONTROL_LINE), ` +
      `so clients using it cannot connect (the server logs "maximum control line exceeded" and the client times out): ` +
      `set max_control_line: ${raiseTo} in the NATS server config and CELERIAC_NATS_MAX_CONTROL_LINE (chart natsAuth.maxControlLine) to match${split}`,
  };
}

/** The smallest power of two ≥ `n` (n ≥ 1). */
function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}
