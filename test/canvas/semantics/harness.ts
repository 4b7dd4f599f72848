/**
 * Shared setup of the canvas semantics tests: a real nats-server, queues created as the operator
 * creates them (`ensureQueueResources(queueSettingsFromSpec(spec))`, so `spec.ackWaitSeconds` sets
 * the worker consumer's ack wait; a flow-controlled spec also gets its `queue.settings` published and
 * its {@link Dispatcher} driven directly, as test/flow/harness.ts does), a `celeriac/client` for
 * `client.apply`, real `celeriac worker` processes running test/canvas/semantics/tasks.ts, and the
 * per-execution log they append to.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { API_VERSION } from "../../../api/constants.js";
import { isFlowControlled } from "../../../api/flow.js";
import { queueNames, type QueueNames } from "../../../api/naming.js";
import type { Queue } from "../../../api/objects.js";
import type { QueueSpec } from "../../../api/queue.js";
import { connect, type CeleriacClient } from "../../../client/index.js";
import { ensureQueueResources } from "../../../nats/queue-resources.js";
import { Dispatcher } from "../../../operator/flow/dispatcher.js";
import { publishQueueSettings } from "../../../operator/queue/queue-settings-publish.js";
import { queueSettingsFromSpec } from "../../../operator/queue/queue-settings.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../../helpers/nats-server.js";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const TASKS = fileURLToPath(new URL("./tasks.js", import.meta.url));

/** One line of the per-execution log (see tasks.ts). */
export interface Run {
  /** Wall-clock time of the event, ms. */
  at: number;
  pid: number;
  id: string;
  attempt: number;
  event: "start" | "done" | "abort" | "fail";
  /** What the task logged with the event (JSON), null when nothing. */
  data: unknown;
}

/** A `celeriac worker` child process. */
export interface WorkerProcess {
  readonly queue: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code or signal once the process exited. */
  readonly exited: Promise<unknown>;
  /** Resolves once the worker logged "Worker started"; rejects when it exited before. */
  readonly started: Promise<void>;
  /** Its stdout and stderr so far (last 200 kB). */
  output(): string;
  /** SIGKILL (a crash); resolves once it exited. */
  kill(): Promise<void>;
  /** True until it exited. */
  alive(): boolean;
}

/** A queue created by the harness. */
export interface HarnessQueue {
  readonly name: string;
  readonly names: QueueNames;
  readonly spec: QueueSpec;
  /** The queue's dispatcher when its spec is flow-controlled. */
  readonly dispatcher?: Dispatcher;
}

/** A running canvas semantics setup. */
export interface SemHarness {
  readonly srv: NatsServer;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** A client (queues are created by the harness, not by the client). */
  readonly client: CeleriacClient;
  /** A temporary directory removed by `close()` (barrier files go here). */
  readonly dir: string;
  /**
   * Creates a queue as the operator does: streams, consumers (ack wait `spec.ackWaitSeconds`,
   * default 30 s) and results bucket; a flow-controlled spec also gets `queue.settings` and a
   * running dispatcher.
   * @param prefix the queue name's prefix (a unique suffix is added)
   */
  queue(spec: QueueSpec, prefix?: string): Promise<HarnessQueue>;
  /**
   * Spawns `node bin/celeriac.js worker --tasks <tasks.js> --queue <q> --nats <url> --port 0
   * --concurrency <n>`, with the queue's ack wait. Does not wait for it to start (`started` does).
   */
  spawnWorker(q: HarnessQueue, concurrency: number): WorkerProcess;
  /** `spawnWorker` and waits for "Worker started" (20 s). */
  startWorker(q: HarnessQueue, concurrency: number): Promise<WorkerProcess>;
  /** Every worker process spawned so far. */
  readonly workers: WorkerProcess[];
  /** The per-execution log so far. */
  runs(): Run[];
  /** Stops everything: dispatchers, workers (SIGKILL), client, connection, server, temp dir. */
  close(): Promise<void>;
}

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "warn" });

/**
 * Starts nats-server, a client and an empty log; queues and workers are added by the test.
 * @throws Error when the server does not start or cannot be connected to (what was started is stopped)
 */
export async function startSemHarness(): Promise<SemHarness> {
  const srv = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), "celeriac-canvas-sem-"));
  const logFile = join(dir, "runs.log");
  let nc: NatsConnection | undefined;
  let client: CeleriacClient;
  try {
    nc = await natsConnect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    client = await connect({ servers: srv.url, createQueues: false });
  } catch (err) {
    await nc?.close().catch(() => undefined);
    await srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const queues: HarnessQueue[] = [];
  const workers: WorkerProcess[] = [];

  const spawnWorker = (q: HarnessQueue, concurrency: number): WorkerProcess => {
    const proc = spawn(
      process.execPath,
      ["bin/celeriac.js", "worker", "--tasks", TASKS, "--queue", q.name, "--nats", srv.url, "--port", "0", "--concurrency", String(concurrency), "--ack-wait-seconds", String(q.spec.ackWaitSeconds ?? 30), "--grace-period-seconds", "1"],
      { cwd: ROOT, env: { ...process.env, CELERIAC_TEST_LOG: logFile, CELERIAC_LOG_LEVEL: "info", CELERIAC_KUBE_STATUS: "false" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    const onData = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    const exited = new Promise<unknown>((resolve) => proc.once("exit", (code, sig) => resolve(code ?? sig)));
    const alive = () => proc.exitCode === null && proc.signalCode === null;
    const started = (async () => {
      await waitFor("worker started", () => out.includes('"msg":"Worker started"') || !alive(), 20_000);
      if (!out.includes('"msg":"Worker started"')) throw new Error(`worker exited before it started:\n${out}`);
    })();
    started.catch(() => undefined); // a worker killed while starting is expected in the kill tests
    const w: WorkerProcess = {
      queue: q.name,
      proc,
      pid: proc.pid ?? -1,
      exited,
      started,
      output: () => out,
      alive,
      async kill() {
        if (alive()) proc.kill("SIGKILL");
        await exited;
      },
    };
    workers.push(w);
    return w;
  };

  return {
    srv, nc, js, jsm, client, dir, workers, spawnWorker,
    async queue(spec, prefix = "q") {
      const name = uniqueQueue(prefix);
      const names = queueNames("default", name);
      await ensureQueueResources(jsm, names, queueSettingsFromSpec(spec), { updateOnDrift: true });
      let dispatcher: Dispatcher | undefined;
      if (isFlowControlled(spec)) {
        const resource: Queue = { apiVersion: API_VERSION, kind: "Queue", metadata: { name, namespace: "default" }, spec };
        await publishQueueSettings(js, names, resource);
        dispatcher = new Dispatcher({ js, names, spec, log: log.child({ component: "dispatcher", queue: name }) });
        await dispatcher.start();
      }
      const q: HarnessQueue = { name, names, spec, ...(dispatcher ? { dispatcher } : {}) };
      queues.push(q);
      return q;
    },
    async startWorker(q, concurrency) {
      const w = spawnWorker(q, concurrency);
      await w.started;
      return w;
    },
    runs() {
      if (!existsSync(logFile)) return [];
      return readFileSync(logFile, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => {
          const parts = l.split(" ");
          const [at, pid, id, attempt, event] = parts;
          return { at: Number(at), pid: Number(pid), id: id!, attempt: Number(attempt), event: event as Run["event"], data: JSON.parse(parts.slice(5).join(" ")) as unknown };
        });
    },
    async close() {
      for (const q of queues) await q.dispatcher?.stop().catch(() => undefined);
      await Promise.all(workers.map((w) => w.kill()));
      await client.close().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await srv.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The runs of task `id`, in log order. */
export function runsOf(runs: readonly Run[], id: string, event?: Run["event"]): Run[] {
  return runs.filter((r) => r.id === id && (event === undefined || r.event === event));
}

/** Log lines by task id. */
export function byId(runs: readonly Run[]): Map<string, Run[]> {
  const out = new Map<string, Run[]>();
  for (const r of runs) {
    let l = out.get(r.id);
    if (!l) out.set(r.id, (l = []));
    l.push(r);
  }
  return out;
}

/**
 * Resolves once the queue's worker consumer has nothing pending or unacked (every message
 * published so far was delivered and acked).
 */
export async function queueDrained(h: SemHarness, q: HarnessQueue, timeoutMs = 20_000): Promise<void> {
  await waitFor(`queue ${q.name} drained`, async () => {
    const i = await h.jsm.consumers.info(q.names.stream, q.names.workerConsumer);
    return i.num_pending === 0 && i.num_ack_pending === 0;
  }, timeoutMs, 50);
}

/** Options of {@link killWorkersRandomly}. */
export interface KillOptions {
  /** Slots of each replacement worker. */
  concurrency: number;
  /** Most kills. */
  maxKills: number;
  /** Stop once this returns true (checked before each kill). */
  until: () => boolean;
  /** Stop after this long, ms. */
  forMs: number;
  /** Gap between kills: uniformly random in [minGapMs, maxGapMs], ms (default 200–400). */
  minGapMs?: number;
  maxGapMs?: number;
}

/**
 * The killer: every 200–400 ms, SIGKILLs a random worker process of queue `q` that has started (a
 * crash: whatever it held is redelivered after the ack wait) and spawns a replacement at once, until
 * `until()`, `maxKills` or `forMs`.
 * @returns the kills, with their times (ms) and pids
 */
export async function killWorkersRandomly(h: SemHarness, q: HarnessQueue, o: KillOptions): Promise<Array<{ at: number; pid: number }>> {
  const end = Date.now() + o.forMs;
  const kills: Array<{ at: number; pid: number }> = [];
  const live = (): WorkerProcess[] => h.workers.filter((w) => w.queue === q.name && w.alive());
  const ready = new Set<WorkerProcess>(live());
  const min = o.minGapMs ?? 200;
  const max = o.maxGapMs ?? 400;
  while (kills.length < o.maxKills && Date.now() < end) {
    await sleep(min + Math.random() * (max - min));
    if (o.until()) break;
    const candidates = live().filter((w) => ready.has(w));
    if (candidates.length === 0) continue;
    const victim = candidates[Math.floor(Math.random() * candidates.length)]!;
    kills.push({ at: Date.now(), pid: victim.pid });
    await victim.kill();
    const next = h.spawnWorker(q, o.concurrency);
    next.started.then(() => ready.add(next), () => undefined);
  }
  return kills;
}

/** How many times the worker processes of queue `q` logged `msg` (dead ones included). */
export function countLogged(h: SemHarness, q: HarnessQueue, msg: string): number {
  return h.workers.filter((w) => w.queue === q.name).reduce((n, w) => n + w.output().split(`"msg":${JSON.stringify(msg)}`).length - 1, 0);
}
