/**
 * What every producer process of the peers benchmark shares (Celeriac, BullMQ and the JetStream
 * ceilings in Node; Celery's producer, celery_peers.py, follows the same protocol in Python):
 *
 * - the spec comes as JSON in `argv[2]` ({@link ProducerSpec});
 * - the producer runs a warm-up, the throughput run (`count` tasks, {@link WINDOW} enqueues in
 *   flight), then the latency run (`latencyCount` tasks offered at `rateHz`), timing completion as the
 *   moment it *observes* the result stored;
 * - it prints one line `RESULT <json>` ({@link ProducerResult}) and exits 0.
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { pct, publishAll, withDeadline } from "../throughput-phases.js";
import { procMemory, type ProcMemory } from "./children.js";

export { WINDOW } from "../throughput-phases.js";

/** What the orchestrator (run.ts) asks a producer process to do. */
export interface ProducerSpec {
  /** Server URL (`nats://…` or `redis://…`). */
  url: string;
  /** Queue (or stream-name prefix) to use; fresh per phase. */
  queue: string;
  /** Tasks run before timing, at full speed (JIT, connections, consumers warm), not counted. */
  warmup: number;
  /** Tasks of the throughput run. */
  count: number;
  /** Offered rate of the latency run, tasks/s. */
  rateHz: number;
  /** Tasks of the latency run (rateHz × seconds). */
  latencyCount: number;
  /** When set: only time a bulk enqueue of this many tasks on `queue` (no workers), nothing else. */
  bulk?: number;
}

/** Percentiles of one latency run, ms from just before the enqueue call to the result observed stored. */
export interface LatencyFigures {
  n: number;
  rateHz: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** One producer process's figures. */
export interface ProducerResult {
  /** Throughput run: `perSecond` = count / (first enqueue → last result observed stored). */
  throughput?: { n: number; seconds: number; perSecond: number; enqueueSeconds: number };
  latency?: LatencyFigures;
  /** Bulk enqueue: `perSecond` = n / (call → resolved); `failed` elements; `na` says why not measured. */
  bulk?: { n: number; seconds: number; perSecond: number; failed: number } | { na: string };
  /** `os.loadavg()` when the process finished. */
  loadavg: number[];
  /** The producer process's own memory at the end (for the ceilings, whose consumer runs in it too). */
  self?: ProcMemory;
}

/**
 * Reads the spec from `argv[2]`.
 * @throws Error naming the field when the JSON is missing or incomplete
 */
export function readSpec(): ProducerSpec {
  const raw = process.argv[2];
  if (!raw) throw new Error("producer: pass the spec as JSON in argv[2] (see ProducerSpec in producer-common.ts)");
  const s = JSON.parse(raw) as ProducerSpec;
  for (const k of ["url", "queue"] as const) if (typeof s[k] !== "string") throw new Error(`producer spec: "${k}" must be a string`);
  for (const k of ["warmup", "count", "rateHz", "latencyCount"] as const) if (!(typeof s[k] === "number" && s[k] >= 0)) throw new Error(`producer spec: "${k}" must be a number ≥ 0`);
  return s;
}

/** Prints `RESULT <json>` (the orchestrator reads the last such line) and exits 0 after stdout flushed. */
export function finish(r: Omit<ProducerResult, "loadavg">): void {
  const self = procMemory(process.pid);
  const out: ProducerResult = { ...r, loadavg: loadavg(), ...(self ? { self } : {}) };
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`, () => process.exit(0));
}

/** Runs `main`, printing its error and exiting 1 when it throws. */
export function runProducer(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * Matches completions to sends by task id. A completion may be observed before the send's id is
 * known (BullMQ assigns ids on add), so early completions are kept until {@link bind} arrives.
 */
export class Completions {
  #sent = new Map<string, number>();
  #early = new Map<string, number>();
  #latencies: number[] = [];
  #target = 0;
  #resolve: () => void = () => undefined;

  /** Starts a run of `n` tasks; the promise resolves when `n` of them completed. */
  expect(n: number): Promise<void> {
    this.#sent.clear();
    this.#early.clear();
    this.#latencies = [];
    this.#target = n;
    return new Promise<void>((r) => {
      this.#resolve = r;
      if (n === 0) r();
    });
  }

  /** Records that task `id` was sent at `t` (performance.now(), default now). */
  bind(id: string, t = performance.now()): void {
    const early = this.#early.get(id);
    if (early !== undefined) {
      this.#early.delete(id);
      this.#record(early - t);
    } else this.#sent.set(id, t);
  }

  /** Records that task `id`'s result was observed stored now. Unknown ids are kept for a later {@link bind}. */
  done(id: string): void {
    const now = performance.now();
    const t = this.#sent.get(id);
    if (t === undefined) {
      if (this.#early.size < 1_000_000) this.#early.set(id, now);
      return;
    }
    this.#sent.delete(id);
    this.#record(now - t);
  }

  #record(ms: number): void {
    this.#latencies.push(ms);
    if (this.#latencies.length === this.#target) this.#resolve();
  }

  /** Latencies of the current run so far, ms. */
  latencies(): number[] {
    return this.#latencies;
  }
}

/**
 * Sends `n` tasks with {@link WINDOW} in flight and waits for all to complete.
 * @returns the throughput figures
 * @throws Error (from withDeadline) when they do not complete within 60 s
 */
export async function throughputRun(what: string, c: Completions, n: number, send: (i: number) => Promise<void>): Promise<NonNullable<ProducerResult["throughput"]>> {
  const all = c.expect(n);
  const t0 = performance.now();
  await publishAll(n, send);
  const enqueueSeconds = (performance.now() - t0) / 1000;
  await withDeadline(`${what}: ${n} tasks`, all);
  const seconds = (performance.now() - t0) / 1000;
  return { n, seconds, perSecond: n / seconds, enqueueSeconds };
}

/**
 * Sends `n` tasks at `rateHz` (each at its due time, not waiting for earlier ones) and waits for all
 * to complete.
 * @returns the latency percentiles
 * @throws Error (from withDeadline) when they do not complete within 60 s of the last send
 */
export async function latencyRun(what: string, c: Completions, n: number, rateHz: number, send: (i: number) => Promise<void>): Promise<LatencyFigures> {
  const all = c.expect(n);
  const interval = 1000 / rateHz;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * interval - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(i));
  }
  await Promise.all(pending);
  await withDeadline(`${what}: ${n} tasks at ${rateHz}/s`, all);
  const l = c.latencies();
  return { n, rateHz, p50Ms: pct(l, 50), p99Ms: pct(l, 99), maxMs: Math.max(...l) };
}
