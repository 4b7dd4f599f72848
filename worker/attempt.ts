/**
 * One attempt of an admitted task: the handler's `TaskContext`, its abort signal (time limit, revoke,
 * forced shutdown), the delayed `Running` record, and the classification of how it ended. Returns
 * an `Ending` for `settle`; never settles the message itself.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { TaskMessage } from "../api/message.js";
import type { TaskProgress } from "../api/task.js";
import type { TaskContext } from "./define-task.js";
import { CancelledError, ResultTooLargeError, RetryError, TimeoutError, UnrecoverableError, WorkerShutdownError } from "./errors.js";
import { classifyOutcome, describeError } from "./outcome.js";
import type { Admitted } from "./admission.js";
import type { InFlight } from "./consumer.js";
import { settlementOutcome, type Ending, type Settler } from "./settle.js";
import { DEFAULT_PROGRESS_INTERVAL_MS, progressReport, ProgressReporter, type ProgressClock } from "./progress.js";
import { context } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES } from "../api/tracing.js";
import { endExecuteSpan, endSpan, startAttemptSpans, traceLogFields } from "../tracing/spans.js";

/**
 * The abort side of one attempt. The AbortController behind `signal` is created only when the
 * handler reads `ctx.signal` (most short tasks never do), and an abort before that is replayed on it.
 */
export class AttemptAbort {
  /** True once `abort` was called. */
  aborted = false;
  /** The first abort's reason (a `TimeoutError`, `CancelledError` or `WorkerShutdownError`). */
  reason: unknown = undefined;
  #ac: AbortController | undefined;
  readonly #onAbort: () => void;
  /** @param onAbort called once, on the first `abort` */
  constructor(onAbort: () => void) {
    this.#onAbort = onAbort;
  }
  /** The handler's signal (created on first read). */
  get signal(): AbortSignal {
    if (!this.#ac) {
      this.#ac = new AbortController();
      if (this.aborted) this.#ac.abort(this.reason);
    }
    return this.#ac.signal;
  }
  /** Aborts with `reason`; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#ac?.abort(reason);
    this.#onAbort();
  }
}

/** A running attempt, as tracked for revocation and forced shutdown. */
interface Running {
  readonly id: string;
  readonly msg: JsMsg;
  readonly ac: AttemptAbort;
  abandoned: boolean;
  readonly task: string;
  readonly attempt: number;
  /** When the handler started (RFC 3339). */
  readonly startedAt: string;
  /** The last progress report, if any. */
  progress: () => TaskProgress | undefined;
}

/** A running attempt as the control report shows it (`celeriac inspect active`). */
export interface RunningAttempt {
  readonly id: string;
  readonly task: string;
  readonly attempt: number;
  /** When the handler started (RFC 3339). */
  readonly startedAt: string;
  /** The handler's last `ctx.progress` report. */
  readonly progress?: TaskProgress;
}

/** What `Attempts` needs. Times as the names say. */
export interface AttemptsOptions {
  /** Writes the `Running` record. */
  readonly settler: Settler;
  /** The worker's logger (the handler gets a child with `{taskId, task, attempt}`). */
  readonly log: Logger;
  /** After an abort, how long the handler may take to settle before the attempt is over, in seconds. */
  readonly abortGraceSeconds: number;
  /** A `Running` record is written only for attempts still running after this many ms. */
  readonly runningRecordDelayMs: number;
  /** Jitter source for the retry backoff. */
  readonly random: () => number;
  /**
   * The handler's args of a canvas message whose `canvas.argsRef` is set (CanvasRuntime.resolveArgs),
   * called before the handler, inside the attempt (its throw is the attempt's error).
   */
  readonly resolveArgs?: (msg: TaskMessage) => Promise<unknown[]>;
  /** The handler's kwargs of a message whose `canvas.kwargsRefs` is set (CanvasRuntime.resolveKwargs): the referenced results filled in. */
  readonly resolveKwargs?: (msg: TaskMessage) => Promise<Record<string, unknown>>;
  /**
   * Most bytes of JSON a result may have (read at each attempt's end: the server's max_payload less
   * the rest of the record); a larger one fails the attempt with ResultTooLargeError. Unset: no limit.
   */
  readonly maxResultBytes?: () => number;
  /** Clock and timers of the progress writes (tests); default the real ones. */
  readonly progressClock?: ProgressClock;
}

/** Runs attempts and keeps the set of those running (by task id). */
export class Attempts {
  readonly #o: AttemptsOptions;
  readonly #running = new Map<string, Running>();

  /** @param options kept as given */
  constructor(options: AttemptsOptions) {
    this.#o = options;
  }

  /**
   * Runs one attempt of an admitted message: arms the time limit and the delayed `Running` record on
   * its in-flight entry (checked by the consumer's ticker), resolves a canvas message's referenced
   * args (`resolveArgs`), calls the handler with its context — a chunks task (`canvas.chunk`: args
   * is a list of argument lists) once per list in turn, its result the list of results — and
   * classifies the end (a result that is not JSON-encodable ends it with `UnrecoverableError`).
   * @param m the message
   * @param f its in-flight entry (heartbeated while the worker holds the message)
   * @param a the admitted message, handler, policy, attempt number and whether it runs alone (the
   *   caller holds the alone gate: attempts.ts does not wait for it)
   * @returns the ending to settle; undefined when the attempt was abandoned at forced shutdown (its
   *   message was already handed back) or the handler threw a `WorkerShutdownError`
   * @throws Error from the `Running` record write of an alone attempt (before the handler ran): the
   *   message is left for redelivery; otherwise never (the handler's throw is the ending's cause)
   */
  async run(m: JsMsg, f: InFlight, a: Admitted): Promise<Ending | undefined> {
    const { message: msg, def, policy, attempt, trace } = a;
    const startTime = new Date().toISOString();
    // celeriac.queue_wait (first attempt) and celeriac.execute, children of the envelope's trace context
    const spans = startAttemptSpans(msg, { subject: m.subject, consumer: m.info?.consumer, attempt, startMs: Date.parse(startTime) });
    // an alone attempt (its previous delivery was lost with its worker) records Running before the
    // handler starts: if the process dies now, the next delivery knows the task ran alone (attribution.ts)
    if (a.alone) {
      try {
        await this.#o.settler.writeRunning(msg, attempt, msg.createdAt, startTime, trace);
      } catch (err) {
        endSpan(spans.span, err);
        throw err;
      }
    }
    const timeoutMs = (def.options.timeoutSeconds ?? msg.timeoutSeconds) * 1000;
    const timers: NodeJS.Timeout[] = [];
    // the attempt is over when the handler settles, or `abortGraceSeconds` after it was aborted
    let rejectAbandoned: (reason: unknown) => void = () => undefined;
    const abandoned = new Promise<never>((_, reject) => (rejectAbandoned = reject));
    abandoned.catch(() => undefined);
    const ac = new AttemptAbort(() => timers.push(setTimeout(() => rejectAbandoned(ac.reason), this.#o.abortGraceSeconds * 1000)));
    const entry: Running = { id: msg.id, msg: m, ac, abandoned: false, task: msg.task, attempt, startedAt: startTime, progress: () => undefined };
    this.#running.set(msg.id, entry);
    let childLog: Logger | undefined;
    const log = (): Logger => (childLog ??= this.#o.log.child({ taskId: msg.id, task: msg.task, attempt, ...traceLogFields(spans.span) }));
    let runningWrite: Promise<void> | undefined;
    const now = Date.now();
    if (!a.alone) {
      f.runningDueAt = now + this.#o.runningRecordDelayMs;
      f.writeRunning = () => {
        runningWrite = this.#o.settler.writeRunning(msg, attempt, msg.createdAt, startTime, trace).catch((err) => log().warn({ err }, "Running record write failed"));
      };
    }
    // progress writes are the Running record with status.progress, to each sink at its own rate;
    // one waits for a Running record write already under way, so it never lands after this one
    const settler = this.#o.settler;
    let progressFailures = 0;
    let reporter: ProgressReporter | undefined;
    const progress = (): ProgressReporter =>
      (reporter ??= new ProgressReporter(
        settler.sinks.map((sink) => ({
          name: sink.name,
          intervalMs: sink.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS,
          write: async (p) => {
            if (runningWrite) await runningWrite;
            await sink.write(settler.runningRecord(msg, attempt, msg.createdAt, startTime, trace, p));
          },
        })),
        (err, sink) => {
          if (progressFailures++ === 0) log().warn({ err, sink }, "Progress write failed");
          else if (log().isLevelEnabled("debug")) log().debug({ err, sink }, "Progress write failed");
        },
        this.#o.progressClock,
      ));
    entry.progress = () => reporter?.latest;
    // checked by the shared ticker, so a time limit is enforced within a tick (≤ 250 ms) late
    f.deadlineAt = now + timeoutMs;
    f.onDeadline = () => ac.abort(new TimeoutError(`task exceeded its time limit of ${timeoutMs / 1000} s`));
    const ctx: TaskContext = {
      taskId: msg.id,
      attempt,
      maxAttempts: policy.maxAttempts,
      task: msg.task,
      queue: msg.queue,
      namespace: msg.namespace,
      get signal() {
        return ac.signal;
      },
      deadline: new Date(now + timeoutMs),
      get log() {
        return log();
      },
      heartbeat: () => m.working(),
      retry: (opts = {}) => {
        throw new RetryError(opts.message ?? "retry requested", opts.countdownSeconds === undefined ? {} : { countdownSeconds: opts.countdownSeconds });
      },
      progress: (value, meta) => {
        const p = progressReport(value, meta, new Date(this.#o.progressClock?.now() ?? Date.now()));
        // the progress writes make the Running record: the delayed one (without progress) is not needed
        f.writeRunning = undefined;
        progress().report(p);
      },
    };
    const resolve = this.#o.resolveArgs;
    const resolveKwargs = this.#o.resolveKwargs;
    const call = async (): Promise<unknown> => {
      const args = msg.canvas?.argsRef && resolve ? await resolve(msg) : msg.args;
      const kwargs = msg.canvas?.kwargsRefs && resolveKwargs ? await resolveKwargs(msg) : (msg.kwargs as Record<string, unknown>);
      if (!msg.canvas?.chunk) return def.handler(args, kwargs, ctx);
      const results: unknown[] = [];
      for (const [i, list] of args.entries()) {
        if (!Array.isArray(list)) throw new UnrecoverableError(`chunk item ${i} is not an argument list: a chunks task's args are lists of arguments`);
        if (ac.aborted) throw ac.reason;
        results.push(await def.handler(list, kwargs, ctx));
      }
      return results;
    };
    const t0 = performance.now();
    let result: unknown;
    let error: unknown;
    try {
      // the handler runs in the execute span's context: its own spans are the execute span's children
      result = await Promise.race([context.with(spans.context, () => Promise.resolve().then(call)), abandoned]);
      if (ac.aborted) error = ac.reason;
    } catch (err) {
      error = ac.aborted ? ac.reason : err;
    }
    const seconds = (performance.now() - t0) / 1000;
    timers.forEach(clearTimeout);
    f.writeRunning = undefined;
    // trailing progress writes are dropped (the ending carries the last report); those in flight end first
    const progressDone = reporter?.close();
    f.onDeadline = undefined;
    if (this.#running.get(msg.id) === entry) this.#running.delete(msg.id);
    if (entry.abandoned || error instanceof WorkerShutdownError) {
      endExecuteSpan(spans.span, "shutdown", error);
      return undefined; // forced shutdown already handed it back, or the handler gave up for it
    }
    let encoded: unknown = null;
    if (error === undefined) {
      try {
        const json = result === undefined ? "null" : JSON.stringify(result);
        encoded = JSON.parse(json);
        const max = this.#o.maxResultBytes?.();
        // a UTF-16 length is at most the UTF-8 byte length, which is at most 3 times it
        if (max !== undefined && json.length * 3 > max && Buffer.byteLength(json) > max) {
          error = new ResultTooLargeError(
            `result is ${Buffer.byteLength(json)} bytes of JSON; a task's record holds at most ${max} (the NATS server's max_payload less room for the record): store a large result elsewhere (an object store) and return its key`,
          );
        }
      } catch (err) {
        error = new UnrecoverableError(`result is not JSON-serialisable: ${(err as Error).message}`);
      }
    }
    const outcome = classifyOutcome(error, attempt, policy, this.#o.random);
    if (runningWrite) await runningWrite;
    if (progressDone) await progressDone;
    const last = reporter?.latest;
    const ending: Ending = { outcome, identity: msg, message: msg, task: msg.task, attempts: attempt, queuedTime: msg.createdAt, startTime, seconds, cause: error, trace, executeContext: spans.context, ...(msg.unique ? { unique: msg.unique } : {}), ...(last ? { progress: last } : {}) };
    endExecuteSpan(spans.span, settlementOutcome(ending), error, outcome.action === "retry" ? { [SPAN_ATTRIBUTES.retryDelayMs]: outcome.delayMs } : outcome.action === "deadLetter" ? { [SPAN_ATTRIBUTES.deadLetterReason]: outcome.reason } : {});
    return outcome.action === "succeed" ? { ...ending, result: encoded } : { ...ending, error: describeError(error) };
  }

  /** The attempts running now (a snapshot, for the control report). */
  running(): RunningAttempt[] {
    return [...this.#running.values()].map((r) => {
      const p = r.progress();
      return { id: r.id, task: r.task, attempt: r.attempt, startedAt: r.startedAt, ...(p ? { progress: p } : {}) };
    });
  }

  /** Aborts the running attempt of task `id` (if any) with a `CancelledError`; it then ends `cancel`. */
  revoke(id: string): void {
    const r = this.#running.get(id);
    if (r && !r.ac.aborted) {
      this.#o.log.info({ taskId: id }, "Revoked running task");
      r.ac.abort(new CancelledError(`task ${id} was revoked`));
    }
  }

  /**
   * Forced shutdown: marks every running attempt abandoned (it will not be settled), aborts it with
   * a `WorkerShutdownError`, and forgets it.
   * @returns the abandoned attempts' task ids and messages, for the caller to hand back
   */
  abandonAll(): { id: string; msg: JsMsg }[] {
    const out: { id: string; msg: JsMsg }[] = [];
    for (const r of this.#running.values()) {
      r.abandoned = true;
      r.ac.abort(new WorkerShutdownError("worker shut down"));
      out.push({ id: r.id, msg: r.msg });
    }
    this.#running.clear();
    return out;
  }
}
