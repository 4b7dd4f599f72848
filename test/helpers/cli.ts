/**
 * Runs the built `celeriac` CLI from a test as a user would: a child process (asynchronous, so an
 * in-process server of the test keeps answering), no `CELERIAC_*` variables inherited, no
 * kubeconfig, standard input closed (not a terminal, so destructive commands need `--yes`).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** `bin/celeriac.js` of this checkout. */
export const CELERIAC_BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

/** What a CLI run printed and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `celeriac <args>` in `cwd`.
 * @param env extra variables (e.g. `CELERIAC_NATS_CREDS`), added after the `CELERIAC_*` ones are removed
 * @returns the exit code and output; never rejects for a non-zero exit
 */
export function runCeleriac(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_")));
  const p = run(process.execPath, [CELERIAC_BIN, ...args], { cwd, env: { ...base, KUBECONFIG: "/nonexistent", ...env }, maxBuffer: 16 * 1024 * 1024 });
  p.child.stdin?.end();
  return p.then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}
