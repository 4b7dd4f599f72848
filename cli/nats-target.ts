/**
 * Where a CLI command finds NATS: `--nats`, else `CELERIAC_NATS_URL`, else a running
 * `celeriac dev up` platform's NATS (from its state file), else `nats://127.0.0.1:4222`; and the
 * error that says what to do when it cannot be reached. The platform's state module is imported
 * only when neither the flag nor the variable gives a URL (the CLI loads modules lazily).
 */
import { basename, delimiter, dirname, resolve } from "node:path";
import { ConnectionError } from "@nats-io/transport-node";
import { DEFAULT_NATS_URL } from "../nats/connection.js";

/** The NATS URL a command uses and where it came from. */
export interface NatsTarget {
  /** NATS URL(s), comma-separated. */
  url: string;
  /** `--nats`, `CELERIAC_NATS_URL`, `dev` (the local platform's state file) or `default`. */
  source: "--nats" | "CELERIAC_NATS_URL" | "dev" | "default";
}

/** Default state directory of `celeriac dev up` (relative to the working directory). */
export const DEFAULT_DEV_DIR = ".celeriac";

/**
 * Resolves the NATS URL: flag, variable, the local platform (ready, supervisor alive) in `devDir` —
 * or, when `devDir` is the default, in the directory of a `KUBECONFIG` entry named `kubeconfig`
 * (the one `celeriac dev up` writes) — else the default.
 * @throws Error naming the directory when `devDir` was given (not the default) and holds no running platform
 * @param devDir the `celeriac dev up` state directory (default `.celeriac` in the working directory)
 */
export async function natsTarget(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, devDir = DEFAULT_DEV_DIR): Promise<NatsTarget> {
  if (flag) return { url: flag, source: "--nats" };
  if (env.CELERIAC_NATS_URL) return { url: env.CELERIAC_NATS_URL, source: "CELERIAC_NATS_URL" };
  const { isAlive, readState } = await import("../devcluster/platform/state.js");
  // the state directory given (or ./.celeriac); with the default, also the one a KUBECONFIG of
  // `celeriac dev up` lives in (<dir>/kubeconfig), so commands run from anywhere find the platform
  const dirs = [resolve(devDir)];
  if (devDir === DEFAULT_DEV_DIR && env.KUBECONFIG) for (const k of env.KUBECONFIG.split(delimiter)) if (k && basename(k) === "kubeconfig") dirs.push(dirname(resolve(k)));
  for (const dir of dirs) {
    const s = readState(dir);
    if (s?.ready && s.natsUrl && isAlive(s.pid)) return { url: s.natsUrl, source: "dev" };
  }
  // a --dev-dir given on purpose that holds no running platform is a mistake, not a reason to try 127.0.0.1:4222
  if (devDir !== DEFAULT_DEV_DIR) throw new Error(`--dev-dir ${devDir}: no running \`celeriac dev up\` platform in ${resolve(devDir)}; start one with celeriac dev up --dir ${devDir}, or pass --nats`);
  return { url: DEFAULT_NATS_URL, source: "default" };
}

/** True when connecting failed because nothing answered (refused, unreachable), not e.g. on auth. */
export function isUnreachable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof ConnectionError) return true;
  }
  return false;
}

/**
 * The error for a failed connect: when NATS is unreachable, what to do about it (the nats.js error
 * as cause); else `err` unchanged.
 */
export function natsConnectError(target: NatsTarget, err: unknown): unknown {
  if (!isUnreachable(err)) return err;
  return new Error(`cannot reach NATS at ${target.url}: run "celeriac dev status" to see the local platform, or pass --nats`, { cause: err });
}
