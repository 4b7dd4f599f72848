/**
 * Minting NATS user credentials (decentralized auth: operator → account → user JWTs) with
 * `@nats-io/jwt` and `@nats-io/nkeys`: the operator signs a user JWT per Queue worker and per
 * namespace producer with the account signing key it is given, and writes the `.creds` text to a
 * Secret. Also reads a creds file's expiry and inbox prefix. Seeds never appear in a log line or an
 * error message from here.
 */
import { createUser, decode, encodeUser, fmtCreds, fromPublic, fromSeed, type ClaimsData, type KeyPair, type User } from "@nats-io/jwt";
import type { NatsPermissions } from "../api/nats-permissions.js";

/** The key that signs user JWTs for one NATS account. */
export interface AccountSigner {
  /** Seed (`SA…`) of an account signing key, or of the account's own identity key. Secret. */
  seed: string;
  /** Public key (`A…`) of the account the users belong to. */
  account: string;
}

/** A freshly minted user credential. */
export interface MintedCreds {
  /** The `.creds` file text (user JWT + user seed). Secret. */
  creds: string;
  /** The user JWT alone. */
  jwt: string;
  /** The user's public key (`U…`). */
  publicKey: string;
  /** When the JWT expires (`exp`). */
  expiresAt: Date;
  /** When the JWT was signed (`iat`, whole seconds). */
  issuedAt: Date;
}

const SEED_RE = /\bS[A-Z][A-Z2-7]{50,}\b/g;
const PUBLIC_ACCOUNT_RE = /^A[A-Z2-7]{55}$/;

function seedKind(seed: string): string {
  switch (seed[1]) {
    case "O":
      return "an operator seed (SO…)";
    case "U":
      return "a user seed (SU…)";
    case "N":
      return "a server seed (SN…)";
    case "C":
      return "a cluster seed (SC…)";
    default:
      return `a seed of type ${JSON.stringify(seed[1])}`;
  }
}

/**
 * Reads an account signer from seed text: a bare seed, or a file holding one (e.g. an `nsc` key
 * file or a creds-like text with one `SA…` line).
 * @param seedText the text holding the seed (a Secret's value)
 * @param accountPublicKey the account's public key (`A…`); required when the seed is a signing key,
 *   optional when it is the account's own identity key (the account is then the seed's public key)
 * @throws Error naming the fix when the text holds no account seed, holds several, holds another
 *   key type, or the account public key is malformed. The message never contains the seed.
 */
export function parseAccountSigner(seedText: string, accountPublicKey?: string): AccountSigner {
  if (typeof seedText !== "string" || seedText.trim() === "") {
    throw new Error("account signing key: the seed text is empty; give the account signing key seed (SA…, from `nsc generate nkey --account` or `nsc export keys`)");
  }
  const seeds = [...new Set(seedText.match(SEED_RE) ?? [])];
  if (seeds.length === 0) {
    throw new Error("account signing key: no nkey seed found in the text; give the account signing key seed (a line starting with SA…, 58 characters)");
  }
  const accountSeeds = seeds.filter((s) => s.startsWith("SA"));
  if (accountSeeds.length === 0) {
    throw new Error(`account signing key: the text holds ${seedKind(seeds[0]!)}, not an account seed; give the account signing key seed (SA…)`);
  }
  if (accountSeeds.length > 1) {
    throw new Error(`account signing key: the text holds ${accountSeeds.length} account seeds; give exactly one (the account signing key, SA…)`);
  }
  const seed = accountSeeds[0]!;
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed));
  } catch {
    // the nkeys error is not passed on: keep anything about the seed out of messages
    throw new Error("account signing key: the SA… seed is not a valid nkey (bad checksum or length); copy the seed again from its source");
  }
  const own = kp.getPublicKey();
  kp.clear();
  if (accountPublicKey === undefined || accountPublicKey.trim() === "") return { seed, account: own };
  const account = accountPublicKey.trim();
  if (!PUBLIC_ACCOUNT_RE.test(account)) {
    throw new Error(`account public key "${account}" is not an account public key: give the account's A… key (56 characters, \`nsc describe account\` shows it)`);
  }
  try {
    fromPublic(account);
  } catch {
    throw new Error(`account public key "${account}" is not a valid nkey (bad checksum); copy it again from \`nsc describe account\``);
  }
  return { seed, account };
}

/** Options of {@link mintUserCreds}. */
export interface MintOptions {
  /** User name (JWT `name`), e.g. `celeriac-worker-team-a-emails`. */
  name: string;
  /** Permissions signed into the JWT; omitted = unrestricted (the operator's own user). */
  permissions?: NatsPermissions;
  /** Lifetime, in seconds (a positive integer): the server disconnects the user when it ends. */
  ttlSeconds: number;
  /** The current time (tests); default now. `exp` = now + ttlSeconds. */
  now?: Date;
}

/**
 * Mints a user of the signer's account: a fresh user nkey, a user JWT signed by the signer (with
 * `issuer_account` = the account when the signer is a signing key, as nats-server requires), and the
 * `.creds` text.
 * @throws Error naming the field when `name` is empty or `ttlSeconds` is not a positive integer, or
 *   when the signer's seed is not an account seed (message without the seed)
 */
export async function mintUserCreds(signer: AccountSigner, o: MintOptions): Promise<MintedCreds> {
  if (typeof o.name !== "string" || o.name.trim() === "") throw new Error("mint user creds: name is empty; give the user a name");
  if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds <= 0) {
    throw new Error(`mint user creds: ttlSeconds must be a positive integer number of seconds (got ${String(o.ttlSeconds)})`);
  }
  let skp: KeyPair;
  try {
    skp = fromSeed(new TextEncoder().encode(signer.seed));
  } catch {
    throw new Error("mint user creds: the signer's seed is not a valid nkey seed; build the signer with parseAccountSigner");
  }
  if (!skp.getPublicKey().startsWith("A")) {
    throw new Error("mint user creds: the signer's seed is not an account seed (SA…); build the signer with parseAccountSigner");
  }
  const ukp = createUser();
  try {
    const nowMs = (o.now ?? new Date()).getTime();
    const exp = Math.floor(nowMs / 1000) + o.ttlSeconds;
    const claims: Partial<User> = o.permissions
      ? {
          pub: { allow: [...o.permissions.pub.allow], deny: [...(o.permissions.pub.deny ?? [])] },
          sub: { allow: [...o.permissions.sub.allow], deny: [...(o.permissions.sub.deny ?? [])] },
          // the JWT's ttl is a Go time.Duration: nanoseconds
          ...(o.permissions.resp ? { resp: { max: o.permissions.resp.max, ttl: o.permissions.resp.expiresMs * 1e6 } } : {}),
        }
      : {};
    const signingKey = skp.getPublicKey() !== signer.account;
    const jwt = signingKey
      ? await encodeUser(o.name, ukp, signer.account, claims, { signer: skp, exp })
      : await encodeUser(o.name, ukp, skp, claims, { exp });
    const iat = decode<User>(jwt).iat;
    return {
      creds: new TextDecoder().decode(fmtCreds(jwt, ukp)),
      jwt,
      publicKey: ukp.getPublicKey(),
      expiresAt: new Date(exp * 1000),
      issuedAt: new Date(iat * 1000),
    };
  } finally {
    skp.clear();
    ukp.clear();
  }
}

const CREDS_JWT_RE = /-----BEGIN NATS USER JWT-----\s*([A-Za-z0-9_\-.=]+)\s*------END NATS USER JWT------/;

/** The user JWT's claims in `.creds` text (signature verified), or an Error naming the fix. */
function credsClaims(credsText: string): ClaimsData<User> {
  const m = CREDS_JWT_RE.exec(credsText);
  if (!m) throw new Error("creds: no `-----BEGIN NATS USER JWT-----` block found; give a .creds file (as written by `nsc generate creds` or the Celeriac operator)");
  try {
    return decode<User>(m[1]!);
  } catch (err) {
    throw new Error(`creds: the user JWT does not decode (${(err as Error).message}); regenerate the .creds file`, { cause: err });
  }
}

/**
 * When the user JWT in a `.creds` file expires.
 * @returns the `exp` time, or undefined when the JWT never expires
 * @throws Error naming the fix when the text is not a creds file or its JWT does not decode
 */
export function credsExpiry(credsText: string): Date | undefined {
  const exp = credsClaims(credsText).exp;
  return typeof exp === "number" && exp > 0 ? new Date(exp * 1000) : undefined;
}

/** Who a `.creds` file's user is and what it may do, read from its (verified) user JWT. */
export interface CredsIdentity {
  /** The user's name (`name` claim). */
  name: string;
  /** Public key that signed the JWT (`iss`): the account's, or one of its signing keys. */
  issuer: string;
  /** The account the user belongs to (`issuer_account`, else `iss`). */
  account: string;
  /** The user's publish/subscribe permissions as signed. */
  permissions: NatsPermissions;
  /** `iat`, undefined when absent. */
  issuedAt?: Date;
  /** `exp`, undefined when the JWT never expires. */
  expiresAt?: Date;
}

/**
 * Reads a `.creds` file's user identity and permissions from its JWT (the signature is verified by
 * `decode`; whether the issuer is trusted is the server's business).
 * @throws Error naming the fix when the text is not a creds file or its JWT does not decode
 */
export function credsIdentity(credsText: string): CredsIdentity {
  const c = credsClaims(credsText);
  const n = c.nats;
  const perms = (p: { allow?: string[]; deny?: string[] } | undefined) => ({ allow: p?.allow ?? [], ...(p?.deny?.length ? { deny: p.deny } : {}) }); // the JWT library writes an empty deny list
  return {
    name: c.name,
    issuer: c.iss,
    account: n.issuer_account || c.iss,
    permissions: { pub: perms(n.pub), sub: perms(n.sub), ...(n.resp?.max ? { resp: { max: n.resp.max, expiresMs: Math.round((n.resp.ttl ?? 0) / 1e6) } } : {}) },
    ...(typeof c.iat === "number" && c.iat > 0 ? { issuedAt: new Date(c.iat * 1000) } : {}),
    ...(typeof c.exp === "number" && c.exp > 0 ? { expiresAt: new Date(c.exp * 1000) } : {}),
  };
}

/**
 * The inbox prefix a `.creds` file's user must use: when exactly one of the subjects its JWT allows
 * subscribing to has the form `_INBOX….>` (as minted workers and producers have, beside e.g. a
 * worker's control subject, see api/nats-permissions.ts), that subject without `.>`; else undefined
 * (unrestricted users, or none or several inbox subjects).
 * @throws Error naming the fix when the text is not a creds file or its JWT does not decode
 */
export function credsInboxPrefix(credsText: string): string | undefined {
  const allow = credsClaims(credsText).nats.sub?.allow ?? [];
  const inboxes = allow.map((s) => /^(_INBOX[^.*>\s]*)\.>$/.exec(s)?.[1]).filter((p): p is string => p !== undefined);
  return inboxes.length === 1 ? inboxes[0] : undefined;
}
