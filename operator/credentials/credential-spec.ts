/**
 * Which NATS user the operator mints for a Queue's workers and for a namespace's producers: the user
 * name, its permissions (from `api/nats-permissions.ts`, the one owner of the subject rules) and a
 * hash of both that says when a minted credential no longer matches. Pure.
 */
import { createHash } from "node:crypto";
import { producerPermissions, workerPermissions, type NatsPermissions } from "../../api/nats-permissions.js";
import { PRODUCER_CREDS_SECRET_NAME, workerCredsSecretName, type NatsCredsRole } from "../../api/nats-creds-secrets.js";

/** One credential to mint and keep: where it lives, who it is for and what it may do. */
export interface CredentialSpec {
  /** `worker` (one per Queue) or `producer` (one per namespace). */
  readonly role: NatsCredsRole;
  /** Namespace of the Secret (the Queue's). */
  readonly namespace: string;
  /** Name of the Secret: `<queue>-worker-nats` or `celeriac-producer-nats`. */
  readonly secretName: string;
  /** The Queue, for a worker credential. */
  readonly queue?: string;
  /** Name in the user JWT (shown in server monitoring): `celeriac-worker.<ns>.<queue>` / `celeriac-producer.<ns>`. */
  readonly userName: string;
  /** What the user may publish and subscribe to. */
  readonly permissions: NatsPermissions;
  /** sha256 (hex) of {@link canonicalJson} of account, user name and permissions. */
  readonly hash: string;
}

/**
 * JSON with object keys sorted at every level, so equal values give equal text (and hashes)
 * whatever order they were built in. Array order is kept: it is part of the value.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
}

/**
 * The permissions hash of a credential: sha256 over the canonical JSON of the account, the user name
 * and the permissions. The account is in it so that pointing the operator at another account re-mints.
 * @returns 64 hex characters
 */
export function permissionsHash(account: string, userName: string, permissions: NatsPermissions): string {
  return createHash("sha256").update(canonicalJson({ account, userName, permissions })).digest("hex");
}

/**
 * The worker credential of Queue `queue` in `namespace`: exactly that Queue's subjects, streams,
 * consumers and results bucket (`workerPermissions`).
 * @param account the account public key (`A…`) the users belong to
 */
export function workerCredentialSpec(namespace: string, queue: string, account: string): CredentialSpec {
  const userName = `celeriac-worker.${namespace}.${queue}`;
  const permissions = workerPermissions(namespace, queue);
  return Object.freeze({ role: "worker", namespace, queue, secretName: workerCredsSecretName(queue), userName, permissions, hash: permissionsHash(account, userName, permissions) });
}

/**
 * The producer credential of `namespace`: publish tasks to, read results of and revoke on every
 * Queue listed (`producerPermissions`). The queue names are sorted and de-duplicated first, so the
 * hash changes only when the set changes.
 * @param queues names of the namespace's live Queues (not being deleted)
 * @param account the account public key (`A…`)
 */
export function producerCredentialSpec(namespace: string, queues: readonly string[], account: string): CredentialSpec {
  const sorted = [...new Set(queues)].sort();
  const userName = `celeriac-producer.${namespace}`;
  const permissions = producerPermissions(namespace, sorted);
  return Object.freeze({ role: "producer", namespace, secretName: PRODUCER_CREDS_SECRET_NAME, userName, permissions, hash: permissionsHash(account, userName, permissions) });
}
