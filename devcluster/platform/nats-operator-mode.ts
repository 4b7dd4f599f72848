/**
 * NATS decentralized auth for the local platform and the tests: generates (once per directory) a
 * NATS operator, a system account and a Celeriac account with JetStream enabled and unlimited, plus
 * an account signing key, and writes a nats-server 2.9 config fragment that trusts the operator and
 * preloads both account JWTs into a memory resolver (or, with `resolver: "full"`, into a `full`
 * resolver that also takes accounts pushed at run time). The Celeriac operator mints per-tenant
 * users with the returned signer (nats/credentials.ts, minting mode) or, in accounts mode, tenant
 * accounts with the operator key written beside it (nats/accounts.ts); the unrestricted admin
 * user's and a system-account user's creds are written there too.
 *
 * The keys and JWTs are kept in `<dir>/nats-operator.json` (mode 0600, it holds seeds) and reused
 * on the next call, so a restarted server keeps the same account and therefore its JetStream data
 * (nats-server stores JetStream per account public key). Rules from the NATS docs, "Memory
 * Resolver" and "JWT authentication" (docs.nats.io/running-a-nats-service/configuration/
 * securing_nats/auth_intro/jwt/resolver).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAccount, createOperator, encodeAccount, encodeOperator, fromSeed, type Account, type KeyPair } from "@nats-io/jwt";
import type { OperatorSigner } from "../../nats/accounts.js";
import { mintUserCreds, type AccountSigner } from "../../nats/credentials.js";
import { CELERIAC_NATS_MAX_CONTROL_LINE } from "../../api/nats-control-line.js";

/** Name of the state file (seeds + JWTs) inside the directory. */
export const NATS_OPERATOR_STATE_FILE = "nats-operator.json";
/** Name of the config fragment inside the directory. */
export const NATS_OPERATOR_CONFIG_FILE = "nats-operator.conf";
/** Name of the admin (unrestricted) user's creds inside the directory. */
export const NATS_ADMIN_CREDS_FILE = "nats-admin.creds";
/** Name of the system-account user's creds inside the directory. */
export const NATS_SYSTEM_CREDS_FILE = "nats-system.creds";
/** Name of the directory of the `full` resolver's JWTs inside the directory. */
export const NATS_RESOLVER_DIR = "jwt";
/** Name of the file holding the account signing key seed alone (what a chart's Secret would hold). */
export const NATS_SIGNING_KEY_FILE = "account-signing-key.nk";
/** Name of the file holding the operator's key seed (`SO…`) alone (accounts mode; what a chart's Secret would hold). */
export const NATS_OPERATOR_SIGNING_KEY_FILE = "operator-signing-key.nk";

/** What `setupNatsOperatorMode` generated or reused. */
export interface NatsOperatorMode {
  /** Signs user JWTs of the Celeriac account: its signing key seed and the account public key. Secret. */
  signer: AccountSigner;
  /** Public key (`O…`) of the operator. */
  operatorPublicKey: string;
  /** Public key (`A…`) of the Celeriac account (JetStream enabled). */
  accountPublicKey: string;
  /** Public key (`A…`) of the system account. */
  systemAccountPublicKey: string;
  /** The config fragment's text (`max_control_line`, `operator`, `system_account`, `resolver: MEMORY`, `resolver_preload`). */
  configText: string;
  /** Path of the config fragment (`nats-server -c <path>`, or `include` it). */
  configFile: string;
  /** Path of the unrestricted admin user's `.creds` (the platform's operator, tests' setup). */
  adminCredsFile: string;
  /** Path of a file holding only the account signing key seed (mode 0600). */
  signingKeyFile: string;
  /** Path of the state file (mode 0600). */
  stateFile: string;
  /**
   * The extra accounts asked for with `extraAccounts` (e.g. one per tenant namespace), by name:
   * each JetStream-enabled with its own signing key, preloaded like the Celeriac account. Subjects
   * and JetStream are per account, so nothing published in one reaches another.
   */
  extraAccounts: Record<string, { signer: AccountSigner; accountPublicKey: string }>;
  /** Signs account JWTs (the operator's identity key): mint tenant accounts with it. Secret. */
  operatorSigner: OperatorSigner;
  /** Path of a system-account user's `.creds` (pushes account JWTs to a `full` resolver). */
  systemCredsFile: string;
  /**
   * Path of a file (mode 0600) holding only the operator's key seed (`SO…`, the key
   * {@link NatsOperatorMode.operatorSigner} holds): what `CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE`
   * names in accounts mode. Secret.
   */
  operatorSigningKeyFile: string;
}

interface State {
  version: 1;
  operatorSeed: string;
  systemAccountSeed: string;
  accountSeed: string;
  signingKeySeed: string;
  operatorJwt: string;
  systemAccountJwt: string;
  accountJwt: string;
  /** Extra accounts by name: identity seed, signing key seed and JWT. */
  extra?: Record<string, { accountSeed: string; signingKeySeed: string; accountJwt: string }>;
}

/** Account limits with nothing limited: core NATS and (when `jetstream`) JetStream. */
function unlimited(jetstream: boolean): Account["limits"] {
  return {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
    ...(jetstream ? { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } : {}),
  };
}

const seedOf = (kp: KeyPair): string => new TextDecoder().decode(kp.getSeed());
const pubOf = (seed: string): string => fromSeed(new TextEncoder().encode(seed)).getPublicKey();

async function generate(): Promise<State> {
  const op = createOperator();
  const sys = createAccount();
  const operatorJwt = await encodeOperator("celeriac-dev", op, { system_account: sys.getPublicKey() });
  const systemAccountJwt = await encodeAccount("SYS", sys, { limits: unlimited(false) }, { signer: op });
  const main = await generateAccount("CELERIAC", op);
  return {
    version: 1,
    operatorSeed: seedOf(op),
    systemAccountSeed: seedOf(sys),
    accountSeed: main.accountSeed,
    signingKeySeed: main.signingKeySeed,
    operatorJwt,
    systemAccountJwt,
    accountJwt: main.accountJwt,
  };
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

async function generateAccount(name: string, op: KeyPair): Promise<{ accountSeed: string; signingKeySeed: string; accountJwt: string }> {
  const acc = createAccount();
  const sk = createAccount();
  const accountJwt = await encodeAccount(name, acc, { limits: unlimited(true), signing_keys: [sk.getPublicKey()] }, { signer: op });
  return { accountSeed: seedOf(acc), signingKeySeed: seedOf(sk), accountJwt };
}

/**
 * The nats-server 2.9 config fragment: trust the operator, name the system account, and preload
 * the account JWTs (public key → JWT) into a memory resolver, or with `resolverDir` into a `full`
 * resolver storing JWTs there, which also accepts accounts pushed at run time (nats/accounts.ts
 * `pushAccountJwt`); and raise `max_control_line` (a user JWT travels in the CONNECT line, and a
 * producer's outgrows the default 4096 bytes at two Queues: api/nats-control-line.ts). Pure.
 * @param s.maxControlLine in bytes; default {@link CELERIAC_NATS_MAX_CONTROL_LINE} (256 KiB)
 */
export function operatorModeConfig(s: { operatorJwt: string; systemAccountPublicKey: string; accounts: Readonly<Record<string, string>>; resolverDir?: string; maxControlLine?: number }): string {
  return [
    "# Generated by Celeriac (devcluster/platform/nats-operator-mode.ts): NATS decentralized auth",
    "# The CONNECT line carries the user JWT, which grows with the permissions minted into it.",
    `max_control_line: ${s.maxControlLine ?? CELERIAC_NATS_MAX_CONTROL_LINE}`,
    `operator: "${s.operatorJwt}"`,
    `system_account: "${s.systemAccountPublicKey}"`,
    ...(s.resolverDir ? ["resolver: {", "  type: full", `  dir: ${JSON.stringify(s.resolverDir)}`, "  allow_delete: false", '  interval: "2m"', "}"] : ["resolver: MEMORY"]),
    "resolver_preload: {",
    ...Object.entries(s.accounts).map(([pub, jwt]) => `  "${pub}": "${jwt}"`),
    "}",
    "",
  ].join("\n");
}

/**
 * Generates (or reuses, from `<dir>/nats-operator.json`) an operator, a system account and a
 * JetStream-enabled Celeriac account with a signing key; writes the config fragment, the signing key
 * seed, the operator key seed, an unrestricted admin user's creds and a system-account user's creds
 * (both valid `adminTtlSeconds`, default 30 days, re-minted on every call) into `dir`.
 * @param dir directory for the files (created)
 * @param opts.extraAccounts names of further JetStream accounts to create and preload (kept in the
 *   state file like the rest; names are labels only, e.g. tenant namespaces)
 * @param opts.resolver `memory` (default: preloaded accounts only) or `full` (JWTs stored in
 *   `<dir>/jwt`; accounts can be pushed at run time with the system creds)
 * @param opts.maxControlLine the config's `max_control_line`, in bytes (default 256 KiB,
 *   {@link CELERIAC_NATS_MAX_CONTROL_LINE}; a test gives nats-server's default 4096 to see a large JWT refused)
 * @throws Error when the state file exists but is not one this module wrote (delete it to regenerate)
 */
export async function setupNatsOperatorMode(dir: string, opts: { adminTtlSeconds?: number; extraAccounts?: readonly string[]; resolver?: "memory" | "full"; maxControlLine?: number } = {}): Promise<NatsOperatorMode> {
  mkdirSync(dir, { recursive: true });
  const stateFile = join(dir, NATS_OPERATOR_STATE_FILE);
  let s: State;
  if (existsSync(stateFile)) {
    try {
      s = JSON.parse(readFileSync(stateFile, "utf8")) as State;
      if (s.version !== 1 || !s.accountJwt || !s.signingKeySeed) throw new Error("unknown version");
    } catch (err) {
      throw new Error(`read ${stateFile}: not a Celeriac NATS operator state (${(err as Error).message}); delete it to generate a new operator and account`, { cause: err });
    }
  } else {
    s = await generate();
    writeSecret(stateFile, JSON.stringify(s, null, 2) + "\n");
  }
  const missing = (opts.extraAccounts ?? []).filter((n) => !s.extra?.[n]);
  if (missing.length > 0) {
    const op = fromSeed(new TextEncoder().encode(s.operatorSeed));
    s.extra = { ...(s.extra ?? {}) };
    for (const n of missing) s.extra[n] = await generateAccount(n, op);
    writeSecret(stateFile, JSON.stringify(s, null, 2) + "\n");
  }
  const accountPublicKey = pubOf(s.accountSeed);
  const systemAccountPublicKey = pubOf(s.systemAccountSeed);
  const accounts: Record<string, string> = { [accountPublicKey]: s.accountJwt, [systemAccountPublicKey]: s.systemAccountJwt };
  const extraAccounts: NatsOperatorMode["extraAccounts"] = {};
  for (const [n, e] of Object.entries(s.extra ?? {})) {
    const pub = pubOf(e.accountSeed);
    accounts[pub] = e.accountJwt;
    extraAccounts[n] = { signer: { seed: e.signingKeySeed, account: pub }, accountPublicKey: pub };
  }
  const resolverDir = opts.resolver === "full" ? join(dir, NATS_RESOLVER_DIR) : undefined;
  if (resolverDir) mkdirSync(resolverDir, { recursive: true });
  const configText = operatorModeConfig({ operatorJwt: s.operatorJwt, systemAccountPublicKey, accounts, ...(resolverDir ? { resolverDir } : {}), ...(opts.maxControlLine !== undefined ? { maxControlLine: opts.maxControlLine } : {}) });
  const configFile = join(dir, NATS_OPERATOR_CONFIG_FILE);
  writeFileSync(configFile, configText);
  const signer: AccountSigner = { seed: s.signingKeySeed, account: accountPublicKey };
  const signingKeyFile = join(dir, NATS_SIGNING_KEY_FILE);
  writeSecret(signingKeyFile, s.signingKeySeed + "\n");
  const admin = await mintUserCreds(signer, { name: "celeriac-admin", ttlSeconds: opts.adminTtlSeconds ?? 30 * 24 * 3600 });
  const adminCredsFile = join(dir, NATS_ADMIN_CREDS_FILE);
  writeSecret(adminCredsFile, admin.creds);
  const system = await mintUserCreds({ seed: s.systemAccountSeed, account: systemAccountPublicKey }, { name: "celeriac-system", ttlSeconds: opts.adminTtlSeconds ?? 30 * 24 * 3600 });
  const systemCredsFile = join(dir, NATS_SYSTEM_CREDS_FILE);
  writeSecret(systemCredsFile, system.creds);
  const operatorSigningKeyFile = join(dir, NATS_OPERATOR_SIGNING_KEY_FILE);
  writeSecret(operatorSigningKeyFile, s.operatorSeed + "\n");
  return {
    signer,
    operatorPublicKey: pubOf(s.operatorSeed),
    accountPublicKey,
    systemAccountPublicKey,
    configText,
    configFile,
    adminCredsFile,
    signingKeyFile,
    stateFile,
    extraAccounts,
    operatorSigner: { seed: s.operatorSeed },
    systemCredsFile,
    operatorSigningKeyFile,
  };
}
