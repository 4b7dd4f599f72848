/**
 * Which namespaces hold a producer Secret the operator minted but no Queue any more: left behind
 * when the namespace's last Queue was deleted while the operator was down (or its delete event
 * was missed). Pure; the sweep that deletes them is `QueueCredentials.sweepOrphanProducers`.
 */
import { NATS_CREDS_LABELS, PRODUCER_CREDS_SECRET_NAME } from "../../api/nats-creds-secrets.js";
import { isMintedCredsSecret, type CredsSecret } from "./desired-secrets.js";

/**
 * The namespaces, sorted and unique, of the minted producer Secrets (`celeriac-producer-nats`,
 * label `celeriac.io/nats-credentials: producer`, managed by the operator) in `secrets` whose
 * namespace has no Queue that is live.
 * @param secrets the minted credential Secrets (e.g. the operator's Secret informer cache)
 * @param hasQueue true when the namespace has a Queue that is not being deleted
 */
export function orphanProducerNamespaces(secrets: readonly CredsSecret[], hasQueue: (namespace: string) => boolean): string[] {
  const out = new Set<string>();
  for (const s of secrets) {
    const ns = s.metadata.namespace;
    if (!ns || s.metadata.name !== PRODUCER_CREDS_SECRET_NAME) continue;
    if (s.metadata.labels?.[NATS_CREDS_LABELS.role] !== "producer" || !isMintedCredsSecret(s)) continue;
    if (!hasQueue(ns)) out.add(ns);
  }
  return [...out].sort();
}
