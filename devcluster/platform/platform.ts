/**
 * The whole Celeriac platform on one machine: the in-memory Kubernetes API server with the CRDs
 * installed, a nats-server with JetStream (file storage), the operator (child processes, so tests
 * can kill and restart them), and the process kubelet running worker Deployments.
 * Used by `celeriac dev up` (through its supervisor) and by the end-to-end tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { startApiServer } from "../server/index.js";
import type { Logger } from "pino";
import { startKubelet } from "../kubelet/index.js";
import { resetsBackoff, restartDelayMs } from "../kubelet/backoff.js";
import { freePort, startNatsServer, type NatsProcess } from "./nats-process.js";
import { setupNatsOperatorMode } from "./nats-operator-mode.js";
import { CELERIAC_NATS_MAX_CONTROL_LINE } from "../../api/nats-control-line.js";
import { updateState } from "./state.js";
import { REPO_ROOT } from "./paths.js";

export { REPO_ROOT };

/**
 * How the local nats-server authenticates clients:
 * - `shared` (default, as before): no auth at all — the operator, every worker and every client share
 *   one anonymous access to one account, so tenants are not isolated;
 * - `minted`: NATS decentralized auth (operator mode, memory resolver, see nats-operator-mode.ts).
 *   The platform's operator processes are given the account signing key
 *   (`CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE`, `CELERIAC_NATS_ACCOUNT_PUBLIC_KEY`); they mint their own
 *   NATS user and per-Queue worker and per-namespace producer credentials as Secrets, all in one
 *   account. An unrestricted admin user's creds are written too, for tests and debugging only;
 * - `accounts`: operator mode with a `full` resolver (account JWTs kept in `<dir>/nats-auth/jwt`, so a
 *   restarted nats-server keeps the accounts pushed to it). The operator processes are given the
 *   operator key (`CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE`) and a system-account user
 *   (`CELERIAC_NATS_SYSTEM_CREDS`), and no account key or creds: they create one NATS account per
 *   tenant namespace and mint its worker and producer users in it, so no tenant's JetStream can
 *   publish into another's. The platform's own Celeriac account stays empty.
 */
export type NatsAuthMode = "shared" | "minted" | "accounts";

/** The values {@link NatsAuthMode} accepts, for flags and validation. */
export const NATS_AUTH_MODES: readonly NatsAuthMode[] = ["shared", "minted", "accounts"];

/** What a platform's NATS auth is; the paths are set in `minted` and `accounts` modes as noted. */
export interface PlatformNatsAuth {
  mode: NatsAuthMode;
  /**
   * `minted` only: `.creds` of an unrestricted user of the Celeriac account, for tests and debugging
   * (no platform process uses it). Secret.
   */
  adminCredsFile?: string;
  /** `minted` only: file (mode 0600) holding the account signing key seed the operators mint users with. Secret. */
  signingKeyFile?: string;
  /**
   * Public key (`A…`) of the platform's Celeriac account (both modes): in `minted` mode the account of
   * every user; in `accounts` mode an account no tenant's user belongs to.
   */
  accountPublicKey?: string;
  /** `accounts` only: file (mode 0600) holding the NATS operator's key seed (`SO…`) the operators sign tenant accounts with. Secret. */
  operatorSigningKeyFile?: string;
  /** `accounts` only: `.creds` of a system-account user (what the operators push account JWTs with; server monitoring). Secret. */
  systemCredsFile?: string;
  /** `accounts` only: public key (`O…`) of the NATS operator. */
  operatorPublicKey?: string;
}

/**
 * The environment the platform gives its operator processes for a NATS auth mode, on top of its own:
 * a string sets a variable, `undefined` removes it (so none leaks in from the caller's environment).
 * Pure.
 * - `minted`: the account signing key file and account public key; no `CELERIAC_NATS_CREDS`;
 *   both minting modes: `CELERIAC_NATS_MAX_CONTROL_LINE`, the platform's nats-server's limit;
 * - `accounts`: the operator key file and the system creds; no `CELERIAC_NATS_CREDS`, account key or
 *   user/password (the operator refuses them beside the operator key);
 * - `shared`: nothing.
 * @throws Error when a file the mode needs is missing from `auth`
 */
export function operatorNatsAuthEnv(auth: PlatformNatsAuth): Record<string, string | undefined> {
  const need = (v: string | undefined, field: keyof PlatformNatsAuth): string => {
    if (!v) throw new Error(`natsAuth ${auth.mode}: ${field} is not set; start the platform through startPlatform, which generates it`);
    return v;
  };
  switch (auth.mode) {
    case "shared":
      return {};
    case "minted":
      // Blanked (as before), so none leaks in from our environment: the operator mints its own user, as in a cluster.
      return {
        CELERIAC_NATS_CREDS: "",
        CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: need(auth.signingKeyFile, "signingKeyFile"),
        CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: need(auth.accountPublicKey, "accountPublicKey"),
        // the platform's nats-server runs the config of nats-operator-mode.ts, which sets this max_control_line
        CELERIAC_NATS_MAX_CONTROL_LINE: String(CELERIAC_NATS_MAX_CONTROL_LINE),
      };
    case "accounts":
      return {
        CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: need(auth.operatorSigningKeyFile, "operatorSigningKeyFile"),
        CELERIAC_NATS_SYSTEM_CREDS: need(auth.systemCredsFile, "systemCredsFile"),
        CELERIAC_NATS_MAX_CONTROL_LINE: String(CELERIAC_NATS_MAX_CONTROL_LINE),
        CELERIAC_NATS_CREDS: undefined,
        CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: undefined,
        CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: undefined,
        CELERIAC_NATS_USER: undefined,
        CELERIAC_NATS_PASSWORD: undefined,
        CELERIAC_NATS_CREDS_SECRET: undefined,
        CELERIAC_NATS_USER_SECRET: undefined,
      };
  }
}

/** `env` without the keys whose value is `undefined`. Pure. */
function definedEnv(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Options of `startPlatform`. */
export interface PlatformOptions {
  /** State directory: kubeconfig, NATS store, logs. Created if missing. */
  dir: string;
  /** Operator replicas to run (default 1; 2+ exercises leader election). */
  operatorReplicas?: number;
  /** API server port (default 0: a free one). */
  apiPort?: number;
  /** Extra args for `celeriac operator` (e.g. faster lease timings in tests). */
  operatorArgs?: string[];
  /** Extra environment for operator processes. */
  operatorEnv?: Record<string, string>;
  /** Kubelet restart back-off base, ms (default 1000). */
  restartBackoffBaseMs?: number;
  /** Back-off base for restarting a crashed operator or nats-server, ms (default 1000; doubles, capped at 30×). */
  processRestartBackoffBaseMs?: number;
  /** How long to wait for every operator's /readyz at start, ms (default 60 000). */
  operatorReadyTimeoutMs?: number;
  /** NATS auth mode (default `shared`: no auth, as before); see {@link NatsAuthMode}. */
  natsAuth?: NatsAuthMode;
  /** Logger of the in-process kubelet (default: the kubelet's, JSON lines at `info` to stdout). */
  kubeletLog?: Logger;
}

/** A running platform. */
export interface Platform {
  dir: string;
  kubeconfigPath: string;
  apiUrl: string;
  natsUrl: string;
  nats: NatsProcess;
  /** The NATS auth mode and, in `minted` and `accounts` modes, where its keys are (absent on the e2e tests' real-cluster stand-in). */
  natsAuth?: PlatformNatsAuth;
  /** Operator child processes, by replica index (entries are replaced on restart). */
  operators: ChildProcess[];
  /** Kills operator `i` (SIGKILL when `hard`, else SIGTERM) and waits for it to exit. */
  stopOperator(i: number, hard?: boolean): Promise<void>;
  /** Starts operator `i` again (after stopOperator). */
  startOperator(i: number): ChildProcess;
  /** Stops nats-server (SIGKILL when `hard`, else SIGTERM) and keeps it stopped until {@link startNats}. */
  stopNats(hard?: boolean): Promise<void>;
  /** Starts nats-server again on the same port with the same store (after stopNats); `nats` is the new process. */
  startNats(): Promise<NatsProcess>;
  /** How often the platform restarted a component that exited on its own. */
  restarts(): { nats: number; operators: number[] };
  /** The /readyz port of operator `i`. */
  operatorPorts: number[];
  /** Stops everything this platform started, in reverse order. Memoised. */
  stop(): Promise<void>;
}

/**
 * Restarts one component with the kubelet's back-off when it exits on its own (not through a stop
 * call): `base · 2^(crashes-1)`, capped at 30× the base, reset after a run of 60× the base.
 */
class Supervised {
  crashes = 0;
  restarts = 0;
  intended = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly baseMs: number, private readonly restart: () => unknown, private readonly onRestart: () => void) {}

  /** Call when the component has started: its exit (unless intended) schedules a restart. */
  watch(child: ChildProcess, startedAt = Date.now()): void {
    this.intended = false;
    child.once("exit", () => {
      if (this.intended) return;
      this.crashes = resetsBackoff(Date.now() - startedAt, this.baseMs) ? 1 : this.crashes + 1;
      this.schedule();
    });
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      if (this.intended) return;
      this.restarts++;
      Promise.resolve()
        .then(() => this.restart())
        .then(
          () => this.onRestart(),
          () => {
            this.crashes++;
            this.onRestart();
            this.schedule();
          },
        );
    }, restartDelayMs(this.crashes, this.baseMs));
  }

  /** The next exit is intended (stop): no restart. */
  stopping(): void {
    this.intended = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

function waitExit(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(t);
      res();
    });
  });
}

/**
 * Applies the CRDs in `crds/` and waits until each is Established. Sends the YAML as plain JSON:
 * client-node's typed CRD model would drop `x-kubernetes-*` keys it maps to camelCase properties.
 * @param serverUrl the API server URL (plain http, the dev server)
 * @throws Error when a CRD is refused or not established within 10 s
 */
export async function installCrds(serverUrl: string, crdDir = join(REPO_ROOT, "crds")): Promise<void> {
  const base = `${serverUrl}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`;
  for (const f of readdirSync(crdDir).filter((x) => x.endsWith(".yaml")).sort()) {
    const crd = parse(readFileSync(join(crdDir, f), "utf8")) as { metadata: { name: string; resourceVersion?: string } };
    const name = crd.metadata.name;
    let res = await fetch(base, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(crd) });
    if (res.status === 409) {
      const cur = (await (await fetch(`${base}/${name}`)).json()) as { metadata: { resourceVersion: string } };
      crd.metadata.resourceVersion = cur.metadata.resourceVersion;
      res = await fetch(`${base}/${name}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(crd) });
    }
    if (!res.ok) throw new Error(`create CRD ${name}: ${res.status} ${await res.text()}`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const cur = (await (await fetch(`${base}/${name}`)).json()) as { status?: { conditions?: Array<{ type: string; status: string }> } };
      if (cur.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Waits until `GET /readyz` of every operator answers 200.
 * @throws Error naming the operators not ready within `timeoutMs` (a crashed one is restarted meanwhile)
 */
async function waitOperatorsReady(ports: number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ready = async (port: number): Promise<boolean> => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
    } catch {
      return false;
    }
  };
  for (;;) {
    const states = await Promise.all(ports.map((p) => ready(p)));
    if (states.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`operators not ready within ${timeoutMs} ms: ${states.map((ok, i) => (ok ? "" : `operator-${i}`)).filter(Boolean).join(", ")} (see logs/operator-<i>.log)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts the platform.
 * @throws Error when nats-server is missing (naming the package to install) or a component fails to start;
 *   whatever was started before the failure is stopped again
 */
export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const dir = resolve(opts.dir);
  const logs = join(dir, "logs");
  mkdirSync(logs, { recursive: true });
  const kubeconfigPath = join(dir, "kubeconfig");
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // keep stopping the rest
      }
    }
  };
  try {
    const mode = opts.natsAuth ?? "shared";
    if (!NATS_AUTH_MODES.includes(mode)) throw new Error(`natsAuth "${String(mode)}" is not a NATS auth mode: use one of ${NATS_AUTH_MODES.join(", ")}`);
    // Minted and accounts: the keys live in <dir>/nats-auth (seeds in 0600 files), reused across restarts of the
    // platform; in accounts mode the full resolver keeps pushed account JWTs in <dir>/nats-auth/jwt.
    const om = mode === "shared" ? undefined : await setupNatsOperatorMode(join(dir, "nats-auth"), { resolver: mode === "accounts" ? "full" : "memory" });
    const natsAuth: PlatformNatsAuth = !om
      ? { mode }
      : mode === "minted"
        ? { mode, adminCredsFile: om.adminCredsFile, signingKeyFile: om.signingKeyFile, accountPublicKey: om.accountPublicKey }
        : { mode, accountPublicKey: om.accountPublicKey, operatorSigningKeyFile: om.operatorSigningKeyFile, systemCredsFile: om.systemCredsFile, operatorPublicKey: om.operatorPublicKey };
    const authEnv = operatorNatsAuthEnv(natsAuth);
    const natsConfig = om ? { configFile: om.configFile } : {};
    const base = opts.processRestartBackoffBaseMs ?? 1000;
    const operatorSup: Supervised[] = [];
    const publish = () => updateState(dir, {
      restarts: { nats: natsSup.restarts, operators: operatorSup.map((x) => x.restarts) },
      operatorPids: operators.map((c) => c.pid ?? 0),
      natsPid: nats.child.pid ?? 0,
    });
    const startNats = async (): Promise<NatsProcess> => {
      nats = await startNatsServer({ dir: join(dir, "nats"), port: nats.port, logFile: join(logs, "nats-server.log"), ...natsConfig });
      natsSup.watch(nats.child);
      return nats;
    };
    const natsSup: Supervised = new Supervised(base, () => startNats(), () => publish());
    let nats = await startNatsServer({ dir: join(dir, "nats"), logFile: join(logs, "nats-server.log"), ...natsConfig });
    natsSup.watch(nats.child);
    cleanups.push(() => {
      natsSup.stopping();
      return nats.stop();
    });
    // The process kubelet writes Deployment status, so the server's own stub stays off.
    const api = await startApiServer({ port: opts.apiPort ?? 0, kubeconfigPath, controllers: { deploymentStatus: false }, podLogsDir: logs });
    cleanups.push(() => api.close());
    await installCrds(api.url);

    const operators: ChildProcess[] = [];
    const operatorPorts: number[] = [];
    const startOperator = (i: number): ChildProcess => {
      const log = createWriteStream(join(logs, `operator-${i}.log`), { flags: "a" });
      const child = spawn(
        process.execPath,
        [join(REPO_ROOT, "bin", "celeriac.js"), "operator", "--kubeconfig", kubeconfigPath, "--nats", nats.url, "--port", String(operatorPorts[i]), "--leader-elect", ...(opts.operatorArgs ?? [])],
        { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: definedEnv({ ...process.env, ...authEnv, ...opts.operatorEnv, CELERIAC_OPERATOR_ID: `operator-${i}`, KUBECONFIG: kubeconfigPath }) },
      );
      child.stdout?.pipe(log);
      child.stderr?.pipe(log);
      operators[i] = child;
      operatorSup[i] ??= new Supervised(base, () => startOperator(i), publish);
      operatorSup[i].watch(child);
      return child;
    };
    const stopOperator = async (i: number, hard = false) => {
      const child = operators[i];
      if (!child) return;
      operatorSup[i]?.stopping();
      child.kill(hard ? "SIGKILL" : "SIGTERM");
      await waitExit(child, 10_000);
    };
    for (let i = 0; i < (opts.operatorReplicas ?? 1); i++) {
      operatorPorts[i] = await freePort();
      startOperator(i);
    }
    cleanups.push(async () => {
      await Promise.all(operators.map((_, i) => stopOperator(i)));
    });

    const kubelet = await startKubelet({
      kubeconfigPath,
      logsDir: logs,
      cwd: REPO_ROOT,
      restartBackoffBaseMs: opts.restartBackoffBaseMs ?? 1000,
      ...(opts.kubeletLog ? { log: opts.kubeletLog } : {}),
    });
    cleanups.push(() => kubelet.stop());
    // Ready only once every operator is: connected to NATS, and its caches synced when leading.
    await waitOperatorsReady(operatorPorts, opts.operatorReadyTimeoutMs ?? 60_000);

    let stopping: Promise<void> | undefined;
    const platform: Platform = {
      dir,
      kubeconfigPath,
      apiUrl: api.url,
      natsUrl: nats.url,
      natsAuth,
      get nats() {
        return nats;
      },
      operators,
      stopOperator,
      startOperator,
      stopNats: async (hard = false) => {
        natsSup.stopping();
        if (hard) nats.child.kill("SIGKILL");
        await nats.stop();
      },
      startNats,
      restarts: () => ({ nats: natsSup.restarts, operators: operatorSup.map((x) => x.restarts) }),
      operatorPorts,
      stop: () => (stopping ??= stopAll()),
    };
    return platform;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
