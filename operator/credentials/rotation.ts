/**
 * When a minted credential must be replaced. Pure: data in, decision out.
 *
 * The renewal point is ours, modelled on cert-manager's default `renewBefore` (1/3 of the issued
 * certificate's lifetime) and Go's `acme/autocert` (renew with 1/3 of the lifetime left): a credential
 * is replaced once less than 1/3 of its lifetime remains, i.e. at `issuedAt + 2/3 · lifetime`. The
 * third left over covers the kubelet's delay in updating a mounted Secret (its sync period plus its
 * cache TTL, about a minute by default) and the operator being down for a while.
 */

/** What the live Secret says about the credential it holds (see `liveCredential`). */
export interface LiveCredential {
  /** Expiry of the JWT in the Secret's data; undefined when the data has no parsable creds file. */
  expiresAt?: Date;
  /** Issue time (the JWT's `iat`); undefined when the data has no parsable creds file. */
  issuedAt?: Date;
  /** Hash of the account, user name and permissions the JWT carries (`permissionsHash`). */
  permissionsHash?: string;
  /** Public key that signed the JWT (`iss`). */
  issuer?: string;
}

/** Why a credential is (re-)minted. */
export type MintReason = "Missing" | "Unreadable" | "PermissionsChanged" | "SigningKeyChanged" | "LifetimeChanged" | "Expiring";

/** The decision: mint now (and why), or keep until `renewAt`. */
export type RotationDecision = { action: "mint"; reason: MintReason } | { action: "keep"; renewAt: Date };

/** Share of the lifetime after which a credential is replaced (2/3: less than 1/3 left). */
export const RENEW_AT_FRACTION = 2 / 3;

/**
 * When a credential issued at `issuedAt` and expiring at `expiresAt` is to be replaced: after
 * {@link RENEW_AT_FRACTION} of its lifetime (to the millisecond).
 */
export function renewAt(issuedAt: Date, expiresAt: Date): Date {
  const life = expiresAt.getTime() - issuedAt.getTime();
  return new Date(issuedAt.getTime() + Math.floor(life * RENEW_AT_FRACTION));
}

/**
 * Whether to re-mint a credential.
 *
 * Mint when there is none (`live` undefined) or its data is unreadable, when the permissions hash or
 * the issuer differ from the desired ones, when the lifetime differs from `ttlSeconds` by more than a
 * second (the TTL setting changed), or once `now` is at or past {@link renewAt}. Otherwise keep it.
 * @param o.live what the live Secret holds, undefined when there is no Secret
 * @param o.hash desired permissions hash
 * @param o.issuer public key of the current signing key
 * @param o.ttlSeconds configured lifetime, in seconds
 * @param o.now the current time
 */
export function rotationDecision(o: { live: LiveCredential | undefined; hash: string; issuer: string; ttlSeconds: number; now: Date }): RotationDecision {
  const { live } = o;
  if (!live) return { action: "mint", reason: "Missing" };
  if (!live.expiresAt || !live.issuedAt || live.expiresAt <= live.issuedAt) return { action: "mint", reason: "Unreadable" };
  if (live.permissionsHash !== o.hash) return { action: "mint", reason: "PermissionsChanged" };
  if (live.issuer !== o.issuer) return { action: "mint", reason: "SigningKeyChanged" };
  const lifeMs = live.expiresAt.getTime() - live.issuedAt.getTime();
  if (Math.abs(lifeMs - o.ttlSeconds * 1000) > 1000) return { action: "mint", reason: "LifetimeChanged" };
  const at = renewAt(live.issuedAt, live.expiresAt);
  if (o.now.getTime() >= at.getTime()) return { action: "mint", reason: "Expiring" };
  return { action: "keep", renewAt: at };
}
