/** Runs `celeriac worker` as a child process for kill/signal tests. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { waitFor } from "../helpers/nats-server.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TASKS = fileURLToPath(new URL("./child-tasks.js", import.meta.url));

/** A worker child process. */
export interface WorkerChild {
  proc: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process exits. */
  exited: Promise<number | string>;
  /** HTTP port, once logged. */
  port(): Promise<number>;
  output(): string;
  kill(sig: NodeJS.Signals): void;
}

/** Starts `node bin/celeriac.js worker --tasks <child-tasks.js> …` with extra flags. */
export function startWorkerChild(url: string, queue: string, logFile: string, flags: string[] = []): WorkerChild {
  const proc = spawn(process.execPath, ["bin/celeriac.js", "worker", "--tasks", TASKS, "--queue", queue, "--nats", url, "--port", "0", ...flags], {
    cwd: ROOT,
    env: { ...process.env, CELERIAC_TEST_LOG: logFile, CELERIAC_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.once("exit", (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    proc,
    exited,
    output: () => out,
    kill: (sig) => void proc.kill(sig),
    port: () =>
      waitFor("worker HTTP port", () => {
        const m = /"port":(\d+),"msg":"HTTP endpoints listening"/.exec(out);
        return m ? Number(m[1]) : undefined;
      }),
  };
}

/** Lines `<id> <event>` written by child-tasks for task `id`. */
export function events(logFile: string, id: string): string[] {
  if (!existsSync(logFile)) return [];
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter((l) => l.startsWith(`${id} `))
    .map((l) => l.slice(id.length + 1));
}

/** Waits until the worker child logged "Worker started"; fails with its output if it exits first. */
export async function workerStarted(w: WorkerChild): Promise<void> {
  const exited = w.exited.then((code) => {
    if (w.output().includes('"msg":"Worker started"')) return; // started, then died (e.g. a poison task)
    throw new Error(`worker exited (${code}) before it started:\n${w.output()}`);
  });
  exited.catch(() => undefined);
  const started = waitFor("worker started", () => w.output().includes('"msg":"Worker started"'), 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; output so far:\n${w.output()}`);
  });
  await Promise.race([started, exited]);
}
