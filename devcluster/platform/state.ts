/**
 * The state file of a running `celeriac dev up` platform: `<dir>/state.json`.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** What `<dir>/state.json` holds. */
export interface PlatformState {
  /** PID of the supervisor process (`celeriac dev run`). */
  pid: number;
  /** True once every component is up. */
  ready: boolean;
  kubeconfigPath?: string;
  apiUrl?: string;
  natsUrl?: string;
  /** PIDs of the operator processes. */
  operatorPids?: number[];
  /** RFC 3339 start time. */
  startedAt: string;
  /** Set when startup failed: the error message. */
  error?: string;
  /** Restarts of crashed components by the platform (kubelet-style back-off). */
  restarts?: { nats: number; operators: number[] };
  /** PID of the nats-server process. */
  natsPid?: number;
  /** NATS auth mode (`shared` when absent). */
  natsAuth?: "shared" | "minted" | "accounts";
  /** In `minted` mode: the unrestricted admin user's `.creds` (secret; for debugging with the nats CLI). */
  natsAdminCredsFile?: string;
  /**
   * In `accounts` mode: a system-account user's `.creds` (secret; for `nats server …` monitoring with
   * the nats CLI; it sees no tenant's streams — use a namespace's `celeriac-producer-nats` Secret for that).
   */
  natsSystemCredsFile?: string;
}

/**
 * Merges `patch` into the state file when there is one (a `dev up` supervisor wrote it); does nothing
 * otherwise (a platform started by tests has no state file).
 */
export function updateState(dir: string, patch: Partial<PlatformState>): void {
  const cur = readState(dir);
  if (cur) writeState(dir, { ...cur, ...patch });
}

/** Path of the state file in `dir`. */
export function statePath(dir: string): string {
  return join(dir, "state.json");
}

/** Reads the state file, or undefined when there is none (or it is unreadable). */
export function readState(dir: string): PlatformState | undefined {
  const p = statePath(dir);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as PlatformState;
  } catch {
    return undefined;
  }
}

/** Writes the state file atomically enough for one writer. */
export function writeState(dir: string, state: PlatformState): void {
  writeFileSync(statePath(dir), JSON.stringify(state, null, 2) + "\n");
}

/** Removes the state file if present. */
export function clearState(dir: string): void {
  rmSync(statePath(dir), { force: true });
}

/** True when a process with this PID exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
