/**
 * One NATS account per tenant: the isolation that subject permissions cannot give. Within one
 * account JetStream publishes for a requester onto any reply subject and any push consumer deliver
 * subject, unchecked (nats-server issue #8274; test/nats/isolation.test.ts records it), so a tenant
 * could inject into another tenant's streams; across accounts nothing flows unless exported.
 *
 * Building blocks, with `@nats-io/jwt`: read the operator's signing seed, mint (or re-sign, same
 * key) a JetStream-enabled account JWT, and push it to nats-server's account resolver through the
 * system account (`$SYS.REQ.CLAIMS.UPDATE`, needs `resolver: { type: full }` or `cache`). Users
 * of a tenant account are then minted with nats/credentials.ts `mintUserCreds`. Seeds never appear
 * in an error message from here.
 */
import { createAccount, decode, encodeAccount, fromSeed, type Account, type KeyPair } from "@nats-io/jwt";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AccountSigner } from "./credentials.js";

/** The key that signs account JWTs: the NATS operator's identity key or one of its signing keys. */
export interface OperatorSigner {
  /** Seed (`SO…`). Secret. */
  seed: string;
}

/** A minted tenant account. */
export interface MintedAccount {
  /** Public key (`A…`): the account's identity (JetStream data is stored under it). */
  publicKey: string;
  /** The account JWT, signed by the operator signer. */
  jwt: string;
  /** Signs this account's users (its identity key): keep it to mint users and to re-sign the account. Secret. */
  signer: AccountSigner;
}

/**
 * Reads an operator signer from seed text (a bare `SO…` seed, or a file holding one line of it).
 * @throws Error naming the fix when the text holds no operator seed, several, or an invalid one (never the seed)
 */
export function parseOperatorSigner(seedText: string): OperatorSigner {
  const seeds = [...new Set(seedText.match(/\bSO[A-Z2-7]{50,}\b/g) ?? [])];
  if (seeds.length !== 1) {
    throw new Error(`operator signing key: the text holds ${seeds.length} operator seeds; give exactly one operator (signing) key seed (SO…, from \`nsc export keys\`)`);
  }
  try {
    fromSeed(new TextEncoder().encode(seeds[0]!)).clear();
  } catch {
    throw new Error("operator signing key: the SO… seed is not a valid nkey (bad checksum or length); copy it again from its source");
  }
  return { seed: seeds[0]! };
}

/** JetStream-enabled account limits with nothing limited (core NATS and JetStream). */
export function unlimitedJetStreamLimits(): NonNullable<Account["limits"]> {
  return { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
}

/**
 * Mints a tenant account JWT, JetStream enabled and unlimited. With `accountSeed` the same account
 * is re-signed (a new JWT for the same public key, e.g. after a restart or to change limits);
 * without it a new account key is generated.
 * @param o.name account name (JWT `name`), e.g. the namespace
 * @param o.accountSeed the account's identity seed (`SA…`), to re-sign an existing account
 * @param o.limits account limits (default {@link unlimitedJetStreamLimits})
 * @param o.signingKeys public keys (`A…`) of the account's signing keys: users signed by one of them
 *   are accepted (and, with the operator's `strict_signing_key_usage` — nsc
 *   `--require-signing-keys` — only those are)
 * @throws Error naming the fix when a seed is not of the right kind (never the seed)
 */
export async function mintTenantAccount(op: OperatorSigner, o: { name: string; accountSeed?: string; limits?: Account["limits"]; signingKeys?: readonly string[] }): Promise<MintedAccount> {
  if (!o.name) throw new Error("mint tenant account: name is empty; give the account a name (e.g. the namespace)");
  let okp: KeyPair;
  try {
    okp = fromSeed(new TextEncoder().encode(op.seed));
  } catch {
    throw new Error("mint tenant account: the operator seed is not a valid nkey seed; build the signer with parseOperatorSigner");
  }
  if (!okp.getPublicKey().startsWith("O")) throw new Error("mint tenant account: the signer's seed is not an operator seed (SO…); build the signer with parseOperatorSigner");
  let akp: KeyPair;
  try {
    akp = o.accountSeed ? fromSeed(new TextEncoder().encode(o.accountSeed)) : createAccount();
  } catch {
    throw new Error("mint tenant account: accountSeed is not a valid nkey seed; give the account's SA… identity seed");
  }
  if (!akp.getPublicKey().startsWith("A")) throw new Error("mint tenant account: accountSeed is not an account seed (SA…)");
  try {
    for (const k of o.signingKeys ?? []) if (!k.startsWith("A")) throw new Error(`mint tenant account: signing key ${k} is not an account public key (A…)`);
    const jwt = await encodeAccount(o.name, akp, { limits: o.limits ?? unlimitedJetStreamLimits(), ...(o.signingKeys?.length ? { signing_keys: [...o.signingKeys] } : {}) }, { signer: okp });
    const seed = new TextDecoder().decode(akp.getSeed());
    return { publicKey: akp.getPublicKey(), jwt, signer: { seed, account: akp.getPublicKey() } };
  } finally {
    okp.clear();
    akp.clear();
  }
}

/**
 * Pushes an account JWT to nats-server's account resolver (`$SYS.REQ.CLAIMS.UPDATE`), so the
 * account exists (or its new JWT applies) at once. The connection must be a system-account user;
 * the server must run a `full` (or `cache`) resolver — the memory resolver accepts no updates.
 * nats-server 2.9 stores a well-formed JWT whatever its issuer and checks trust when the account is
 * used: users of an account not signed by a trusted operator are refused at connect.
 * @throws Error "push account <A…> JWT: …" with the server's description when refused, or when no
 *   resolver answered (the message then names the resolver setting)
 */
export async function pushAccountJwt(sysNc: NatsConnection, jwt: string, timeoutMs = 5000): Promise<void> {
  const account = decode(jwt).sub;
  let reply: { data?: { code?: number; message?: string }; error?: { code?: number; description?: string } };
  try {
    reply = (await sysNc.request("$SYS.REQ.CLAIMS.UPDATE", jwt, { timeout: timeoutMs })).json();
  } catch (err) {
    throw new Error(
      `push account ${account} JWT: no resolver answered (${(err as Error).message}); the server needs \`resolver: { type: full, dir: … }\` and the connection a system-account user`,
      { cause: err },
    );
  }
  if (reply.error) throw new Error(`push account ${account} JWT: refused by the server (${reply.error.code ?? "?"}: ${reply.error.description ?? "no description"})`);
}
