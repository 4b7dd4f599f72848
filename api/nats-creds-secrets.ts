/**
 * The Secrets holding the NATS user credentials the operator mints (issue 13): their names, data key,
 * labels and annotations. Written once here because three processes rely on them: the operator
 * writes them, worker pods mount `<queue>-worker-nats`, and clients (`celeriac enqueue`, user code)
 * read `celeriac-producer-nats` of their namespace.
 */

/** Data key of the `.creds` file in every minted Secret. */
export const NATS_CREDS_SECRET_KEY = "nats.creds";

/** Name of the per-namespace producer Secret (publish tasks, read results, revoke). */
export const PRODUCER_CREDS_SECRET_NAME = "celeriac-producer-nats";

/**
 * Name of a Queue's worker credential Secret: `<queue>-worker-nats`.
 * @param queue the Queue's `metadata.name`
 */
export function workerCredsSecretName(queue: string): string {
  return `${queue}-worker-nats`;
}

/** Which credential a Secret holds: the value of {@link NATS_CREDS_LABELS}.role. */
export type NatsCredsRole = "worker" | "producer";

/** Labels on minted Secrets (besides `app.kubernetes.io/managed-by: celeriac-operator`). */
export const NATS_CREDS_LABELS = {
  /** `worker` or `producer`; the operator's Secret informer selects on this key. */
  role: "celeriac.io/nats-credentials",
} as const;

/** Annotations on minted Secrets; none of them is secret. */
export const NATS_CREDS_ANNOTATIONS = {
  /** When the user JWT expires (RFC 3339, second precision). */
  expiresAt: "celeriac.io/nats-creds-expires-at",
  /** When it was issued (RFC 3339, second precision). */
  issuedAt: "celeriac.io/nats-creds-issued-at",
  /** When the operator will replace it (RFC 3339): after 2/3 of the lifetime. */
  renewAt: "celeriac.io/nats-creds-renew-at",
  /** sha256 (hex) of the user's name, account and permissions: a change means re-mint. */
  permissionsHash: "celeriac.io/nats-permissions-hash",
  /** Public key (`A…`) of the key that signed the user JWT: a new signing key means re-mint. */
  issuer: "celeriac.io/nats-creds-issuer",
  /** Public key (`U…`) of the minted user (what `nats server report connections` shows). */
  user: "celeriac.io/nats-user",
  /**
   * Accounts mode only: the public key (`A…`) of the namespace's own NATS account the user belongs
   * to. Its presence tells the operator that a missing `celeriac-nats-account-<namespace>` Secret is
   * a lost key (refused), not a namespace new to accounts mode.
   */
  tenantAccount: "celeriac.io/nats-tenant-account",
} as const;

/**
 * Name of the Secret holding the NATS account identity seed of tenant namespace `namespace` in
 * accounts mode: `celeriac-nats-account-<namespace>`, kept in the operator's namespace
 * (`CELERIAC_NATS_ACCOUNTS_NAMESPACE`), never in the tenant's, so tenants cannot read it.
 * @param namespace the tenant namespace (a DNS-1123 label, so the name is a valid Secret name)
 */
export function accountSeedSecretName(namespace: string): string {
  return `celeriac-nats-account-${namespace}`;
}

/** Data key of the account identity seed (`SA…`) in an account seed Secret. */
export const NATS_ACCOUNT_SEED_KEY = "seed";

/**
 * Data key of the account's signing key seed (`SA…`) in an account seed Secret: it signs the
 * account's users (the identity key signs nothing but would be refused under the NATS operator's
 * `strict_signing_key_usage`).
 */
export const NATS_ACCOUNT_SIGNING_KEY_KEY = "signing-key";

/** Label on an account seed Secret: the tenant namespace whose account it holds. */
export const NATS_ACCOUNT_LABEL = "celeriac.io/nats-account";
