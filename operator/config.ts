/**
 * Operator configuration: parsed once from flags over `CELERIAC_*` environment variables into a frozen
 * object with documented defaults. NATS settings use the same flags and variables as the worker's.
 */
import { hostname } from "node:os";
import { natsSettingsFrom, type NatsSettings } from "../nats/connection.js";

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
 * Parses the operator configuration.
 * @param flags command-line values (take precedence)
 * @param env the environment, usually `process.env`
 * @throws Error naming the flag or variable when a value is malformed
 */
export function operatorConfigFrom(flags: OperatorFlags, env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const nats = natsSettingsFrom({ ...(flags.nats ? { url: flags.nats } : {}), name: "celeriac-operator" }, env);
  const creds = secretRef("CELERIAC_NATS_CREDS_SECRET", env.CELERIAC_NATS_CREDS_SECRET, 2);
  const user = secretRef("CELERIAC_NATS_USER_SECRET", env.CELERIAC_NATS_USER_SECRET, 3);
  const ca = secretRef("CELERIAC_NATS_TLS_CA_SECRET", env.CELERIAC_NATS_TLS_CA_SECRET, 2);
  const ns = flags.watchNamespaces ?? env.CELERIAC_WATCH_NAMESPACES ?? "";
  const kubeconfig = flags.kubeconfig ?? env.KUBECONFIG;
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
  });
}
