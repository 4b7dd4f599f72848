/**
 * The servers of the peers benchmark, each started on a free loopback port with its own temp dir
 * and tracked by {@link Children} (killed with the benchmark): `nats-server` with JetStream (file
 * store, as Celeriac runs it) and `redis-server` with persistence off (`--save "" --appendonly no`,
 * the fastest Redis config, which BullMQ and Celery get).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../devcluster/platform/nats-process.js";
import { waitForPort } from "../../test/helpers/nats-server.js";
import type { Child, Children } from "./children.js";

/** A server started for the run. */
export interface Server {
  /** `nats://127.0.0.1:<port>` or `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The server process. */
  readonly child: Child;
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
}


/**
 * Starts `nats-server -js -a 127.0.0.1 -p <free port> -sd <temp dir>`.
 * @throws Error with the server's output when it does not listen within 10 s
 */
export async function startNats(children: Children): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "celeriac-peers-nats-"));
  children.trackDir(dir);
  const child = children.spawn("nats-server", "nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir]);
  try {
    await waitForPort(port, 10_000, "nats-server");
  } catch (err) {
    await child.stop(0);
    throw new Error(`start nats-server: ${child.output()}`, { cause: err });
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    child,
    async stop() {
      await child.stop(5000);
      children.removeDir(dir);
    },
  };
}

/**
 * Starts `redis-server --port <free port> --bind 127.0.0.1 --save "" --appendonly no --dir <temp dir>`.
 * @throws Error with the server's output when it does not listen within 10 s
 */
export async function startRedis(children: Children): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "celeriac-peers-redis-"));
  children.trackDir(dir);
  const child = children.spawn("redis-server", "redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"]);
  try {
    await waitForPort(port, 10_000, "redis-server");
  } catch (err) {
    await child.stop(0);
    throw new Error(`start redis-server: ${child.output()}`, { cause: err });
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    child,
    async stop() {
      await child.stop(5000);
      children.removeDir(dir);
    },
  };
}

/**
 * Runs `cmd args` and returns the first line of its output (stdout, else stderr), for version strings.
 * @returns the line, or `unknown (<reason>)` when the command fails
 */
export function versionOf(cmd: string, args: readonly string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000, ...(cwd ? { cwd } : {}) });
  if (r.error) return `unknown (${r.error.message})`;
  const line = (r.stdout || r.stderr || "").trim().split("\n")[0] ?? "";
  return line || `unknown (exit ${r.status})`;
}
