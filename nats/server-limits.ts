/**
 * The NATS servers' `max_control_line`, read through the system account: nats-server does not put it
 * in its INFO (clients are not told), but each server answers `$SYS.REQ.SERVER.PING.VARZ` with its
 * `/varz`, whose `max_control_line` is the limit in force (api/nats-control-line.ts). Only a user of
 * the system account may ask, which the operator is in accounts mode (`CELERIAC_NATS_SYSTEM_CREDS`).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { isNoResponders } from "../client/queue-lookup.js";

/** The varz request every server of the cluster answers (to a system-account user). */
export const VARZ_PING_SUBJECT = "$SYS.REQ.SERVER.PING.VARZ";

/**
 * Asks every server for its `/varz` and returns the smallest `max_control_line` among the answers
 * (a client may connect to any of them), in bytes.
 * @param o.maxWaitMs how long to collect answers at most, in ms (default 2000); collecting also ends
 *   once no answer came for `o.stallMs` (default 250) after the first (servers of one cluster answer within a few ms)
 * @returns the limit and how many servers answered; undefined when none answered with one (no
 *   responders: the connection is not a system-account user's, or a server too old)
 * @throws the nats.js error when the request cannot be sent (e.g. a permission violation)
 */
export async function readServersMaxControlLine(nc: NatsConnection, o: { maxWaitMs?: number; stallMs?: number } = {}): Promise<{ maxControlLine: number; servers: number } | undefined> {
  const limits: number[] = [];
  try {
    const iter = await nc.requestMany(VARZ_PING_SUBJECT, "", { strategy: "stall", maxWait: o.maxWaitMs ?? 2000, stall: o.stallMs ?? 250 });
    for await (const m of iter) {
      let v: unknown;
      try {
        v = (m.json<{ data?: { max_control_line?: unknown } }>()).data?.max_control_line;
      } catch {
        continue;
      }
      if (typeof v === "number" && Number.isInteger(v) && v > 0) limits.push(v);
    }
  } catch (err) {
    if (!isNoResponders(err)) throw err;
  }
  return limits.length > 0 ? { maxControlLine: Math.min(...limits), servers: limits.length } : undefined;
}
