/**
 * The operator's NATS connection on its own minted credential: `connectNatsWithBackoff` with the
 * authenticator of {@link OperatorCredential}.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { connectNatsWithBackoff, type NatsSettings } from "../../nats/connection.js";
import type { OperatorCredential } from "./operator-credential.js";

/**
 * Connects to NATS as the operator's minted user, retrying with back-off (NATS_CONNECT_BACKOFF:
 * 0.5 s doubling to 30 s, each retry logged at warn) until it succeeds.
 * @param settings servers, TLS and name (`credsFile`, `user` and `password` must be unset)
 * @param credential supplies the creds on every connect and reconnect
 * @param log where each retry is logged
 */
export async function connectWithOperatorCredential(settings: NatsSettings, credential: OperatorCredential, log: Pick<Logger, "info" | "warn">): Promise<NatsConnection> {
  // ignoreAuthErrorAbort as for creds files: an auth error (say, a renewal that failed for a
  // while) must not end the reconnect loop for good
  return connectNatsWithBackoff(settings, log, { extra: { authenticator: credential.authenticator(), ignoreAuthErrorAbort: true } });
}
