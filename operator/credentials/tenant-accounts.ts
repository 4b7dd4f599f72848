/**
 * Accounts mode: one NATS account per tenant namespace, so nothing one tenant publishes — directly
 * or through JetStream as a confused deputy (reply and deliver subjects) — reaches another's
 * streams and buckets (docs/security.md). For each namespace it takes the account identity key
 * from {@link AccountKeyStore}, signs a JetStream-enabled account JWT with the NATS operator
 * signing key (nats/accounts.ts, `@nats-io/jwt`), pushes it to the server's `full` resolver over the
 * system-account connection, and hands out a {@link CredentialMinter} that signs that account's
 * users. After the system connection reconnects (the server may have restarted without its
 * resolver directory) every known account is pushed again. Never logs a seed or a JWT.
 */
import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { mintTenantAccount, parseOperatorSigner, pushAccountJwt, type OperatorSigner } from "../../nats/accounts.js";
import type { AccountKeyStore } from "./account-keys.js";
import { CredentialMinter } from "./minter.js";

/** Dependencies of {@link TenantAccounts}. */
export interface TenantAccountsDeps {
  /** Signs the account JWTs (the NATS operator's signing key, from `parseOperatorSigner`). Secret. */
  operator: OperatorSigner;
  keys: Pick<AccountKeyStore, "keyOf">;
  /** A connection of a system-account user (`CELERIAC_NATS_SYSTEM_CREDS`). */
  system: NatsConnection;
  log: Pick<Logger, "info" | "warn">;
  /** Push timeout, ms (default 5000). */
  pushTimeoutMs?: number;
}

/** The tenant accounts of one operator. */
export class TenantAccounts {
  readonly #d: TenantAccountsDeps;
  readonly #accounts = new Map<string, Promise<{ minter: CredentialMinter; jwt: string }>>();
  #watching = false;

  constructor(deps: TenantAccountsDeps) {
    this.#d = deps;
  }

  /**
   * The minter of tenant `namespace`'s account, after its account JWT has been pushed. Memoised; a
   * failure is not remembered (the next call retries).
   * @throws Error "NATS account of <namespace>: …" when the key cannot be read or created, or the
   *   server refuses or does not answer the push (the message names the resolver setting then)
   */
  minterFor(namespace: string): Promise<CredentialMinter> {
    this.#watch();
    let a = this.#accounts.get(namespace);
    if (!a) {
      a = this.#create(namespace);
      a.catch(() => this.#accounts.delete(namespace));
      this.#accounts.set(namespace, a);
    }
    return a.then((x) => x.minter);
  }

  /**
   * Pushes every account created so far again (their JWTs as first signed).
   * @returns how many were pushed
   * @throws Error of the first push that failed (the others are still tried)
   */
  async pushAll(): Promise<number> {
    let first: unknown;
    let n = 0;
    for (const [ns, a] of [...this.#accounts.entries()]) {
      try {
        await pushAccountJwt(this.#d.system, (await a).jwt, this.#d.pushTimeoutMs);
        n++;
      } catch (err) {
        first ??= new Error(`push NATS account of ${ns} again: ${(err as Error).message}`, { cause: err });
      }
    }
    if (first) throw first;
    return n;
  }

  async #create(namespace: string): Promise<{ minter: CredentialMinter; jwt: string }> {
    try {
      const key = await this.#d.keys.keyOf(namespace);
      const account = await mintTenantAccount(this.#d.operator, { name: namespace, accountSeed: key.seed });
      await pushAccountJwt(this.#d.system, account.jwt, this.#d.pushTimeoutMs);
      this.#d.log.info({ namespace, account: account.publicKey }, "Pushed tenant NATS account");
      return { minter: new CredentialMinter(account.signer), jwt: account.jwt };
    } catch (err) {
      throw new Error(`NATS account of ${namespace}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Starts re-pushing on every reconnect of the system connection (once). */
  #watch(): void {
    if (this.#watching) return;
    this.#watching = true;
    void (async () => {
      for await (const s of this.#d.system.status()) {
        if (s.type !== "reconnect") continue;
        this.pushAll().then(
          (n) => n > 0 && this.#d.log.info({ accounts: n }, "Pushed tenant NATS accounts again after reconnecting"),
          (err) => this.#d.log.warn({ err: (err as Error).message }, "Failed to push tenant NATS accounts again after reconnecting"),
        );
      }
    })();
  }
}

/**
 * Loads the NATS operator signing key of accounts mode.
 * @param file path of a file holding the seed (`SO…`), e.g. a mounted Secret key
 * @throws Error naming `CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE` when the file cannot be read or
 *   holds no operator seed (the message never contains the file's content)
 */
export function loadOperatorSigner(file: string): OperatorSigner {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"}): mount the operator signing key Secret there or fix the path`, { cause: err });
  }
  try {
    return parseOperatorSigner(text);
  } catch (err) {
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: ${file} holds no valid NATS operator signing key (${(err as Error).message.replace(/S[A-Z][A-Z2-7]{20,}/g, "<seed>")})`);
  }
}
