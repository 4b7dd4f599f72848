/**
 * The operator's account signing key, held in one place: loaded from the file the chart mounts
 * (`CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE`) and used only to sign user JWTs through
 * `nats/credentials.ts` (`@nats-io/jwt`). The seed lives in a private field, so neither logging nor
 * JSON-serialising a {@link CredentialMinter} can reveal it; nothing here logs.
 */
import { readFileSync } from "node:fs";
import { fromSeed } from "@nats-io/nkeys";
import { mintUserCreds, parseAccountSigner, type AccountSigner } from "../../nats/credentials.js";
import type { NatsPermissions } from "../../api/nats-permissions.js";
import type { MintedCredential } from "./desired-secrets.js";

/** Mints user credentials signed by the account signing key it holds. */
export class CredentialMinter {
  readonly #signer: AccountSigner;
  /** Public key (`A…`) of the account the users belong to. */
  readonly account: string;
  /** Public key (`A…`) of the signing key (the JWTs' issuer; equals `account` for the identity key). */
  readonly issuer: string;

  /**
   * @param signer from `parseAccountSigner`
   * @throws Error when the seed is not an account seed or the account key not an account key
   */
  constructor(signer: AccountSigner) {
    this.#signer = signer;
    this.account = signer.account;
    this.issuer = fromSeed(new TextEncoder().encode(signer.seed)).getPublicKey();
    if (!this.issuer.startsWith("A")) throw new Error(`the seed is a key of type ${this.issuer[0] ?? "?"}, not an account signing key (SA…)`);
    if (!this.account.startsWith("A")) throw new Error("the account public key does not start with A");
  }

  /**
   * Mints a user credential.
   * @param o.name user name in the JWT
   * @param o.permissions omitted = unrestricted (the operator's own user only)
   * @param o.ttlSeconds lifetime, in seconds
   * @param o.now issue time (default now)
   */
  async mint(o: { name: string; permissions?: NatsPermissions; ttlSeconds: number; now?: Date }): Promise<MintedCredential> {
    const m = await mintUserCreds(this.#signer, o);
    return { creds: m.creds, issuedAt: m.issuedAt, expiresAt: m.expiresAt, userPublicKey: m.publicKey, issuer: this.issuer };
  }

  /** Shown instead of the fields by `JSON.stringify` and loggers: the public keys only. */
  toJSON(): { account: string; issuer: string } {
    return { account: this.account, issuer: this.issuer };
  }
}

/**
 * Loads the account signing key.
 * @param file path of a file holding the seed (`SA…`), e.g. a mounted Secret key
 * @param accountPublicKey the account's public key (`A…`); may be omitted only when the seed is the
 *   account's identity key
 * @throws Error naming `CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE` when the file cannot be read or holds
 *   no account seed (the message never contains the file's content)
 */
export function loadCredentialMinter(file: string, accountPublicKey?: string): CredentialMinter {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"}): mount the account signing key Secret there or fix the path`, { cause: err });
  }
  try {
    return new CredentialMinter(parseAccountSigner(text, accountPublicKey));
  } catch (err) {
    // No `cause`: a parser's error may quote the text it was given, and this error gets logged.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: ${file} holds no valid account signing key seed (${(err as Error).message.replace(/S[A-Z][A-Z2-7]{20,}/g, "<seed>")}): put the seed (a line starting with SA, from \`nsc\`) in it`);
  }
}
