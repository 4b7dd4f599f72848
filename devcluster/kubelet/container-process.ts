/**
 * Runs one container of one Pod as a local child process: start, readiness probing, restart with
 * back-off, and SIGTERM-then-SIGKILL termination. Output is appended to the Pod's log file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { V1Container } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { resetsBackoff, restartDelayMs } from "./backoff.js";
import type { ContainerSnapshot, ContainerState } from "./pod-status.js";
import { isNetworkProbe, probeOnce } from "./probe.js";
import { recordContainerRun } from "./log-path.js";

/** What to run for one start attempt, or why it cannot start yet. */
export type StartPlan =
  | { kind: "run"; file: string; args: string[]; env: Record<string, string>; cwd: string }
  | { kind: "wait"; reason: "ImageNotRunnable" | "CreateContainerConfigError"; message: string };

/** Options of {@link ContainerProcess}. */
export interface ContainerProcessOptions {
  container: V1Container;
  /** Appended to by the child's stdout and stderr. */
  logPath: string;
  /**
   * Host file standing in for the container's `terminationMessagePath` mount: emptied before each
   * start, passed to the process as {@link TERMINATION_MESSAGE_ENV}, read when it exits.
   */
  terminationMessageFile?: string;
  restartPolicy: string;
  /** First restart back-off in ms (doubles per crash, capped at 30×). */
  backoffBaseMs: number;
  /** The loopback port the readiness probe targets (the process gets it as `PORT`). */
  probePort?: number;
  /** Resolves command and env; called before every start so Secret/ConfigMap changes are picked up. */
  prepare: () => Promise<StartPlan>;
  /** Called after every observable state change. */
  onChange: () => void;
  /** Records a Kubernetes Event on the Pod. */
  onEvent: (type: "Normal" | "Warning", reason: string, message: string) => void;
  log: Logger;
}

type Terminated = Extract<ContainerState, { kind: "terminated" }>;

/**
 * Environment variable naming the file a process writes its termination message to. A real kubelet
 * bind-mounts a file at the container's `terminationMessagePath` (default `/dev/termination-log`); a
 * local process cannot have that path, so it gets the host file here instead.
 */
export const TERMINATION_MESSAGE_ENV = "CELERIAC_TERMINATION_MESSAGE_PATH";

/** Upstream limits: 4096 bytes of termination message; the log fallback is the last 80 lines, at most 2048 bytes. */
export const TERMINATION_MESSAGE_LIMITS = Object.freeze({ messageBytes: 4096, logLines: 80, logBytes: 2048 });

/**
 * The termination message as the kubelet reports it: the file's content (at most 4096 bytes); when
 * that is empty, the policy is `FallbackToLogsOnError` and the container failed, the log tail (last
 * 80 lines, at most 2048 bytes). Pure.
 * @returns the message, or undefined when there is none
 */
export function terminationMessage(file: string, policy: string | undefined, exitCode: number, log: string): string | undefined {
  const cut = (t: string, bytes: number): string => {
    const b = Buffer.from(t);
    return b.length <= bytes ? t : b.subarray(b.length - bytes).toString("utf8");
  };
  if (file.length > 0) return Buffer.from(file).subarray(0, TERMINATION_MESSAGE_LIMITS.messageBytes).toString("utf8");
  if (policy !== "FallbackToLogsOnError" || exitCode === 0) return undefined;
  const tail = log.replace(/\n$/, "").split("\n").slice(-TERMINATION_MESSAGE_LIMITS.logLines).join("\n");
  return tail ? cut(tail, TERMINATION_MESSAGE_LIMITS.logBytes) : undefined;
}

/** The last `maxBytes` of a file, or `dflt` when it cannot be read. */
function readOr(path: string | undefined, dflt: string, maxBytes = TERMINATION_MESSAGE_LIMITS.messageBytes * 4): string {
  if (!path) return dflt;
  try {
    const b = readFileSync(path);
    return b.subarray(Math.max(0, b.length - maxBytes)).toString("utf8");
  } catch {
    return dflt;
  }
}

/** One container's process and its restart loop. Call {@link start} once, {@link stop} to end it. */
export class ContainerProcess {
  private state: ContainerState = { kind: "waiting", reason: "ContainerCreating" };
  private lastTerminated: Terminated | undefined;
  private restartCount = 0;
  private crashes = 0;
  private ready = false;
  private done = false;
  private stopping = false;
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  private lastWaitMessage = "";

  constructor(private readonly o: ContainerProcessOptions) {}

  /** The container's current state, for the Pod status. */
  snapshot(): ContainerSnapshot {
    return {
      name: this.o.container.name,
      image: this.o.container.image ?? "",
      state: this.state,
      ...(this.lastTerminated ? { lastTerminated: this.lastTerminated } : {}),
      restartCount: this.restartCount,
      ready: this.ready,
      ...(this.child?.pid !== undefined && this.state.kind === "running" ? { pid: this.child.pid } : {}),
      done: this.done,
    };
  }

  /** Starts the first attempt (asynchronously; errors end up in the state, never thrown). */
  start(): void {
    void this.attempt();
  }

  private set(state: ContainerState, ready = this.ready): void {
    this.state = state;
    this.ready = ready;
    this.o.onChange();
  }

  private async attempt(): Promise<void> {
    if (this.stopping) return;
    let plan: StartPlan;
    try {
      plan = await this.o.prepare();
    } catch (err) {
      plan = { kind: "wait", reason: "CreateContainerConfigError", message: `prepare container: ${String(err)}` };
    }
    if (this.stopping) return;
    if (plan.kind === "wait") {
      if (plan.message !== this.lastWaitMessage) {
        this.lastWaitMessage = plan.message;
        this.o.onEvent("Warning", plan.reason === "ImageNotRunnable" ? "ImageNotRunnable" : "Failed", plan.message);
      }
      this.set({ kind: "waiting", reason: plan.reason, message: plan.message }, false);
      this.timer = setTimeout(() => void this.attempt(), Math.max(1000, this.o.backoffBaseMs));
      return;
    }
    this.lastWaitMessage = "";
    this.spawn(plan);
  }

  private spawn(plan: Extract<StartPlan, { kind: "run" }>): void {
    const name = this.o.container.name;
    const tmf = this.o.terminationMessageFile;
    const env = { ...plan.env };
    if (tmf) {
      try {
        writeFileSync(tmf, "");
        env[TERMINATION_MESSAGE_ENV] = tmf;
      } catch (err) {
        this.o.log.warn({ container: name, err: String(err) }, "Failed to prepare the termination message file");
      }
    }
    const fd = openSync(this.o.logPath, "a");
    const restart = this.restartCount;
    let child: ChildProcess;
    try {
      recordContainerRun(this.o.logPath, { container: name, restart, start: fstatSync(fd).size });
      child = spawn(plan.file, plan.args, { cwd: plan.cwd, env, stdio: ["ignore", fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    const startedAt = Date.now();
    let settle: () => void = () => {};
    this.exited = new Promise((r) => (settle = r));
    let finished = false;
    const finish = (exitCode: number, signal: string | undefined, reason: string): void => {
      if (finished) return;
      finished = true;
      try {
        recordContainerRun(this.o.logPath, { container: name, restart, end: statSync(this.o.logPath).size });
      } catch (err) {
        this.o.log.warn({ container: name, err: (err as Error).message }, "Failed to record the end of a container run in the log index");
      }
      this.stopProbing();
      this.child = undefined;
      const message = terminationMessage(readOr(tmf, ""), this.o.container.terminationMessagePolicy, exitCode, readOr(this.o.logPath, "", 64 * 1024));
      this.onExit({ kind: "terminated", exitCode, ...(signal ? { signal } : {}), reason, startedAt, finishedAt: Date.now(), ...(message ? { message } : {}) });
      settle();
    };
    child.on("error", (err) => {
      this.o.log.warn({ container: name, err: err.message }, "Failed to start container process");
      this.o.onEvent("Warning", "Failed", `Error: failed to start container "${name}": ${err.message}`);
      finish(128, undefined, "StartError");
    });
    child.on("exit", (code, signal) => {
      const exitCode = code ?? (signal === "SIGKILL" ? 137 : signal === "SIGTERM" ? 143 : 128);
      finish(exitCode, signal ?? undefined, exitCode === 0 ? "Completed" : "Error");
    });
    if (child.pid === undefined) return; // the "error" event follows
    this.o.log.info({ container: name, pid: child.pid, file: plan.file }, "Started container process");
    this.o.onEvent("Normal", "Started", `Started container ${name} (pid ${child.pid})`);
    const probe = this.o.container.readinessProbe;
    if (isNetworkProbe(probe) && this.o.probePort !== undefined) {
      this.set({ kind: "running", startedAt }, false);
      this.startProbing(probe, this.o.probePort);
    } else {
      this.set({ kind: "running", startedAt }, true);
    }
  }

  private startProbing(probe: NonNullable<V1Container["readinessProbe"]>, port: number): void {
    const periodMs = Math.max(1, probe.periodSeconds ?? 10) * 1000;
    const successThreshold = probe.successThreshold ?? 1;
    const failureThreshold = probe.failureThreshold ?? 3;
    let ok = 0;
    let bad = 0;
    const tick = async (): Promise<void> => {
      const pass = await probeOnce(probe, port);
      if (this.state.kind !== "running" || this.stopping) return;
      if (pass) {
        ok++;
        bad = 0;
        if (!this.ready && ok >= successThreshold) this.set(this.state, true);
      } else {
        bad++;
        ok = 0;
        if (this.ready && bad >= failureThreshold) this.set(this.state, false);
      }
      this.probeTimer = setTimeout(() => void tick(), periodMs);
    };
    this.probeTimer = setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000);
  }

  private stopProbing(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }

  private onExit(t: Terminated): void {
    const name = this.o.container.name;
    this.o.log.info({ container: name, exitCode: t.exitCode, signal: t.signal }, "Container process exited");
    const policy = this.o.restartPolicy;
    const restart = !this.stopping && (policy === "Always" || (policy === "OnFailure" && t.exitCode !== 0));
    if (!restart) {
      this.done = !this.stopping || this.done;
      this.set(t, false);
      return;
    }
    this.crashes = resetsBackoff(t.finishedAt - t.startedAt, this.o.backoffBaseMs) ? 1 : this.crashes + 1;
    const delay = restartDelayMs(this.crashes, this.o.backoffBaseMs);
    this.lastTerminated = t;
    this.o.onEvent("Warning", "BackOff", `Back-off restarting failed container ${name}`);
    this.set(
      {
        kind: "waiting",
        reason: "CrashLoopBackOff",
        message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${name}`,
      },
      false,
    );
    this.timer = setTimeout(() => {
      this.restartCount++;
      void this.attempt();
    }, delay);
  }

  /**
   * Stops the container: no more restarts, SIGTERM to its process group, SIGKILL after `graceMs`
   * (at once when `graceMs` is 0).
   * @param graceMs the grace period in ms (the Pod's terminationGracePeriodSeconds × 1000)
   * @returns once the process has exited (immediately when none is running)
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopProbing();
    const child = this.child;
    if (!child || child.pid === undefined) return;
    const pid = child.pid;
    this.o.onEvent("Normal", "Killing", `Stopping container ${this.o.container.name}`);
    // Grace 0 (a forced delete) kills at once; otherwise SIGTERM, then SIGKILL when the grace runs out.
    signal(pid, graceMs <= 0 ? "SIGKILL" : "SIGTERM");
    const kill = setTimeout(() => signal(pid, "SIGKILL"), Math.max(0, graceMs));
    try {
      await this.exited;
    } finally {
      clearTimeout(kill);
    }
  }
}

/** Signals a process group (the child is its leader, spawned detached), falling back to the process. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}
