/**
 * Accounts mode: where each tenant namespace's NATS account keys live. One Secret per tenant,
 * `celeriac-nats-account-<namespace>` (data keys `seed`, the account identity seed, and
 * `signing-key`, the seed of the signing key its users are signed with; both `SA…`), in the
 * operator's own namespace (`CELERIAC_NATS_ACCOUNTS_NAMESPACE`) so no tenant can read it. The key is
 * keys are generated (with `@nats-io/nkeys`) the first time a namespace needs an account and kept for good:
 * nats-server stores an account's JetStream data under its public key, so a new key would strand
 * every stream and bucket of the tenant. The operator never deletes these Secrets.
 *
 * Calls: `get` the Secret; on NotFound `create` it; on AlreadyExists (another replica or a racing
 * reconcile won) `get` again. Seeds are held in memory after the first read and never logged.
 *
 * A deleted Secret is not taken as "new tenant" when the tenant's minted credentials still belong
 * to an account: {@link AccountKeyStore.keyOf} then refuses (its error names the account and both
 * ways out) instead of moving the tenant to a new, empty account and stranding its queued tasks;
 * and while the operator runs, {@link AccountKeyStore.restoreMissing} writes a deleted Secret back
 * from the key it holds.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { createAccount, fromSeed } from "@nats-io/nkeys";
import { FIELD_MANAGERS, LABELS, MANAGED_BY } from "../../api/constants.js";
import { accountSeedSecretName, NATS_ACCOUNT_LABEL, NATS_ACCOUNT_SEED_KEY, NATS_ACCOUNT_SIGNING_KEY_KEY } from "../../api/nats-creds-secrets.js";
import { BUILTIN_TYPES, createObject, getObject, isAlreadyExists, isNotFound, type KubeObject } from "../runtime/index.js";

/** An account's identity key and the signing key of its users. */
export interface AccountKey {
  /** `SA…` identity seed. Secret. */
  readonly seed: string;
  /** `A…` public key: the account's identity. */
  readonly publicKey: string;
  /** `SA…` seed of the account's signing key (signs its users). Secret. */
  readonly signingSeed: string;
  /** `A…` public key of the signing key (listed in the account JWT's `signing_keys`). */
  readonly signingPublicKey: string;
}

interface SeedSecret extends KubeObject {
  data?: Record<string, string>;
  type?: string;
}

/** Reads, or creates once, the account identity key of each tenant namespace. */
export class AccountKeyStore {
  readonly #kc: KubeConfig;
  readonly #namespace: string;
  readonly #keys = new Map<string, Promise<AccountKey>>();
  readonly #existingAccount: (tenant: string) => string | undefined;

  /**
   * @param kc API access
   * @param namespace where the account seed Secrets are kept (the operator's namespace)
   * @param existingAccount the account public key the tenant's minted credential Secrets belong
   *   to, if any (read from the informer cache): a missing seed Secret with such credentials is a
   *   lost key, not a new tenant
   */
  constructor(kc: KubeConfig, namespace: string, existingAccount: (tenant: string) => string | undefined = () => undefined) {
    this.#kc = kc;
    this.#namespace = namespace;
    this.#existingAccount = existingAccount;
  }

  /**
   * Writes back, from memory, the seed Secret of every tenant whose key this store holds and whose
   * Secret is gone (deleted by hand): without it the next operator start could not find the key.
   * Call periodically (the operator does on each resync).
   * @returns the tenants whose Secret was written back
   * @throws Error of the first failed API call (the other tenants are still checked)
   */
  async restoreMissing(): Promise<string[]> {
    const restored: string[] = [];
    let first: unknown;
    for (const [tenant, p] of [...this.#keys.entries()]) {
      const key = await p.catch(() => undefined);
      if (!key) continue;
      const ref = { ...BUILTIN_TYPES.Secret, namespace: this.#namespace, name: accountSeedSecretName(tenant) };
      try {
        await getObject(this.#kc, ref);
      } catch (err) {
        if (!isNotFound(err)) {
          first ??= err;
          continue;
        }
        try {
          await createObject(this.#kc, BUILTIN_TYPES.Secret, this.#secret(tenant, key), FIELD_MANAGERS.operator);
          restored.push(tenant);
        } catch (e) {
          if (!isAlreadyExists(e)) first ??= e;
        }
      }
    }
    if (first) throw new Error(`restore NATS account key Secrets: ${(first as Error).message}`, { cause: first });
    return restored;
  }

  #secret(tenant: string, key: AccountKey): SeedSecret {
    return {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: accountSeedSecretName(tenant),
        namespace: this.#namespace,
        labels: { [LABELS.managedBy]: MANAGED_BY, [NATS_ACCOUNT_LABEL]: tenant },
        annotations: { "celeriac.io/nats-account-public-key": key.publicKey, "celeriac.io/nats-account-signing-key": key.signingPublicKey },
      },
      type: "Opaque",
      data: {
        [NATS_ACCOUNT_SEED_KEY]: Buffer.from(key.seed, "utf8").toString("base64"),
        [NATS_ACCOUNT_SIGNING_KEY_KEY]: Buffer.from(key.signingSeed, "utf8").toString("base64"),
      },
    };
  }

  /**
   * The account key of tenant `tenant`, created (and stored) when it has none. Memoised; a failed
   * read is not remembered, so the next call retries.
   * @throws Error "read NATS account key of <tenant>: …" on API failures, or when the Secret exists
   *   but holds no valid account seed (the message names the Secret and the fix, never the data)
   */
  keyOf(tenant: string): Promise<AccountKey> {
    let k = this.#keys.get(tenant);
    if (!k) {
      k = this.#load(tenant);
      k.catch(() => this.#keys.delete(tenant));
      this.#keys.set(tenant, k);
    }
    return k;
  }

  async #load(tenant: string): Promise<AccountKey> {
    const name = accountSeedSecretName(tenant);
    const ref = { ...BUILTIN_TYPES.Secret, namespace: this.#namespace, name };
    const read = async (): Promise<AccountKey | undefined> => {
      try {
        return keyFrom(await getObject<SeedSecret>(this.#kc, ref), `${this.#namespace}/${name}`);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    };
    try {
      const found = await read();
      if (found) return found;
      const previous = this.#existingAccount(tenant);
      if (previous) {
        throw new Error(`Secret ${this.#namespace}/${name} is missing, but the NATS credentials in namespace ${tenant} belong to account ${previous}, which holds its streams: restore the Secret from a backup to keep them; or, to start ${tenant} on a new, empty account (its queued tasks and results stay behind in the old one), delete the Secrets labelled celeriac.io/nats-credentials in ${tenant}`);
      }
      const seedOf = () => {
        const kp = createAccount();
        const out = { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
        kp.clear();
        return out;
      };
      const id = seedOf();
      const sk = seedOf();
      const key: AccountKey = { seed: id.seed, publicKey: id.publicKey, signingSeed: sk.seed, signingPublicKey: sk.publicKey };
      const secret = this.#secret(tenant, key);
      try {
        await createObject(this.#kc, BUILTIN_TYPES.Secret, secret, FIELD_MANAGERS.operator);
        return key;
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        const raced = await read();
        if (!raced) throw new Error(`Secret ${this.#namespace}/${name} was created by someone else and is gone again`, { cause: err });
        return raced;
      }
    } catch (err) {
      throw new Error(`read NATS account key of ${tenant}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * The account keys an account seed Secret holds.
 * @throws Error naming the Secret and the fix when `data.seed` or `data.signing-key` is missing or
 *   not an account seed (never the data)
 */
export function keyFrom(secret: SeedSecret, where: string): AccountKey {
  const read = (dataKey: string) => {
    const b64 = secret.data?.[dataKey];
    const seed = b64 ? Buffer.from(b64, "base64").toString("utf8").trim() : "";
    let publicKey: string;
    try {
      const kp = fromSeed(new TextEncoder().encode(seed));
      publicKey = kp.getPublicKey();
      kp.clear();
    } catch {
      publicKey = "";
    }
    if (!publicKey.startsWith("A")) {
      throw new Error(`Secret ${where} holds no NATS account seed in data.${dataKey}: restore it from a backup (a new key would strand the tenant's JetStream data), or delete the Secret to start the tenant on a new, empty account`);
    }
    return { seed, publicKey };
  };
  const id = read(NATS_ACCOUNT_SEED_KEY);
  const sk = read(NATS_ACCOUNT_SIGNING_KEY_KEY);
  return { seed: id.seed, publicKey: id.publicKey, signingSeed: sk.seed, signingPublicKey: sk.publicKey };
}
