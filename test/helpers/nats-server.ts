/**
 * Test helper: start and stop a real `nats-server` (JetStream, file storage) on a free port with a
 * temporary store directory, and restart it on the same port and store for outage tests. With
 * `operatorMode` the server runs NATS decentralized auth (devcluster/platform/nats-operator-mode.ts):
 * clients need creds, minted with the exposed signer or the admin creds file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setupNatsOperatorMode, type NatsOperatorMode } from "../../devcluster/platform/nats-operator-mode.js";

/** A running (or stopped) nats-server started by a test. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** TCP port the server listens on. */
  readonly port: number;
  /** JetStream store directory (removed by `cleanup()`). */
  readonly storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); resolves when the process has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and store directory. */
  restart(): Promise<void>;
  /**
   * Kills the server with SIGKILL (a crash: nothing is flushed); resolves when the process has
   * exited. `restart()` brings it back on the same port and store.
   */
  kill(): Promise<void>;
  /** Stops the server and removes its store directory. */
  cleanup(): Promise<void>;
  /** The operator-mode setup (signer, admin creds file, config) when started with `operatorMode`. */
  readonly operator?: NatsOperatorMode;
  /** The server's log (stderr) since the last (re)start, last 1 MB: permission violations show here. */
  log(): string;
}

/** Options of {@link startNatsServer}. */
export interface StartNatsServerOptions {
  /**
   * Run in operator mode: a generated operator and JetStream account, preloaded in a memory
   * resolver; only users with creds signed by the account (or its signing key) may connect.
   */
  operatorMode?: boolean;
  /** In operator mode, further JetStream accounts by name (`operator.extraAccounts`), e.g. one per tenant. */
  extraAccounts?: readonly string[];
  /** In operator mode, the account resolver: `memory` (default) or `full` (accounts pushable at run time). */
  resolver?: "memory" | "full";
  /**
   * In operator mode, the config's `max_control_line` in bytes (default 256 KiB, as every config
   * Celeriac generates: api/nats-control-line.ts); 4096 gives nats-server's default.
   */
  maxControlLine?: number;
}

/** Finds a free TCP port on 127.0.0.1 (the dev platform's helper). */
export { freePort } from "../../devcluster/platform/nats-process.js";
import { freePort } from "../../devcluster/platform/nats-process.js";

/**
 * Resolves once something accepts TCP connections on 127.0.0.1:`port`, polling every 25 ms.
 * @param what names the process in the error
 * @throws Error "<what> did not listen on 127.0.0.1:<port> within <ms> ms" after `deadlineMs`
 */
export async function waitForPort(port: number, deadlineMs: number, what = "nats-server"): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Starts `nats-server -js -a 127.0.0.1 -p <free port> -sd <tmpdir>` (with `-c <operator config>` in
 * operator mode; the operator files live in `<tmpdir>/auth`) and waits until it listens.
 * @throws Error when the server does not listen within 10 s
 */
export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "celeriac-nats-"));
  const operator = opts.operatorMode ? await setupNatsOperatorMode(join(storeDir, "auth"), { extraAccounts: opts.extraAccounts ?? [], resolver: opts.resolver ?? "memory", ...(opts.maxControlLine !== undefined ? { maxControlLine: opts.maxControlLine } : {}) }) : undefined;
  let child: ChildProcess | undefined;
  let stderr = "";

  const start = async () => {
    stderr = "";
    const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir];
    if (operator) args.unshift("-c", operator.configFile);
    child = spawn("nats-server", args, {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-1_000_000);
    });
    try {
      await waitForPort(port, 10_000);
    } catch (err) {
      child.kill("SIGKILL");
      throw new Error(`start nats-server: ${stderr}`, { cause: err });
    }
  };

  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill(signal);
    const t = setTimeout(() => c.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop: () => stop(),
    restart: start,
    kill: () => stop("SIGKILL"),
    ...(operator ? { operator } : {}),
    log: () => stderr,
    async cleanup() {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

/**
 * Polls `check` for `forMs` and fails as soon as it returns a falsy value: for what must NOT happen
 * (a refused action that must run nothing), checked over a window rather than once after a sleep.
 * @throws Error with `what` on the first falsy answer (or an error thrown by `check`)
 */
export async function holdsFor(what: string, check: () => unknown, forMs: number, intervalMs = 20): Promise<void> {
  const end = Date.now() + forMs;
  for (;;) {
    if (!(await check())) throw new Error(`${what} stopped holding after ${forMs - (end - Date.now())} ms`);
    if (Date.now() >= end) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes.
 * @returns the truthy value
 * @throws Error with `what` when the deadline passes
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 20): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last });
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A unique, DNS-1123-safe queue name for one test. */
export function uniqueQueue(prefix = "q"): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
