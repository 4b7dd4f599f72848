/**
 * The desired `.creds` Secret of a credential, and what a live one holds. Pure.
 *
 * Secret shape (`type: Opaque`, in the credential's namespace):
 * - `data["nats.creds"]`: the creds file (user JWT + user seed), base64 as the API stores it;
 * - labels `app.kubernetes.io/managed-by: celeriac-operator`, `celeriac.io/nats-credentials:
 *   worker|producer` (the operator's Secret informer selects on it) and, for a worker credential,
 *   `celeriac.io/queue`;
 * - annotations (public facts only): issued-at, expires-at, renew-at, permissions hash, issuer and
 *   user public keys (`api/nats-creds-secrets.ts`);
 * - ownerReferences: a worker Secret has its Queue as controller (garbage collection deletes it with
 *   the Queue); the producer Secret lists every Queue of the namespace as a non-controller owner, so
 *   Kubernetes deletes it when the last one is gone even if the operator is not running.
 */
import type { V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, LABELS, MANAGED_BY, RESOURCES } from "../../api/constants.js";
import { NATS_CREDS_ANNOTATIONS, NATS_CREDS_LABELS, NATS_CREDS_SECRET_KEY } from "../../api/nats-creds-secrets.js";
import type { Queue } from "../../api/objects.js";
import { credsIdentity, type CredsIdentity } from "../../nats/credentials.js";
import { queueOwnerReference } from "../queue/labels.js";
import { permissionsHash, type CredentialSpec } from "./credential-spec.js";
import { renewAt, type LiveCredential } from "./rotation.js";

/** A Secret as the operator reads and writes it (the fields it uses). */
export interface CredsSecret {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: V1OwnerReference[];
    deletionTimestamp?: string;
  };
  type?: string;
  /** Base64 values. */
  data?: Record<string, string>;
}

/** A freshly minted credential, as the Secret builder needs it. */
export interface MintedCredential {
  /** The creds file text (secret). */
  creds: string;
  issuedAt: Date;
  expiresAt: Date;
  /** The user's public key (`U…`). */
  userPublicKey: string;
  /** The signing key's public key (`A…`). */
  issuer: string;
}

/** RFC 3339 with second precision (JWT times are whole seconds). */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The owner references of a credential Secret: the worker's Queue as controller; for the producer,
 * every listed Queue (with a uid) as a plain owner, sorted by name.
 * @throws Error when a worker credential's Queue has no uid (not read from the API server)
 */
export function credsOwnerReferences(spec: CredentialSpec, queues: readonly Queue[]): V1OwnerReference[] {
  if (spec.role === "worker") {
    const q = queues.find((x) => x.metadata.name === spec.queue);
    if (!q) throw new Error(`build owner reference of Secret ${spec.secretName}: Queue ${spec.queue} is not given`);
    return [queueOwnerReference(q)];
  }
  return queues
    .filter((q) => q.metadata.uid)
    .map((q) => ({ apiVersion: API_VERSION, kind: RESOURCES.Queue.kind, name: q.metadata.name, uid: q.metadata.uid! }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The desired Secret for `spec` holding `minted`.
 * @param owners from {@link credsOwnerReferences}
 * @param o.tenantAccount accounts mode: the namespace's account, recorded in an annotation
 */
export function desiredCredsSecret(spec: CredentialSpec, minted: MintedCredential, owners: V1OwnerReference[], o: { tenantAccount?: string } = {}): CredsSecret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: spec.secretName,
      namespace: spec.namespace,
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [NATS_CREDS_LABELS.role]: spec.role,
        ...(spec.queue ? { [LABELS.queue]: spec.queue } : {}),
      },
      annotations: {
        [NATS_CREDS_ANNOTATIONS.issuedAt]: rfc3339(minted.issuedAt),
        [NATS_CREDS_ANNOTATIONS.expiresAt]: rfc3339(minted.expiresAt),
        [NATS_CREDS_ANNOTATIONS.renewAt]: rfc3339(renewAt(minted.issuedAt, minted.expiresAt)),
        [NATS_CREDS_ANNOTATIONS.permissionsHash]: spec.hash,
        [NATS_CREDS_ANNOTATIONS.issuer]: minted.issuer,
        [NATS_CREDS_ANNOTATIONS.user]: minted.userPublicKey,
        ...(o.tenantAccount ? { [NATS_CREDS_ANNOTATIONS.tenantAccount]: o.tenantAccount } : {}),
      },
      ownerReferences: owners,
    },
    type: "Opaque",
    data: { [NATS_CREDS_SECRET_KEY]: Buffer.from(minted.creds, "utf8").toString("base64") },
  };
}

/**
 * What a live Secret holds, for the rotation decision, read from the creds file in its data (the
 * truth the server enforces, so a hand-edited Secret — another Queue's creds pasted in, annotations
 * and all — is seen for what it is): expiry and issue time, issuer, and the hash of the account,
 * user name and permissions its JWT carries. The annotations are for people (`kubectl describe`).
 * @returns undefined when there is no Secret; `{}` when its data holds no readable creds file
 */
export function liveCredential(secret: CredsSecret | undefined): LiveCredential | undefined {
  if (!secret) return undefined;
  const data = secret.data?.[NATS_CREDS_SECRET_KEY];
  let id: CredsIdentity | undefined;
  if (data) {
    try {
      id = credsIdentity(Buffer.from(data, "base64").toString("utf8"));
    } catch {
      id = undefined;
    }
  }
  if (!id) return {};
  return {
    ...(id.expiresAt ? { expiresAt: id.expiresAt } : {}),
    ...(id.issuedAt ? { issuedAt: id.issuedAt } : {}),
    permissionsHash: permissionsHash(id.account, id.name, id.permissions),
    issuer: id.issuer,
  };
}

/** True when `secret` is one the operator minted (managed-by and role labels). */
export function isMintedCredsSecret(secret: CredsSecret | undefined): boolean {
  const l = secret?.metadata.labels ?? {};
  return l[LABELS.managedBy] === MANAGED_BY && (l[NATS_CREDS_LABELS.role] === "worker" || l[NATS_CREDS_LABELS.role] === "producer");
}
