/**
 * Runs a local `nats-server` with JetStream as a child process, for `celeriac dev up` and tests.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/** A running nats-server. */
export interface NatsProcess {
  /** Client URL, e.g. `nats://127.0.0.1:42211`. */
  url: string;
  /** Client port. */
  port: number;
  /** Monitoring (HTTP) port, e.g. for `/jsz`. */
  monitorPort: number;
  /** The child process. */
  child: ChildProcess;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and resolves when it has exited. */
  stop(): Promise<void>;
}

/** Picks a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Checks that `nats-server` can be run.
 * @throws Error naming the package to install when the binary is missing
 */
export function assertNatsServerInstalled(binary = "nats-server"): void {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(`${binary} was not found or does not run: install it (Debian/Ubuntu: apt-get install nats-server; other systems: https://docs.nats.io) and make sure it is on PATH`);
  }
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`nats-server did not report ready within ${timeoutMs} ms: ${buf.slice(-500)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (pattern.test(buf)) {
        clearTimeout(timer);
        child.stderr?.off("data", onData);
        resolve();
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with code ${code}: ${buf.slice(-500)}`));
    });
  });
}

/**
 * Starts `nats-server -js` on 127.0.0.1 with file storage under `dir`.
 * @param opts.dir store directory (created); logs go to `<dir>/nats-server.log` when `logFile` is true
 * @param opts.port client port; 0 or absent = a free one
 * @param opts.timeoutMs how long to wait for readiness (default 10000 ms)
 * @param opts.configFile a nats-server config file loaded first (e.g. the operator-mode auth fragment of
 *   `nats-operator-mode.ts`); the flags above override what it sets
 * @throws Error when the binary is missing or the server does not become ready
 */
export async function startNatsServer(opts: { dir: string; port?: number; timeoutMs?: number; logFile?: string; configFile?: string }): Promise<NatsProcess> {
  assertNatsServerInstalled();
  mkdirSync(opts.dir, { recursive: true });
  const port = opts.port || (await freePort());
  const monitorPort = await freePort();
  // The command-line flags win over the config file, so a config only adds settings (auth, here).
  const config = opts.configFile ? ["-c", opts.configFile] : [];
  const child = spawn("nats-server", [...config, "-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitorPort), "-sd", join(opts.dir, "jetstream")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (opts.logFile) child.stderr?.pipe(createWriteStream(opts.logFile, { flags: "a" }));
  await waitForLine(child, /Server is ready/, opts.timeoutMs ?? 10_000);
  let stopping: Promise<void> | undefined;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorPort,
    child,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.once("exit", () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill("SIGTERM");
      });
      return stopping;
    },
  };
}
