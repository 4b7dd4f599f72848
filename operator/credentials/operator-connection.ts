/**
 * The operator's NATS connection on its own minted credential: the shared connection options
 * (`natsConnectionOptions`) with the authenticator swapped for {@link OperatorCredential}'s, and
 * the same start-up back-off as `connectNatsWithBackoff` (NATS_CONNECT_BACKOFF), which takes no
 * authenticator of its own.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { NATS_CONNECT_BACKOFF, natsConnectionOptions, type NatsSettings } from "../../nats/connection.js";
import type { OperatorCredential } from "./operator-credential.js";

/**
 * Connects to NATS as the operator's minted user, retrying with back-off (0.5 s doubling to 30 s,
 * each retry logged at warn) until it succeeds.
 * @param settings servers, TLS and name (`credsFile`, `user` and `password` must be unset)
 * @param credential supplies the creds on every connect and reconnect
 */
export async function connectWithOperatorCredential(settings: NatsSettings, credential: OperatorCredential, log: Pick<Logger, "info" | "warn">): Promise<NatsConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      // ignoreAuthErrorAbort as for creds files: an auth error (say, a renewal that failed for a
      // while) must not end the reconnect loop for good
      const nc = await connect({ ...natsConnectionOptions(settings), authenticator: credential.authenticator(), ignoreAuthErrorAbort: true });
      if (attempt > 1) log.info({ attempt, servers: settings.servers }, "Connected to NATS");
      return nc;
    } catch (err) {
      const delayMs = Math.min(NATS_CONNECT_BACKOFF.capMs, NATS_CONNECT_BACKOFF.baseMs * 2 ** Math.min(attempt - 1, 20));
      log.warn({ err: (err as Error).message, attempt, delayMs, servers: settings.servers }, "Failed to connect to NATS; retrying");
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
