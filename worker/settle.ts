/**
 * Settlement: the one place a task message leaves this worker with an outcome. Every outcome, whether
 * admission decided it before the handler or `classifyOutcome` after it, goes through `settle`:
 * record → every sink → ack / nak / term → metric → log. Acking only after every sink succeeded is
 * what makes a lost ack harmless: the redelivery finds the final record and only writes it again.
 *
 * A task with a unique key (`message.unique`) releases the key's lock at its final settle (a terminal
 * outcome or the replay of one, never a retry or a wait), after its record is stored and before the
 * ack: a crash in between leaves a lock whose holder's record is terminal, which is stale and taken
 * over by the next claim or check (nats/unique.ts).
 *
 * A canvas task (`message.canvas`) continues its canvas at its final settle, after the record and the
 * unique release and before the ack (`afterFinal`, canvas/runtime.ts): its next step, join slot,
 * callbacks or cancellations are written first, so a lost ack only replays an idempotent
 * continuation. When the continuation fails the message is naked instead of acked.
 *
 * (The other `nak` in the worker is `handBack` in consumer.ts: a message handed back unsettled at
 * shutdown, with no outcome and no record, so another worker runs it.)
 */
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { HEADERS, taskRecord, type DeadLetterReason, type MessageUnique, type TaskIdentity, type TaskMessage, type TaskRecord } from "../api/message.js";
import type { QueueNames } from "../api/naming.js";
import type { Waiting } from "../api/flow.js";
import type { TaskError, TaskProgress, TaskStatus } from "../api/task.js";
import { releaseUnique } from "../nats/unique.js";
import { TimeoutError } from "./errors.js";
import { queueWaitSeconds, type QueueMetrics } from "./metrics.js";
import { backoffDelay, STATUS_WRITE_BACKOFF, type Outcome } from "./outcome.js";
import type { ResolvedRetryPolicy } from "../api/policies.js";
import type { StatusSink } from "./status-sink.js";
import type { DeliveryTrace, TracedRecord } from "./attribution.js";
import { context, ROOT_CONTEXT, trace, type Context } from "@opentelemetry/api";
import { SPAN_ATTRIBUTES, type SpanOutcome } from "../api/tracing.js";
import { endSpan, extractContext, startResultSpan, traceLogFields } from "../tracing/spans.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * How one delivery ended: its outcome and what to record with it. Built by `admit` (before the
 * handler) and by `Attempts.run` (after it).
 */
export interface Ending {
  /** What to do with the message. */
  readonly outcome: Outcome;
  /** The record's identity; undefined when the message has no usable task id (nothing is recorded). */
  readonly identity: TaskIdentity | undefined;
  /** Task name: the metric's `task` label and the dead letter's `Celeriac-Task` header. */
  readonly task: string;
  /** Attempts to record (`status.attempts`, and the dead letter's `Celeriac-Dead-Attempts`). */
  readonly attempts: number;
  /** When the producer created the message (RFC 3339), when known. */
  readonly queuedTime?: string;
  /** When the handler started (RFC 3339); set exactly when the handler ran. */
  readonly startTime?: string;
  /** The handler's run time, in seconds (when it ran). */
  readonly seconds?: number;
  /** The result, JSON-encodable (`succeed`); undefined is recorded as null. */
  readonly result?: unknown;
  /** The error recorded in `status.error` (every outcome but `succeed`). */
  readonly error?: TaskError;
  /** The value the attempt threw, for the log and the `timed_out` metric (`retry`). */
  readonly cause?: unknown;
  /** The dead letter's `Celeriac-Dead-Detail`; default `<error.type>: <error.message>`. */
  readonly detail?: string;
  /** The delivery trace written with the record (attribution.ts); none for a message with no usable envelope. */
  readonly trace?: DeliveryTrace;
  /** The message's unique key and policy: its lock is released at a final settle. */
  readonly unique?: MessageUnique;
  /** Why it may not start yet (`wait`): recorded as `status.waiting`. */
  readonly waiting?: Waiting;
  /** The validated message, when there is one: a canvas task's final settle continues its canvas (`afterFinal`). */
  readonly message?: TaskMessage;
  /** The attempt's last `ctx.progress` report, kept in the record (`status.progress`). */
  readonly progress?: TaskProgress;
  /**
   * The OpenTelemetry context of the attempt's `celeriac.execute` span (set when the handler ran):
   * the settlement's `celeriac.result` span is its child, and a canvas continuation runs in it, so
   * the next step's enqueue span is the execute span's child.
   */
  readonly executeContext?: Context;
}

/** A redelivered message whose final record already exists: only its ack was lost. */
export interface Replay {
  /** The final record found in the results bucket, written again through every sink as is. */
  readonly replay: TaskRecord;
  /** The message's unique key and policy: its lock is released (again) after the replay. */
  readonly unique?: MessageUnique;
  /** The validated message: a canvas task's replay continues its canvas again (`afterFinal`, idempotent). */
  readonly message?: TaskMessage;
}

/** What `settle` acts on: a new outcome, or the replay of a recorded one. */
export type Settlement = Ending | Replay;

/**
 * The status recorded for an ending, by outcome: `Succeeded` (result), `Cancelled`, `Expired`,
 * `Retrying` (`nextRetryTime` = now + delay), `Failed` (`deadLettered: true`) or `Queued` with
 * `waiting` (a `wait`); all but `Retrying` and `Queued` get `completionTime` = now. Pure; never throws.
 * @param e the ending
 * @param worker the worker name recorded in `status.worker`
 * @param now the time of the record
 */
export function endingStatus(e: Ending, worker: string, now: Date): TaskStatus {
  const o = e.outcome;
  const status: TaskStatus = { attempts: e.attempts, ...(e.queuedTime === undefined ? {} : { queuedTime: e.queuedTime }), worker };
  status.phase = o.action === "retry" ? "Retrying" : o.action === "deadLetter" ? "Failed" : o.phase;
  if (e.startTime !== undefined) status.startTime = e.startTime;
  if (o.action === "retry") status.nextRetryTime = new Date(now.getTime() + o.delayMs).toISOString();
  else if (o.action === "wait") {
    if (e.waiting) status.waiting = e.waiting;
  } else status.completionTime = now.toISOString();
  if (o.action === "succeed") status.result = e.result === undefined ? null : e.result;
  else if (e.error) status.error = e.error;
  if (o.action === "deadLetter") status.deadLettered = true;
  if (e.progress) status.progress = e.progress;
  return status;
}

/** The record with its delivery trace (`delivery`, beside `status`), when there is one. Pure. */
export function traced(record: TaskRecord, trace: DeliveryTrace | undefined): TracedRecord {
  return trace ? { ...record, delivery: trace } : record;
}

/** What a `Settler` needs. Times in ms. */
export interface SettlerOptions {
  /** JetStream client, for dead-letter publishes. */
  readonly js: JetStreamClient;
  /** The queue's NATS names (work stream, dead-letter subject). */
  readonly names: QueueNames;
  /** Status sinks, written in order. */
  readonly sinks: readonly StatusSink[];
  /** Name recorded in `status.worker`. */
  readonly workerName: string;
  /** How long each sink's failing write is retried before giving up, in ms. */
  readonly statusWriteTimeoutMs: number;
  /** True when the connection is closed for good (a failing write gives up at once). */
  readonly isClosed: () => boolean;
  /** Metric handles of the queue. */
  readonly metrics: QueueMetrics;
  /** The worker's logger. */
  readonly log: Logger;
  /** The results bucket, for releasing unique locks; without it a unique task's lock is left to go stale. */
  readonly uniqueKv?: KV;
  /**
   * Continues a canvas after a canvas task's final record (CanvasRuntime.afterFinal): called after
   * the record is stored and the unique lock released, before the ack; when it throws, the message
   * is naked (CANVAS_CONTINUE_BACKOFF) instead, and its redelivery (a replay) calls it again.
   */
  readonly afterFinal?: (msg: TaskMessage, record: TaskRecord, o: { replay: boolean }) => Promise<void>;
}

/**
 * Nak backoff of a canvas task whose continuation (`afterFinal`) failed, by delivery count
 * (`backoffDelay`): its replay continues it. 1 s doubling to 60 s, never giving up (a canvas is not
 * dropped for a passing outage or a permission fixed later).
 */
export const CANVAS_CONTINUE_BACKOFF: Pick<ResolvedRetryPolicy, "backoff"> = Object.freeze({ backoff: Object.freeze({ initialSeconds: 1, factor: 2, maxSeconds: 60, jitter: false }) });

/** Records outcomes and settles task messages; see the module header. */
export class Settler {
  readonly #o: SettlerOptions;

  /** @param options sinks, names and the rest; kept as given */
  constructor(options: SettlerOptions) {
    this.#o = options;
  }

  /**
   * Writes a record through every sink in order, retrying a failing sink (50 ms doubling to 2 s)
   * for up to `statusWriteTimeoutMs` each.
   * @throws Error "write status of task <id> to <sink>" (cause: the sink's error) once that sink's
   *   time is up or the connection is closed; the sinks before it have written
   */
  async write(record: TaskRecord): Promise<void> {
    for (const sink of this.#o.sinks) {
      const end = Date.now() + this.#o.statusWriteTimeoutMs;
      for (let i = 0; ; i++) {
        try {
          await sink.write(record);
          break;
        } catch (err) {
          if (Date.now() > end || this.#o.isClosed()) throw new Error(`write status of task ${record.id} to ${sink.name}`, { cause: err });
          if (i === 0) this.#o.log.warn({ err, taskId: record.id, sink: sink.name }, "Status write failed; retrying");
          await sleep(backoffDelay(i + 1, STATUS_WRITE_BACKOFF));
        }
      }
    }
  }

  /**
   * Writes the `Running` record of an attempt (not a settlement: the message stays in work).
   * @param identity the task
   * @param attempts this attempt's number, 1-based
   * @param queuedTime when the message was created (RFC 3339)
   * @param startTime when the handler started (RFC 3339)
   * @param trace the delivery trace (attribution.ts): an alone attempt's `Running` record is what
   *   makes a crash during it count
   * @throws Error from `write`
   */
  writeRunning(identity: TaskIdentity, attempts: number, queuedTime: string, startTime: string, trace?: DeliveryTrace): Promise<void> {
    return this.write(this.runningRecord(identity, attempts, queuedTime, startTime, trace));
  }

  /**
   * The `Running` record of an attempt (what `writeRunning` writes), with `status.progress` when
   * given: a progress write is this record. Pure but for the time (`updatedAt` = now).
   * @param progress the attempt's last `ctx.progress` report
   */
  runningRecord(identity: TaskIdentity, attempts: number, queuedTime: string, startTime: string, trace?: DeliveryTrace, progress?: TaskProgress): TaskRecord {
    return traced(taskRecord(identity, { attempts, queuedTime, worker: this.#o.workerName, phase: "Running", startTime, ...(progress ? { progress } : {}) }), trace);
  }

  /** The sinks, in write order (for progress writes, which go to each sink at its own rate). */
  get sinks(): readonly StatusSink[] {
    return this.#o.sinks;
  }

  /**
   * Settles one message: records the ending (a `deadLetter` is first published to the dead-letter
   * stream with its reason), writes the record through every sink, releases a unique task's lock at
   * a final outcome (a failed release is logged: the lock is then stale), then acks (`succeed`,
   * `cancel`, `expire`, a replay), naks with the delay (`retry`, `wait`) or terms (`deadLetter`) — a
   * canvas task's final settle first continues its canvas (`afterFinal`), and is naked when that
   * fails, so the redelivery replays it; then counts it in
   * `celeriac_tasks_total` (and the run time in `celeriac_task_duration_seconds`) and logs it.
   * The only place a message is settled.
   * @param m the message
   * @param s its ending, or the replay of its recorded final state
   * @throws Error when the dead-letter publish or a status write failed: the message is then left
   *   unsettled, to be redelivered after the ack wait
   */
  async settle(m: JsMsg, s: Settlement): Promise<void> {
    const e = "replay" in s ? undefined : s;
    // celeriac.result: a child of the execute span, else (no handler ran) of the message's trace context
    const parent = e?.executeContext ?? extractContext(s.message?.trace);
    const label = settlementOutcome(s);
    const span = startResultSpan(parent, s.message, {
      [SPAN_ATTRIBUTES.outcome]: label,
      ...(e ? { [SPAN_ATTRIBUTES.attempt]: e.attempts } : {}),
      ...(e?.outcome.action === "deadLetter" ? { [SPAN_ATTRIBUTES.deadLetterReason]: e.outcome.reason } : {}),
    });
    try {
      await this.#settle(m, s, parent);
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
    if (span.isRecording()) {
      const phase = "replay" in s ? s.replay.status.phase : e && endingPhase(e);
      if (phase) span.setAttribute(SPAN_ATTRIBUTES.phase, phase);
    }
    // a message refused before any handler ran (unknown task, invalid, too many attempts) has no execute span to show it
    endSpan(span, e?.outcome.action === "deadLetter" && e.startTime === undefined ? new Error(e.detail ?? (e.error ? `${e.error.type}: ${e.error.message}` : e.outcome.reason)) : undefined);
  }

  /** `settle` without its span; `traceContext` is the context a canvas continuation runs in. */
  async #settle(m: JsMsg, s: Settlement, traceContext: Context): Promise<void> {
    const e = "replay" in s ? undefined : s;
    const now = new Date();
    const record = "replay" in s ? s.replay : s.identity && traced(taskRecord(s.identity, endingStatus(s, this.#o.workerName, now), now), s.trace);
    const detail = e?.detail ?? (e?.error ? `${e.error.type}: ${e.error.message}` : "");
    const o = e?.outcome;
    if (e?.outcome.action === "deadLetter") await this.#publishDeadLetter(m, e, e.outcome.reason, detail);
    if (record) await this.write(record);
    const final = o?.action !== "retry" && o?.action !== "wait";
    if (s.unique && final) await this.#release("replay" in s ? s.replay.id : s.identity?.id, s.unique);
    const continued = final && record && s.message?.canvas ? await this.#continueCanvas(s.message, record, "replay" in s, traceContext) : true;
    if (!continued) m.nak(backoffDelay(m.info?.deliveryCount ?? 1, CANVAS_CONTINUE_BACKOFF));
    else if (o?.action === "retry" || o?.action === "wait") m.nak(o.delayMs);
    else if (o?.action === "deadLetter") m.term();
    else m.ack(); // succeed, cancel, expire, or a replay
    if ("replay" in s) {
      if (continued) this.#o.log.info({ taskId: s.replay.id, phase: s.replay.status.phase }, "Redelivered task already finished; acked");
    }
    else this.#report(s, detail);
  }

  /** Runs `afterFinal` for a canvas task's final record; false (logged) when it threw. Never throws. */
  async #continueCanvas(msg: TaskMessage, record: TaskRecord, replay: boolean, traceContext: Context): Promise<boolean> {
    const afterFinal = this.#o.afterFinal;
    if (!afterFinal) return true;
    try {
      // in the attempt's context: the next steps' enqueue spans are its children (one trace per canvas)
      await (traceContext === ROOT_CONTEXT ? afterFinal(msg, record, { replay }) : context.with(traceContext, () => afterFinal(msg, record, { replay })));
      return true;
    } catch (err) {
      this.#o.log.warn({ err, taskId: msg.id, canvas: msg.canvas?.root }, "Canvas continuation failed; naked for a replay");
      return false;
    }
  }

  /** Releases the unique lock held by task `id` (nats/unique.ts `releaseUnique`); never throws. */
  async #release(id: string | undefined, unique: MessageUnique): Promise<void> {
    const kv = this.#o.uniqueKv;
    if (!kv || id === undefined) return;
    try {
      const done = await releaseUnique(kv, { id, unique });
      if (done !== "notHeld" && this.#o.log.isLevelEnabled("debug")) this.#o.log.debug({ taskId: id, uniqueKey: unique.key, release: done }, "Released unique key");
    } catch (err) {
      this.#o.log.warn({ err, taskId: id, uniqueKey: unique.key }, "Unique key release failed; the lock is stale and will be taken over");
    }
  }

  /** The metric and log steps of `settle` for a new outcome. */
  #report(e: Ending, detail: string): void {
    const { metrics, log } = this.#o;
    const { outcome: o, task } = e;
    const traceFields = e.executeContext ? traceLogFields(trace.getSpan(e.executeContext)) : {};
    const fields = { taskId: e.identity?.id, task, attempt: e.attempts, ...traceFields };
    if (e.seconds !== undefined) metrics.observe(task, e.seconds);
    if (e.attempts === 1 && e.startTime !== undefined && e.message) {
      const wait = queueWaitSeconds(e.message, e.startTime);
      if (wait !== undefined) metrics.observeWait(task, wait);
    }
    switch (o.action) {
      case "succeed":
        metrics.count(task, "succeeded");
        if (log.isLevelEnabled("debug")) log.debug({ ...fields, seconds: e.seconds }, "Task succeeded");
        break;
      case "cancel":
        metrics.count(task, "cancelled");
        log.info(fields, "Task cancelled");
        break;
      case "expire":
        metrics.count(task, "expired");
        log.info(fields, "Task expired");
        break;
      case "retry":
        metrics.count(task, e.cause instanceof TimeoutError ? "timed_out" : "retried");
        log.info({ ...fields, err: e.cause, delayMs: o.delayMs }, "Task failed; retry scheduled");
        break;
      case "wait":
        if (log.isLevelEnabled("debug")) log.debug({ ...fields, reason: e.waiting?.reason, message: e.waiting?.message, delayMs: o.delayMs }, "Task waiting; naked");
        break;
      case "deadLetter":
        // one outcome per delivery: a handler's final failure is `failed`, a message refused at admission `dead_lettered`
        metrics.count(task, e.startTime !== undefined ? "failed" : "dead_lettered");
        log.warn({ taskId: e.identity?.id, reason: o.reason, detail, attempts: e.attempts, ...traceFields }, "Dead-lettered task");
        break;
    }
  }

  /** Publishes the message to the dead-letter stream with its reason headers (deduplicated per stream sequence). */
  async #publishDeadLetter(m: JsMsg, e: Ending, reason: DeadLetterReason, detail: string): Promise<void> {
    const { names } = this.#o;
    const h = natsHeaders();
    h.set(HEADERS.deadReason, reason);
    h.set(HEADERS.deadDetail, detail.replace(/[\r\n]+/g, " ").slice(0, 1024));
    h.set(HEADERS.deadStreamSeq, String(m.seq));
    h.set(HEADERS.deadAttempts, String(e.attempts));
    h.set(HEADERS.deadStream, names.stream);
    h.set(HEADERS.task, e.task);
    await this.#o.js.publish(names.deadLetterSubject, m.data, { headers: h, msgID: `dlq-${names.stream}-${m.seq}` });
  }
}

/** The phase an ending records (`endingStatus`'s `phase`, without building the status). Pure. */
function endingPhase(e: Ending): string {
  const o = e.outcome;
  return o.action === "retry" ? "Retrying" : o.action === "deadLetter" ? "Failed" : o.phase;
}

/**
 * The `celeriac.task.outcome` of a settlement: the metric's outcome label (a dead letter refused
 * before the handler ran is `dead_lettered`, a handler's final failure `failed`), `waiting` for a
 * unique task naked until its key is free, `replayed` for a redelivered final record. Pure.
 */
export function settlementOutcome(s: Settlement): SpanOutcome {
  if ("replay" in s) return "replayed";
  switch (s.outcome.action) {
    case "succeed":
      return "succeeded";
    case "cancel":
      return "cancelled";
    case "expire":
      return "expired";
    case "retry":
      return s.cause instanceof TimeoutError ? "timed_out" : "retried";
    case "deadLetter":
      return s.startTime !== undefined ? "failed" : "dead_lettered";
    case "wait":
      return "waiting";
  }
}
