/**
 * The operator's own NATS user in minting mode (when no `CELERIAC_NATS_CREDS` is given): an
 * unrestricted user of the account — it creates streams, consumers and buckets for every Queue —
 * minted from the signing key, held in memory only, and re-minted at the renewal point of
 * `rotation.ts` (2/3 of its lifetime). nats.js calls the authenticator on every (re)connect, so a
 * connection the server closes when the old JWT expires comes back with the current one.
 */
import { credsAuthenticator, type Authenticator } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { CredentialMinter } from "./minter.js";
import type { MintedCredential } from "./desired-secrets.js";
import { renewAt } from "./rotation.js";

/** User name of the operator's own NATS user. */
export const OPERATOR_NATS_USER = "celeriac-operator";

/** Retry delay after a failed re-mint, ms. */
const RETRY_MS = 5_000;

/** The operator's current credential and its renewal timer. */
export class OperatorCredential {
  #current: MintedCredential;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #minter: CredentialMinter;
  readonly #ttlSeconds: number;
  readonly #log: Pick<Logger, "info" | "warn">;
  readonly #now: () => number;

  private constructor(minter: CredentialMinter, ttlSeconds: number, first: MintedCredential, log: Pick<Logger, "info" | "warn">, now: () => number) {
    this.#minter = minter;
    this.#ttlSeconds = ttlSeconds;
    this.#current = first;
    this.#log = log;
    this.#now = now;
    this.#schedule();
  }

  /**
   * Mints the first credential and starts the renewal timer.
   * @param ttlSeconds lifetime of each credential, in seconds
   * @param log receives "Minted operator NATS credential" with the user's public key and expiry (never the creds)
   */
  static async start(minter: CredentialMinter, ttlSeconds: number, log: Pick<Logger, "info" | "warn">, now: () => number = Date.now): Promise<OperatorCredential> {
    const first = await minter.mint({ name: OPERATOR_NATS_USER, ttlSeconds, now: new Date(now()) });
    log.info({ user: first.userPublicKey, expiresAt: first.expiresAt.toISOString() }, "Minted operator NATS credential");
    return new OperatorCredential(minter, ttlSeconds, first, log, now);
  }

  /** When the current credential expires. */
  get expiresAt(): Date {
    return this.#current.expiresAt;
  }

  /** A nats.js authenticator that signs each connect with the credential current at that moment. */
  authenticator(): Authenticator {
    return credsAuthenticator(() => new TextEncoder().encode(this.#current.creds));
  }

  /** Stops the renewal timer (idempotent). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Shown by `JSON.stringify` and loggers instead of the fields: public facts only. */
  toJSON(): { user: string; expiresAt: string } {
    return { user: this.#current.userPublicKey, expiresAt: this.#current.expiresAt.toISOString() };
  }

  #schedule(delayMs?: number): void {
    if (this.#stopped) return;
    const ms = delayMs ?? Math.max(0, renewAt(this.#current.issuedAt, this.#current.expiresAt).getTime() - this.#now());
    // setTimeout holds at most 2^31-1 ms (~24.8 days); a longer wait re-checks then.
    this.#timer = setTimeout(() => void this.#renew(), Math.min(ms, 2 ** 31 - 1));
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    if (this.#now() < renewAt(this.#current.issuedAt, this.#current.expiresAt).getTime()) return this.#schedule();
    try {
      this.#current = await this.#minter.mint({ name: OPERATOR_NATS_USER, ttlSeconds: this.#ttlSeconds, now: new Date(this.#now()) });
      this.#log.info({ user: this.#current.userPublicKey, expiresAt: this.#current.expiresAt.toISOString() }, "Renewed operator NATS credential");
      this.#schedule();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, retryMs: RETRY_MS }, "Failed to renew operator NATS credential");
      this.#schedule(RETRY_MS);
    }
  }
}
