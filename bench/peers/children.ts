/**
 * Child processes of the peers benchmark: every process it starts is spawned through
 * {@link Children}, which keeps its pid and kills it (by that pid) when the benchmark stops — a
 * normal end, an exception, SIGINT or SIGTERM. Also reads a process's memory from `/proc`.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

/** A child process started by {@link Children.spawn}. */
export interface Child {
  /** Short name for messages, e.g. `celeriac-worker-1`. */
  readonly name: string;
  /** Process id. */
  readonly pid: number;
  /** stdout and stderr so far (last 256 KiB). */
  output(): string;
  /** True until the process has exited. */
  alive(): boolean;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /**
   * Resolves once `pattern` appears in the output.
   * @throws Error naming the child, with its output, when it exits first or `timeoutMs` passes
   */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Memory of one process from `/proc/<pid>/status`, in MiB. */
export interface ProcMemory {
  /** Resident set size now (`VmRSS`). */
  rssMiB: number;
  /** Peak resident set size since the process started (`VmHWM`). */
  hwmMiB: number;
}

/**
 * Reads `VmRSS` and `VmHWM` of process `pid`.
 * @returns the figures in MiB, or undefined when the process is gone or /proc has no such fields
 */
export function procMemory(pid: number): ProcMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  const rss = kb("VmRSS");
  const hwm = kb("VmHWM");
  if (!Number.isFinite(rss) || !Number.isFinite(hwm)) return undefined;
  return { rssMiB: rss / 1024, hwmMiB: hwm / 1024 };
}

/** Every process the benchmark started, and the temp dirs it made; all removed by {@link Children.killAll}. */
export class Children {
  readonly #live = new Map<number, string>();
  readonly #dirs = new Set<string>();
  #hooked = false;

  /**
   * Kills every tracked process on process exit, SIGINT and SIGTERM (SIGKILL, synchronously, by
   * pid) and removes the tracked temp dirs; after a signal, exits with 130 (SIGINT) or 143.
   */
  installExitHooks(): void {
    if (this.#hooked) return;
    this.#hooked = true;
    process.on("exit", () => this.killAll());
    for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      process.on(sig, () => {
        console.error(`\n${sig}: stopping ${this.#live.size} child process(es)`);
        this.killAll();
        process.exit(code);
      });
    }
  }

  /** Registers a temp dir to remove at the end (recursive). */
  trackDir(dir: string): void {
    this.#dirs.add(dir);
  }

  /** Removes a tracked temp dir now. */
  removeDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    this.#dirs.delete(dir);
  }

  /** SIGKILLs every tracked process still running and removes the tracked temp dirs. Synchronous. */
  killAll(): void {
    for (const pid of this.#live.keys()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.#live.clear();
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
    this.#dirs.clear();
  }

  /** Names and pids of the tracked processes still running. */
  running(): { name: string; pid: number }[] {
    return [...this.#live].map(([pid, name]) => ({ pid, name }));
  }

  /**
   * Spawns `cmd args` with stdout and stderr piped (kept, last 256 KiB) and tracks it.
   * @throws Error naming `cmd` when it cannot be spawned (e.g. not installed)
   */
  spawn(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Child {
    const proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    if (proc.pid === undefined) throw new Error(`spawn ${name} (${cmd}): no pid — is ${cmd} installed?`);
    const pid = proc.pid;
    this.#live.set(pid, name);
    let out = "";
    const listeners = new Set<() => void>();
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-262_144);
      for (const l of listeners) l();
    };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);
    const exited = new Promise<number | string>((resolve) => {
      proc.once("error", (err) => {
        out += `\nspawn error: ${err.message}`;
        this.#live.delete(pid);
        resolve("error");
      });
      proc.once("exit", (code, sig) => {
        this.#live.delete(pid);
        resolve(code ?? sig ?? -1);
      });
    });
    const alive = () => proc.exitCode === null && proc.signalCode === null && this.#live.has(pid);
    return {
      name,
      pid,
      exited,
      alive,
      output: () => out,
      waitFor(pattern, timeoutMs) {
        return new Promise<void>((resolve, reject) => {
          const done = (err?: Error) => {
            clearTimeout(timer);
            listeners.delete(check);
            if (err) reject(err);
            else resolve();
          };
          const check = () => {
            if (pattern.test(out)) done();
          };
          const timer = setTimeout(() => done(new Error(`${name} (pid ${pid}): no ${pattern} within ${timeoutMs} ms; output:\n${out.slice(-4000)}`)), timeoutMs);
          listeners.add(check);
          void exited.then((code) => {
            if (listeners.has(check)) done(pattern.test(out) ? undefined : new Error(`${name} (pid ${pid}) exited (${code}) before ${pattern}; output:\n${out.slice(-4000)}`));
          });
          check();
        });
      },
      async stop(graceMs = 10_000) {
        if (!alive()) return;
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(t);
      },
    };
  }
}
