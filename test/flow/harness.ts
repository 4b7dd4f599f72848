/**
 * Shared setup of the flow-control integration tests: a real nats-server, a flow-controlled queue's
 * resources (as the operator creates them), the queue's {@link Dispatcher} driven directly, several
 * real `celeriac worker` processes running test/flow/flow-tasks.ts, and the per-execution log.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { MessageFlow } from "../../api/flow.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import type { QueueSpec } from "../../api/queue.js";
import { newTaskMessage } from "../../api/task-message.js";
import { ensureQueueResources } from "../../nats/queue-resources.js";
import { publishTaskMessage } from "../../nats/task-publish.js";
import { Dispatcher } from "../../operator/flow/dispatcher.js";
import { queueSettingsFromSpec } from "../../operator/queue/queue-settings.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TASKS = fileURLToPath(new URL("./flow-tasks.js", import.meta.url));

/** One line of the per-execution log. */
export interface Run {
  /** Wall-clock time of the event, ms. */
  at: number;
  pid: number;
  id: string;
  /** `args[1]` of the task: its key or priority class. */
  label: string;
  event: "start" | "done";
  attempt: number;
}

/** A `celeriac worker` child process. */
export interface WorkerProcess {
  proc: ChildProcess;
  exited: Promise<unknown>;
  output(): string;
}

/** A running flow-control test setup. */
export interface FlowHarness {
  srv: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: QueueNames;
  /** The running dispatcher (a new one after {@link FlowHarness.restartDispatcher}). */
  dispatcher: Dispatcher;
  /** Stops the dispatcher; `restartDispatcher` starts a new one (its consumers re-created). */
  stopDispatcher(): Promise<void>;
  restartDispatcher(): Promise<void>;
  workers: WorkerProcess[];
  /**
   * Publishes `n` tasks of `flow.run` as producers of a flow-controlled queue do (`msg.flow` set,
   * so they go to the held stream), pipelined.
   * @returns their ids
   */
  publish(n: number, make: (i: number) => { sleepMs: number; label: string; flow: MessageFlow }): Promise<string[]>;
  /** The per-execution log so far. */
  runs(): Run[];
  /** Starts one more worker process; resolves once it started. */
  startWorker(): Promise<WorkerProcess>;
  close(): Promise<void>;
}

/** Options of {@link startFlowHarness}. */
export interface FlowHarnessOptions {
  /** The Queue spec: flow fields, concurrency (per worker), ackWaitSeconds. */
  spec: QueueSpec;
  workers: number;
}

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "warn" });

/** Starts nats-server, the queue's resources, its dispatcher and `workers` worker processes. */
export async function startFlowHarness(o: FlowHarnessOptions): Promise<FlowHarness> {
  const srv = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), "celeriac-flow-"));
  const logFile = join(dir, "runs.log");
  const queue = uniqueQueue();
  const names = queueNames("default", queue);
  const nc = await natsConnect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await ensureQueueResources(jsm, names, queueSettingsFromSpec(o.spec), { updateOnDrift: true });
  let dispatcher = new Dispatcher({ js, names, spec: o.spec, log: log.child({ component: "dispatcher" }) });
  await dispatcher.start();
  const workers: WorkerProcess[] = [];
  const concurrency = o.spec.concurrency ?? 4;
  const startWorker = async (): Promise<WorkerProcess> => {
    const proc = spawn(process.execPath, [
      "bin/celeriac.js", "worker", "--tasks", TASKS, "--queue", queue, "--nats", srv.url, "--port", "0",
      "--concurrency", String(concurrency), "--ack-wait-seconds", String(o.spec.ackWaitSeconds ?? 30), "--grace-period-seconds", "1",
    ], { cwd: ROOT, env: { ...process.env, CELERIAC_TEST_LOG: logFile, CELERIAC_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
    proc.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
    const exited = new Promise((resolve) => proc.once("exit", (code, sig) => resolve(code ?? sig)));
    const w = { proc, exited, output: () => out };
    workers.push(w);
    await waitFor("worker started", () => out.includes('"msg":"Worker started"') || proc.exitCode !== null, 20_000);
    if (!out.includes('"msg":"Worker started"')) throw new Error(`worker exited before it started:\n${out}`);
    return w;
  };
  await Promise.all(Array.from({ length: o.workers }, () => startWorker()));
  let seq = 0;
  return {
    srv, nc, js, jsm, names, workers, startWorker,
    get dispatcher() {
      return dispatcher;
    },
    stopDispatcher: () => dispatcher.stop(),
    async restartDispatcher() {
      await dispatcher.stop();
      dispatcher = new Dispatcher({ js, names, spec: o.spec, log: log.child({ component: "dispatcher" }) });
      await dispatcher.start();
    },
    async publish(n, make) {
      const now = new Date();
      const msgs = Array.from({ length: n }, (_, i) => {
        const t = make(i);
        return newTaskMessage({
          id: `t${seq++}-${t.label}`, task: "flow.run", args: [t.sleepMs, t.label], queue, namespace: "default",
          origin: { kind: "Client" }, flow: t.flow,
        }, now);
      });
      await Promise.all(msgs.map((m) => publishTaskMessage(js, names, m)));
      return msgs.map((m) => m.id);
    },
    runs() {
      if (!existsSync(logFile)) return [];
      return readFileSync(logFile, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => {
        const [at, pid, id, label, event, attempt] = l.split(" ");
        return { at: Number(at), pid: Number(pid), id: id!, label: label!, event: event as Run["event"], attempt: Number(attempt) };
      });
    },
    async close() {
      await dispatcher.stop().catch(() => undefined);
      for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill("SIGKILL");
      await Promise.all(workers.map((w) => w.exited));
      await nc.close();
      await srv.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Start times of the first attempt of each task id, ms. */
export function firstStarts(runs: readonly Run[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of runs) if (r.event === "start" && !out.has(r.id)) out.set(r.id, r.at);
  return out;
}

/**
 * The most runs with one label at once, from start/done pairs; a run whose worker `killed` (pid →
 * kill time, ms) died before it was done ends at the kill. A run with neither is still running.
 */
export function peakRunning(runs: readonly Run[], killed: ReadonlyMap<number, number> = new Map()): Map<string, number> {
  const events: Array<{ at: number; label: string; d: number }> = [];
  const open = new Map<string, Run>();
  for (const r of runs) {
    const k = `${r.pid} ${r.id} ${r.attempt}`;
    if (r.event === "start") open.set(k, r);
    else if (open.has(k)) {
      open.delete(k);
      events.push({ at: r.at, label: r.label, d: -1 });
    }
    if (r.event === "start") events.push({ at: r.at, label: r.label, d: +1 });
  }
  for (const r of open.values()) {
    const end = killed.get(r.pid);
    if (end !== undefined) events.push({ at: end, label: r.label, d: -1 });
  }
  // ends before starts at the same millisecond: a slot freed and taken again in one ms is not two
  events.sort((a, b) => a.at - b.at || a.d - b.d);
  const now = new Map<string, number>();
  const peak = new Map<string, number>();
  for (const e of events) {
    const n = (now.get(e.label) ?? 0) + e.d;
    now.set(e.label, n);
    peak.set(e.label, Math.max(peak.get(e.label) ?? 0, n));
  }
  return peak;
}
