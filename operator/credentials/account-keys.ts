/**
 * Accounts mode: where each tenant namespace's NATS account identity key lives. One Secret per
 * tenant, `celeriac-nats-account-<namespace>` (data key `seed`, an `SA…` nkey seed), in the
 * operator's own namespace (`CELERIAC_NATS_ACCOUNTS_NAMESPACE`) so no tenant can read it. The key is
 * generated (with `@nats-io/nkeys`) the first time a namespace needs an account and kept for good:
 * nats-server stores an account's JetStream data under its public key, so a new key would strand
 * every stream and bucket of the tenant. The operator never deletes these Secrets.
 *
 * Calls: `get` the Secret; on NotFound `create` it; on AlreadyExists (another replica or a racing
 * reconcile won) `get` again. Seeds are held in memory after the first read and never logged.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { createAccount, fromSeed } from "@nats-io/nkeys";
import { FIELD_MANAGERS, LABELS, MANAGED_BY } from "../../api/constants.js";
import { accountSeedSecretName, NATS_ACCOUNT_LABEL, NATS_ACCOUNT_SEED_KEY } from "../../api/nats-creds-secrets.js";
import { BUILTIN_TYPES, createObject, getObject, isAlreadyExists, isNotFound, type KubeObject } from "../runtime/index.js";

/** An account identity key: its seed (secret) and public key. */
export interface AccountKey {
  /** `SA…` seed. Secret. */
  readonly seed: string;
  /** `A…` public key: the account's identity. */
  readonly publicKey: string;
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

  /**
   * @param kc API access
   * @param namespace where the account seed Secrets are kept (the operator's namespace)
   */
  constructor(kc: KubeConfig, namespace: string) {
    this.#kc = kc;
    this.#namespace = namespace;
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
      const kp = createAccount();
      const seed = new TextDecoder().decode(kp.getSeed());
      const publicKey = kp.getPublicKey();
      kp.clear();
      const secret: SeedSecret = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name,
          namespace: this.#namespace,
          labels: { [LABELS.managedBy]: MANAGED_BY, [NATS_ACCOUNT_LABEL]: tenant },
          annotations: { "celeriac.io/nats-account-public-key": publicKey },
        },
        type: "Opaque",
        data: { [NATS_ACCOUNT_SEED_KEY]: Buffer.from(seed, "utf8").toString("base64") },
      };
      try {
        await createObject(this.#kc, BUILTIN_TYPES.Secret, secret, FIELD_MANAGERS.operator);
        return { seed, publicKey };
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
 * The account key an account seed Secret holds.
 * @throws Error naming the Secret and the fix when `data.seed` is missing or not an account seed
 */
export function keyFrom(secret: SeedSecret, where: string): AccountKey {
  const b64 = secret.data?.[NATS_ACCOUNT_SEED_KEY];
  const seed = b64 ? Buffer.from(b64, "base64").toString("utf8").trim() : "";
  let publicKey = "";
  try {
    const kp = fromSeed(new TextEncoder().encode(seed));
    publicKey = kp.getPublicKey();
    kp.clear();
  } catch {
    publicKey = "";
  }
  if (!publicKey.startsWith("A")) {
    throw new Error(`Secret ${where} holds no NATS account seed in data.${NATS_ACCOUNT_SEED_KEY}: restore it from a backup (a new key would strand the tenant's JetStream data), or delete the Secret to start the tenant on a new, empty account`);
  }
  return { seed, publicKey };
}
