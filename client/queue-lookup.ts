/**
 * Does a queue exist? In managed mode a queue's work stream exists only when the operator made it
 * for a Queue resource, so the stream is the answer, and the namespace's other work streams name
 * the queues that do exist (for the error message of a typo).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { NoRespondersError, RequestError } from "@nats-io/transport-node";
import type { QueueNames } from "../api/naming.js";
import { isPermissionViolation, isStreamNotFound } from "../nats/index.js";
import { PRODUCER_CREDS_SECRET_NAME } from "../api/nats-creds-secrets.js";

/**
 * True when `err` (or one of its causes) says nobody answered the request: for a JetStream publish,
 * no stream listens on the subject (nats.js reports it as "jetstream is not enabled").
 */
export function isNoResponders(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof NoRespondersError) return true;
    if (e instanceof RequestError && e.isNoResponders()) return true;
  }
  return false;
}

/**
 * Whether the queue's work stream exists.
 * @returns false when JetStream says "stream not found"
 * @throws Error "get stream X: …" on other failures; for a permission violation it says which
 *   causes are possible and, for minted credentials, what to do
 */
export async function queueStreamExists(jsm: JetStreamManager, names: QueueNames): Promise<boolean> {
  try {
    await jsm.streams.info(names.stream);
    return true;
  } catch (err) {
    if (isStreamNotFound(err)) return false;
    // CELERIAC_<namespace>_<queue>: neither name can contain "_"
    const [, namespace, queue] = names.stream.split("_");
    const hint = isPermissionViolation(err)
      ? `. This NATS credential may not use queue "${queue}" in namespace "${namespace}": the Queue does not exist there, the credential belongs to another namespace, or it was minted before the Queue was created (with minted credentials: read Secret ${PRODUCER_CREDS_SECRET_NAME} in namespace ${namespace} again and reconnect)`
      : "";
    throw new Error(`get stream ${names.stream}: ${(err as Error).message}${hint}`, { cause: err });
  }
}

/**
 * Queue names of `namespace` from its work streams (`CELERIAC_<ns>_<queue>` on
 * `celeriac.<ns>.<queue>.tasks`), sorted. Queue names cannot contain `_`, so the prefix is exact.
 */
export async function listQueues(jsm: JetStreamManager, namespace: string): Promise<string[]> {
  const prefix = `CELERIAC_${namespace}_`;
  const out: string[] = [];
  for await (const name of jsm.streams.names(`celeriac.${namespace}.*.tasks`)) {
    if (name.startsWith(prefix) && !name.slice(prefix.length).includes("_")) out.push(name.slice(prefix.length));
  }
  return out.sort();
}
