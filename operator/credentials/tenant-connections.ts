/**
 * The operator's NATS connection for each tenant namespace: where the Queue reconciler, the scale
 * loops, the delay movers and the Task publisher reach a namespace's streams and buckets.
 * - {@link SharedTenantNats}: one connection for every namespace (the shared-credential modes and
 *   minting in one account).
 * - {@link AccountTenantNats} (accounts mode): one connection per namespace, as an unrestricted
 *   user of that namespace's own account (tenant-accounts.ts), minted in memory by
 *   {@link OperatorCredential} and renewed at 2/3 of its lifetime. A connection is opened the first
 *   time a namespace is needed and kept until {@link TenantNats.close}; a failed first connect is not
 *   remembered, so the caller's retry tries again (nats.js reconnects an open one by itself).
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { connectNats, type NatsSettings } from "../../nats/connection.js";
import { OperatorCredential } from "./operator-credential.js";
import type { TenantAccounts } from "./tenant-accounts.js";

/** One NATS connection and its JetStream handles. */
export interface TenantConnection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/** Gives the connection that reaches a namespace's NATS resources. */
export interface TenantNats {
  /**
   * The connection for `namespace`'s streams and buckets.
   * @throws Error when it cannot be opened (accounts mode: the account cannot be created or pushed,
   *   or NATS is unreachable); the caller retries
   */
  forNamespace(namespace: string): Promise<TenantConnection>;
  /** Drains every connection this opened (not one it was given). Memoised. */
  close(): Promise<void>;
}

/** Every namespace on one connection (it is given, so not closed here). */
export class SharedTenantNats implements TenantNats {
  readonly #c: TenantConnection;

  /** @param jsm a JetStreamManager of `nc` (created with `jetstreamManager(nc)`) */
  constructor(nc: NatsConnection, jsm: JetStreamManager) {
    this.#c = Object.freeze({ nc, js: jetstream(nc), jsm });
  }

  /** @returns the one connection, whatever the namespace */
  forNamespace(): Promise<TenantConnection> {
    return Promise.resolve(this.#c);
  }

  /** Nothing to close: the connection belongs to the caller. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Options of {@link AccountTenantNats}. */
export interface AccountTenantNatsOptions {
  /** Servers, TLS and timeouts; its `credsFile`, `user`, `password` and `inboxPrefix` are not used. */
  settings: NatsSettings;
  accounts: Pick<TenantAccounts, "minterFor">;
  /** Lifetime of the operator's per-tenant user credential, in seconds. */
  credsTtlSeconds: number;
  log: Logger;
}

/** One connection per namespace, each in the namespace's own NATS account. */
export class AccountTenantNats implements TenantNats {
  readonly #o: AccountTenantNatsOptions;
  readonly #open = new Map<string, Promise<TenantConnection & { credential: OperatorCredential }>>();
  #closing: Promise<void> | undefined;

  constructor(o: AccountTenantNatsOptions) {
    this.#o = o;
  }

  forNamespace(namespace: string): Promise<TenantConnection> {
    if (this.#closing) return Promise.reject(new Error(`NATS connection of ${namespace}: the operator is stopping`));
    let c = this.#open.get(namespace);
    if (!c) {
      c = this.#connect(namespace);
      c.catch(() => this.#open.delete(namespace));
      this.#open.set(namespace, c);
    }
    return c;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const all = [...this.#open.values()];
      this.#open.clear();
      await Promise.all(all.map(async (p) => {
        const c = await p.catch(() => undefined);
        if (!c) return;
        c.credential.stop();
        if (!c.nc.isClosed()) await c.nc.drain().catch(() => undefined);
      }));
    })();
    return this.#closing;
  }

  async #connect(namespace: string): Promise<TenantConnection & { credential: OperatorCredential }> {
    const log = this.#o.log.child({ namespace });
    const minter = await this.#o.accounts.minterFor(namespace);
    const credential = await OperatorCredential.start(minter, this.#o.credsTtlSeconds, log);
    const { credsFile: _c, user: _u, password: _p, inboxPrefix: _i, ...rest } = this.#o.settings;
    let nc: NatsConnection;
    try {
      // ignoreAuthErrorAbort: after a server restart the account may be refused until it is pushed again
      nc = await connectNats({ ...rest, name: `${this.#o.settings.name ?? "celeriac-operator"}.${namespace}` }, { authenticator: credential.authenticator(), ignoreAuthErrorAbort: true });
    } catch (err) {
      credential.stop();
      throw new Error(`NATS connection of ${namespace} (account ${minter.account}): ${(err as Error).message}`, { cause: err });
    }
    if (this.#closing) {
      credential.stop();
      await nc.close();
      throw new Error(`NATS connection of ${namespace}: the operator is stopping`);
    }
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc);
    } catch (err) {
      credential.stop();
      await nc.close().catch(() => undefined);
      throw new Error(`NATS connection of ${namespace} (account ${minter.account}): JetStream is not available in the account: ${(err as Error).message}`, { cause: err });
    }
    log.info({ account: minter.account }, "Connected to the tenant's NATS account");
    return { nc, js: jetstream(nc), jsm, credential };
  }
}
