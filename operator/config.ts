/**
 * Operator configuration: parsed once from flags over `CELERIAC_*` environment variables into a frozen
 * object with documented defaults. NATS settings use the same flags and variables as the worker's.
 */
import { hostname } from "node:os";
import { fromPublic } from "@nats-io/nkeys";
import { natsSettingsFrom, type NatsSettings } from "../nats/connection.js";
import { NATS_DEFAULT_MAX_CONTROL_LINE, parseMaxControlLine } from "../api/nats-control-line.js";

/** Default lifetime of minted NATS user credentials, in seconds (24 h). */
export const DEFAULT_NATS_CREDS_TTL_SECONDS = 86_400;
/** Shortest lifetime accepted for minted credentials, in seconds. */
export const MIN_NATS_CREDS_TTL_SECONDS = 3;

/**
 * Minting mode (issue 13): the operator mints per-Queue worker and per-namespace producer NATS users.
 * - `account`: every user in one account, signed by the account signing key it is given
 *   (`CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE`). Isolates reading and consuming, not injection
 *   through JetStream reply or deliver subjects (docs/security.md).
 * - `accounts`: one NATS account per tenant namespace, created at run time with the NATS operator
 *   signing key (`CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE`) and pushed to the server's `full`
 *   resolver through a system-account user (`CELERIAC_NATS_SYSTEM_CREDS`). Isolates fully.
 */
export type NatsMintConfig =
  | (NatsMintCommon & {
    readonly mode: "account";
    /** File holding the account signing key seed `SA…` (`CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE`); read at start. */
    readonly signingKeyFile: string;
    /** The account's public key `A…` (`CELERIAC_NATS_ACCOUNT_PUBLIC_KEY`); absent = the seed is the account identity key. */
    readonly accountPublicKey?: string;
  })
  | (NatsMintCommon & {
    readonly mode: "accounts";
    /** File holding the NATS operator signing key seed `SO…` (`CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE`); read at start. */
    readonly operatorSigningKeyFile: string;
    /** `.creds` of a system-account user (`CELERIAC_NATS_SYSTEM_CREDS`): the operator's main connection, pushes account JWTs. */
    readonly systemCredsFile: string;
    /**
     * Namespace of the Secrets `celeriac-nats-account-<namespace>` holding each tenant account's
     * identity seed (`CELERIAC_NATS_ACCOUNTS_NAMESPACE`, default the lease namespace).
     */
    readonly accountsNamespace: string;
  });

/** Settings both minting modes share. */
export interface NatsMintCommon {
  /**
   * Lifetime of each minted credential, in seconds (`CELERIAC_NATS_CREDS_TTL_SECONDS`, default 86400,
   * at least 3). A credential is replaced when less than 1/3 of it remains (operator/credentials/rotation.ts).
   */
  readonly credsTtlSeconds: number;
  /**
   * The NATS server's `max_control_line`, in bytes (`--nats-max-control-line`,
   * `CELERIAC_NATS_MAX_CONTROL_LINE`; default 4096, nats-server's own default). The server does not
   * announce it, so the operator is told: a minted credential whose CONNECT line would exceed it gets a
   * `NatsCredentialsTooLarge` Warning Event on its Queues (operator/credentials/connect-line.ts).
   */
  readonly maxControlLine: number;
}

/** Frozen operator settings. */
export interface OperatorConfig {
  /** kubeconfig path (`--kubeconfig`, `KUBECONFIG`); absent = in-cluster config, else ~/.kube/config. */
  readonly kubeconfig?: string;
  /** NATS connection settings (`--nats`, `CELERIAC_NATS_*`). */
  readonly nats: NatsSettings;
  /**
   * What worker pods get for NATS: the URL (default: the operator's own) and Secrets holding credentials —
   * referenced, never copied (`CELERIAC_WORKER_NATS_URL`, `CELERIAC_NATS_CREDS_SECRET` = `name/key`,
   * `CELERIAC_NATS_USER_SECRET` = `name/userKey/passwordKey`, `CELERIAC_NATS_TLS_CA_SECRET` = `name/key`).
   */
  readonly workerNats: {
    readonly url: string;
    readonly credsSecret?: { name: string; key: string };
    readonly userSecret?: { name: string; userKey: string; passwordKey: string };
    readonly tlsCaSecret?: { name: string; key: string };
  };
  /** NATS monitoring endpoint `host:port` that KEDA's nats-jetstream scaler reads (`CELERIAC_NATS_MONITORING_ENDPOINT`, default `nats:8222`). */
  readonly natsMonitoringEndpoint: string;
  /** Default worker image for Queues that name none (`CELERIAC_WORKER_IMAGE`). */
  readonly workerImage: string;
  /**
   * OpenTelemetry variables for worker pods: each `CELERIAC_WORKER_OTEL_<X>` of the operator's
   * environment becomes `OTEL_<X>` on every worker container that does not set it in its own env
   * (the chart's `tracing.otlpEndpoint`; docs/tracing.md).
   */
  readonly workerOtelEnv: Readonly<Record<string, string>>;
  /**
   * Namespaces to watch (`--watch-namespaces a,b`, `CELERIAC_WATCH_NAMESPACES`); empty = all. Each
   * resource type still gets one cache and one controller, fanning out list+watch per namespace.
   */
  readonly watchNamespaces: readonly string[];
  /** Run leader election on a Lease (`--leader-elect`, `CELERIAC_LEADER_ELECT=true`). */
  readonly leaderElect: boolean;
  /** Lease namespace and name (`CELERIAC_LEASE_NAMESPACE`, default `default` or the pod's; `CELERIAC_LEASE_NAME`, default `celeriac-operator`). */
  readonly leaseNamespace: string;
  readonly leaseName: string;
  /** Lease duration, renew deadline and retry period, in seconds (15, 10, 2). */
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
  /** Identity in the Lease (`CELERIAC_OPERATOR_ID`, default POD_NAME, else host_pid). */
  readonly identity: string;
  /** Port of /healthz, /readyz, /metrics (`--port`, `CELERIAC_PORT`, default 8080; 0 = a free one). */
  readonly port: number;
  /** Seconds between periodic resyncs of every Queue's NATS state (`CELERIAC_RESYNC_SECONDS`, default 30). */
  readonly resyncSeconds: number;
  /**
   * Minting mode, on when `CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE` is set: per-Queue worker and
   * per-namespace producer credentials in Secrets, and (unless `CELERIAC_NATS_CREDS` is given) the
   * operator's own connection on a user it mints. Absent = the shared-credential modes (creds file,
   * user/password or none), which do not isolate tenants.
   */
  readonly natsMint?: NatsMintConfig;
}

/** Flags `celeriac operator` accepts (all optional; env vars fill the rest). */
export interface OperatorFlags {
  kubeconfig?: string;
  nats?: string;
  leaderElect?: boolean;
  watchNamespaces?: string;
  port?: string;
  leaseDurationSeconds?: string;
  renewDeadlineSeconds?: string;
  retryPeriodSeconds?: string;
  /** `--nats-max-control-line <bytes>`: the NATS server's max_control_line (minting modes). */
  natsMaxControlLine?: string;
}

function num(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}: "${v}" is not a number ≥ ${min}`);
  return n;
}

function secretRef(name: string, v: string | undefined, parts: number): string[] | undefined {
  if (!v) return undefined;
  const p = v.split("/");
  if (p.length !== parts || p.some((x) => !x)) throw new Error(`${name}: "${v}" should have ${parts} parts separated by "/"`);
  return p;
}

/**
 * Parses the minting settings and checks they do not clash with the shared-credential settings:
 * `CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE` (+ `CELERIAC_NATS_ACCOUNT_PUBLIC_KEY`) for one account, or
 * `CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE` + `CELERIAC_NATS_SYSTEM_CREDS` (+
 * `CELERIAC_NATS_ACCOUNTS_NAMESPACE`) for an account per namespace; `CELERIAC_NATS_CREDS_TTL_SECONDS`
 * for both, and `CELERIAC_NATS_MAX_CONTROL_LINE` (or `flags.maxControlLine`, which wins). Key files
 * are only named here; the operator reads them at start.
 * @param flags.maxControlLine `--nats-max-control-line`
 * @returns undefined when minting is off
 * @throws Error naming the variable and the fix when a value is malformed or contradicts another
 */
export function natsMintConfigFrom(env: NodeJS.ProcessEnv, flags: { maxControlLine?: string } = {}): NatsMintConfig | undefined {
  const file = env.CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE;
  const operatorFile = env.CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE;
  const systemCreds = env.CELERIAC_NATS_SYSTEM_CREDS;
  const accountsNs = env.CELERIAC_NATS_ACCOUNTS_NAMESPACE;
  const account = env.CELERIAC_NATS_ACCOUNT_PUBLIC_KEY?.trim();
  const ttl = env.CELERIAC_NATS_CREDS_TTL_SECONDS;
  const mclName = flags.maxControlLine !== undefined ? "--nats-max-control-line" : "CELERIAC_NATS_MAX_CONTROL_LINE";
  const mcl = flags.maxControlLine ?? env.CELERIAC_NATS_MAX_CONTROL_LINE;
  if (!operatorFile) {
    for (const [name, v] of [["CELERIAC_NATS_SYSTEM_CREDS", systemCreds], ["CELERIAC_NATS_ACCOUNTS_NAMESPACE", accountsNs]] as const) {
      if (v) throw new Error(`${name}: only used with an account per namespace: set CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE to the NATS operator signing key file, or unset ${name}`);
    }
  }
  if (!file && !operatorFile) {
    for (const [name, v] of [["CELERIAC_NATS_ACCOUNT_PUBLIC_KEY", account], ["CELERIAC_NATS_CREDS_TTL_SECONDS", ttl], [mclName, mcl]] as const) {
      if (v) throw new Error(`${name}: only used when minting credentials: set CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE to the account signing key file, or unset ${name}`);
    }
    return undefined;
  }
  let credsTtlSeconds = DEFAULT_NATS_CREDS_TTL_SECONDS;
  if (ttl !== undefined && ttl !== "") {
    credsTtlSeconds = Number(ttl);
    if (!Number.isInteger(credsTtlSeconds) || credsTtlSeconds < MIN_NATS_CREDS_TTL_SECONDS) {
      throw new Error(`CELERIAC_NATS_CREDS_TTL_SECONDS: "${ttl}" is not a whole number of seconds ≥ ${MIN_NATS_CREDS_TTL_SECONDS}: set e.g. ${DEFAULT_NATS_CREDS_TTL_SECONDS} (24 h)`);
    }
  }
  const maxControlLine = parseMaxControlLine(mclName, mcl, NATS_DEFAULT_MAX_CONTROL_LINE);
  const keyFile = operatorFile ? "CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE" : "CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE";
  for (const name of ["CELERIAC_NATS_CREDS_SECRET", "CELERIAC_NATS_USER_SECRET"] as const) {
    if (env[name]) throw new Error(`${name}: workers get minted per-Queue credentials when ${keyFile} is set: unset ${name} (or unset the key file to keep a shared credential)`);
  }
  for (const name of ["CELERIAC_NATS_USER", "CELERIAC_NATS_PASSWORD"] as const) {
    if (env[name]) throw new Error(`${name}: a NATS server in operator mode takes no user/password: unset ${name} (the operator mints its own user)${operatorFile ? "" : " or give CELERIAC_NATS_CREDS"}`);
  }
  if (operatorFile) {
    if (file) throw new Error("CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE the operator creates an account per namespace and signs their users itself: unset one of the two (an account per namespace isolates tenants fully; one account does not)");
    if (account) throw new Error("CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: not used with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE (each namespace gets its own account): unset it");
    if (env.CELERIAC_NATS_CREDS) throw new Error("CELERIAC_NATS_CREDS: with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE the operator connects as the system-account user of CELERIAC_NATS_SYSTEM_CREDS and mints a user per tenant account: unset CELERIAC_NATS_CREDS");
    if (!systemCreds) throw new Error("CELERIAC_NATS_SYSTEM_CREDS: required with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: give the .creds file of a user of the NATS system account (`nsc generate creds -a SYS -n sys`), which pushes the tenant accounts to the server's full resolver");
    if (accountsNs !== undefined && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(accountsNs)) throw new Error(`CELERIAC_NATS_ACCOUNTS_NAMESPACE: "${accountsNs}" is not a namespace name (a DNS-1123 label): give the namespace the operator runs in`);
    const accountsNamespace = accountsNs || (env.CELERIAC_LEASE_NAMESPACE ?? env.POD_NAMESPACE ?? "default");
    return Object.freeze({ mode: "accounts", operatorSigningKeyFile: operatorFile, systemCredsFile: systemCreds, accountsNamespace, credsTtlSeconds, maxControlLine });
  }
  if (account) {
    let ok: boolean;
    try {
      ok = account.startsWith("A") && fromPublic(account).getPublicKey() === account;
    } catch {
      ok = false;
    }
    if (!ok) throw new Error(`CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: "${account}" is not an account public key (56 characters starting with A): copy it from \`nsc describe account\``);
  }
  return Object.freeze({ mode: "account", signingKeyFile: file!, ...(account ? { accountPublicKey: account } : {}), credsTtlSeconds, maxControlLine });
}

/**
 * Parses the operator configuration.
 * @param flags command-line values (take precedence)
 * @param env the environment, usually `process.env`
 * @throws Error naming the flag or variable when a value is malformed
 */
export function operatorConfigFrom(flags: OperatorFlags, env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  let nats = natsSettingsFrom({ ...(flags.nats ? { url: flags.nats } : {}), name: "celeriac-operator" }, env);
  const creds = secretRef("CELERIAC_NATS_CREDS_SECRET", env.CELERIAC_NATS_CREDS_SECRET, 2);
  const user = secretRef("CELERIAC_NATS_USER_SECRET", env.CELERIAC_NATS_USER_SECRET, 3);
  const ca = secretRef("CELERIAC_NATS_TLS_CA_SECRET", env.CELERIAC_NATS_TLS_CA_SECRET, 2);
  const ns = flags.watchNamespaces ?? env.CELERIAC_WATCH_NAMESPACES ?? "";
  const kubeconfig = flags.kubeconfig ?? env.KUBECONFIG;
  const natsMint = natsMintConfigFrom(env, flags.natsMaxControlLine !== undefined ? { maxControlLine: flags.natsMaxControlLine } : {});
  // Accounts mode: the main connection is the system-account user's (it pushes account JWTs);
  // each tenant's JetStream is reached on a connection of the tenant's own account.
  if (natsMint?.mode === "accounts") nats = { ...nats, credsFile: natsMint.systemCredsFile };
  return Object.freeze({
    ...(kubeconfig ? { kubeconfig } : {}),
    nats,
    workerNats: Object.freeze({
      url: env.CELERIAC_WORKER_NATS_URL ?? nats.servers.join(","),
      ...(creds ? { credsSecret: { name: creds[0]!, key: creds[1]! } } : {}),
      ...(user ? { userSecret: { name: user[0]!, userKey: user[1]!, passwordKey: user[2]! } } : {}),
      ...(ca ? { tlsCaSecret: { name: ca[0]!, key: ca[1]! } } : {}),
    }),
    natsMonitoringEndpoint: env.CELERIAC_NATS_MONITORING_ENDPOINT ?? "nats:8222",
    workerImage: env.CELERIAC_WORKER_IMAGE ?? "ghcr.io/celeriac/worker:0.1.0",
    workerOtelEnv: Object.freeze(Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith("CELERIAC_WORKER_OTEL_") && v).map(([k, v]) => [k.slice("CELERIAC_WORKER_".length), v!]))),
    watchNamespaces: Object.freeze(ns.split(",").map((s) => s.trim()).filter(Boolean)),
    leaderElect: flags.leaderElect ?? env.CELERIAC_LEADER_ELECT === "true",
    leaseNamespace: env.CELERIAC_LEASE_NAMESPACE ?? env.POD_NAMESPACE ?? "default",
    leaseName: env.CELERIAC_LEASE_NAME ?? "celeriac-operator",
    leaseDurationSeconds: num("--lease-duration-seconds", flags.leaseDurationSeconds ?? env.CELERIAC_LEASE_DURATION_SECONDS, 15, 1),
    renewDeadlineSeconds: num("--renew-deadline-seconds", flags.renewDeadlineSeconds ?? env.CELERIAC_RENEW_DEADLINE_SECONDS, 10, 1),
    retryPeriodSeconds: num("--retry-period-seconds", flags.retryPeriodSeconds ?? env.CELERIAC_RETRY_PERIOD_SECONDS, 2, 0.1),
    identity: env.CELERIAC_OPERATOR_ID ?? env.POD_NAME ?? `${hostname()}_${process.pid}`,
    port: num("--port", flags.port ?? env.CELERIAC_PORT, 8080),
    resyncSeconds: num("CELERIAC_RESYNC_SECONDS", env.CELERIAC_RESYNC_SECONDS, 30, 1),
    ...(natsMint ? { natsMint } : {}),
  });
}
