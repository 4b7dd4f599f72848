/**
 * NATS connection options for workers, clients and the operator: read once from flags and the
 * environment (`CELERIAC_NATS_URL`, `CELERIAC_NATS_CREDS`, `CELERIAC_NATS_USER`,
 * `CELERIAC_NATS_PASSWORD`, `CELERIAC_NATS_TLS_CA`, `CELERIAC_NATS_INBOX_PREFIX`), then used to
 * connect with unlimited reconnects.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { NATS_CREDS_SECRET_KEY, PRODUCER_CREDS_SECRET_NAME } from "../api/nats-creds-secrets.js";
import { credsExpiry, credsInboxPrefix } from "./credentials.js";
import { connectLineBytes, credsJwt, NATS_DEFAULT_MAX_CONTROL_LINE } from "../api/nats-control-line.js";

/** Default NATS URL when neither a flag nor `CELERIAC_NATS_URL` gives one. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** How to reach NATS. Every field maps to a flag and a `CELERIAC_NATS_*` variable. */
export interface NatsSettings {
  /** Server URL(s), comma-separated in the env var (`--nats`, `CELERIAC_NATS_URL`). */
  readonly servers: readonly string[];
  /** Path of a `.creds` file (`CELERIAC_NATS_CREDS`). */
  readonly credsFile?: string;
  /** User name (`CELERIAC_NATS_USER`). */
  readonly user?: string;
  /** Password (`CELERIAC_NATS_PASSWORD`). */
  readonly password?: string;
  /** PEM file of the CA that signed the server certificate (`CELERIAC_NATS_TLS_CA`); enables TLS. */
  readonly tlsCaFile?: string;
  /** Connection name shown in server monitoring. */
  readonly name?: string;
  /**
   * Prefix of the connection's reply and delivery subjects (nats.js `inboxPrefix`,
   * `CELERIAC_NATS_INBOX_PREFIX`). A minted user may subscribe only under its own prefix
   * (api/nats-permissions.ts); when unset, it is read from the creds file's JWT.
   */
  readonly inboxPrefix?: string;
}

/**
 * Builds frozen NATS settings from explicit values (flags) over environment variables. Pure apart
 * from reading `env`.
 * @param flags values given on the command line (or by code); undefined fields fall back to env
 * @param env the environment, usually `process.env`
 */
export function natsSettingsFrom(flags: { url?: string; name?: string } = {}, env: NodeJS.ProcessEnv = process.env): NatsSettings {
  const url = flags.url ?? env.CELERIAC_NATS_URL ?? DEFAULT_NATS_URL;
  return Object.freeze({
    servers: Object.freeze(url.split(",").map((s) => s.trim()).filter((s) => s.length > 0)),
    ...(env.CELERIAC_NATS_CREDS ? { credsFile: env.CELERIAC_NATS_CREDS } : {}),
    ...(env.CELERIAC_NATS_USER ? { user: env.CELERIAC_NATS_USER } : {}),
    ...(env.CELERIAC_NATS_PASSWORD ? { password: env.CELERIAC_NATS_PASSWORD } : {}),
    ...(env.CELERIAC_NATS_TLS_CA ? { tlsCaFile: env.CELERIAC_NATS_TLS_CA } : {}),
    ...(env.CELERIAC_NATS_INBOX_PREFIX ? { inboxPrefix: env.CELERIAC_NATS_INBOX_PREFIX } : {}),
    ...(flags.name ? { name: flags.name } : {}),
  });
}

/**
 * Maps settings to nats.js connection options: reconnect forever (every 250 ms, jitter 100 ms), so a
 * server restart never ends a worker; pings every 10 s so a dead connection is noticed within ~20 s;
 * `noAsyncTraces` (request errors carry no extra async stack, which costs CPU on every publish).
 * The creds file is read again on every (re)connect, so a rotated Secret (Kubernetes swaps the
 * mounted file atomically) is used once the server has expired the old JWT and dropped the
 * connection; authentication errors do not end the reconnect loop (`ignoreAuthErrorAbort`), as the
 * new file may arrive late. Without `inboxPrefix`, the creds JWT's inbox prefix is used when it restricts
 * subscriptions to one `_INBOX….>` subject (`credsInboxPrefix`), so a minted user needs no other
 * setting. Pure apart from reading the creds file.
 * @throws Error "read NATS creds file <path>: …" when the creds file cannot be read or parsed
 */
export function natsConnectionOptions(s: NatsSettings): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: [...s.servers],
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 10_000,
    maxPingOut: 2,
    waitOnFirstConnect: false,
    // no stack capture per request: a measurable share of CPU on the worker's hot path
    noAsyncTraces: true,
  };
  if (s.name) opts.name = s.name;
  if (s.credsFile) {
    const file = s.credsFile;
    let inbox: string | undefined;
    try {
      inbox = credsInboxPrefix(readFileSync(file, "utf8"));
    } catch (err) {
      throw new Error(`read NATS creds file ${file}: ${(err as Error).message}`, { cause: err });
    }
    // a function: nats.js calls it on every connect and reconnect (rotation without a restart)
    opts.authenticator = credsAuthenticator(() => readFileSync(file));
    // an expired JWT whose replacement has not reached the mounted file yet (a Secret volume
    // lags by up to a kubelet sync) fails twice; keep retrying instead of closing for good
    opts.ignoreAuthErrorAbort = true;
    if (inbox && !s.inboxPrefix) opts.inboxPrefix = inbox;
  }
  if (s.inboxPrefix) opts.inboxPrefix = s.inboxPrefix;
  if (s.user) opts.user = s.user;
  if (s.password) opts.pass = s.password;
  if (s.tlsCaFile) opts.tls = { caFile: s.tlsCaFile };
  return opts;
}

/**
 * Connects to NATS with `natsConnectionOptions(settings)`, overlaid by `extra` (nats.js options
 * that settings cannot express, e.g. an `authenticator` that supplies the creds on each connect).
 * @param extra options applied last, over those from settings (default: none)
 * @throws Error "connect to NATS at <servers>" with the nats.js error as cause
 */
export async function connectNats(settings: NatsSettings, extra: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  try {
    return await connect({ ...natsConnectionOptions(settings), ...extra });
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /authorization violation|authentication expired/i.test(msg) ? authorizationHint(settings, Boolean(extra.authenticator)) : /timeout/i.test(msg) ? controlLineHint(settings) : "";
    throw new Error(`connect to NATS at ${settings.servers.join(",")}: ${msg}${hint}`, { cause: err });
  }
}

/**
 * What a connect timeout may mean when the creds file's JWT is large: nats-server drops a CONNECT
 * line over its `max_control_line` (4096 bytes by default) without an error the client sees, so the
 * connect times out (api/nats-control-line.ts). Appended to the error when the creds file's CONNECT
 * line would exceed nats-server's default; empty otherwise. Never includes a credential. Pure apart
 * from reading the creds file.
 */
export function controlLineHint(s: NatsSettings): string {
  if (!s.credsFile) return "";
  let jwt: string | undefined;
  try {
    jwt = credsJwt(readFileSync(s.credsFile, "utf8"));
  } catch {
    jwt = undefined;
  }
  if (!jwt) return "";
  const bytes = connectLineBytes(jwt);
  if (bytes <= NATS_DEFAULT_MAX_CONTROL_LINE) return "";
  return `; the credential in ${s.credsFile} makes a CONNECT line of about ${bytes} bytes, over nats-server's default max_control_line of ${NATS_DEFAULT_MAX_CONTROL_LINE}: if the server logs "maximum control line exceeded", raise max_control_line in its config (docs/install.md)`;
}

/**
 * What to do about a refused connection, appended to the error: an expired creds file (its JWT's
 * `exp`, read locally), a refused one, a minted credential of the operator's own, or none given.
 * Never includes a credential. Pure apart from reading the creds file.
 */
export function authorizationHint(s: NatsSettings, ownAuthenticator: boolean, now: Date = new Date()): string {
  const minted = `with minted credentials, the \`${NATS_CREDS_SECRET_KEY}\` key of Secret ${PRODUCER_CREDS_SECRET_NAME} in your namespace (workers get theirs mounted)`;
  if (ownAuthenticator) {
    return "; the server refused the credential the operator minted: check that CELERIAC_NATS_ACCOUNT_PUBLIC_KEY names the account the signing key belongs to and that the account's JWT is on the server's resolver";
  }
  if (s.credsFile) {
    let exp: Date | undefined;
    try {
      exp = credsExpiry(readFileSync(s.credsFile, "utf8"));
    } catch {
      exp = undefined;
    }
    if (exp && exp.getTime() <= now.getTime()) return `; the credential in ${s.credsFile} (CELERIAC_NATS_CREDS) expired at ${exp.toISOString()}: get a fresh one (${minted})`;
    return `; the server refused the credential in ${s.credsFile} (CELERIAC_NATS_CREDS): it is for another NATS operator or account, or was revoked`;
  }
  if (s.user) return "; the server refused CELERIAC_NATS_USER/CELERIAC_NATS_PASSWORD";
  return `; the server requires credentials: set CELERIAC_NATS_CREDS to a .creds file (${minted})`;
}

/** Back-off of the first NATS connection: 0.5 s doubling to 30 s. */
export const NATS_CONNECT_BACKOFF = Object.freeze({ baseMs: 500, capMs: 30_000 });

/**
 * Connects to NATS, retrying with back-off (logged at warn with the next delay) until it succeeds:
 * the operator waits for NATS at startup, as a pod whose dependency starts later should.
 * @param settings as for {@link connectNats}
 * @param log where each retry is logged (warn, with `delayMs`)
 * @param opts.maxAttempts give up after this many attempts (default: never)
 * @param opts.extra nats.js options over those from settings, as for {@link connectNats}
 * @throws Error "connect to NATS at …" after `maxAttempts`
 */
export async function connectNatsWithBackoff(
  settings: NatsSettings,
  log: Pick<Logger, "info" | "warn">,
  opts: { maxAttempts?: number; extra?: Partial<NodeConnectionOptions> } = {},
): Promise<NatsConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connectNats(settings, opts.extra);
      if (attempt > 1) log.info({ attempt, servers: settings.servers }, "Connected to NATS");
      return nc;
    } catch (err) {
      if (opts.maxAttempts !== undefined && attempt >= opts.maxAttempts) throw err;
      const delayMs = Math.min(NATS_CONNECT_BACKOFF.capMs, NATS_CONNECT_BACKOFF.baseMs * 2 ** Math.min(attempt - 1, 20));
      log.warn({ err: (err as Error).message, attempt, delayMs, servers: settings.servers }, "Failed to connect to NATS; retrying");
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
