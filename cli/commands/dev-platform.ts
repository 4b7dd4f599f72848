/**
 * `celeriac dev up | down | status` (and the hidden supervisor `dev run`): the whole platform on one
 * machine, in the background, for trying Celeriac with kubectl and for end-to-end tests.
 */
import { Option, type Command } from "commander";
import { devGroup } from "./dev-group.js";
import { intInRange } from "./int-option.js";
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { clearState, isAlive, readState, writeState } from "../../devcluster/platform/state.js";
import type { NatsAuthMode } from "../../devcluster/platform/platform.js";

/** The `--nats-auth` values (kept here so the CLI does not load the platform to parse flags). */
const NATS_AUTH_CHOICES = ["shared", "minted", "accounts"] as const satisfies readonly NatsAuthMode[];
type NatsAuth = NatsAuthMode;

/** `--nats-auth <mode>`: how the local nats-server authenticates (see docs/cli.md). */
function natsAuthOption(): Option {
  return new Option(
    "--nats-auth <mode>",
    "NATS auth: shared = no auth, one access shared by all (tenants not isolated); minted = operator mode, the operator mints per-Queue and per-namespace credentials in one account; accounts = as minted, with one NATS account per namespace",
  )
    .choices(NATS_AUTH_CHOICES)
    .default("shared");
}


async function pollUntil<T>(fn: () => T | undefined, timeoutMs: number, intervalMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/**
 * Starts the platform in the background and waits until it is ready.
 * @param dir state directory
 * @param timeoutMs how long to wait, ms
 * @param operatorReplicas operator processes (leader election picks one)
 * @param apiPort API server port, 0 = a free one
 * @param natsAuth NATS auth mode, `shared` (no auth), `minted` (operator mode, minted credentials in
 *   one account) or `accounts` (operator mode, one account per namespace); undefined = the running
 *   platform's mode, else `shared`
 * @throws Error when a platform is already running in `dir` with another `natsAuth`
 * @returns the kubeconfig path
 * @throws Error with the supervisor's log tail when startup fails or times out
 */
export async function devUp(dir: string, timeoutMs = 60_000, operatorReplicas = 1, apiPort = 0, natsAuth?: NatsAuth): Promise<string> {
  const abs = resolve(dir);
  const existing = readState(abs);
  if (existing && isAlive(existing.pid) && existing.ready && existing.kubeconfigPath) {
    const running = existing.natsAuth ?? "shared";
    if (natsAuth !== undefined && running !== natsAuth) {
      throw new Error(`celeriac dev up: the platform in ${abs} is already running with --nats-auth ${running}; stop it first (celeriac dev down --dir ${dir}) to start it with --nats-auth ${natsAuth}`);
    }
    return existing.kubeconfigPath;
  }
  clearState(abs);
  mkdirSync(join(abs, "logs"), { recursive: true });
  const logFile = join(abs, "logs", "platform.log");
  const fd = openSync(logFile, "a");
  const child = spawn(process.execPath, [join(REPO_ROOT, "bin", "celeriac.js"), "dev", "run", "--dir", abs, "--operator-replicas", String(operatorReplicas), "--port", String(apiPort), "--nats-auth", natsAuth ?? "shared"], {
    detached: true,
    stdio: ["ignore", fd, fd],
    cwd: REPO_ROOT,
  });
  child.unref();
  closeSync(fd);
  const state = await pollUntil(() => {
    const s = readState(abs);
    if (s?.ready || s?.error) return s;
    if (child.exitCode !== null) return { pid: child.pid ?? 0, ready: false, startedAt: "", error: `supervisor exited with code ${child.exitCode}` };
    return undefined;
  }, timeoutMs);
  if (!state?.ready || !state.kubeconfigPath) {
    if (child.pid && isAlive(child.pid)) process.kill(child.pid, "SIGTERM");
    throw new Error(`celeriac dev up failed: ${state?.error ?? `not ready within ${timeoutMs} ms`}\n${tail(logFile)}`);
  }
  return state.kubeconfigPath;
}

/**
 * Stops the platform started by `devUp` in `dir` and waits until every process it started is gone.
 * @returns false when nothing was running
 */
export async function devDown(dir: string, timeoutMs = 30_000): Promise<boolean> {
  const abs = resolve(dir);
  const state = readState(abs);
  if (!state || !isAlive(state.pid)) {
    clearState(abs);
    return false;
  }
  process.kill(state.pid, "SIGTERM");
  const gone = await pollUntil(() => (isAlive(state.pid) ? undefined : true), timeoutMs);
  if (!gone) process.kill(state.pid, "SIGKILL");
  clearState(abs);
  return true;
}

/** Registers `dev up`, `dev down`, `dev status` and the hidden `dev run` supervisor. */
export function register(program: Command): void {
  const dev = devGroup(program);
  dev
    .command("up")
    .description("start the API server, NATS, the operator and the process kubelet in the background")
    .option("--dir <dir>", "state directory", ".celeriac")
    .option("--operator-replicas <n>", "operator replicas (leader election picks one)", intInRange(1, 10), 1)
    .option("--port <n>", "API server port (0 = a free port)", intInRange(0, 65535), 0)
    .option("--timeout <seconds>", "how long to wait for readiness", intInRange(1, 3600), 60)
    .addOption(natsAuthOption())
    .action(async (o: { dir: string; operatorReplicas: number; port: number; timeout: number; natsAuth: NatsAuth }, cmd: Command) => {
      // Not given: a running platform is fine whatever its mode.
      const explicit = cmd.getOptionValueSource("natsAuth") !== "default";
      const kubeconfig = await devUp(o.dir, o.timeout * 1000, o.operatorReplicas, o.port, explicit ? o.natsAuth : undefined);
      console.log(`Celeriac is running (state in ${resolve(o.dir)}). Point kubectl at it with:`);
      console.log(`export KUBECONFIG=${kubeconfig}`);
      const s = readState(resolve(o.dir));
      if (s?.natsAdminCredsFile) console.log(`NATS runs in operator mode; its admin credentials are in ${s.natsAdminCredsFile}`);
      if (s?.natsAuth === "accounts") {
        console.log("NATS runs in operator mode with one account per namespace: give celeriac enqueue a namespace's credential from its Secret celeriac-producer-nats (key nats.creds; see docs/cli.md)");
        if (s.natsSystemCredsFile) console.log(`NATS system-account credentials (server monitoring only, no tenant data): ${s.natsSystemCredsFile}`);
      }
    });
  dev
    .command("down")
    .description("stop everything `dev up` started")
    .option("--dir <dir>", "state directory", ".celeriac")
    .action(async (o: { dir: string }) => {
      console.log((await devDown(o.dir)) ? "Celeriac stopped" : "Celeriac was not running");
    });
  dev
    .command("status")
    .description("show what `dev up` is running")
    .option("--dir <dir>", "state directory", ".celeriac")
    .action((o: { dir: string }) => {
      const s = readState(resolve(o.dir));
      if (!s || !isAlive(s.pid)) {
        console.log("Celeriac is not running (start it with: celeriac dev up)");
        process.exitCode = 1;
        return;
      }
      console.log(`supervisor  pid ${s.pid}  ${s.ready ? "ready" : "starting"}  since ${s.startedAt}`);
      console.log(`api server  ${s.apiUrl}`);
      console.log(`nats        ${s.natsUrl}${s.natsPid ? `  pid ${s.natsPid}` : ""}  restarts ${s.restarts?.nats ?? 0}  auth ${s.natsAuth ?? "shared"}`);
      for (const [i, pid] of (s.operatorPids ?? []).entries()) console.log(`operator-${i}  pid ${pid}  ${isAlive(pid) ? "running" : "exited"}  restarts ${s.restarts?.operators[i] ?? 0}`);
      console.log(`kubeconfig  ${s.kubeconfigPath}`);
    });
  dev
    .command("run", { hidden: true })
    .description("supervisor process of `dev up` (runs in the foreground)")
    .option("--dir <dir>", "state directory", ".celeriac")
    .option("--operator-replicas <n>", "operator replicas", intInRange(1, 10), 1)
    .option("--port <n>", "API server port (0 = a free port)", intInRange(0, 65535), 0)
    .addOption(natsAuthOption())
    .action(async (o: { dir: string; operatorReplicas: number; port: number; natsAuth: NatsAuth }) => {
      const dir = resolve(o.dir);
      const startedAt = new Date().toISOString();
      writeState(dir, { pid: process.pid, ready: false, startedAt });
      let platform;
      try {
        platform = await (await import("../../devcluster/platform/platform.js")).startPlatform({ dir, operatorReplicas: o.operatorReplicas, apiPort: o.port, natsAuth: o.natsAuth });
      } catch (err) {
        writeState(dir, { pid: process.pid, ready: false, startedAt, error: (err as Error).message });
        throw err;
      }
      writeState(dir, {
        pid: process.pid, ready: true, startedAt, kubeconfigPath: platform.kubeconfigPath, apiUrl: platform.apiUrl,
        natsUrl: platform.natsUrl, operatorPids: platform.operators.map((c) => c.pid ?? 0),
        natsPid: platform.nats.child.pid ?? 0, restarts: platform.restarts(), natsAuth: o.natsAuth,
        ...(platform.natsAuth?.adminCredsFile ? { natsAdminCredsFile: platform.natsAuth.adminCredsFile } : {}),
        ...(platform.natsAuth?.systemCredsFile ? { natsSystemCredsFile: platform.natsAuth.systemCredsFile } : {}),
      });
      console.log(`Platform ready: api ${platform.apiUrl}, nats ${platform.natsUrl}`);
      let signals = 0;
      const shutdown = () => {
        if (++signals > 1) process.exit(1);
        void platform.stop().then(() => {
          clearState(dir);
          process.exit(0);
        });
      };
      process.on("SIGTERM", shutdown);
      process.on("SIGINT", shutdown);
    });
}
